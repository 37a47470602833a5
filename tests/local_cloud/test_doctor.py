"""``doctor`` picks the configuration to compare with: the stack's last successful onboarding, never a
teardown's or an earlier check's input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from local_cloud import doctor

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:s-onboarding"


class FakeStepFunctions:
    def __init__(self, inputs: dict[str, dict[str, Any]]) -> None:
        self.inputs = inputs

    def list_executions(self, stateMachineArn: str, statusFilter: str) -> dict[str, Any]:  # noqa: N803
        assert (stateMachineArn, statusFilter) == (MACHINE, "SUCCEEDED")
        return {"executions": [{"executionArn": arn, "name": arn, "status": "SUCCEEDED",
                                "startDate": datetime(2026, 12, 1, i, tzinfo=UTC)}
                               for i, arn in enumerate(self.inputs)]}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803
        return {"input": json.dumps(self.inputs[executionArn])}


def test_newest_successful_create_or_update_is_compared_not_a_check_or_a_delete() -> None:
    sfn = FakeStepFunctions({
        "create": {"Config": {"StackName": "old"}, "CloudFormation": {"RequestType": "Create"}},
        "update": {"Config": {"StackName": "new"}, "CloudFormation": {"RequestType": "Update"}},
        "check": {"Mode": "Check", "Config": {"StackName": "checked"}},
    })
    assert doctor.onboarding_config(sfn, MACHINE, {}) == {"StackName": "new"}


def test_the_stacks_execution_output_comes_first() -> None:
    sfn = FakeStepFunctions({
        "arn:create": {"Config": {"StackName": "from-output"}, "CloudFormation": {"RequestType": "Create"}},
        "update": {"Config": {"StackName": "newer"}, "CloudFormation": {"RequestType": "Update"}},
    })
    assert doctor.onboarding_config(sfn, MACHINE, {"ExecutionArn": "arn:create"}) == {"StackName": "from-output"}


def test_without_a_successful_onboarding_the_check_refuses_and_says_what_to_do() -> None:
    sfn = FakeStepFunctions({"delete": {"Config": {}, "CloudFormation": {"RequestType": "Delete"}}})
    with pytest.raises(doctor.DoctorError, match="no successful onboarding .* deploy the stack first"):
        doctor.onboarding_config(sfn, MACHINE, {})


class FakeCloudFormation:
    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803
        return {"Stacks": [{"StackName": StackName, "StackId": "id", "StackStatus": "CREATE_COMPLETE",
                            "Outputs": [{"OutputKey": "StateMachineArn", "OutputValue": MACHINE}]}]}

    def describe_stack_resources(self, StackName: str) -> dict[str, Any]:  # noqa: N803
        return {"StackResources": []}


def test_status_line_names_the_newest_check_doctors_or_scheduled_and_what_it_found() -> None:
    from expel_onboarding.drift import DriftStatus, Finding, Report, StepCheck

    finding = Finding(step=1, resource="trail t", setting="logging (IsLogging)", actual="stopped",
                      expected="logging", fix="start it")
    drifted = Report.of([StepCheck(step=1, status=DriftStatus.DRIFTED, findings=[finding])],
                        checked_at="2026-12-01T02:00:00+00:00").to_dict()
    executions = {
        "create-1": ({"CloudFormation": {"RequestType": "Create"}}, {"Config": {}}),
        "check-1": ({"Mode": "Check"}, {"Drift": drifted}),
        # EventBridge names a scheduled execution with a UUID; with DriftRepair it ends as the onboarding.
        "4b7c-uuid": ({"Mode": "ScheduledCheck", "Repair": True}, {"CloudFormation": {"Repairs": drifted}}),
    }
    sfn = FakeStepFunctions({name: given for name, (given, _) in executions.items()})
    sfn.describe_execution = lambda executionArn: {  # type: ignore[method-assign]  # noqa: N803
        "input": json.dumps(executions[executionArn][0]), "output": json.dumps(executions[executionArn][1])}
    line = doctor.last_check(FakeCloudFormation(), sfn, "s", "us-east-1")
    assert line == ("Drift check  DRIFTED  1 difference, repaired (DriftRepair), scheduled 4b7c-uuid "
                    "(2026-12-01T02:00:00+00:00)")
    del executions["4b7c-uuid"]
    sfn.inputs.pop("4b7c-uuid")
    line = doctor.last_check(FakeCloudFormation(), sfn, "s", "us-east-1")
    assert line == "Drift check  DRIFTED  1 difference, doctor check-1 (2026-12-01T02:00:00+00:00)"
    none = FakeStepFunctions({"create": {}})
    assert "none yet" in doctor.last_check(FakeCloudFormation(), none, "s", "us-east-1")


class StartingStepFunctions(FakeStepFunctions):
    """Also starts executions (each SUCCEEDED at once), keeping what each was given."""

    def __init__(self, inputs: dict[str, dict[str, Any]]) -> None:
        super().__init__(inputs)
        self.started: dict[str, dict[str, Any]] = {}

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:  # noqa: N803, A002
        self.started[name] = json.loads(input)
        return {"executionArn": name}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803
        if executionArn in self.started:
            return {"status": "SUCCEEDED", "output": "{}"}
        return super().describe_execution(executionArn)


def test_the_repair_carries_the_checks_report_as_drift_repair_does_and_never_an_earlier_repairs() -> None:
    """``Repairs`` makes the onboarding a repair (guide step 8 then replaces member roles changed by hand)."""
    from expel_onboarding.drift import DriftStatus, Finding, Report, StepCheck
    from expel_onboarding.steps.step08_expel_role import repairing

    earlier = Report.of([]).to_dict()
    sfn = StartingStepFunctions({"repair-1": {"Config": {"StackName": "s"}, "CloudFormation": {
        "RequestType": "Update", "RequestId": "repair-1", "Repairs": earlier}}})
    finding = Finding(step=8, resource="role r in account 1", setting="trust", actual="x", expected="y", fix="f")
    report = Report.of([StepCheck(step=8, status=DriftStatus.DRIFTED, findings=[finding])])

    with_report = doctor.repair(FakeCloudFormation(), sfn, "s", "us-east-1", report=report)
    without = doctor.repair(FakeCloudFormation(), sfn, "s", "us-east-1")

    assert sfn.started[with_report]["CloudFormation"]["Repairs"] == report.to_dict()
    assert repairing(sfn.started[with_report])
    assert "Repairs" not in sfn.started[without]["CloudFormation"] and not repairing(sfn.started[without])


class RunningStepFunctions:
    """An execution that is RUNNING for ``polls`` reads, then SUCCEEDED."""

    def __init__(self, polls: int) -> None:
        self.polls = polls

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:  # noqa: N803, A002
        return {"executionArn": name}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803
        self.polls -= 1
        return {"status": "RUNNING" if self.polls >= 0 else "SUCCEEDED", "output": "{}"}


def test_the_wait_for_a_started_execution_looks_soon_then_doubles_up_to_the_interval(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A check of a small account ends within a second: read soon, then no more often than every interval."""
    slept: list[float] = []
    monkeypatch.setattr(doctor.time, "sleep", slept.append)

    doctor._run(RunningStepFunctions(6), MACHINE, "check-1", {}, timeout=60, interval=2.0, what="the drift check")

    assert slept == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
