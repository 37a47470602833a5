"""Stack delete through the custom resource: the trigger starts the teardown execution and the poll
answers CloudFormation with the physical id it holds, SUCCESS or FAILED, never leaving it waiting."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from expel_onboarding import cfn_response, custom_resource, lifecycle
from expel_onboarding.custom_resource import Outcome
from tests.unit.test_custom_resource import cfn_event

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:expel-onboarding"
CRHELPER_ID = "expel_Onboarding_AB12CD34"  # what crhelper answers a Create that failed before our id existed


class Context:
    function_name = "expel-TriggerFunction-1"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:expel-TriggerFunction-1"
    aws_request_id = "00000000-0000-0000-0000-000000000001"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


@pytest.fixture
def trigger(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    """The trigger module with Step Functions, crhelper's EventBridge schedule and the response faked."""
    monkeypatch.setenv("STATE_MACHINE_ARN", MACHINE)
    app = importlib.import_module("functions.trigger.app")
    started: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []

    def start(state_machine_arn: str, name: str, execution_input: dict[str, Any]) -> str:
        started.append({"name": name, "input": execution_input})
        return f"{MACHINE.replace(':stateMachine:', ':execution:')}:{name}"

    monkeypatch.setattr(lifecycle.stepfunctions, "start_execution", start)
    monkeypatch.setattr(lifecycle.stepfunctions, "list_executions", lambda _arn: [])
    monkeypatch.setattr(cfn_response, "send", lambda _url, body: sent.append(body))
    monkeypatch.setattr(app.helper, "_init_failed", None)
    monkeypatch.setattr(app.helper, "_setup_polling", lambda: None)
    monkeypatch.setattr(app.helper, "_remove_polling", lambda: None)
    return app, started, sent


def delete_event(physical_id: str) -> dict[str, Any]:
    return {**cfn_event("Delete"), "PhysicalResourceId": physical_id}


def polled(event: dict[str, Any], execution_arn: str) -> dict[str, Any]:
    return {**event, "CrHelperPoll": True, "CrHelperData": {"ExecutionArn": execution_arn},
            "CrHelperRule": "arn:aws:events:us-east-1:123456789012:rule/OnboardingAB12CD34",
            "CrHelperPermission": "OnboardingAB12CD34"}


def test_delete_starts_the_teardown_execution_even_when_the_physical_id_is_not_ours(trigger: Any) -> None:
    app, started, sent = trigger
    app.lambda_handler(delete_event(CRHELPER_ID), Context())

    [execution] = started
    assert execution["name"] == "delete-5a3c-2b1e-0001"
    assert execution["input"]["CloudFormation"]["RequestType"] == "Delete"
    assert execution["input"]["CloudFormation"]["PhysicalResourceId"] == CRHELPER_ID
    assert sent == []  # the answer waits for the teardown: the state machine or the poll gives it


def test_delete_stops_an_onboarding_still_running_before_the_teardown_starts(
        trigger: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app, started, _sent = trigger
    executions = [{"executionArn": "arn:create-1", "name": "create-1", "status": "RUNNING"},
                   {"executionArn": "arn:create-0", "name": "create-0", "status": "FAILED"},
                   {"executionArn": "arn:delete-0", "name": "delete-0", "status": "RUNNING"}]
    stopped: list[str] = []
    monkeypatch.setattr(lifecycle.stepfunctions, "list_executions", lambda _arn: executions)
    monkeypatch.setattr(lifecycle.stepfunctions, "stop_execution", lambda arn, _cause: stopped.append(arn))

    app.lambda_handler(delete_event(CRHELPER_ID), Context())

    assert stopped == ["arn:create-1"]
    assert len(started) == 1


def test_poll_answers_a_finished_teardown_with_the_physical_id_cloudformation_holds(
        trigger: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app, _started, sent = trigger
    monkeypatch.setattr(lifecycle, "poll", lambda *_a, **_k: Outcome("SUCCESS", {"KmsKeyArn": "k"}))
    app.lambda_handler(polled(delete_event(CRHELPER_ID), "arn:exec"), Context())

    [body] = sent
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == CRHELPER_ID


def test_poll_fails_the_delete_with_the_teardowns_reason_instead_of_waiting(
        trigger: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app, _started, sent = trigger
    reason = "Step 5 Delete SQS Queue failed: OnboardingError: denied | Execution: https://example"
    monkeypatch.setattr(lifecycle, "poll", lambda *_a, **_k: Outcome("FAILED", reason=reason))
    app.lambda_handler(polled(delete_event("expel-cloudtrail-onboarding"), "arn:exec"), Context())

    [body] = sent
    assert body["Status"] == "FAILED"
    assert "Step 5 Delete SQS Queue failed" in body["Reason"]
    assert body["PhysicalResourceId"] == "expel-cloudtrail-onboarding"


def test_poll_keeps_cloudformation_waiting_while_the_teardown_runs(
        trigger: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app, _started, sent = trigger
    monkeypatch.setattr(lifecycle, "poll", lambda *_a, **_k: Outcome("PENDING"))
    app.lambda_handler(polled(delete_event(CRHELPER_ID), "arn:exec"), Context())
    assert sent == []


def test_create_answers_with_a_physical_id_naming_the_stack_and_its_identity() -> None:
    execution_input = custom_resource.execution_input(cfn_event("Create"))
    physical = execution_input["CloudFormation"]["PhysicalResourceId"]
    assert physical == custom_resource.physical_id(cfn_event("Create")["ResourceProperties"])
    assert physical.startswith("expel-cloudtrail-onboarding-")
    assert json.dumps(execution_input)  # serialisable as the execution input


def test_update_that_renames_the_queue_fails_at_once_and_starts_nothing(trigger: Any) -> None:
    app, started, sent = trigger
    old = cfn_event()["ResourceProperties"]
    event = {**cfn_event("Update", QueueName="Renamed"), "OldResourceProperties": old,
             "PhysicalResourceId": custom_resource.physical_id(old)}
    app.lambda_handler(event, Context())

    assert started == []
    [body] = sent
    assert body["Status"] == "FAILED"
    assert "Parameter QueueName: cannot change on a stack update" in body["Reason"]
    assert body["PhysicalResourceId"] == custom_resource.physical_id(old)


def test_update_stops_a_retry_still_running_before_its_own_execution_starts(
        trigger: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app, started, _sent = trigger
    old = cfn_event()["ResourceProperties"]
    stopped: list[str] = []
    monkeypatch.setattr(lifecycle.stepfunctions, "list_executions", lambda _arn: [
        {"executionArn": "arn:create-1", "name": "create-1", "status": "RUNNING"}])
    monkeypatch.setattr(lifecycle.stepfunctions, "stop_execution", lambda arn, _cause: stopped.append(arn))
    app.lambda_handler({**cfn_event("Update", WorkbenchLocation="on prem"), "OldResourceProperties": old,
                        "PhysicalResourceId": custom_resource.physical_id(old)}, Context())

    assert stopped == ["arn:create-1"]
    assert [e["name"] for e in started] == ["update-5a3c-2b1e-0001"]
