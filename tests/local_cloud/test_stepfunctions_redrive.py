"""RedriveExecution as Step Functions has it, on moto's Step Functions engine in this process.

A state that fails the first time and succeeds once the cause is fixed: an aws-sdk Task reading an S3 object
that does not exist yet. The test puts the object (the fix), redrives, and reads what Step Functions shows.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local_cloud import stepfunctions_redrive

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"
BUCKET = "redrive-fixture"
READ_OBJECT = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
               "Parameters": {"Bucket": BUCKET, "Key": "fixed"}, "ResultSelector": {"read": True}}


@pytest.fixture
def sfn() -> Iterator[Any]:
    stepfunctions_redrive.install()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        yield boto3.client("stepfunctions", region_name=REGION)


def fix_the_cause() -> None:
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key="fixed", Body=b"ok")


def machine(sfn: Any, states: dict[str, Any], start: str, kind: str = "STANDARD", **extra: Any) -> str:
    definition = {"StartAt": start, "States": states, **extra}
    return str(sfn.create_state_machine(name=f"m{time.monotonic_ns()}", definition=json.dumps(definition),
                                        roleArn=ROLE, type=kind)["stateMachineArn"])


def finished(sfn: Any, arn: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=arn)
        events = sfn.get_execution_history(executionArn=arn)["events"]
        if described["status"] != "RUNNING" and events[-1]["type"].startswith("Execution"):
            return dict(described)
        assert time.monotonic() < deadline, f"{arn} still {described['status']}"
        time.sleep(0.05)


def run(sfn: Any, machine_arn: str, payload: dict[str, Any] | None = None) -> str:
    arn = sfn.start_execution(stateMachineArn=machine_arn, name=f"e{time.monotonic_ns()}",
                              input=json.dumps(payload or {"n": 1}))["executionArn"]
    finished(sfn, arn)
    return str(arn)


def entered(sfn: Any, arn: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in sfn.get_execution_history(executionArn=arn)["events"]
            if "stateEnteredEventDetails" in e]


def test_a_failed_execution_restarts_at_the_failed_state_with_the_same_arn_and_input(sfn: Any) -> None:
    states = {"First": {"Type": "Pass", "Result": "done", "ResultPath": "$.first", "Next": "Read"},
              "Read": {**READ_OBJECT, "ResultPath": "$.read", "End": True}}
    arn = run(sfn, machine(sfn, states, "First"))
    before = sfn.describe_execution(executionArn=arn)
    fix_the_cause()

    answer = sfn.redrive_execution(executionArn=arn)
    after = finished(sfn, arn)

    assert before["status"] == "FAILED" and before["redriveStatus"] == "REDRIVABLE"
    assert before["redriveCount"] == 0 and "redriveDate" not in before
    assert after["status"] == "SUCCEEDED" and after["executionArn"] == arn and after["input"] == before["input"]
    assert json.loads(after["output"]) == {"n": 1, "first": "done", "read": {"read": True}}
    assert after["redriveCount"] == 1 and after["redriveDate"] == answer["redriveDate"]
    assert after["redriveStatus"] == "NOT_REDRIVABLE"
    assert after["redriveStatusReason"] == "Execution is SUCCEEDED and cannot be redriven"
    assert entered(sfn, arn) == ["First", "Read", "Read"]  # the Pass that succeeded is not run again


def test_history_appends_execution_redriven_and_the_redriven_states_after_the_original_events(sfn: Any) -> None:
    arn = run(sfn, machine(sfn, {"Read": {**READ_OBJECT, "End": True}}, "Read"))
    original = sfn.get_execution_history(executionArn=arn)["events"]
    fix_the_cause()

    sfn.redrive_execution(executionArn=arn)
    finished(sfn, arn)
    events = sfn.get_execution_history(executionArn=arn)["events"]

    assert events[: len(original)] == original
    redriven = events[len(original)]
    assert redriven["type"] == "ExecutionRedriven"
    assert redriven["executionRedrivenEventDetails"] == {"redriveCount": 1}
    assert redriven["previousEventId"] == original[-1]["id"]
    assert [e["type"] for e in events[len(original) + 1:]][0] == "TaskStateEntered"
    assert events[-1]["type"] == "ExecutionSucceeded"
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))


def test_an_error_a_catch_routed_to_a_fail_state_fails_again_on_redrive(sfn: Any) -> None:
    states = {"Read": {**READ_OBJECT, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}], "End": True},
              "Failed": {"Type": "Fail", "Error": "Handled", "Cause": "caught"}}
    arn = run(sfn, machine(sfn, states, "Read"))
    fix_the_cause()

    sfn.redrive_execution(executionArn=arn)
    after = finished(sfn, arn)

    assert after["status"] == "FAILED" and after["error"] == "Handled"
    assert entered(sfn, arn) == ["Read", "Failed", "Failed"]  # Step Functions re-enters the Fail state only


def test_a_parallel_state_runs_again_only_the_branch_that_failed(sfn: Any) -> None:
    branch_ok = {"StartAt": "Fine", "States": {"Fine": {"Type": "Pass", "Result": "fine", "End": True}}}
    branch_bad = {"StartAt": "Before", "States": {
        "Before": {"Type": "Pass", "Result": "before", "ResultPath": "$.before", "Next": "Read"},
        "Read": {**READ_OBJECT, "ResultPath": "$.read", "End": True}}}
    states = {"Both": {"Type": "Parallel", "Branches": [branch_ok, branch_bad], "End": True}}
    arn = run(sfn, machine(sfn, states, "Both"))
    fix_the_cause()

    sfn.redrive_execution(executionArn=arn)
    after = finished(sfn, arn)

    assert after["status"] == "SUCCEEDED"
    assert json.loads(after["output"]) == ["fine", {"n": 1, "before": "before", "read": {"read": True}}]
    assert entered(sfn, arn).count("Fine") == 1 and entered(sfn, arn).count("Before") == 1
    assert entered(sfn, arn).count("Read") == 2 and entered(sfn, arn).count("Both") == 2


def test_an_aborted_execution_is_redriven_from_the_state_it_was_stopped_in(sfn: Any) -> None:
    states = {"First": {"Type": "Pass", "Next": "Hold"}, "Hold": {"Type": "Wait", "Seconds": 1, "End": True}}
    arn = sfn.start_execution(stateMachineArn=machine(sfn, states, "First"), input="{}")["executionArn"]
    time.sleep(0.3)
    sfn.stop_execution(executionArn=arn, error="Stop", cause="a person")
    assert finished(sfn, arn)["status"] == "ABORTED"

    sfn.redrive_execution(executionArn=arn)

    assert finished(sfn, arn)["status"] == "SUCCEEDED"
    assert entered(sfn, arn) == ["First", "Hold", "Hold"]


def test_a_timed_out_execution_can_be_redriven_and_its_timeout_starts_again(sfn: Any) -> None:
    states = {"Hold": {"Type": "Wait", "Seconds": 2, "End": True}}
    arn = sfn.start_execution(stateMachineArn=machine(sfn, states, "Hold", TimeoutSeconds=1), input="{}")[
        "executionArn"]
    timed_out = finished(sfn, arn)
    assert timed_out["status"] == "TIMED_OUT" and "stopDate" in timed_out
    assert timed_out["redriveStatus"] == "REDRIVABLE"

    sfn.redrive_execution(executionArn=arn)
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"

    again = finished(sfn, arn)
    assert again["status"] == "TIMED_OUT" and again["redriveCount"] == 1


def test_an_execution_ending_after_its_timeout_timed_out_even_when_the_watcher_wakes_late(
        sfn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy machine: the engine's watcher thread is not woken at the deadline (its join waits on, as if
    starved), so the program reaches its end first. The deadline decides: TIMED_OUT, not SUCCEEDED."""
    real_join = threading.Thread.join

    def starved_join(self: threading.Thread, timeout: float | None = None) -> None:
        real_join(self, None if timeout is not None and self.daemon else timeout)

    states = {"Hold": {"Type": "Wait", "Seconds": 2, "End": True}}
    monkeypatch.setattr(threading.Thread, "join", starved_join)
    arn = sfn.start_execution(stateMachineArn=machine(sfn, states, "Hold", TimeoutSeconds=1), input="{}")[
        "executionArn"]
    assert finished(sfn, arn)["status"] == "TIMED_OUT"


