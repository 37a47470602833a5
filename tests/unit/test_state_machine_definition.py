"""The ASL itself: Delete routes to the teardown in reverse guide order, every task retries and a failure
ends the execution in the failed step (so Redrive resumes there), nothing is unreachable, and every
function it names comes from the template."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from expel_onboarding.models import DeviceStatus, RoleStatus
from local_cloud.cloudformation_templates import read_template

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = json.loads((ROOT / "statemachine" / "onboarding.asl.json").read_text())
STATES: dict[str, dict[str, Any]] = DEFINITION["States"]
TEARDOWN_ORDER = [
    "TeardownDiscoverFunctionArn", "Step10WorkbenchDeviceFunctionArn", "Step08ExpelRoleFunctionArn",
    "Step07BucketNotificationFunctionArn", "Step06SnsSubscriptionFunctionArn", "Step05SqsQueueFunctionArn",
    "Step03SnsTopicFunctionArn", "Step04KeyPolicyFunctionArn", "Step01TrailFunctionArn",
]


def _targets(state: dict[str, Any]) -> list[str]:
    found = [state[k] for k in ("Next", "Default") if k in state]
    found += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
    return found


def _reachable(definition: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = definition["States"][name]
        todo.extend(_targets(state))
        for branch in state.get("Branches", []):
            assert _reachable(branch) == set(branch["States"]), f"unreachable state in a branch of {name}"
    return seen


def _teardown_path() -> list[str]:
    """Resources of the tasks on the Delete path; a Choice follows its Default unless that is a poll loop
    (a Wait), in which case it follows the way out."""
    name = next(c["Next"] for c in STATES[STATES["Start"]["Next"]]["Choices"])
    resources: list[str] = []
    while True:
        state = STATES[name]
        if state["Type"] == "Task":
            resources.append(state["Resource"].strip("${}"))
            if state.get("End"):
                break
            name = state["Next"]
        elif state["Type"] == "Choice":
            name = state["Default"]
            if STATES[name]["Type"] == "Wait":
                name = state["Choices"][0]["Next"]
        else:
            name = state["Next"]
    return resources


def test_start_routes_delete_to_the_teardown_and_everything_else_to_preflight() -> None:
    choice = STATES[STATES["Start"]["Next"]]
    assert choice["Type"] == "Choice"
    [rule] = choice["Choices"]
    assert rule["Variable"] == "$.CloudFormation.RequestType" and rule["StringEquals"] == "Delete"
    assert rule["Next"] == "Teardown Discover"
    assert choice["Default"] == "Preflight Checks"


def test_a_drift_check_runs_only_the_read_only_check_and_cloudformations_requests_never_reach_it() -> None:
    choice = STATES[DEFINITION["StartAt"]]
    # Mode is compared only when present (a missing variable would fail the comparison): requests
    # from CloudFormation carry no Mode and go to Start.
    assert choice["Choices"] == [{"Not": {"Variable": "$.Mode", "IsPresent": True}, "Next": "Start"},
                                 {"Variable": "$.Mode", "StringEquals": "Check", "Next": "Drift Check"},
                                 {"Variable": "$.Mode", "StringEquals": "ScheduledCheck",
                                  "Next": "Find Last Onboarding"}]
    assert choice["Default"] == "Start"
    check = STATES["Drift Check"]
    assert check["Resource"] == "${DriftCheckFunctionArn}" and check["Next"] == "Drift Detection Done?"
    assert check["Parameters"] == {"Config.$": "$.Config", "ExecutionId.$": "$$.Execution.Id"}


def test_a_check_waiting_for_drift_detection_looks_again_in_the_state_machine_not_in_a_sleeping_lambda() -> None:
    done = STATES["Drift Detection Done?"]
    assert done["Choices"][0] == {"Variable": "$.Drift.Pending", "BooleanEquals": True,
                                  "Next": "Wait For Drift Detection"}
    assert STATES["Wait For Drift Detection"]["Type"] == "Wait"
    again = STATES[STATES["Wait For Drift Detection"]["Next"]]
    assert again["Resource"] == "${DriftCheckFunctionArn}" and again["Next"] == "Drift Detection Done?"
    assert again["Parameters"]["Drift.$"] == "$.Drift" and again["ResultPath"] == "$.Drift"
    # Only a scheduled check may go on to the repair; doctor's check ends.
    assert done["Choices"][1] == {"Variable": "$.Mode", "StringEquals": "ScheduledCheck", "Next": "Repair?"}
    assert done["Default"] == "Check Complete"


def test_a_scheduled_check_compares_the_last_onboarding_and_repairs_only_when_asked_and_drifted() -> None:
    find = STATES["Find Last Onboarding"]
    assert find["Parameters"]["StateMachineArn.$"] == "$$.StateMachine.Id" and find["ResultPath"] == "$.Onboarding"
    use = STATES[find["Next"]]
    assert (use["InputPath"], use["ResultPath"]) == ("$.Onboarding.Config", "$.Config")
    check = STATES[use["Next"]]
    assert check["Resource"] == "${DriftCheckFunctionArn}"
    assert check["Parameters"]["Config.$"] == "$.Onboarding.Config" and check["ResultPath"] == "$.Drift"
    repair = STATES[STATES[check["Next"]]["Choices"][1]["Next"]]
    assert repair["Default"] == "Check Complete" and STATES["Check Complete"]["Type"] == "Succeed"
    [rule] = repair["Choices"]
    assert rule["Next"] == "Repair" and {c["Variable"] for c in rule["And"]} == {"$.Repair", "$.Drift.FindingCount"}
    assert {"Variable": "$.Drift.FindingCount", "NumericGreaterThan": 0} in rule["And"]
    again = STATES["Repair"]
    # The onboarding itself, as an update: no canary through the queue Expel reads.
    assert again["Next"] == "Start" and again["Parameters"]["CloudFormation"]["RequestType"] == "Update"
    assert STATES["Verify Delivery?"]["Choices"][0] == {"Variable": "$.CloudFormation.RequestType",
                                                        "StringEquals": "Update",
                                                        "Next": "Step 10 Register Workbench Device"}


def test_teardown_runs_the_guide_steps_in_reverse_order_and_ends_the_execution() -> None:
    assert _teardown_path() == TEARDOWN_ORDER
    assert STATES["Step 1 Remove Trail"].get("End") is True


def test_teardown_tasks_get_action_delete_and_keep_their_results_apart_from_the_discovered_outputs() -> None:
    plan = STATES[STATES["Teardown Discover"]["Next"]]
    assert plan["Type"] == "Pass" and plan["Parameters"]["Action"] == "Delete"
    for name in ("Trail", "Topic", "Queue"):
        assert plan["Parameters"][f"{name}.$"] == f"$.Discovered.{name}"
    teardown = [s for n, s in STATES.items() if s["Type"] == "Task" and n.startswith("Step ")
                and any(w in n for w in ("Remove", "Delete"))]
    assert len(teardown) == 8
    assert all(s["ResultPath"].startswith("$.Teardown.") for s in teardown)


def test_role_stack_removal_waits_in_the_state_machine_between_calls() -> None:
    choice = STATES[STATES["Step 8 Remove Expel Role"]["Next"]]
    wait = STATES[choice["Default"]]
    assert wait["Type"] == "Wait" and wait["SecondsPath"] == "$.Settings.PollSeconds"
    assert wait["Next"] == "Step 8 Remove Expel Role"
    assert {c["StringEquals"] for c in choice["Choices"][0]["Or"]} == {"DELETED", "SKIPPED"}


@pytest.mark.parametrize("name", [n for n, s in STATES.items() if s["Type"] in ("Task", "Parallel")])
def test_every_task_retries_and_a_failure_ends_the_execution_in_that_step(name: str) -> None:
    """Step Functions redrives from the state the execution failed in; an error a Catch routes to a Fail
    state would make every redrive re-enter the Fail state and fail again."""
    state = STATES[name]
    tasks = [state] if state["Type"] == "Task" else [
        s for branch in state["Branches"] for s in branch["States"].values() if s["Type"] == "Task"]
    assert all(task.get("Retry") for task in tasks)
    catches = [c["Next"] for c in state.get("Catch", [])]
    if name == "Step 10 Remove Workbench Device":
        # Workbench being down or the key revoked must not block removing what we made in AWS.
        assert catches == ["Step 8 Remove Expel Role"]
        assert state["Catch"][0]["ResultPath"] == "$.Teardown.WorkbenchError"
    else:
        assert catches == []
    assert all(not task.get("Catch") for task in tasks if task is not state)


def test_no_state_of_the_machine_is_a_fail_state() -> None:
    def kinds(states: dict[str, Any]) -> set[str]:
        found = {s["Type"] for s in states.values()}
        for s in states.values():
            for branch in s.get("Branches", []):
                found |= kinds(branch["States"])
        return found

    assert "Fail" not in kinds(STATES)


def test_the_state_machine_only_works_it_never_answers_cloudformation() -> None:
    """The custom resource's poll is the one answerer; the execution's input and history never hold where
    to answer (the pre-signed ResponseURL)."""
    text = json.dumps(DEFINITION)
    assert "ResponseURL" not in text
    assert [n for n, s in STATES.items() if s["Type"] in ("Succeed", "Fail")] == ["Check Complete",
                                                                                  "Onboarding Complete"]
    assert {c["Next"] for c in STATES["Device Healthy?"]["Choices"]} == {"Onboarding Complete"}


def test_delivery_is_verified_on_create_only() -> None:
    choice = STATES["Verify Delivery?"]
    assert choice["Choices"] == [{"Variable": "$.CloudFormation.RequestType", "StringEquals": "Update",
                                  "Next": "Step 10 Register Workbench Device"}]
    assert choice["Default"] == "Verify Delivery Put Canary"


def test_every_state_is_reachable() -> None:
    assert _reachable(DEFINITION) == set(STATES)


def test_every_function_the_definition_names_is_substituted_by_the_template() -> None:
    template = read_template((ROOT / "template.yaml").read_text())
    machine = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::StateMachine")
    named = set(re.findall(r"\$\{(\w+)\}", json.dumps(DEFINITION)))
    assert named == set(machine["Properties"]["DefinitionSubstitutions"])


def test_emptying_a_large_log_bucket_continues_across_invocations() -> None:
    """Step Functions matches error names exactly: StillInProgress needs its own retrier on this state."""
    first = STATES["Step 1 Remove Trail"]["Retry"][0]
    assert first["ErrorEquals"] == ["StillInProgress"] and first["MaxAttempts"] >= 20


def _choice_values(states: dict[str, Any], variable: str) -> set[str]:
    found: set[str] = set()
    for state in states.values():
        rules = list(state.get("Choices", []))
        while rules:
            rule = rules.pop()
            rules.extend(rule.get("Or", []) + rule.get("And", []) + ([rule["Not"]] if "Not" in rule else []))
            if rule.get("Variable") == variable and "StringEquals" in rule:
                found.add(rule["StringEquals"])
    return found


@pytest.mark.parametrize(("variable", "enum"), [
    ("$.Role.Status", RoleStatus), ("$.Teardown.Role.Status", RoleStatus), ("$.Device.Status", DeviceStatus)])
def test_choice_states_compare_statuses_the_steps_return(variable: str, enum: type[StrEnum]) -> None:
    compared = _choice_values(STATES, variable)
    assert compared and compared <= {member.value for member in enum}
