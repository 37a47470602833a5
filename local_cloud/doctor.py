"""``cloudtrail-onboarding doctor``: run the drift check of a deployed onboarding and show what differs.

The check is the stack's own state machine with ``Mode: Check`` (its read-only Drift Check task), given
the configuration of the stack's last successful onboarding: the same names and settings CloudFormation
handed over, so the check compares with what this stack set up. Its input carries no CloudFormation
request, so the custom resource never takes it for a retry of one.

``--repair`` runs the onboarding itself again with that input, as an update (so no canary goes through
the queue Expel reads) under a request id of its own (so the custom resource never takes it for a retry
of its request): every step puts back only its own statements, entries and settings, then the check runs
again to show what is left.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from local_cloud import status  # first: it makes the layer's package importable for the installed CLI

# isort: split
from expel_onboarding.drift import DriftStatus, Report, render
from expel_onboarding.steps import drift_check

# Exit codes: a script can tell "drift found" from "the check could not run".
IN_SYNC, DRIFTED, CHECK_FAILED = 0, 1, 2
CHECK_PREFIX = "check-"  # the drift check executions' names
REPAIR_PREFIX = "repair-"  # doctor --repair's onboarding executions' names
# Execution names that are never a check (the custom resource's requests, doctor's repairs).
NOT_CHECKS = ("create-", "update-", "delete-", REPAIR_PREFIX)
FIRST_POLL = 0.25  # seconds before the first look at a started execution; the waits double up to ``interval``


class DoctorError(Exception):
    """The check could not run or finish; the message says why and what to do."""


@dataclass(frozen=True)
class Checked:
    report: Report
    execution_arn: str


def onboarding_config(sfn: Any, machine: str, outputs: dict[str, str]) -> dict[str, Any]:
    """Config of the stack's last successful onboarding (see ``onboarding_input``)."""
    return dict(onboarding_input(sfn, machine, outputs)["Config"])


def onboarding_input(sfn: Any, machine: str, outputs: dict[str, str]) -> dict[str, Any]:
    """Input of the stack's last successful onboarding (``drift_check.onboarding_input``)."""
    executions = sfn.list_executions(stateMachineArn=machine, statusFilter="SUCCEEDED").get("executions", [])
    try:
        return drift_check.onboarding_input(executions, lambda arn: dict(sfn.describe_execution(executionArn=arn)),
                                            preferred=outputs.get("ExecutionArn", ""))
    except drift_check.NoOnboarding as exc:
        raise DoctorError(f"state machine {machine}: {exc}") from exc


