"""The safety-net poll decides when CloudFormation gets its answer: never an hour's hang."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from expel_onboarding import lifecycle

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:expel-onboarding"
FIRST = "arn:aws:states:us-east-1:123456789012:execution:expel-onboarding:create-1"
RETRY = "arn:aws:states:us-east-1:123456789012:execution:expel-onboarding:retry-1"
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SETTINGS = {"RetryWindowSeconds": 600, "DeadlineSeconds": 2700, "PollSeconds": 10}
INPUT = json.dumps({"CloudFormation": {"RequestId": "req-1"}})
FAILED_HISTORY = [
    {"id": 1, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Step 4 Edit KMS Key Policy"}},
    {"id": 2, "previousEventId": 1, "type": "LambdaFunctionFailed",
     "lambdaFunctionFailedEventDetails": {"error": "OnboardingError", "cause": "key is gone"}},
]


class FakeStepFunctions:
    def __init__(self, executions: list[dict[str, Any]]) -> None:
        self.executions = {e["executionArn"]: e for e in executions}
        self.stopped: list[str] = []

    def stop_execution(self, arn: str, _cause: str) -> None:
        self.stopped.append(arn)

    def describe_execution(self, arn: str) -> dict[str, Any]:
        return self.executions[arn]

    def list_executions(self, _machine: str) -> list[dict[str, Any]]:
        return list(self.executions.values())

    def history(self, _arn: str) -> list[dict[str, Any]]:
        return FAILED_HISTORY


def execution(arn: str, status: str, started: datetime, stopped: datetime | None = None,
              output: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"executionArn": arn, "status": status, "startDate": started, "stopDate": stopped,
            "input": INPUT, "output": json.dumps(output or {})}


def poll(monkeypatch: pytest.MonkeyPatch, executions: list[dict[str, Any]], now: datetime) -> Any:
    fake = FakeStepFunctions(executions)
    monkeypatch.setattr(lifecycle, "stepfunctions", fake)
    outcome = lifecycle.poll(FIRST, MACHINE, SETTINGS, now=now)
    outcome.stopped = fake.stopped
    return outcome


def test_running_execution_keeps_cloudformation_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert poll(monkeypatch, [execution(FIRST, "RUNNING", T0)], T0 + timedelta(minutes=5)).status == "PENDING"


def test_running_past_the_deadline_fails_before_cloudformations_own_timeout_and_is_stopped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The poll answers DEADLINE_MARGIN_SECONDS before ServiceTimeout (the same parameter) would fire.
    outcome = poll(monkeypatch, [execution(FIRST, "RUNNING", T0)], T0 + timedelta(seconds=2521))
    assert outcome.status == "FAILED"
    assert "did not finish within 2520 s" in outcome.reason
    assert outcome.stopped == [FIRST]
    assert poll(monkeypatch, [execution(FIRST, "RUNNING", T0)], T0 + timedelta(seconds=2519)).status == "PENDING"


def test_success_reports_the_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    state = {"Queue": {"QueueUrl": "https://q"}, "ExecutionId": FIRST}
    outcome = poll(monkeypatch, [execution(FIRST, "SUCCEEDED", T0, T0, state)], T0 + timedelta(minutes=1))
    assert outcome.status == "SUCCESS"
    assert outcome.data["SqsQueueUrl"] == "https://q"


def test_failure_inside_the_retry_window_waits_for_a_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = poll(monkeypatch, [execution(FIRST, "FAILED", T0, T0)], T0 + timedelta(seconds=300))
    assert outcome.status == "PENDING"


def test_failure_after_the_retry_window_names_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = poll(monkeypatch, [execution(FIRST, "FAILED", T0, T0)], T0 + timedelta(seconds=601))
    assert outcome.status == "FAILED"
    assert outcome.reason.startswith("Step 4 Edit KMS Key Policy failed: OnboardingError: key is gone")


def test_aborted_execution_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = poll(monkeypatch, [execution(FIRST, "ABORTED", T0, T0)], T0 + timedelta(seconds=5))
    assert outcome.status == "FAILED"


def test_successful_retry_with_the_same_input_completes_the_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    executions = [execution(FIRST, "FAILED", T0, T0),
                  execution(RETRY, "SUCCEEDED", T0 + timedelta(minutes=2), T0 + timedelta(minutes=3),
                            {"Role": {"RoleArn": "arn:aws:iam::123456789012:role/ExpelAssumeRole"}})]
    outcome = poll(monkeypatch, executions, T0 + timedelta(minutes=30))
    assert outcome.status == "SUCCESS"
    assert outcome.data["IamRoleArn"].endswith("role/ExpelAssumeRole")


def test_running_retry_keeps_waiting_after_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    executions = [execution(FIRST, "FAILED", T0, T0), execution(RETRY, "RUNNING", T0 + timedelta(minutes=9))]
    assert poll(monkeypatch, executions, T0 + timedelta(minutes=11)).status == "PENDING"


def test_a_redriven_execution_running_again_keeps_waiting_after_its_first_window(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Redrive keeps the ARN: the execution CloudFormation's request started is RUNNING again.
    redriven = {**execution(FIRST, "RUNNING", T0), "redriveCount": 1, "redriveDate": T0 + timedelta(minutes=9)}
    assert poll(monkeypatch, [redriven], T0 + timedelta(minutes=11)).status == "PENDING"


def test_a_redriven_execution_that_succeeded_completes_the_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    state = {"Queue": {"QueueUrl": "https://q"}, "ExecutionId": FIRST}
    redriven = {**execution(FIRST, "SUCCEEDED", T0, T0 + timedelta(minutes=12), state), "redriveCount": 1}
    outcome = poll(monkeypatch, [redriven], T0 + timedelta(minutes=13))
    assert outcome.status == "SUCCESS" and outcome.data["ExecutionArn"] == FIRST


def test_a_redrive_that_failed_again_gets_a_new_window_from_that_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    again = {**execution(FIRST, "FAILED", T0, T0 + timedelta(minutes=9)), "redriveCount": 1}
    assert poll(monkeypatch, [again], T0 + timedelta(minutes=11)).status == "PENDING"
    assert poll(monkeypatch, [again], T0 + timedelta(minutes=19, seconds=1)).status == "FAILED"
