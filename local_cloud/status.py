"""A person's view of one onboarding: the stack, its custom resource, and the execution's steps.

``collect()`` reads what AWS (or the local cloud) holds; ``render()`` turns it into aligned plain-text
lines. ``cloudtrail-onboarding status`` prints them, and ``local deploy`` / ``demo`` print the same view
when their stack has finished (``progress.py`` streams what happens meanwhile).

Rendering is pure (no boto3): the tests feed it recorded execution histories.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

try:
    from expel_onboarding.execution_history import console_url, failed_step, owning_states
except ModuleNotFoundError:  # pragma: no cover - depends on how the CLI was started
    # The failed step must be the one the stack event names, so we reuse the layer's own (pure) attribution
    # rather than copy it. pytest puts layers/onboarding on sys.path; the installed CLI
    # (`pip install -e .`) packages only local_cloud, so we add the layer's directory of this same checkout,
    # at the end of sys.path so it never shadows anything installed.
    sys.path.append(str(Path(__file__).resolve().parent.parent / "layers" / "onboarding"))
    from expel_onboarding.execution_history import console_url, failed_step, owning_states

# States a person follows; Pass, Choice, Wait, Succeed, Fail and Parallel are the machine's plumbing.
STEP_KINDS = ("Task", "Map")
ATTEMPT_EVENTS = ("LambdaFunctionScheduled", "TaskScheduled")
FAILURE_EVENTS = (
    "LambdaFunctionFailed",
    "LambdaFunctionTimedOut",
    "LambdaFunctionStartFailed",
    "LambdaFunctionScheduleFailed",
    "TaskFailed",
    "TaskTimedOut",
    "TaskStartFailed",
    "TaskSubmitFailed",
    "MapRunFailed",
)
SUCCESS_EVENTS = ("LambdaFunctionSucceeded", "TaskSucceeded", "MapStateSucceeded", "MapRunSucceeded")
STACK_IN_PROGRESS = ("_IN_PROGRESS", "CREATE_PENDING")


# ------------------------------------------------------------------------------------------ text helpers
def clock(value: Any) -> str:
    """HH:MM:SS of a boto3 timestamp (or of its ISO string)."""
    return value.strftime("%H:%M:%S") if isinstance(value, datetime) else str(value)[11:19]


def short(text: str | None, limit: int = 160) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_text(details: dict) -> str:
    """``error: message`` of a failure event's details (a Lambda's cause is its exception as JSON)."""
    error, cause = details.get("error", ""), details.get("cause", "")
    try:
        cause = json.loads(cause).get("errorMessage", cause)
    except (ValueError, AttributeError):
        pass
    return f"{error}: {cause}" if cause else error


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _times(count: int) -> str:
    return "1 time" if count == 1 else f"{count} times"


def stack_console_url(region: str, stack_id: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/cloudformation/home?region={region}"
        f"#/stacks/stackinfo?stackId={quote(stack_id, safe='')}"
    )


def table(headers: list[str], rows: list[list[str]], right: frozenset[int] = frozenset()) -> list[str]:
    """Columns as wide as their widest cell, two spaces apart; ``right``: right-aligned column indexes."""
    widths = [max([len(headers[i])] + [len(r[i]) for r in rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    return [line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows]


# ------------------------------------------------------------------------------------------ the steps
@dataclass
class Step:
    """One state of the execution as a person sees it: entered once or several times (polling loops)."""

    name: str
    started: datetime
    ended: datetime | None = None
    entries: int = 0
    attempts: int = 0
    failures: int = 0
    open: bool = False
    last_failed: bool = False
    last_failure_at: datetime | None = None

    @property
    def retries(self) -> int:
        return max(self.attempts - self.entries, 0)

    def outcome(self, execution_status: str) -> str:
        if not self.open:
            return "failed" if self.last_failed else "succeeded"
        if execution_status == "RUNNING":
            return "running"
        if self.last_failed:
            return "failed"
        return {"ABORTED": "aborted", "TIMED_OUT": "timed out"}.get(execution_status, "stopped")

    def state(self, execution_status: str) -> str:
        notes = []
        if self.retries:
            notes.append(f"retried {_times(self.retries)}")
        if self.entries > 1:
            notes.append(f"ran {_times(self.entries)}")
        outcome = self.outcome(execution_status)
        return f"{outcome} ({', '.join(notes)})" if notes else outcome

    def seconds(self, execution_status: str, stopped: datetime | None, now: datetime) -> float | None:
        end = self.ended
        if self.open:
            if execution_status == "RUNNING":
                end = now
            elif self.last_failed and self.last_failure_at:
                end = self.last_failure_at
            else:
                end = stopped
        return None if end is None else max((end - self.started).total_seconds(), 0.0)


def steps(events: list[dict[str, Any]]) -> list[Step]:
    """The Task (and Map) states of an execution history, in the order they were first entered.

    Each event counts for the state ``execution_history.owning_states`` attributes it to (parallel branches
    interleave; the custom resource's failure reason uses the same attribution); a state entered again
    (a polling loop) stays one step that "ran N times".
    """
    by_name: dict[str, Step] = {}
    owner = owning_states(events)
    for event in sorted(events, key=lambda e: e["id"]):
        kind, when = event["type"], event["timestamp"]
        if kind.endswith("StateEntered"):
            if kind[: -len("StateEntered")] in STEP_KINDS:
                name = event["stateEnteredEventDetails"]["name"]
                step = by_name.setdefault(name, Step(name=name, started=when))
                step.entries += 1
                step.open, step.last_failed = True, False
            continue
        name = owner.get(event["id"])
        step = by_name.get(name) if name else None
        if step is None:
            continue
        if kind.endswith("StateExited"):
            if step.open:
                step.open, step.ended = False, when
        elif kind in ATTEMPT_EVENTS:
            step.attempts += 1
        elif kind in FAILURE_EVENTS:
            step.failures += 1
            step.last_failed, step.last_failure_at = True, when
        elif kind in SUCCESS_EVENTS:
            step.last_failed = False
    return list(by_name.values())


def _newest_output(events: list[dict[str, Any]], nested: str, wanted: tuple[str, ...]) -> dict[str, Any] | None:
    """The newest step output (a Lambda's, a Task's or a state's, under ``nested`` when a state wraps it)
    holding every key of ``wanted``."""
    for event in sorted(events, key=lambda e: e["id"], reverse=True):
        details = (event.get("lambdaFunctionSucceededEventDetails") or event.get("taskSucceededEventDetails")
                   or event.get("stateExitedEventDetails") or {})
        try:
            output = json.loads(details.get("output") or "{}")
        except (TypeError, ValueError):
            continue
        if isinstance(output, dict) and isinstance(output.get(nested), dict):
            output = output[nested]
        if isinstance(output, dict) and all(key in output for key in wanted):
            return output
    return None


def stack_set_failures(events: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The member accounts the role StackSet failed within its failure tolerance (guide step 8, Organizations
    mode): ``FailedAccounts`` of the step's newest output, or of ``Role`` in the newest state output."""
    output = _newest_output(events, "Role", ("FailedAccounts",))
    return [f for f in (output or {}).get("FailedAccounts") or [] if isinstance(f, dict)]


def trail_findings(events: list[dict[str, Any]]) -> list[str]:
    """Where an existing trail (``ExistingTrailName``) differs from the guide's best practice: ``Findings``
    of guide step 1's newest output (the ``TrailFindings`` stack output), one per item."""
    output = _newest_output(events, "Trail", ("TrailArn", "Findings"))
    return [f for f in str((output or {}).get("Findings") or "").split("; ") if f]


# ------------------------------------------------------------------------------------------- the view
@dataclass
class StackInfo:
    name: str
    stack_id: str
    status: str
    reason: str = ""
    resource_id: str = ""  # the custom resource's logical id
    resource_status: str = ""
    resource_reason: str = ""
    resource_type: str = ""

    @property
    def finished(self) -> bool:
        return not self.status.endswith(STACK_IN_PROGRESS)


@dataclass
class ExecutionInfo:
    arn: str
    name: str
    status: str
    started: datetime
    stopped: datetime | None
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StatusView:
    region: str
    stack: StackInfo | None = None
    execution: ExecutionInfo | None = None
    local: bool = False  # the local cloud: no AWS console to link to
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    notes: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        stack_done = self.stack is None or self.stack.finished
        execution_done = self.execution is None or self.execution.status != "RUNNING"
        return stack_done and execution_done


def render(view: StatusView) -> list[str]:
    """The whole view: header, one row per step, the failure, links. No line ends with a bare status."""
    lines: list[str] = []
    header: list[list[str]] = []
    if view.stack:
        stack = view.stack
        header.append(["Stack", stack.status, stack.name])
        if stack.resource_id:
            detail = stack.resource_reason or f"{stack.resource_id} ({stack.resource_type})"
            header.append(["Onboarding", stack.resource_status or "(not created yet)", short(detail)])
    execution = view.execution
    if execution:
        end = view.now if execution.status == "RUNNING" else execution.stopped
        took = duration((end - execution.started).total_seconds()) if end else ""
        when = f"started {execution.started.strftime('%Y-%m-%d %H:%M:%S %Z').strip()}" + (
            f", {'running for' if execution.status == 'RUNNING' else 'took'} {took}" if took else ""
        )
        redrives = sum(1 for event in execution.events if event["type"] == "ExecutionRedriven")
        if redrives:
            when += f", redriven {_times(redrives)}"
        header.append(["Execution", execution.status, f"{execution.name}  {when}"])
    elif view.stack:
        header.append(["Execution", "(none)", "no execution of the onboarding state machine yet"])
    width = max((len(row[0]) for row in header), default=0)
    status_width = max((len(row[1]) for row in header), default=0)
    lines += [f"{label:<{width}}  {status:<{status_width}}  {detail}".rstrip() for label, status, detail in header]

    if execution:
        found = steps(execution.events)
        rows = [
            [
                step.name,
                step.state(execution.status),
                duration(step.seconds(execution.status, execution.stopped, view.now)),
                clock(step.started),
            ]
            for step in found
        ]
        lines.append("")
        if rows:
            lines += table(["Step", "State", "Took", "Started"], rows, right=frozenset({2}))
        else:
            lines.append("(no step has started yet)")
        failures = stack_set_failures(execution.events)
        if failures:
            lines += ["", f"StackSet     {len(failures)} member account{'s' if len(failures) != 1 else ''} without "
                      "the Expel role (failed within the StackSet's failure tolerance; a rerun retries them):"]
            lines += [f"  {f.get('Account', '?')}  {f.get('Region', '')}  {short(f.get('Reason', ''), 400)}"
                      for f in failures]
        findings = trail_findings(execution.events)
        if findings:
            lines += ["", "Trail        differs from the guide's best practice (it can serve Expel; TrailFindings):"]
            lines += [f"  - {short(finding, 400)}" for finding in findings]
        if execution.status in ("FAILED", "TIMED_OUT", "ABORTED"):
            failure = failed_step(execution.events)
            lines.append("")
            lines += [
                f"Failed step  {failure.step}",
                f"Error        {failure.error or execution.status}",
                f"Reason       {short(failure.cause, 2000) or '(no message)'}",
            ]
            if view.stack and not view.stack.finished:
                lines.append(
                    "The stack is waiting (retry window): fix the cause, then redrive the execution or start a new "
                    "one with the same input in the Step Functions console."
                )
    if (
        view.stack
        and view.stack.status.endswith(("FAILED", "ROLLBACK_COMPLETE"))
        and not (execution and execution.status != "SUCCEEDED")
    ):
        reason = view.stack.resource_reason or view.stack.reason
        if reason:
            lines += ["", f"Reason       {short(reason, 2000)}"]
    lines += view.notes
    lines += ["", *links(view)]
    return lines


def links(view: StatusView) -> list[str]:
    if view.local:
        return ["Links        (the local cloud has no AWS console)"]
    found = []
    if view.stack:
        found.append(f"Stack        {stack_console_url(view.region, view.stack.stack_id)}")
    if view.execution:
        found.append(f"Execution    {console_url(view.region, view.execution.arn)}")
    return found


# ------------------------------------------------------------------------------------- reading AWS
class NotFound(Exception):
    """The stack or execution asked for does not exist; the message says which and where."""


def collect(
    cfn: Any,
    sfn: Any,
    region: str,
    stack_name: str | None = None,
    execution_arn: str | None = None,
    local: bool = False,
) -> StatusView:
    """Read the stack (when named) and the onboarding execution: the one given, the stack's ``ExecutionArn``
    output once the stack has finished, else the newest execution of the stack's state machine."""
    view = StatusView(region=region, local=local)
    machine = None
    if stack_name:
        view.stack, outputs, machine = _read_stack(cfn, stack_name, region)
        if not execution_arn:
            if view.stack.finished and outputs.get("ExecutionArn", "").startswith("arn:"):
                execution_arn = outputs["ExecutionArn"]
            elif machine:
                execution_arn = _newest_execution(sfn, machine)
    if execution_arn:
        view.execution = _read_execution(sfn, execution_arn)
    return view


def _read_stack(cfn: Any, stack_name: str, region: str) -> tuple[StackInfo, dict[str, str], str | None]:
    try:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            raise NotFound(f"stack {stack_name} not found in {region}") from exc
        raise
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs") or []}
    info = StackInfo(
        name=stack["StackName"],
        stack_id=stack["StackId"],
        status=stack["StackStatus"],
        reason=stack.get("StackStatusReason", ""),
    )
    # A record may lack fields (an emulator's, or one CloudFormation is still writing): skip what is unknown.
    resources = [
        r
        for r in cfn.describe_stack_resources(StackName=stack["StackId"]).get("StackResources", [])
        if r.get("ResourceType") and r.get("LogicalResourceId")
    ]
    custom = [
        r
        for r in resources
        if r["ResourceType"].startswith("Custom::") or r["ResourceType"] == "AWS::CloudFormation::CustomResource"
    ]
    if custom:
        resource = next((r for r in custom if r["LogicalResourceId"] == "Onboarding"), custom[0])
        info.resource_id = resource["LogicalResourceId"]
        info.resource_type = resource["ResourceType"]
        info.resource_status = resource.get("ResourceStatus", "")
        info.resource_reason = resource.get("ResourceStatusReason", "") or _newest_reason(
            cfn, stack["StackId"], info.resource_id, info.resource_status
        )
    machine = outputs.get("StateMachineArn") or ""
    if not machine.startswith("arn:"):
        machines = [r for r in resources if r["ResourceType"] == "AWS::StepFunctions::StateMachine"]
        chosen = next((r for r in machines if r["LogicalResourceId"] == "OnboardingStateMachine"), None)
        chosen = chosen or (machines[0] if machines else None)
        machine = (chosen.get("PhysicalResourceId") or "") if chosen else ""
    return info, outputs, machine if machine.startswith("arn:") else None


def _newest_reason(cfn: Any, stack_id: str, logical_id: str, status: str) -> str:
    """The reason of the resource's newest event in its current status (moto's resources carry none)."""
    try:
        events = cfn.describe_stack_events(StackName=stack_id)["StackEvents"]
    except Exception:
        return ""
    mine = [
        e
        for e in events
        if e.get("LogicalResourceId") == logical_id
        and e.get("ResourceStatus") == status
        and e.get("ResourceStatusReason")
    ]
    mine.sort(key=lambda e: e["Timestamp"])
    return mine[-1]["ResourceStatusReason"] if mine else ""


def _newest_execution(sfn: Any, machine: str) -> str | None:
    try:
        executions = sfn.list_executions(stateMachineArn=machine).get("executions", [])
    except sfn.exceptions.StateMachineDoesNotExist:
        return None
    executions.sort(key=lambda e: e["startDate"])
    return executions[-1]["executionArn"] if executions else None


def _read_execution(sfn: Any, arn: str) -> ExecutionInfo:
    try:
        described = sfn.describe_execution(executionArn=arn)
    except sfn.exceptions.ExecutionDoesNotExist as exc:
        raise NotFound(f"execution {arn} not found") from exc
    events: list[dict[str, Any]] = []
    paginator = sfn.get_paginator("get_execution_history")
    for page in paginator.paginate(executionArn=arn, PaginationConfig={"PageSize": 1000}):
        events += page.get("events", [])
    return ExecutionInfo(
        arn=arn,
        name=described.get("name") or arn.rsplit(":", 1)[-1],
        status=described["status"],
        started=described["startDate"],
        stopped=described.get("stopDate"),
        events=events,
    )
