"""The poll is the one answerer: its verdict on every terminal state, the retry window, redrive, a new
execution with the same input, and the deadline. CloudFormation never waits an hour."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from expel_onboarding import custom_resource
from expel_onboarding.custom_resource import Verdict, judge

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:expel-onboarding"
FIRST = "arn:aws:states:us-east-1:123456789012:execution:expel-onboarding:create-1"
RETRY = "arn:aws:states:us-east-1:123456789012:execution:expel-onboarding:retry-by-a-person"
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SETTINGS = {"RetryWindowSeconds": 600, "DeadlineSeconds": 2700, "PollSeconds": 10}
ROLE = "arn:aws:iam::123456789012:role/ExpelAssumeRole"


def execution(arn: str, status: str, started: datetime, stopped: datetime | None = None,
              output: dict[str, Any] | None = None, request_id: str = "req-1") -> dict[str, Any]:
    described = {"executionArn": arn, "status": status, "startDate": started,
                 "input": json.dumps({"CloudFormation": {"RequestId": request_id}}),
                 "output": json.dumps(output or {})}
    if stopped:
        described["stopDate"] = stopped
    return described


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_running_execution_keeps_cloudformation_waiting() -> None:
    assert judge([execution(FIRST, "RUNNING", T0)], SETTINGS, at(5)) == Verdict("PENDING")


def test_running_past_the_deadline_fails_before_cloudformations_own_timeout_and_is_stopped() -> None:
    # The poll answers DEADLINE_MARGIN_SECONDS before ServiceTimeout (the same parameter) would fire.
    late = judge([execution(FIRST, "RUNNING", T0)], SETTINGS, T0 + timedelta(seconds=2521))
    assert late.status == "FAILED"
    assert late.reason.startswith("Onboarding did not finish within 2520 s | Execution: https://")
    assert late.stop == (FIRST,)
    assert judge([execution(FIRST, "RUNNING", T0)], SETTINGS, T0 + timedelta(seconds=2519)).status == "PENDING"


def test_success_answers_with_the_outputs() -> None:
    state = {"Queue": {"QueueUrl": "https://q"}, "ExecutionId": FIRST}
    verdict = judge([execution(FIRST, "SUCCEEDED", T0, at(1), state)], SETTINGS, at(1.5))
    assert verdict.status == "SUCCESS"
    assert verdict.data["SqsQueueUrl"] == "https://q"
    assert verdict.data["ExecutionArn"] == FIRST
    assert set(verdict.data) == set(custom_resource.OUTPUT_PATHS)


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT"])
def test_a_failure_waits_for_a_retry_inside_the_window_then_fails_naming_the_execution(status: str) -> None:
    failed = [execution(FIRST, status, T0, at(1))]
    assert judge(failed, SETTINGS, at(1) + timedelta(seconds=599)) == Verdict("PENDING", failed_execution=FIRST)
    assert judge(failed, SETTINGS, at(11)) == Verdict("FAILED", failed_execution=FIRST)


def test_no_retry_window_fails_at_the_first_poll() -> None:
    verdict = judge([execution(FIRST, "FAILED", T0, at(1))], {**SETTINGS, "RetryWindowSeconds": 0}, at(1))
    assert verdict == Verdict("FAILED", failed_execution=FIRST)


def test_an_aborted_execution_fails_at_once() -> None:
    assert judge([execution(FIRST, "ABORTED", T0, at(1))], SETTINGS, at(1.1)).status == "FAILED"


def test_a_redriven_execution_keeps_its_arn_and_completes_the_stack() -> None:
    # Failed at minute 1, redriven at minute 9 (the same ARN runs again), succeeded at minute 14:
    # past the window counted from the first failure, which does not matter while it runs or once it succeeded.
    assert judge([execution(FIRST, "RUNNING", T0)], SETTINGS, at(12)).status == "PENDING"
    redriven = execution(FIRST, "SUCCEEDED", T0, at(14), {"Role": {"RoleArn": ROLE}, "ExecutionId": FIRST})
    verdict = judge([redriven], SETTINGS, at(14.5))
    assert verdict.status == "SUCCESS"
    assert verdict.data["IamRoleArn"] == ROLE


def test_a_redrive_that_fails_again_opens_a_new_window() -> None:
    again = [execution(FIRST, "FAILED", T0, at(14))]  # stopDate is the latest attempt's end
    assert judge(again, SETTINGS, at(20)).status == "PENDING"
    assert judge(again, SETTINGS, at(24.1)).status == "FAILED"


def test_a_new_execution_with_the_same_input_completes_the_stack_with_its_outputs() -> None:
    executions = [execution(FIRST, "FAILED", T0, T0),
                  execution(RETRY, "SUCCEEDED", at(2), at(3), {"Role": {"RoleArn": ROLE}, "ExecutionId": RETRY})]
    verdict = judge(executions, SETTINGS, at(30))
    assert verdict.status == "SUCCESS"
    assert verdict.data["IamRoleArn"] == ROLE
    assert verdict.data["ExecutionArn"] == RETRY


def test_a_retry_still_running_keeps_waiting_after_the_window() -> None:
    executions = [execution(FIRST, "FAILED", T0, T0), execution(RETRY, "RUNNING", at(9))]
    assert judge(executions, SETTINGS, at(11)).status == "PENDING"


def test_a_retry_running_past_the_deadline_is_stopped_and_fails() -> None:
    executions = [execution(FIRST, "FAILED", T0, T0), execution(RETRY, "RUNNING", at(9))]
    verdict = judge(executions, SETTINGS, at(43))
    assert verdict.status == "FAILED" and verdict.stop == (RETRY,)


def test_a_failed_retry_is_the_one_whose_failure_is_reported() -> None:
    executions = [execution(FIRST, "FAILED", T0, at(1)), execution(RETRY, "FAILED", at(5), at(6))]
    assert judge(executions, SETTINGS, at(12)) == Verdict("PENDING", failed_execution=RETRY)
    assert judge(executions, SETTINGS, at(16.1)) == Verdict("FAILED", failed_execution=RETRY)


def test_an_aborted_retry_fails_at_once() -> None:
    executions = [execution(FIRST, "FAILED", T0, at(1)), execution(RETRY, "ABORTED", at(5), at(6))]
    assert judge(executions, SETTINGS, at(6.1)) == Verdict("FAILED", failed_execution=RETRY)


class FakeStepFunctions:
    def __init__(self, executions: list[dict[str, Any]]) -> None:
        self.executions = {e["executionArn"]: e for e in executions}

    def describe_execution(self, arn: str) -> dict[str, Any]:
        return self.executions[arn]

    def list_executions(self, _machine: str) -> list[dict[str, Any]]:
        return [{k: e[k] for k in ("executionArn", "status", "startDate")} for e in self.executions.values()]


def test_the_attempts_of_a_request_are_its_execution_and_later_ones_with_the_same_input(
        monkeypatch: pytest.MonkeyPatch) -> None:
    older = "arn:aws:states:us-east-1:123456789012:execution:expel-onboarding:create-0"
    other = "arn:aws:states:us-east-1:123456789012:execution:expel-onboarding:update-2"
    fake = FakeStepFunctions([
        execution(older, "FAILED", T0 - timedelta(days=1), request_id="req-1"),  # before ours: not a retry
        execution(FIRST, "FAILED", T0, at(1)),
        execution(other, "RUNNING", at(2), request_id="req-2"),  # another request
        execution(RETRY, "SUCCEEDED", at(3), at(4)),
    ])
    monkeypatch.setattr(custom_resource, "stepfunctions", fake)
    assert [e["executionArn"] for e in custom_resource.attempts(FIRST, MACHINE)] == [FIRST, RETRY]
