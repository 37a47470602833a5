"""Drift: where the account differs from the onboarding's end state, guide step by guide step. Pure.

Every step converges through one ``Converge``: it reads what the account holds, compares it with its end
state, and hands each difference to ``Converge.change`` together with the write that fixes it. Applying
(the onboarding, a repair) runs the write; checking (the drift check) records the difference as a
``Finding`` and writes nothing. So apply and check share one definition of each step's end state: a check
finds exactly what a rerun would change, and a rerun of a clean account changes nothing.

While a check runs, ``writes_refused()`` is true and the AWS clients (``aws.clients``) and the Workbench
client refuse any call that is not a read, so a write that slipped past ``change`` fails loudly instead of
touching the account.

A ``Report`` gathers the steps' checks; ``render`` is what a person reads (``cloudtrail-onboarding doctor``
and ``status``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Self, TypeVar

from aws_lambda_powertools import Logger

from expel_onboarding.errors import OnboardingError
from expel_onboarding.models import Model

logger = Logger(child=True)

T = TypeVar("T")

# The guide's step titles, so a finding says where in the guide a person would have set it.
GUIDE_STEPS = {
    1: "Create a new trail",
    2: "Edit the S3 bucket encryption settings",
    3: "Create a new SNS topic",
    4: "Edit the AWS KMS key policy",
    5: "Create the SQS queue",
    6: "Create the SNS subscription",
    7: "Enable S3 event notifications",
    8: "Set up CloudFormation (the Expel role)",
    9: "Create an additional stack (AWS Organizations only)",
    10: "Add AWS CloudTrail as a security device in Workbench",
}
# How to converge again, the same for every finding: each one names its own hand fix too.
REPAIR = "or let the onboarding put back what is ours: `cloudtrail-onboarding doctor --stack <stack> --repair`"
# Finding.actual for a resource that is not there.
ABSENT = "(absent)"


class DriftStatus(StrEnum):
    """CloudFormation's own words for drift (StackDriftStatus)."""

    IN_SYNC = "IN_SYNC"
    DRIFTED = "DRIFTED"
    NOT_CHECKED = "NOT_CHECKED"


class Mode(StrEnum):
    """What a step's run does with a difference."""

    APPLY = "Apply"  # write it (onboarding, update, repair)
    CHECK = "Check"  # report it, write nothing (drift check)


# ------------------------------------------------------------------------------------------- read-only
_WRITES_REFUSED: ContextVar[bool] = ContextVar("writes_refused", default=False)


class WriteRefused(RuntimeError):
    """A check tried to write: a bug (a write that does not go through ``Converge.change``), never a finding."""


def writes_refused() -> bool:
    """True while a check runs: AWS and Workbench clients refuse every call that is not a read."""
    return _WRITES_REFUSED.get()


@contextmanager
def refusing_writes() -> Iterator[None]:
    token = _WRITES_REFUSED.set(True)
    try:
        yield
    finally:
        _WRITES_REFUSED.reset(token)


def refuse_write(what: str) -> None:
    """Raise when a check is running; the clients call it before any call that is not a read."""
    if writes_refused():
        raise WriteRefused(f"A drift check must write nothing, but it was about to call {what}")


# -------------------------------------------------------------------------------------------- findings
@dataclass(frozen=True)
class Finding(Model):
    """One difference: which resource, which setting or statement, what it is now, what it should be,
    the guide step it belongs to, and the fix. ``repairable``: whether running the onboarding again (``doctor
    --repair``, ``DriftRepair``) puts it back; a finding no rerun can put back says so, and the person's fix (README
    "Drift")."""

    step: int
    resource: str
    setting: str
    actual: str
    expected: str
    fix: str
    repairable: bool = True

    @property
    def title(self) -> str:
        return GUIDE_STEPS.get(self.step, "")


def shown(value: Any) -> str:
    """A setting's value as a finding shows it: text as is, documents as compact sorted JSON."""
    if value is None:
        return ABSENT
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def statement_findings(step: int, resource: str, kind: str, current: dict[str, Any] | None,
                       differences: list[tuple[str, dict[str, Any] | None, dict[str, Any]]],
                       fix: str) -> list[Finding]:
    """One finding per statement of ours that is missing or says something else (``differences`` as the
    policy module computes them: Sid, what is there, ours). ``fix`` may use ``{sid}``."""
    found = [Finding(step=step, resource=resource, setting=f"{kind} statement {sid!r}", actual=shown(there),
                     expected=shown(ours), fix=fix.format(sid=sid)) for sid, there, ours in differences]
    if found or current is None:
        return found or [Finding(step=step, resource=resource, setting=kind, actual=ABSENT,
                                 expected="a policy holding the onboarding's statements", fix=fix.format(sid=""))]
    return [Finding(step=step, resource=resource, setting=kind, actual=shown(current),
                    expected="the same document with the onboarding's statements", fix=fix.format(sid=""))]


