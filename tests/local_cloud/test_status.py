"""The status view rendered from execution histories recorded on the local cloud (``histories/``)."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from local_cloud.status import ExecutionInfo, StackInfo, StatusView, render, steps

HISTORIES = Path(__file__).parent / "histories"


def recorded(name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    data = json.loads((HISTORIES / f"{name}.json").read_text(encoding="utf-8"))
    for event in data["events"]:
        event["timestamp"] = datetime.fromisoformat(event["timestamp"])
    execution = data["execution"]
    for key in ("startDate", "stopDate"):
        if key in execution:
            execution[key] = datetime.fromisoformat(execution[key])
    return execution, data["events"]


def view_of(execution: dict[str, Any], events: list[dict[str, Any]], **kwargs: Any) -> StatusView:
    info = ExecutionInfo(
        execution["executionArn"],
        execution["name"],
        execution["status"],
        execution["startDate"],
        execution.get("stopDate"),
        events,
    )
    return StatusView(region="eu-west-1", execution=info, **kwargs)


def rows(lines: list[str]) -> dict[str, str]:
    """Step name -> the rest of its table row."""
    start = lines.index(next(line for line in lines if line.startswith("Step ") and "State" in line)) + 2
    table = lines[start : lines.index("", start)]
    width = lines[start - 1].index("  ")
    return {line[:width].rstrip(): line[width:].strip() for line in table}


def test_succeeded_run_lists_every_step_succeeded_with_its_duration() -> None:
    execution, events = recorded("succeeded")
    lines = render(view_of(execution, events))
    table = rows(lines)
    assert list(table)[:2] == ["Preflight Checks", "Step 1 Create Trail"]
    assert set(list(table)[2:4]) == {"Step 2 Bucket Encryption", "Step 3 Create SNS Topic"}  # a Parallel
    assert list(table)[-2:] == ["Step 10 Register Workbench Device", "Step 10 Check Device Status"]
    assert "Start" not in table and "Role Stack Complete?" not in table  # Pass/Choice/Wait: plumbing
    assert all(row.startswith("succeeded") for row in table.values())
    assert table["Preflight Checks"].split()[1] == "3.3s"  # 22:50:42.173 -> 22:50:45.466
    assert table["Step 10 Check Device Status"].startswith("succeeded (ran 3 times)")
    assert lines[0].split()[:2] == ["Execution", "SUCCEEDED"] and "took 38.9s" in lines[0]
    assert not any(line.startswith("Failed step") for line in lines)


def test_succeeded_run_links_the_execution_in_its_region() -> None:
    execution, events = recorded("succeeded")
    lines = render(view_of(execution, events))
    assert (
        f"Execution    https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1"
        f"#/v2/executions/details/{execution['executionArn']}"
    ) in lines
    local = render(view_of(execution, events, local=True))
    assert not any("console.aws.amazon.com" in line for line in local)


def test_failed_run_shows_the_failing_step_error_and_message() -> None:
    execution, events = recorded("failed_preflight")
    lines = render(view_of(execution, events))
    table = rows(lines)
    assert table["Preflight Checks"].split()[:2] == ["failed", "3.4s"]
    assert list(table) == ["Preflight Checks"]  # the execution fails in the state that failed
    assert "Failed step  Preflight Checks" in lines
    assert "Error        ResourceConflict" in lines
    reason = next(line for line in lines if line.startswith("Reason"))
    assert "Parameter QueueName: the SQS queue rec-bad-queue already exists" in reason
    assert "stackTrace" not in reason


def test_failed_stack_with_a_retry_window_open_says_how_to_retry() -> None:
    execution, events = recorded("failed_preflight")
    stack = StackInfo(
        "rec-bad",
        "arn:aws:cloudformation:eu-west-1:123456789012:stack/rec-bad/1",
        "CREATE_IN_PROGRESS",
        resource_id="Onboarding",
        resource_status="CREATE_IN_PROGRESS",
        resource_type="Custom::CloudTrailOnboarding",
    )
    lines = render(view_of(execution, events, stack=stack))
    assert lines[0].split() == ["Stack", "CREATE_IN_PROGRESS", "rec-bad"]
    assert any("retry window" in line for line in lines)
    assert (
        "Stack        https://eu-west-1.console.aws.amazon.com/cloudformation/home?region=eu-west-1#/stacks/"
        "stackinfo?stackId=arn%3Aaws%3Acloudformation%3Aeu-west-1%3A123456789012%3Astack%2Frec-bad%2F1"
    ) in lines


def test_running_execution_shows_the_current_step_running_for_so_long() -> None:
    execution, events = recorded("succeeded")
    cut = next(
        e["id"] for e in events if e["type"] == "LambdaFunctionStarted" and e["previousEventId"] == 55
    )  # Step 8 Deploy Expel Role's invocation
    running = [e for e in events if e["id"] <= cut]
    execution = dict(execution, status="RUNNING")
    execution.pop("stopDate")
    now = running[-1]["timestamp"] + timedelta(seconds=4)
    lines = render(view_of(execution, running, now=now))
    table = rows(lines)
    assert list(table)[-1] == "Step 8 Deploy Expel Role"
    assert table["Step 8 Deploy Expel Role"].split()[:2] == ["running", "4.0s"]
    assert table["Step 7 Enable S3 Event Notifications"].startswith("succeeded")
    assert "running for" in lines[0]
    assert not any(line.startswith("Failed step") for line in lines)


def test_retried_step_says_how_often_and_still_counts_as_one_step() -> None:
    execution, events = recorded("succeeded")
    events = copy.deepcopy(events)
    # Step 1's invocation (Scheduled 12, Started 13) fails once with a TransientError and is retried.
    when = next(e["timestamp"] for e in events if e["id"] == 13)
    events += [
        {
            "id": 13.1,
            "previousEventId": 13,
            "type": "LambdaFunctionFailed",
            "timestamp": when,
            "lambdaFunctionFailedEventDetails": {"error": "TransientError", "cause": '{"errorMessage": "slow"}'},
        },
        {"id": 13.2, "previousEventId": 13.1, "type": "LambdaFunctionScheduled", "timestamp": when},
        {"id": 13.3, "previousEventId": 13.2, "type": "LambdaFunctionStarted", "timestamp": when},
    ]
    next(e for e in events if e["id"] == 14)["previousEventId"] = 13.3
    found = {step.name: step for step in steps(events)}
    assert found["Step 1 Create Trail"].retries == 1
    table = rows(render(view_of(execution, events)))
    assert table["Step 1 Create Trail"].startswith("succeeded (retried 1 time)")
    assert table["Preflight Checks"].startswith("succeeded  ")


def test_aws_history_without_previous_event_ids_still_attributes_to_the_open_step() -> None:
    execution, events = recorded("failed_preflight")
    events = [{k: v for k, v in e.items() if k != "previousEventId"} for e in events]
    table = rows(render(view_of(execution, events)))
    assert table["Preflight Checks"].startswith("failed")


def test_member_accounts_the_stack_set_failed_are_named_with_their_reason() -> None:
    execution, events = recorded("succeeded")
    events = copy.deepcopy(events)
    after = {e["previousEventId"]: e for e in events if e.get("previousEventId")}
    step8 = after[after[55]["id"]]  # Step 8 Deploy Expel Role: scheduled (55), started, succeeded
    assert step8["type"] == "LambdaFunctionSucceeded"
    reason = ("ResourceLogicalId:ExpelRole, ResourceType:AWS::IAM::Role, ResourceStatusReason:Resource handler "
              'returned message: "Role with name ExpelAssumeRole already exists."')
    step8["lambdaFunctionSucceededEventDetails"] = {"output": json.dumps({
        "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/rec-role/1", "Status": "COMPLETE",
        "FailedAccounts": [{"Account": "111111111111", "Region": "eu-west-1", "Reason": reason}]})}

    lines = render(view_of(execution, events))

    at = lines.index(next(line for line in lines if line.startswith("StackSet ")))
    assert lines[at].startswith("StackSet     1 member account without the Expel role")
    assert lines[at + 1].split()[:2] == ["111111111111", "eu-west-1"] and "already exists" in lines[at + 1]
    assert not any(line.startswith("StackSet ") for line in render(view_of(*recorded("succeeded"))))


def test_an_existing_trails_findings_are_listed_under_the_steps() -> None:
    execution, events = recorded("succeeded")
    events = copy.deepcopy(events)
    step1 = next(e for e in events if e["id"] == 14)  # Step 1 Create Trail's LambdaFunctionSucceeded
    step1["lambdaFunctionSucceededEventDetails"] = {"output": json.dumps({
        "TrailArn": "arn:aws:cloudtrail:eu-west-1:123456789012:trail/Theirs", "ExistingTrail": True,
        "Findings": "bucket logs has versioning off; bucket logs does not block all public access"})}
    lines = render(view_of(execution, events))
    start = next(i for i, line in enumerate(lines) if line.startswith("Trail "))
    assert "differs from the guide's best practice" in lines[start]
    assert lines[start + 1:start + 3] == ["  - bucket logs has versioning off",
                                          "  - bucket logs does not block all public access"]


def test_a_new_trail_shows_no_findings() -> None:
    execution, events = recorded("succeeded")
    assert not any(line.startswith("Trail ") for line in render(view_of(execution, events)))


def test_a_redriven_run_says_so_and_shows_the_failed_step_succeeded_on_the_redrive() -> None:
    execution, events = recorded("failed_preflight")
    last = events[-1]
    later = last["timestamp"] + timedelta(seconds=60)
    step = {"name": "Preflight Checks"}
    redrive = [
        {"id": 11, "previousEventId": 10, "type": "ExecutionRedriven", "timestamp": later,
         "executionRedrivenEventDetails": {"redriveCount": 1}},
        {"id": 12, "previousEventId": 11, "type": "TaskStateEntered", "timestamp": later,
         "stateEnteredEventDetails": {**step, "input": "{}"}},
        {"id": 13, "previousEventId": 12, "type": "LambdaFunctionScheduled", "timestamp": later},
        {"id": 14, "previousEventId": 13, "type": "LambdaFunctionSucceeded", "timestamp": later + timedelta(seconds=2)},
        {"id": 15, "previousEventId": 14, "type": "TaskStateExited", "timestamp": later + timedelta(seconds=2),
         "stateExitedEventDetails": {**step, "output": "{}"}},
        {"id": 16, "previousEventId": 15, "type": "ExecutionSucceeded", "timestamp": later + timedelta(seconds=2)},
    ]
    redriven = {**execution, "status": "SUCCEEDED", "stopDate": later + timedelta(seconds=2)}

    lines = render(view_of(redriven, events + redrive))

    assert lines[0].startswith("Execution") and lines[0].endswith("redriven 1 time")
    assert rows(lines)["Preflight Checks"].startswith("succeeded (ran 2 times)")
    assert not any(line.startswith("Failed step") for line in lines)