@pytest.mark.parametrize("status", ["RUNNING", "SUCCEEDED"])
def test_running_and_succeeded_executions_are_not_redrivable(sfn: Any, status: str) -> None:
    states = {"Hold": {"Type": "Wait", "Seconds": 2 if status == "RUNNING" else 0, "End": True}}
    arn = sfn.start_execution(stateMachineArn=machine(sfn, states, "Hold"), input="{}")["executionArn"]
    if status == "SUCCEEDED":
        finished(sfn, arn)

    with pytest.raises(ClientError) as refused:
        sfn.redrive_execution(executionArn=arn)

    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert refused.value.response["Error"]["Message"] == f"Execution is {status} and cannot be redriven"
    described = sfn.describe_execution(executionArn=arn)
    assert described["redriveStatus"] == "NOT_REDRIVABLE"
    assert described["redriveStatusReason"] == f"Execution is {status} and cannot be redriven"


def test_an_execution_stopped_more_than_14_days_ago_is_not_redrivable(sfn: Any) -> None:
    arn = run(sfn, machine(sfn, {"Read": {**READ_OBJECT, "End": True}}, "Read"))
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    execution = stepfunctions_parser_backends["123456789012"][REGION].describe_execution(arn)
    execution.stop_date = datetime.now(UTC) - timedelta(days=14, minutes=1)

    with pytest.raises(ClientError) as refused:
        sfn.redrive_execution(executionArn=arn)

    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert refused.value.response["Error"]["Message"] == "Execution redrivable period exceeded"
    assert sfn.describe_execution(executionArn=arn)["redriveStatusReason"] == "Execution redrivable period exceeded"