# ------------------------------------------------------------------------------------------ converging
@dataclass
class Converge:
    """One guide step's run: each difference from its end state goes through ``change``."""

    step: int
    mode: Mode = Mode.APPLY
    findings: list[Finding] = field(default_factory=list)

    @property
    def checking(self) -> bool:
        return self.mode is Mode.CHECK

    def change(self, findings: Finding | list[Finding], write: Callable[[], T]) -> T | None:
        """Record what differs; when applying, write the fix and return what the write returns.
        When checking, return None: the caller stops where a missing resource leaves nothing to compare."""
        found = [findings] if isinstance(findings, Finding) else list(findings)
        self.findings.extend(found)
        if self.checking:
            return None
        result = write()
        for finding in found:
            logger.info(f"Step {finding.step}: set {finding.setting} of {finding.resource}",
                        extra={"resource": finding.resource, "setting": finding.setting,
                               "was": finding.actual[:500]})
        return result

    def observe(self, finding: Finding, *, repairable: bool = True) -> None:
        """A difference no write of this step fixes, seen by a check (a stack operation still running,
        deliveries that failed): reported all the same. ``repairable`` False: no rerun of the onboarding puts
        it back (what CloudFormation cannot revert), so the report says it is the person's to fix."""
        self.findings.append(finding if repairable else dataclasses.replace(finding, repairable=False))

    def finding(self, resource: str, setting: str, actual: Any, expected: Any, fix: str) -> Finding:
        """A finding of this step (values shown as ``shown`` does)."""
        return Finding(step=self.step, resource=resource, setting=setting, actual=shown(actual),
                       expected=shown(expected), fix=fix)


def applied[R](run: Converge, result: R | None, what: str) -> R:
    """What an applying ``converge`` ended with. Only a check returns None (``change`` writes nothing), so
    None here is a defect of the onboarding: named as one, as an ``assert`` would not be under ``python -O``."""
    if result is None:
        raise OnboardingError(f"Step {run.step}: applying ended without {what}. This is a defect of the onboarding, "
                              "not of the account: report it with this execution's history")
    return result


def fix_of(error: Exception) -> str:
    """The "Fix: ..." part of one of our error messages, or the message itself."""
    text = str(error)
    return text.split("Fix: ", 1)[1] if "Fix: " in text else text


# ---------------------------------------------------------------------------------------- step checks
@dataclass(frozen=True)
class StepCheck(Model):
    """One guide step's check: its findings, or why it was not checked. ``device_status`` is step 10's
    Workbench status, when an API key lets the check read it. ``detection``: a CloudFormation drift detection
    this check waits for (its operation id, "" while another operation holds the StackSet), started at
    ``detection_started``; the state machine looks again after a wait (``pending``)."""

    KEY: ClassVar[str] = "Check"

    step: int
    status: DriftStatus
    findings: list[Finding] = field(default_factory=list)
    note: str = ""
    device_status: str = ""
    pending: bool = False
    detection: str = ""
    detection_started: str = ""

    @classmethod
    def of(cls, run: Converge, note: str = "", device_status: str = "") -> StepCheck:
        status = DriftStatus.DRIFTED if run.findings else DriftStatus.IN_SYNC
        return cls(step=run.step, status=status, findings=list(run.findings), note=note,
                   device_status=device_status)

    @classmethod
    def not_checked(cls, step: int, note: str) -> StepCheck:
        return cls(step=step, status=DriftStatus.NOT_CHECKED, note=note)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        data = dict(data)
        data["Findings"] = [Finding.from_dict(f) for f in data.get("Findings", [])]
        return super().from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "Findings": [f.to_dict() for f in self.findings]}


# What a step's check needs from an earlier step: what it is (as a person names it), its value here, and the
# guide step that makes it.
Need = tuple[str, object, int]


def not_ready(step: int, needs: Sequence[Need], skip: str = "") -> StepCheck | None:
    """Why guide step ``step`` cannot be compared (NOT_CHECKED): ``skip`` when given, else what it needs that
    is missing, naming the guide steps that make it; None when it can be compared."""
    if skip:
        return StepCheck.not_checked(step, skip)
    missing = [(what, made_by) for what, value, made_by in needs if not value]
    if not missing:
        return None
    whats, made = [what for what, _ in missing], sorted({made_by for _, made_by in missing})
    return StepCheck.not_checked(step, f"{_listed(whats)} {'is' if len(whats) == 1 else 'are'} missing "
                                       f"(guide step{'s' if len(made) > 1 else ''} {_listed(map(str, made))})")


