"""Deciding a request as IAM would, and the enforcer the running server decides with.

The services CloudFormation and Lambda emulate (``cloudformation``, ``services``) ask ``running()`` whether IAM
is enforced and with what; the package's ``install`` sets it. A module of its own, below everything that asks,
so that nothing in ``local_cloud.enforcement`` imports the package that installs it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from local_cloud.enforcement.lookup import MotoLookup
from local_cloud.enforcement.report import Report
from local_cloud.iam import Decision, Identity, Kind, Request, evaluate
from local_cloud.iam.requests import ApiCall, checks

_running: Enforcer | None = None


def running() -> Enforcer | None:
    """The running server's enforcer (None when IAM enforcement is off)."""
    return _running


def run(enforcer: Enforcer | None) -> Enforcer | None:
    """Enforce with ``enforcer`` from now on (None: not at all); returns the one in effect before."""
    global _running
    previous, _running = _running, enforcer
    return previous


def principal_values(identity: Identity, region: str, action: str) -> dict[str, tuple[str, ...]]:
    """The global condition keys about the caller and the request's transport."""
    who = identity.principal
    now = datetime.now(UTC)
    values: dict[str, tuple[str, ...]] = {
        "aws:securetransport": ("true",),  # clients reach AWS over TLS; the local cloud stands in for it
        "aws:currenttime": (now.strftime("%Y-%m-%dT%H:%M:%SZ"),),
        "aws:epochtime": (str(int(now.timestamp())),),
        "aws:requestedregion": (region,),
        "aws:sourceip": ("127.0.0.1",),
        "aws:viaawsservice": ("false",),
        "aws:principalisawsservice": ("false",),
    }
    if who.kind == Kind.ANONYMOUS:
        values["aws:principaltype"] = ("Anonymous",)
        return values
    values["aws:principalaccount"] = (who.account,)
    values["aws:principalarn"] = (who.role_arn or who.arn,)
    values["aws:principaltype"] = (
        {Kind.ROOT: "Account", Kind.USER: "User", Kind.ASSUMED_ROLE: "AssumedRole"}.get(who.kind, "Account"),
    )
    if who.kind == Kind.ASSUMED_ROLE:
        values["aws:userid"] = (f"AROA:{who.session_name}",)
    elif who.kind == Kind.USER:
        values["aws:username"] = (who.arn.rsplit("/", 1)[-1],)
    if action.startswith("kms:"):
        values["kms:calleraccount"] = (who.account,)
    return values


class Enforcer:
    """Decides requests; also used for calls services make on a principal's behalf (CloudFormation)."""

    def __init__(self, report: Report | None = None) -> None:
        self.report = report
        self.decided = 0
        self.seconds = 0.0

    def authorize(self, identity: Identity, call: ApiCall) -> Decision | None:
        """The first refusal among the call's checks, or None when every check is allowed."""
        lookup = MotoLookup(call.account)
        for check in checks(call, lookup):
            context = check.context.merged(principal_values(identity, call.region, check.action))
            decision = evaluate(identity, Request(check.action, check.resource, context), check.resource_policy)
            if not decision.allowed:
                return decision
            if self.report is not None:
                self.report.record(decision)
        return None
