"""One attribution of a failure to its state, shared by the custom resource's answer and the status view.

The histories are the recorded local-cloud run (``tests/local_cloud/histories/succeeded.json``), with one
Lambda failing in a branch of a Parallel state: the branches' events interleave there, so the state
entered last before the failure is often the other branch's.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from expel_onboarding import custom_resource
from expel_onboarding.execution_history import Failure, failed_step, owning_states
from local_cloud.status import ExecutionInfo, StatusView, render
from tests.local_cloud.test_status import recorded, rows

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = json.loads((ROOT / "statemachine" / "onboarding.asl.json").read_text())
BRANCH_TASKS = [name for state in DEFINITION["States"].values() for branch in state.get("Branches", [])
                for name, inner in branch["States"].items() if inner["Type"] == "Task"]
CAUSE = json.dumps({"errorMessage": "Parameter QueueName: taken", "errorType": "ResourceConflict",
                    "stackTrace": ["  File \"app.py\", line 1"]})


def failing_in(events: list[dict[str, Any]], step: str) -> list[dict[str, Any]]:
    """The recorded history up to ``step``'s Lambda result, with that Lambda failing instead, as AWS writes
    an uncaught failure inside a Parallel: LambdaFunctionFailed, ParallelStateFailed, ExecutionFailed."""
    entered = next(e for e in events if e["type"] == "TaskStateEntered"
                   and e["stateEnteredEventDetails"]["name"] == step)
    scheduled = next(e for e in events if e.get("previousEventId") == entered["id"])
    started = next(e for e in events if e.get("previousEventId") == scheduled["id"])
    result = next(e for e in events if e.get("previousEventId") == started["id"])
    history = copy.deepcopy([e for e in events if e["id"] < result["id"]])
    details = {"error": "ResourceConflict", "cause": CAUSE}
    when = result["timestamp"]
    history += [
        {"id": result["id"], "previousEventId": started["id"], "type": "LambdaFunctionFailed", "timestamp": when,
         "lambdaFunctionFailedEventDetails": details},
        {"id": result["id"] + 1, "previousEventId": result["id"], "type": "ParallelStateFailed", "timestamp": when},
        {"id": result["id"] + 2, "previousEventId": result["id"] + 1, "type": "ExecutionFailed", "timestamp": when,
         "executionFailedEventDetails": details},
    ]
    return history


def last_entered_before(history: list[dict[str, Any]]) -> str:
    failure = next(e for e in history if e["type"] == "LambdaFunctionFailed")
    return [e["stateEnteredEventDetails"]["name"] for e in history
            if e["type"].endswith("StateEntered") and e["id"] < failure["id"]][-1]


def test_every_parallel_branch_of_the_state_machine_is_covered() -> None:
    assert BRANCH_TASKS == ["Step 2 Bucket Encryption", "Step 3 Create SNS Topic", "Step 5 Create SQS Queue",
                            "Step 6 Create SNS Subscription", "Step 7 Enable S3 Event Notifications"]


@pytest.mark.parametrize("step", BRANCH_TASKS)
def test_a_lambda_failing_in_a_parallel_branch_is_named_alike_by_the_answer_and_the_status_view(step: str) -> None:
    execution, events = recorded("succeeded")
    history = failing_in(events, step)
    arn = execution["executionArn"]

    reason = custom_resource.failure_reason(failed_step(history), "eu-west-1", arn)
    view = StatusView(region="eu-west-1", execution=ExecutionInfo(
        arn, execution["name"], "FAILED", execution["startDate"], history[-1]["timestamp"], history))
    lines = render(view)

    assert reason.startswith(f"{step} failed: ResourceConflict: Parameter QueueName: taken | Execution: ")
    assert f"Failed step  {step}" in lines
    table = rows(lines)
    assert table[step].startswith("failed")
    assert [name for name, row in table.items() if row.startswith("failed")] == [step]


@pytest.mark.parametrize("parallel", [n for n, s in DEFINITION["States"].items() if s["Type"] == "Parallel"])
def test_the_recorded_branches_interleave_so_the_last_state_entered_can_be_another_branchs(parallel: str) -> None:
    """What the attribution must get right: in each Parallel, "the last state entered before the failure"
    names another branch's state for at least one of its branches."""
    _, events = recorded("succeeded")
    branches = [name for branch in DEFINITION["States"][parallel]["Branches"]
                for name, state in branch["States"].items() if state["Type"] == "Task"]
    assert [step for step in branches if last_entered_before(failing_in(events, step)) != step]


def test_a_retried_failure_then_an_abort_names_the_abort_not_the_old_failure() -> None:
    _, events = recorded("succeeded")
    history = failing_in(events, "Step 3 Create SNS Topic")[:-3]  # up to Step 3's Lambda
    step3 = next(e["id"] for e in history if e["type"] == "LambdaFunctionStarted"
                 and owning_states(history)[e["id"]] == "Step 3 Create SNS Topic")
    last = history[-1]["id"]
    when = history[-1]["timestamp"]
    history += [
        {"id": last + 1, "previousEventId": step3, "type": "LambdaFunctionFailed", "timestamp": when,
         "lambdaFunctionFailedEventDetails": {"error": "TransientError", "cause": "slow"}},
        {"id": last + 2, "previousEventId": last + 1, "type": "ExecutionAborted", "timestamp": when,
         "executionAbortedEventDetails": {"error": "Aborted", "cause": "stopped by a person"}},
    ]
    assert failed_step(history).error == "Aborted"
    assert failed_step(history).cause == "stopped by a person"


def test_a_redriven_execution_is_named_by_its_latest_attempt() -> None:
    history = [
        {"id": 1, "previousEventId": 0, "type": "ExecutionStarted"},
        {"id": 2, "previousEventId": 1, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Step 4"}},
        {"id": 3, "previousEventId": 2, "type": "LambdaFunctionFailed",
         "lambdaFunctionFailedEventDetails": {"error": "OnboardingError", "cause": "key gone"}},
        {"id": 4, "previousEventId": 3, "type": "ExecutionFailed",
         "executionFailedEventDetails": {"error": "OnboardingError", "cause": "key gone"}},
        {"id": 5, "previousEventId": 4, "type": "ExecutionRedriven"},
        {"id": 6, "previousEventId": 5, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Step 4"}},
        {"id": 7, "previousEventId": 6, "type": "TaskStateExited", "stateExitedEventDetails": {"name": "Step 4"}},
        {"id": 8, "previousEventId": 7, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Step 8"}},
        {"id": 9, "previousEventId": 8, "type": "LambdaFunctionFailed",
         "lambdaFunctionFailedEventDetails": {"error": "OnboardingError", "cause": "role taken"}},
        {"id": 10, "previousEventId": 9, "type": "ExecutionFailed",
         "executionFailedEventDetails": {"error": "OnboardingError", "cause": "role taken"}},
    ]
    assert failed_step(history) == Failure("Step 8", "OnboardingError", "role taken")