def _listed(items: Iterable[str]) -> str:
    """Items as a person lists them: a; a and b; a, b and c."""
    *rest, last = items
    return f"{', '.join(rest)} and {last}" if rest else last


def run_check(run: Converge, converge: Callable[[Converge], object], *,
              note: Callable[[], str] | None = None) -> StepCheck:
    """Run one step's convergence in check mode, writing nothing. An error the apply would fail with
    (a name taken by someone else, a disabled key, an overlapping notification) is a finding too: the
    account is not in the step's end state, and the message says why and how to fix it."""
    if not run.checking:
        raise ValueError(f"run_check takes a checking Converge; step {run.step}'s applies")
    with refusing_writes():
        try:
            converge(run)
        except OnboardingError as exc:
            run.findings.append(Finding(step=run.step, resource="(the step)", setting="can the step run",
                                        actual=str(exc), expected="the step converges", fix=fix_of(exc)))
        return StepCheck.of(run, note=note() if note else "")


# ---------------------------------------------------------------------------------------------- report
@dataclass(frozen=True)
class Report(Model):
    """What one check found, over every guide step."""

    KEY: ClassVar[str] = "Drift"

    status: DriftStatus
    finding_count: int
    steps: list[StepCheck]
    device_status: str = ""
    checked_at: str = ""
    execution_arn: str = ""
    repair: bool = False  # a repair (the onboarding) was started for this check's findings
    pending: bool = False  # a step waits for CloudFormation's drift detection: look again after a wait

    @property
    def findings(self) -> list[Finding]:
        return [f for s in self.steps for f in s.findings]

    @classmethod
    def of(cls, checks: list[StepCheck], checked_at: str = "", execution_arn: str = "",
           repair: bool = False) -> Report:
        steps = sorted(checks, key=lambda c: c.step)
        count = sum(len(c.findings) for c in steps)
        device = next((c.device_status for c in steps if c.device_status), "")
        status = DriftStatus.DRIFTED if count else DriftStatus.IN_SYNC
        return cls(status=status, finding_count=count, steps=steps, device_status=device, checked_at=checked_at,
                   execution_arn=execution_arn, repair=repair and count > 0, pending=any(c.pending for c in steps))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        data = dict(data)
        data["Steps"] = [StepCheck.from_dict(s) for s in data.get("Steps", [])]
        return super().from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "Steps": [s.to_dict() for s in self.steps]}


def render(report: Report, stack: str = "<stack>", width: int = 100) -> list[str]:
    """The report as a person reads it: each guide step, and under a drifted one each finding with what it
    is now, what it should be and the fix."""
    lines = [f"Drift check  {report.status}  "
             + (f"{report.finding_count} difference{'s' if report.finding_count != 1 else ''}"
                if report.finding_count else "the account is in the onboarding's end state")]
    if report.checked_at:
        lines.append(f"Checked      {report.checked_at}")
    if report.device_status:
        lines.append(f"Workbench    device status: {report.device_status}")
    for check in report.steps:
        title = GUIDE_STEPS.get(check.step, "")
        state = {DriftStatus.IN_SYNC: "in sync", DriftStatus.NOT_CHECKED: "not checked"}.get(
            check.status, f"{len(check.findings)} difference{'s' if len(check.findings) != 1 else ''}")
        if check.pending:
            state = "drift detection still running"
        lines.append("")
        lines.append(f"Guide step {check.step}  {title}: {state}" + (f" ({check.note})" if check.note else ""))
        for finding in check.findings:
            lines.append(f"  - {finding.setting} of {finding.resource}")
            lines.append(f"      is now     {_cut(finding.actual, width)}")
            lines.append(f"      should be  {_cut(finding.expected, width)}")
            lines.append(f"      fix        {finding.fix}".replace("<stack>", stack))
    if report.finding_count:
        lines += ["", f"Repair: each fix above by hand, {REPAIR}.".replace("<stack>", stack)]
        manual = [f for f in report.findings if not f.repairable]
        if manual:
            lines.append(f"By hand only ({len(manual)}): the repair cannot put these back (each fix above says why and "
                         "what to do): " + "; ".join(
                             f"{f.setting} of {f.resource}" for f in manual[:5]) + (" ..." if len(manual) > 5 else ""))
        if report.repair:
            lines.append("A repair (the onboarding, run again) was started for these differences.")
    return lines


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