def run_check(cfn: Any, sfn: Any, stack: str, region: str, timeout: float = 300.0, interval: float = 2.0,
              now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Checked:
    """Start the stack's drift check and wait for its report (bounded by ``timeout``)."""
    outputs, machine = _state_machine(cfn, stack, region)
    config = onboarding_config(sfn, machine, outputs)
    arn, described = _run(sfn, machine, _name(CHECK_PREFIX, now), {"Mode": "Check", "Config": config},
                          timeout, interval, "the drift check")
    return Checked(Report.from_dict(json.loads(described["output"])["Drift"]), arn)


def repair(cfn: Any, sfn: Any, stack: str, region: str, timeout: float = 900.0, interval: float = 2.0,
           now: Callable[[], datetime] = lambda: datetime.now(UTC), report: Report | None = None) -> str:
    """Run the onboarding again with the stack's last successful input, as an update; returns its ARN. The
    check's ``report`` travels along as ``Repairs`` (as DriftRepair's does): it makes the run a repair, which
    also replaces member accounts' roles changed by hand (guide step 8)."""
    outputs, machine = _state_machine(cfn, stack, region)
    given = onboarding_input(sfn, machine, outputs)
    name = _name(REPAIR_PREFIX, now)
    given["CloudFormation"] = {**given["CloudFormation"], "RequestType": "Update", "RequestId": name}
    given["CloudFormation"].pop("Repairs", None)  # an earlier repair's input may be the last onboarding's
    if report is not None:
        given["CloudFormation"]["Repairs"] = report.to_dict()
    arn, _ = _run(sfn, machine, name, given, timeout, interval, "the repair")
    return arn


def _state_machine(cfn: Any, stack: str, region: str) -> tuple[dict[str, str], str]:
    """The stack's Outputs and its onboarding state machine."""
    _, outputs, machine = status._read_stack(cfn, stack, region)
    if not machine:
        raise DoctorError(f"stack {stack} has no onboarding state machine (yet): is it this project's stack?")
    return outputs, machine


def _name(prefix: str, now: Callable[[], datetime]) -> str:
    return f"{prefix}{now().strftime('%Y%m%dT%H%M%S%fZ')}"


def _run(sfn: Any, machine: str, name: str, given: dict[str, Any], timeout: float, interval: float,
         what: str) -> tuple[str, dict[str, Any]]:
    """Start an execution and wait for it to succeed (bounded by ``timeout``): its ARN and
    ``describe_execution``'s answer."""
    arn = str(sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(given))["executionArn"])
    deadline, wait = time.monotonic() + timeout, min(FIRST_POLL, interval)
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            break
        if time.monotonic() > deadline:
            raise DoctorError(f"{what} {arn} did not finish within {timeout:g} s; it goes on running: "
                              f"`cloudtrail-onboarding status --execution {arn}` follows it")
        time.sleep(wait)
        wait = min(wait * 2, interval)  # soon at first (a check can end within a second), then every interval
    if described["status"] != "SUCCEEDED":
        failure = status.failed_step(status._read_execution(sfn, arn).events)
        raise DoctorError(f"{what} {described['status']}: {failure.step}: {failure.error}: {failure.cause} "
                          f"(execution {arn})")
    return arn, described


# How many of the newest finished executions ``status`` reads to find the last check.
LOOKBACK = 25


def last_check(cfn: Any, sfn: Any, stack: str, region: str) -> str:
    """One line for ``status``: the newest finished drift check of the stack (``doctor``'s or the scheduled
    one's, which EventBridge names with a UUID), what it found and whether DriftRepair ran the onboarding."""
    _, _, machine = status._read_stack(cfn, stack, region)
    if not machine:
        return ""
    executions = sfn.list_executions(stateMachineArn=machine, statusFilter="SUCCEEDED").get("executions", [])
    newest = sorted(executions, key=lambda e: e["startDate"], reverse=True)
    for execution in newest[:LOOKBACK]:
        if str(execution.get("name", "")).startswith(NOT_CHECKS):
            continue
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        given = json.loads(described.get("input") or "{}")
        output = json.loads(described.get("output") or "{}")
        drift = output.get("Drift") or output.get("CloudFormation", {}).get("Repairs")
        if given.get("Mode") not in ("Check", "ScheduledCheck") or not drift:
            continue
        report = Report.from_dict(drift)
        found = f"{report.finding_count} difference{'s' if report.finding_count != 1 else ''}"
        how = "scheduled" if given["Mode"] == "ScheduledCheck" else "doctor"
        repaired = ", repaired (DriftRepair)" if "Drift" not in output else ""
        return (f"Drift check  {report.status}  {found}{repaired}, {how} {execution['name']} "
                f"({report.checked_at})")
    return (f"Drift check  (none yet: `cloudtrail-onboarding doctor --stack {stack}` runs one, and "
            "DriftCheckSchedule runs one on schedule)")


def show(checked: Checked, stack: str, say: Callable[[str], None]) -> int:
    """Print the report as a person reads it; the exit code says whether the account drifted."""
    for line in render(checked.report, stack=stack):
        say(line)
    say("")
    say(f"Execution    {checked.execution_arn}")
    return IN_SYNC if checked.report.status == DriftStatus.IN_SYNC else DRIFTED