def test_an_express_execution_is_not_redrivable(sfn: Any) -> None:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    express = machine(sfn, {"Read": {**READ_OBJECT, "End": True}}, "Read", kind="EXPRESS")
    arn = sfn.start_execution(stateMachineArn=express, input="{}")["executionArn"]
    execution = stepfunctions_parser_backends["123456789012"][REGION].describe_execution(arn)
    deadline = time.monotonic() + 10
    while execution.status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)

    with pytest.raises(ClientError) as refused:
        sfn.redrive_execution(executionArn=arn)

    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"


def test_unknown_executions_and_malformed_arns_are_refused_as_step_functions_does(sfn: Any) -> None:
    machine_arn = machine(sfn, {"Done": {"Type": "Pass", "End": True}}, "Done")
    missing = machine_arn.replace(":stateMachine:", ":execution:") + ":never-started"

    with pytest.raises(ClientError) as unknown:
        sfn.redrive_execution(executionArn=missing)
    with pytest.raises(ClientError) as malformed:
        sfn.redrive_execution(executionArn="not-an-arn")

    assert unknown.value.response["Error"]["Code"] == "ExecutionDoesNotExist"
    assert malformed.value.response["Error"]["Code"] == "InvalidArn"


def test_the_same_client_token_answers_again_without_a_second_redrive(sfn: Any) -> None:
    arn = run(sfn, machine(sfn, {"Read": {**READ_OBJECT, "End": True}}, "Read"))
    fix_the_cause()

    first = sfn.redrive_execution(executionArn=arn, clientToken="console-click-1")
    again = sfn.redrive_execution(executionArn=arn, clientToken="console-click-1")
    finished(sfn, arn)

    assert again["redriveDate"] == first["redriveDate"]
    assert sfn.describe_execution(executionArn=arn)["redriveCount"] == 1
    with pytest.raises(ClientError) as other_token:
        sfn.redrive_execution(executionArn=arn, clientToken="console-click-2")
    assert other_token.value.response["Error"]["Code"] == "ExecutionNotRedrivable"


def test_list_executions_filters_redriven_ones_and_shows_their_count_and_date(sfn: Any) -> None:
    machine_arn = machine(sfn, {"Read": {**READ_OBJECT, "End": True}}, "Read")
    redriven, untouched = run(sfn, machine_arn), run(sfn, machine_arn, {"n": 2})
    fix_the_cause()
    date = sfn.redrive_execution(executionArn=redriven)["redriveDate"]
    finished(sfn, redriven)

    only_redriven = sfn.list_executions(stateMachineArn=machine_arn, redriveFilter="REDRIVEN")["executions"]
    not_redriven = sfn.list_executions(stateMachineArn=machine_arn, redriveFilter="NOT_REDRIVEN")["executions"]
    everything = sfn.list_executions(stateMachineArn=machine_arn)["executions"]

    assert [e["executionArn"] for e in only_redriven] == [redriven]
    assert only_redriven[0]["redriveCount"] == 1 and only_redriven[0]["redriveDate"] == date
    assert [e["executionArn"] for e in not_redriven] == [untouched]
    assert not_redriven[0]["redriveCount"] == 0 and "redriveDate" not in not_redriven[0]
    assert {e["executionArn"] for e in everything} == {redriven, untouched}


def test_the_context_object_carries_the_redrive_count(sfn: Any) -> None:
    states = {"Read": {**READ_OBJECT, "ResultPath": None, "Next": "Count"},
              "Count": {"Type": "Pass", "Parameters": {"count.$": "$$.Execution.RedriveCount"}, "End": True}}
    arn = run(sfn, machine(sfn, states, "Read"))
    fix_the_cause()

    sfn.redrive_execution(executionArn=arn)

    assert json.loads(finished(sfn, arn)["output"]) == {"count": 1}
