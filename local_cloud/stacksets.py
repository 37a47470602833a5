"""Service-managed CloudFormation StackSets as AWS runs them, for ``local serve`` and the in-process tests.

moto 5.2.5 deploys a StackSet's template into member accounts, but it finishes every operation inside the
call, forgets AutoDeployment and the target OUs, deploys to the management account, descends one OU level
only, ignores DeploymentTargets on delete, answers every list in one page and never deploys to an account
that joins later. Here a StackSet with ``PermissionModel=SERVICE_MANAGED`` behaves as on AWS:

- Who may: the management account (CallAs SELF) or a registered delegated administrator (CallAs
  DELEGATED_ADMIN), with trusted access for StackSets enabled; a template with IAM resources needs its
  capability. Each refusal has AWS's error code and message.
- DescribeStackSet and ListStackSets return AutoDeployment, PermissionModel, OrganizationalUnitIds and
  ManagedExecution as given.
- Operations run in the background, one at a time per StackSet: QUEUED (only with ManagedExecution active,
  or an automatic deployment) and RUNNING for a while, then SUCCEEDED, FAILED or STOPPED. Another operation
  meanwhile is refused with OperationInProgressException. MaxConcurrent and FailureTolerance (count or
  percentage, per region, rounded down as documented; the strict concurrency mode caps concurrency at the
  tolerance + 1): an operation SUCCEEDS with failed accounts while their number stays within the
  tolerance, and stops (FAILED, the remaining accounts CANCELLED) once it is exceeded.
- Every account under a targeted root or OU, at any depth, gets an instance; the management account never
  does. DeploymentTargets (with AccountFilterType) are honoured by CreateStackInstances, UpdateStackSet and
  DeleteStackInstances, at most 50 OUs per call, as AWS allows.
- An instance is a real stack in the member account (``StackSet-<name>-<id>``); a resource that fails there
  (a role of that name already exists, as on AWS) fails that account with CloudFormation's reason, and the
  partial stack is rolled back. A stack that fails to delete (IAM's DeleteConflict: a managed policy attached
  to the role by hand) stays DELETE_FAILED and fails that account: its instance is INOPERABLE, with the
  resource's reason, excluded from UpdateStackSet; DeleteStackInstances retries the stack's delete.
- ListStackInstances, ListStackSetOperations and ListStackSetOperationResults page by at most 100.
- DetectStackSetDrift is an operation like the others (one at a time, preferences, STOPPED on request): it
  compares each instance's stack with the StackSet's template and parameters (``cloudformation_drift``) and
  leaves the instances' status alone. DescribeStackSetOperation and DescribeStackSet (the last completed one)
  carry StackSetDriftDetectionDetails, ListStackInstances each instance's DriftStatus, and
  ListStackInstanceResourceDrifts each resource's drift and property differences; an instance without a stack
  fails the detection there (FailureTolerance applies).
- Automatic deployment: an account created in, or moved into, a targeted OU gets its instance; one that
  leaves the targets (or the organization) loses it unless RetainStacksOnAccountRemoval is true.

Self-managed StackSets keep moto's behaviour. ``configure`` sets how long operations take: not instantaneous
by default (the local cloud compresses time), shorter still in the tests.
"""

from __future__ import annotations

import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local_cloud.once import once

STACKSETS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"
PAGE_LIMIT = 100  # the most any StackSets list returns in one page
# "The maximum number of organizational units (OUs) supported by a CreateStackInstances [DeleteStackInstances,
# UpdateStackInstances, UpdateStackSet] operation is 50" (CloudFormation API reference).
MAX_OUS_PER_OPERATION = 50
_NAMED_IAM = {"AWS::IAM::Role": "RoleName", "AWS::IAM::User": "UserName", "AWS::IAM::Group": "GroupName",
              "AWS::IAM::ManagedPolicy": "ManagedPolicyName", "AWS::IAM::InstanceProfile": "InstanceProfileName"}
_OU_ID = re.compile(r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$")


@dataclass
class Timing:
    """How long an operation takes: from the call until the first accounts are worked on, and per group of
    accounts deployed at once. AWS needs tens of seconds for each; the local cloud compresses that. ``clock``
    is what those seconds are counted on: a test that must see an operation RUNNING stops it there."""

    start_seconds: float = 1.0
    batch_seconds: float = 2.0
    clock: Callable[[], float] = time.monotonic


TIMING = Timing()


def configure(*, start_seconds: float | None = None, batch_seconds: float | None = None) -> None:
    if start_seconds is not None:
        TIMING.start_seconds = max(float(start_seconds), 0.0)
    if batch_seconds is not None:
        TIMING.batch_seconds = max(float(batch_seconds), 0.0)


def _now() -> datetime:
    return datetime.now(UTC)


def _error(code: str, message: str) -> Exception:
    from moto.cloudformation.exceptions import CloudFormationError

    return CloudFormationError(code, message)


def _validation(message: str) -> Exception:
    from moto.cloudformation.exceptions import ValidationError

    return ValidationError(message=message)


# ------------------------------------------------------------------------------------------------ the model
@dataclass
class Instance:
    """One account in one region, as ListStackInstances shows it."""

    account: str
    region: str
    ou: str
    stack_id: str = ""
    status: str = "OUTDATED"  # CURRENT | OUTDATED | INOPERABLE
    detailed: str = "PENDING"  # PENDING | RUNNING | SUCCEEDED | FAILED | CANCELLED | INOPERABLE
    reason: str = ""
    last_operation_id: str = ""
    live: bool = False  # a stack of this instance exists in the account
    drift_status: str = "NOT_CHECKED"  # DRIFTED | IN_SYNC | UNKNOWN | NOT_CHECKED (the last drift detection's)
    last_drift_check: datetime | None = None

    def summary(self, stack_set_id: str) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "StackSetId": stack_set_id, "Region": self.region, "Account": self.account, "Status": self.status,
            "StackInstanceStatus": {"DetailedStatus": self.detailed}, "OrganizationalUnitId": self.ou,
            "DriftStatus": self.drift_status, "LastOperationId": self.last_operation_id}
        if self.last_drift_check:
            summary["LastDriftCheckTimestamp"] = self.last_drift_check
        if self.stack_id:
            summary["StackId"] = self.stack_id
        if self.reason:
            summary["StatusReason"] = self.reason
        return summary


@dataclass
class Result:
    """One account in one region of an operation, as ListStackSetOperationResults shows it."""

    account: str
    region: str
    ou: str
    status: str = "PENDING"  # PENDING | RUNNING | SUCCEEDED | FAILED | CANCELLED
    reason: str = ""
    drift: str = ""  # DETECT_DRIFT: the instance's DRIFTED or IN_SYNC


@dataclass
class Operation:
    id: str
    action: str  # CREATE | UPDATE | DELETE | DETECT_DRIFT
    preferences: dict[str, Any]
    targets: dict[str, Any]
    regions: list[str]
    retain_stacks: bool | None = None
    accounts: list[str] | None = None  # an automatic deployment names its accounts
    status: str = "QUEUED"
    created: datetime = field(default_factory=_now)
    ended: datetime | None = None
    reason: str = ""
    results: list[Result] = field(default_factory=list)
    next_at: float = 0.0
    stop_requested: bool = False
    tolerance: dict[str, int] = field(default_factory=dict)  # per region
    concurrency: dict[str, int] = field(default_factory=dict)
    # DETECT_DRIFT: each instance's resources as drift detection found them (ListStackInstanceResourceDrifts).
    drifts: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status in ("QUEUED", "RUNNING", "STOPPING")

    def description(self, stack_set_id: str) -> dict[str, Any]:
        described: dict[str, Any] = {
            "OperationId": self.id, "StackSetId": stack_set_id, "Action": self.action, "Status": self.status,
            "OperationPreferences": self.preferences, "CreationTimestamp": self.created,
            "StatusDetails": {"FailedStackInstancesCount": self.failed},
        }
        if self.action == "DELETE":
            described["RetainStacks"] = bool(self.retain_stacks)
        if self.targets:
            described["DeploymentTargets"] = self.targets
        if self.ended:
            described["EndTimestamp"] = self.ended
        if self.reason:
            described["StatusReason"] = self.reason
        if self.action == "DETECT_DRIFT":
            described["StackSetDriftDetectionDetails"] = self.drift_details()
        return described

    def drift_details(self) -> dict[str, Any]:
        """``StackSetDriftDetectionDetails`` of a DETECT_DRIFT operation, counted from its accounts."""
        drifted = sum(1 for r in self.results if r.drift == "DRIFTED")
        in_sync = sum(1 for r in self.results if r.drift == "IN_SYNC")
        failed = sum(1 for r in self.results if r.status in ("FAILED", "CANCELLED"))
        running = sum(1 for r in self.results if r.status in ("PENDING", "RUNNING"))
        state = {"SUCCEEDED": "PARTIAL_SUCCESS" if failed else "COMPLETED", "FAILED": "FAILED",
                 "STOPPED": "STOPPED"}.get(self.status, "IN_PROGRESS")
        details: dict[str, Any] = {
            "DriftStatus": "DRIFTED" if drifted else ("IN_SYNC" if not self.active else "NOT_CHECKED"),
            "DriftDetectionStatus": state, "TotalStackInstancesCount": len(self.results),
            "DriftedStackInstancesCount": drifted, "InSyncStackInstancesCount": in_sync,
            "InProgressStackInstancesCount": running, "FailedStackInstancesCount": failed}
        if self.ended:
            details["LastDriftCheckTimestamp"] = self.ended
        return details

    def summary(self) -> dict[str, Any]:
        summary = {k: v for k, v in self.description("").items() if k not in ("StackSetId", "DeploymentTargets",
                                                                              "RetainStacks")}
        return summary

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if r.status == "FAILED")


@dataclass
class OrgStackSet:
    """What AWS keeps of a service-managed StackSet beyond moto's model (attached to it as ``org``)."""

    stack_set: Any  # moto's StackSet: name, id, arn, template, parameters, tags, description, status
    account_id: str  # the administrator account (management account or delegated administrator)
    region: str
    master_id: str
    auto_deployment: dict[str, bool]
    capabilities: list[str]
    managed_execution: bool
    targets: dict[str, list[str]] = field(default_factory=dict)  # root/OU id -> regions
    instances: dict[tuple[str, str], Instance] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)

    @property
    def current(self) -> Operation | None:
        return next((o for o in self.operations if o.active), None)

    def drift_details(self) -> dict[str, Any]:
        """The last *completed* drift detection's details (AWS leaves one in progress out)."""
        done = [o for o in self.operations if o.action == "DETECT_DRIFT" and not o.active]
        if not done:
            return {"DriftStatus": "NOT_CHECKED", "TotalStackInstancesCount": 0, "DriftedStackInstancesCount": 0,
                    "InSyncStackInstancesCount": 0, "InProgressStackInstancesCount": 0,
                    "FailedStackInstancesCount": 0}
        return done[-1].drift_details()

    def describe(self) -> dict[str, Any]:
        ss = self.stack_set
        described: dict[str, Any] = {
            "StackSetName": ss.name, "StackSetId": ss.id, "Description": ss.description or "", "Status": ss.status,
            "TemplateBody": ss.template, "Parameters": dict(ss.parameters), "Capabilities": self.capabilities,
            "Tags": dict(ss.tags or {}), "StackSetARN": ss.arn, "AutoDeployment": self.auto_deployment,
            "PermissionModel": "SERVICE_MANAGED", "OrganizationalUnitIds": sorted(self.targets),
            "ManagedExecution": {"Active": self.managed_execution},
            "Regions": sorted({i.region for i in self.instances.values()}),
            "StackSetDriftDetectionDetails": self.drift_details(),
        }
        return described

    def summary(self) -> dict[str, Any]:
        ss = self.stack_set
        drift = self.drift_details()
        summary = {"StackSetName": ss.name, "StackSetId": ss.id, "Description": ss.description or "",
                   "Status": ss.status, "AutoDeployment": self.auto_deployment, "PermissionModel": "SERVICE_MANAGED",
                   "DriftStatus": drift["DriftStatus"], "ManagedExecution": {"Active": self.managed_execution}}
        if "LastDriftCheckTimestamp" in drift:
            summary["LastDriftCheckTimestamp"] = drift["LastDriftCheckTimestamp"]
        return summary


# ------------------------------------------------------------------------------------------ the organization
def _org_backend(master_id: str) -> Any:
    from moto.organizations.models import organizations_backends

    return organizations_backends[master_id]["aws"]


def _master_of(account_id: str) -> str | None:
    """The management account of the organization this account belongs to (None: in no organization)."""
    from moto.organizations.models import organizations_backends

    if account_id in organizations_backends and organizations_backends[account_id]["aws"].org is not None:
        return account_id
    found = organizations_backends.master_accounts.get(account_id)
    return found[0] if found else None


def _ancestors(org: Any, account_id: str) -> list[str]:
    """The account's parent, its parent's parent, ... up to the root."""
    parents = {ou.id: ou.parent_id for ou in org.ou if getattr(ou, "parent_id", None)}
    account = next((a for a in org.accounts if a.id == account_id), None)
    chain: list[str] = []
    node = account.parent_id if account is not None else None
    while node and node not in chain:
        chain.append(node)
        node = parents.get(node)
    return chain


def _accounts_under(org: Any, parent_ids: list[str]) -> dict[str, str]:
    """account id -> the given root/OU it was found under (any depth), the management account excluded."""
    found: dict[str, str] = {}
    master = org.org.master_account_id if org.org else None
    for account in org.accounts:
        if account.id == master or getattr(account, "status", "ACTIVE") != "ACTIVE":
            continue
        chain = _ancestors(org, account.id)
        target = next((p for p in parent_ids if p in chain), None)
        if target:
            found[account.id] = target
    return found


# ------------------------------------------------------------------------------------- the background worker
class _Engine:
    """Advances every StackSet's operations in one background thread, one operation at a time per StackSet.

    Every read and write of StackSet state happens under ``lock``: the worker's steps and the API's calls.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.wake = threading.Condition(self.lock)
        self.busy: list[OrgStackSet] = []
        self.registry: list[OrgStackSet] = []  # every service-managed StackSet (automatic deployment)
        self._thread: threading.Thread | None = None

    def schedule(self, org_set: OrgStackSet) -> None:
        with self.wake:
            if org_set not in self.busy:
                self.busy.append(org_set)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="stacksets", daemon=True)
                self._thread.start()
            self.wake.notify_all()

    def clear(self) -> None:
        """moto's reset: forget every StackSet (their backends are gone)."""
        with self.wake:
            self.busy.clear()
            self.registry.clear()
            self.wake.notify_all()

    def idle(self) -> bool:
        with self.lock:
            return not any(o.current is not None for o in self.busy)

    def _run(self) -> None:
        while True:
            with self.wake:
                due = [(o.current.next_at, o) for o in self.busy if o.current is not None]
                self.busy[:] = [o for _, o in due]
                if not due:
                    self.wake.wait(timeout=5)
                    continue
                when, org_set = min(due, key=lambda pair: pair[0])
                delay = when - TIMING.clock()
                if delay > 0:
                    self.wake.wait(timeout=delay)
                    continue
                try:
                    _step(org_set)
                except Exception as exc:  # an emulator bug must not stop every other StackSet
                    operation = org_set.current
                    if operation is not None:
                        _finish(org_set, operation, "FAILED", f"Internal error of the local cloud: {exc!r}")


ENGINE = _Engine()


def wait_idle(timeout: float = 60.0) -> bool:
    """Until no operation is queued or running (tests, benchmarks); False on timeout."""
    deadline = time.monotonic() + timeout
    while not ENGINE.idle():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# ---------------------------------------------------------------------------------------- operations, steps
def _submit(org_set: OrgStackSet, operation: Operation, *, internal: bool = False) -> None:
    """Queue the operation, or refuse it while another one is active (unless managed execution queues it)."""
    if org_set.current is not None and not (internal or org_set.managed_execution):
        raise _error("OperationInProgressException",
                     f"Another Operation on StackSet {org_set.stack_set.arn} is in progress")
    if any(o.id == operation.id for o in org_set.operations):
        raise _error("OperationIdAlreadyExistsException", f"The operation ID {operation.id} already exists.")
    operation.next_at = TIMING.clock() + TIMING.start_seconds
    if org_set.current is None:
        _start(org_set, operation)  # RUNNING at once, its instances listed as pending
    org_set.operations.append(operation)
    ENGINE.schedule(org_set)


def _preference_count(preferences: dict[str, Any], name: str, total: int, default: int, floor_one: bool) -> int:
    if f"{name}Count" in preferences:
        return int(preferences[f"{name}Count"])
    if f"{name}Percentage" in preferences:
        count = math.floor(total * int(preferences[f"{name}Percentage"]) / 100)
        return max(count, 1) if floor_one else count
    return default


def _start(org_set: OrgStackSet, operation: Operation) -> None:
    """Resolve the accounts now (as AWS does when the operation runs) and mark their instances."""
    operation.status = "RUNNING"
    org = _org_backend(org_set.master_id)
    ous = list((operation.targets or {}).get("OrganizationalUnitIds", []))
    listed = set((operation.targets or {}).get("Accounts", []))
    account_filter = (operation.targets or {}).get("AccountFilterType", "NONE")

    def wanted(found: dict[str, str]) -> dict[str, str]:
        if account_filter == "INTERSECTION":
            return {a: ou for a, ou in found.items() if a in listed}
        if account_filter == "DIFFERENCE":
            return {a: ou for a, ou in found.items() if a not in listed}
        if account_filter == "UNION":
            return found | {a: "" for a in listed if a not in found and a != org_set.master_id}
        return found

    for region in operation.regions:
        if operation.action == "CREATE":
            if operation.accounts is not None:
                accounts = {a: _target_of(org_set, org, a) for a in operation.accounts}
            else:
                accounts = wanted(_accounts_under(org, ous))
        else:
            existing = {a: i.ou for (a, r), i in org_set.instances.items() if r == region}
            if operation.accounts is not None:
                accounts = {a: ou for a, ou in existing.items() if a in operation.accounts}
            elif ous:
                under = _accounts_under(org, ous)
                accounts = wanted({a: ou for a, ou in existing.items() if a in under or ou in ous})
            else:
                accounts = existing
        for account, ou in sorted(accounts.items()):
            instance = org_set.instances.get((account, region))
            if operation.action == "UPDATE" and instance is not None and instance.status == "INOPERABLE":
                continue  # excluded from updates until a DeleteStackInstances removes it
            operation.results.append(Result(account, region, ou))
            if instance is None:
                if operation.action != "CREATE":
                    continue
                instance = org_set.instances[(account, region)] = Instance(account, region, ou)
            if operation.action == "DETECT_DRIFT":
                continue  # drift detection reads the instances; their status stays as it is
            instance.status, instance.detailed, instance.reason = "OUTDATED", "PENDING", ""
            instance.last_operation_id = operation.id
        count = sum(1 for r in operation.results if r.region == region)
        tolerance = _preference_count(operation.preferences, "FailureTolerance", count, 0, floor_one=False)
        concurrency = _preference_count(operation.preferences, "MaxConcurrent", count, 1, floor_one=True)
        if operation.preferences.get("ConcurrencyMode", "STRICT_FAILURE_TOLERANCE") == "STRICT_FAILURE_TOLERANCE":
            concurrency = min(concurrency, tolerance + 1)
        operation.tolerance[region], operation.concurrency[region] = tolerance, max(concurrency, 1)


def _target_of(org_set: OrgStackSet, org: Any, account: str) -> str:
    chain = _ancestors(org, account)
    return next((t for t in org_set.targets if t in chain), "")


def _step(org_set: OrgStackSet) -> None:
    """One tick of the StackSet's active operation: start it, finish the accounts that were running and
    start the next group of them, or end the operation."""
    operation = org_set.current
    if operation is None:
        return
    if operation.status == "QUEUED":
        _start(org_set, operation)
    for result in operation.results:
        if result.status == "RUNNING":
            _run_result(org_set, operation, result)
    for region in operation.regions:
        results = [r for r in operation.results if r.region == region]
        failed = sum(1 for r in results if r.status == "FAILED")
        if failed > operation.tolerance.get(region, 0):
            _finish(org_set, operation, "FAILED",
                    f"The operation exceeded the failure tolerance in {region}: {failed} of {len(results)} "
                    "accounts failed")
            return
        pending = [r for r in results if r.status == "PENDING"]
        if not pending:
            continue  # this region is done: the next one (regions run one after the other)
        if operation.stop_requested:
            _finish(org_set, operation, "STOPPED", "")
            return
        size = operation.concurrency[region]
        if operation.preferences.get("ConcurrencyMode", "STRICT_FAILURE_TOLERANCE") == "STRICT_FAILURE_TOLERANCE":
            size = max(min(size, operation.tolerance.get(region, 0) + 1 - failed), 1)
        for result in pending[:size]:
            result.status = "RUNNING"
            instance = org_set.instances.get((result.account, result.region))
            if instance is not None and operation.action != "DETECT_DRIFT":
                instance.detailed = "RUNNING"
        operation.next_at = TIMING.clock() + TIMING.batch_seconds
        return
    _finish(org_set, operation, "STOPPED" if operation.stop_requested else "SUCCEEDED", "")


def _finish(org_set: OrgStackSet, operation: Operation, status: str, reason: str) -> None:
    for result in operation.results:
        if result.status in ("PENDING", "RUNNING"):
            result.status = "CANCELLED"
            instance = org_set.instances.get((result.account, result.region))
            if instance is not None and operation.action != "DETECT_DRIFT":
                instance.detailed = "CANCELLED"
                instance.reason = "Cancelled since failure tolerance has exceeded" if status == "FAILED" else (
                    "Cancelled since the operation was stopped")
    operation.status, operation.reason, operation.ended = status, reason, _now()
    following = org_set.current
    if following is not None and following.status == "QUEUED":
        following.next_at = TIMING.clock() + TIMING.start_seconds
        _start(org_set, following)


def _run_result(org_set: OrgStackSet, operation: Operation, result: Result) -> None:
    instance = org_set.instances.get((result.account, result.region))
    if instance is None:
        result.status = "SUCCEEDED"
        return
    if operation.action == "DETECT_DRIFT":
        _detect_instance_drift(operation, instance, result)
        return
    try:
        if operation.action == "DELETE":
            _delete_instance(org_set, instance, bool(operation.retain_stacks))
        elif operation.action == "CREATE" and instance.live and instance.status == "CURRENT":
            pass  # already there: creating it again changes nothing
        else:
            _deploy_instance(org_set, instance)
    except _InstanceFailed as failure:
        result.status, result.reason = "FAILED", str(failure)
        # A failed delete leaves the instance INOPERABLE (excluded from updates until deleted); a failed create
        # or update leaves it OUTDATED.
        state = ("INOPERABLE", "INOPERABLE") if operation.action == "DELETE" else ("OUTDATED", "FAILED")
        instance.status, instance.detailed, instance.reason = *state, str(failure)
        return
    result.status = "SUCCEEDED"
    if operation.action == "DELETE":
        return
    instance.status, instance.detailed, instance.reason = "CURRENT", "SUCCEEDED", ""


def _detect_instance_drift(operation: Operation, instance: Instance, result: Result) -> None:
    """Drift detection of the instance's stack in its account (``cloudformation_drift``). An instance without a
    stack (its deployment failed) cannot be checked: that account fails, and counts against the tolerance."""
    from moto.cloudformation.models import cloudformation_backends

    from local_cloud.cloudformation_drift import DELETED, MODIFIED, resource_drifts

    stack = cloudformation_backends[instance.account][instance.region].stacks.get(instance.stack_id) \
        if instance.live else None
    checked = _now()
    instance.last_drift_check = checked
    if stack is None:
        result.status, result.reason = "FAILED", "Stack instance is not in a state to detect drift: its stack does " \
                                                 "not exist"
        instance.drift_status = "UNKNOWN"
        return
    drifts = resource_drifts(stack, checked)
    operation.drifts[(instance.account, instance.region)] = drifts
    drifted = any(d["StackResourceDriftStatus"] in (MODIFIED, DELETED) for d in drifts)
    result.status, result.drift = "SUCCEEDED", "DRIFTED" if drifted else "IN_SYNC"
    instance.drift_status = result.drift


class _InstanceFailed(Exception):
    """A stack instance's stack failed in its account; the message is the instance's StatusReason."""


_tracking = threading.local()


def _track_resources() -> None:
    """Remember which resource failed while a stack instance is being created or updated: its StatusReason
    names it, as CloudFormation's does."""
    from moto.cloudformation import parsing

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def tracked(logical_id: str, resource_json: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            try:
                return original(logical_id, resource_json, *args, **kwargs)
            except Exception as exc:
                if getattr(_tracking, "active", False) and getattr(_tracking, "failure", None) is None:
                    cause: BaseException = exc
                    while cause.__cause__ is not None:  # the service's own error, not a wrapper's
                        cause = cause.__cause__
                    _tracking.failure = (logical_id, resource_json.get("Type", ""), _message(cause))
                raise

        tracked.__wrapped__ = original  # type: ignore[attr-defined]
        return tracked

    for name in ("parse_and_create_resource", "parse_and_update_resource"):
        setattr(parsing, name, wrap(getattr(parsing, name)))


def _message(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or getattr(exc, "description", None) or exc)
    return " ".join(text.split())


def _failure_reason(exc: BaseException | None, stack: Any) -> str:
    found = getattr(_tracking, "failure", None)
    if found is not None:
        logical_id, resource_type, message = found
        code = "AlreadyExists" if "already exists" in message.lower() else "GeneralServiceException"
        return (f"ResourceLogicalId:{logical_id}, ResourceType:{resource_type}, ResourceStatusReason:Resource "
                f'handler returned message: "{message}" (HandlerErrorCode: {code}).')
    if stack is not None and getattr(stack, "events", None):
        failures = [e for e in stack.events if str(e.resource_status).endswith("_FAILED") and e.resource_status_reason]
        if failures:
            return str(failures[0].resource_status_reason)
    return _message(exc) if exc is not None else "The stack failed"


def _deploy_instance(org_set: OrgStackSet, instance: Instance) -> None:
    """Create the instance's stack in its account, or update the one there, with the StackSet's template."""
    from moto.cloudformation.models import cloudformation_backends

    ss = org_set.stack_set
    backend = cloudformation_backends[instance.account][instance.region]
    stack = backend.stacks.get(instance.stack_id) if instance.live else None
    _tracking.active, _tracking.failure = True, None
    error: BaseException | None = None
    try:
        if stack is None:
            name = f"StackSet-{ss.name}-{uuid.uuid4()}"
            try:
                stack = backend.create_stack(name=name, template=ss.template, parameters=dict(ss.parameters),
                                             tags=dict(ss.tags or {}))
            except Exception as exc:
                error = exc
                stack = next((s for s in list(backend.stacks.values()) if s.name == name), None)
            instance.stack_id = stack.stack_id if stack is not None else instance.stack_id
            if error is not None or stack is None or stack.status.endswith("FAILED"):
                reason = _failure_reason(error, stack)
                if stack is not None:
                    _roll_back(backend, stack)
                instance.live = False
                raise _InstanceFailed(reason)
            instance.live = True
        else:
            try:
                stack.update(template=ss.template, parameters=dict(ss.parameters), tags=dict(ss.tags or {}))
            except Exception as exc:
                stack.status = "UPDATE_ROLLBACK_COMPLETE"
                raise _InstanceFailed(_failure_reason(exc, stack)) from exc
    finally:
        _tracking.active, _tracking.failure = False, None


def _roll_back(backend: Any, stack: Any) -> None:
    """A failed create rolls back: whatever was created goes, the stack is ROLLBACK_COMPLETE (then deleted
    by StackSets when the instance is retried)."""
    try:
        stack.resource_map.delete()
    except Exception:  # noqa: S110 - best effort, as a rollback that fails leaves ROLLBACK_FAILED
        pass
    stack.status = "ROLLBACK_COMPLETE"
    backend.stacks.pop(stack.stack_id, None)
    backend.deleted_stacks[stack.stack_id] = stack


def _delete_instance(org_set: OrgStackSet, instance: Instance, retain: bool) -> None:
    from moto.cloudformation.models import cloudformation_backends

    if instance.live and not retain:
        backend = cloudformation_backends[instance.account][instance.region]
        backend.delete_stack(instance.stack_id)
        stack = backend.stacks.get(instance.stack_id)
        if stack is not None and stack.status == "DELETE_FAILED":
            # The stack stays (DELETE_FAILED) and so does the instance, INOPERABLE: a DeleteStackInstances once
            # the cause is gone retries the stack's delete.
            failed = [e for e in stack.events if e.resource_status == "DELETE_FAILED"
                      and e.resource_type != "AWS::CloudFormation::Stack"]
            reason = (f"ResourceLogicalId:{failed[-1].logical_resource_id}, ResourceType:{failed[-1].resource_type}, "
                      f"ResourceStatusReason:{failed[-1].resource_status_reason}." if failed
                      else str(getattr(stack.events[-1], "resource_status_reason", "") or "The stack failed to delete"))
            raise _InstanceFailed(reason)
    org_set.instances.pop((instance.account, instance.region), None)


# ------------------------------------------------------------------------------------- automatic deployment
def _membership_changed(master_id: str, account_id: str) -> None:
    """An account joined, moved or left: deploy to it or remove it, for every StackSet that follows the
    organization (AutoDeployment Enabled)."""
    org = _org_backend(master_id)
    in_org = any(a.id == account_id for a in org.accounts)
    chain = _ancestors(org, account_id) if in_org else []
    with ENGINE.lock:
        for org_set in list(ENGINE.registry):
            if org_set.master_id != master_id or not org_set.auto_deployment.get("Enabled"):
                continue
            if account_id == master_id or org_set.stack_set.status != "ACTIVE":
                continue
            targets = [t for t in org_set.targets if t in chain]
            regions = sorted({r for t in targets for r in org_set.targets[t]})
            mine = [i for i in org_set.instances.values() if i.account == account_id]
            if targets:
                missing = [r for r in regions if (account_id, r) not in org_set.instances]
                if missing:
                    _submit(org_set, Operation(str(uuid.uuid4()), "CREATE", {}, {}, missing, accounts=[account_id]),
                            internal=True)
            elif mine:
                if org_set.auto_deployment.get("RetainStacksOnAccountRemoval"):
                    for instance in mine:  # the stacks stay in the account, no longer the StackSet's
                        org_set.instances.pop((instance.account, instance.region), None)
                    continue
                _submit(org_set, Operation(str(uuid.uuid4()), "DELETE", {}, {}, sorted({i.region for i in mine}),
                                           retain_stacks=False, accounts=[account_id]), internal=True)


def _patch_organizations() -> None:
    from moto.organizations.models import FakeDelegatedAdministrator, OrganizationsBackend

    # AWS lets an account be StackSets' delegated administrator; moto's list of such services omits it.
    if STACKSETS_PRINCIPAL not in FakeDelegatedAdministrator.SUPPORTED_SERVICES:
        FakeDelegatedAdministrator.SUPPORTED_SERVICES.append(STACKSETS_PRINCIPAL)

    original_create = OrganizationsBackend.create_account
    original_move = OrganizationsBackend.move_account
    original_remove = OrganizationsBackend.remove_account_from_organization

    def create_account(self: Any, **kwargs: Any) -> Any:
        created = original_create(self, **kwargs)
        _membership_changed(self.account_id, created["CreateAccountStatus"]["AccountId"])
        return created

    def move_account(self: Any, **kwargs: Any) -> None:
        original_move(self, **kwargs)
        _membership_changed(self.account_id, kwargs["AccountId"])

    def remove_account_from_organization(self: Any, **kwargs: Any) -> None:
        original_remove(self, **kwargs)
        _membership_changed(self.account_id, kwargs["AccountId"])

    OrganizationsBackend.create_account = create_account  # type: ignore[method-assign]
    OrganizationsBackend.move_account = move_account  # type: ignore[method-assign]
    OrganizationsBackend.remove_account_from_organization = remove_account_from_organization  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------------- the API
def _iam_capability(template: str) -> str | None:
    """The capability a template needs (None: none): IAM resources need CAPABILITY_IAM, named ones
    CAPABILITY_NAMED_IAM."""
    from moto.cloudformation.models import Stack

    try:
        resources = (Stack.parse_template(template) or {}).get("Resources", {}) or {}
    except Exception as exc:
        raise _validation(f"Template format error: {exc}") from exc
    needed = None
    for resource in resources.values():
        kind = str((resource or {}).get("Type", ""))
        if kind.startswith("AWS::IAM::"):
            needed = needed or "CAPABILITY_IAM"
            if _NAMED_IAM.get(kind) in ((resource or {}).get("Properties") or {}):
                return "CAPABILITY_NAMED_IAM"
    return needed


def _check_capabilities(template: str, capabilities: list[str]) -> None:
    needed = _iam_capability(template)
    if needed and needed not in capabilities and "CAPABILITY_NAMED_IAM" not in capabilities:
        raise _error("InsufficientCapabilitiesException", f"Requires capabilities : [{needed}]")


def _check_caller(account_id: str, call_as: str, *, trusted_access: bool = True) -> str:
    """The organization's management account, once the caller may operate service-managed StackSets."""
    master = _master_of(account_id)
    if master is None or (call_as != "DELEGATED_ADMIN" and account_id != master):
        raise _validation("You must be the management account or delegated admin account of an organization "
                          "before operating a SERVICE_MANAGED stack set")
    org = _org_backend(master)
    if call_as == "DELEGATED_ADMIN":
        admins = [a for a in org.admins if a.account.id == account_id and STACKSETS_PRINCIPAL in a.services]
        if not admins:
            raise _validation("Account used is not a delegated administrator")
    if trusted_access and not any(s.get("ServicePrincipal") == STACKSETS_PRINCIPAL for s in org.services):
        raise _validation("You must enable organizations access to operate a service managed stack set")
    return master


def _preferences(params: dict[str, Any]) -> dict[str, Any]:
    preferences = dict(params.get("OperationPreferences") or {})
    for name in ("FailureTolerance", "MaxConcurrent"):
        if f"{name}Count" in preferences and f"{name}Percentage" in preferences:
            raise _validation(f"You can specify either {name}Count or {name}Percentage, but not both")
        percentage = preferences.get(f"{name}Percentage")
        if percentage is not None and not 0 <= int(percentage) <= 100:
            raise _validation(f"{name}Percentage must be between 0 and 100")
    return preferences


def _deployment_targets(params: dict[str, Any], required: bool) -> dict[str, Any]:
    if params.get("Accounts"):
        raise _validation("StackSets with SERVICE_MANAGED permission model can only have OrganizationalUnit as "
                          "target")
    targets = dict(params.get("DeploymentTargets") or {})
    ous = targets.get("OrganizationalUnitIds") or []
    if required and not ous:
        raise _validation("StackSets with SERVICE_MANAGED permission model can only have OrganizationalUnit as "
                          "target")
    if len(ous) > MAX_OUS_PER_OPERATION:
        raise _validation(f"1 validation error detected: Value '[{', '.join(ous)}]' at 'deploymentTargets."
                          "organizationalUnitIds' failed to satisfy constraint: Member must have length less than or "
                          f"equal to {MAX_OUS_PER_OPERATION}")
    for ou in ous:
        if not _OU_ID.match(ou):
            raise _validation(f"1 validation error detected: Value '[{ou}]' at 'deploymentTargets."
                              "organizationalUnitIds' failed to satisfy constraint: Member must satisfy regular "
                              "expression pattern: ^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$")
    if targets.get("Accounts") and targets.get("AccountFilterType", "NONE") == "NONE":
        raise _validation("AccountFilterType should be specified when both OrganizationalUnitIds and Accounts "
                          "are provided")
    return targets


def _page(items: list[Any], params: dict[str, Any]) -> tuple[list[Any], str | None]:
    limit = params.get("MaxResults")
    if limit is not None and not 1 <= int(limit) <= PAGE_LIMIT:
        raise _validation(f"1 validation error detected: Value '{limit}' at 'maxResults' failed to satisfy "
                          f"constraint: Member must have value less than or equal to {PAGE_LIMIT}")
    size = int(limit or PAGE_LIMIT)
    token = params.get("NextToken")
    start = 0
    if token:
        try:
            start = int(token)
        except ValueError as exc:
            raise _validation("Invalid NextToken") from exc
    page = items[start:start + size]
    return page, str(start + size) if start + size < len(items) else None


def _org_set_of(response: Any) -> tuple[Any, OrgStackSet | None]:
    """moto's StackSet named in the request and its service-managed state (None: self-managed)."""
    stack_set = response.cloudformation_backend.describe_stack_set(response._get_param("StackSetName"))
    return stack_set, getattr(stack_set, "org", None)


def _operation_id(params: dict[str, Any]) -> str:
    """The caller's OperationId (it makes a retried call idempotent), or a new one."""
    return str(params.get("OperationId") or uuid.uuid4())


def _required_regions(params: dict[str, Any]) -> list[str]:
    regions = list(params.get("Regions") or [])
    if not regions:
        raise _validation("Regions should not be empty")
    return regions


def _check_call(response: Any) -> None:
    _check_caller(response.current_account, response._get_param("CallAs") or "SELF", trusted_access=False)


def _patch_responses() -> None:  # noqa: C901 - one override per StackSets action, each short
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import ActionResult, EmptyResult

    original = {name: getattr(CloudFormationResponse, name) for name in (
        "create_stack_set", "describe_stack_set", "list_stack_sets", "update_stack_set", "delete_stack_set",
        "create_stack_instances", "update_stack_instances", "delete_stack_instances", "describe_stack_instance",
        "list_stack_instances", "list_stack_set_operations", "describe_stack_set_operation",
        "list_stack_set_operation_results", "stop_stack_set_operation") if hasattr(CloudFormationResponse, name)}

    def unsupported(self: Any) -> Any:
        raise _validation("The local cloud emulates StackSet drift detection for service-managed StackSets only")

    def override(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def install(handler: Callable[..., Any]) -> Callable[..., Any]:
            def method(self: Any) -> Any:
                with ENGINE.lock:
                    result = handler(self)
                return original.get(name, unsupported)(self) if result is NotImplemented else result

            setattr(CloudFormationResponse, name, method)
            return handler

        return install

    def on_stack_set(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """``override`` for an action on one named StackSet: a self-managed one is left to moto."""
        def install(handler: Callable[..., Any]) -> Callable[..., Any]:
            def with_stack_set(self: Any) -> Any:
                stack_set, org_set = _org_set_of(self)
                return NotImplemented if org_set is None else handler(self, stack_set, org_set)

            override(name)(with_stack_set)
            return handler

        return install

    def page_of(items: list[Any], params: dict[str, Any]) -> Any:
        """A List* answer: the page of ``items`` the request's MaxResults and NextToken ask for."""
        page, token = _page(items, params)
        return ActionResult({"Summaries": page, "NextToken": token} if token else {"Summaries": page})

    @override("create_stack_set")
    def create_stack_set(self: Any) -> Any:
        params = self._get_params()
        if params.get("PermissionModel") != "SERVICE_MANAGED":
            if params.get("AutoDeployment"):
                raise _validation("AutoDeployment should not be specified for a SELF_MANAGED stack set")
            return NotImplemented
        master = _check_caller(self.current_account, params.get("CallAs") or "SELF")
        template = params.get("TemplateBody") or ""
        if params.get("TemplateURL"):
            template = self._get_stack_from_s3_url(params["TemplateURL"])
        capabilities = list(params.get("Capabilities") or [])
        _check_capabilities(template, capabilities)
        name = params.get("StackSetName", "")
        if not re.match(r"^[a-zA-Z][-a-zA-Z0-9]*$", name):
            raise _validation(f"1 validation error detected: Value '{name}' at 'stackSetName' failed to satisfy "
                              "constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*")
        backend = self.cloudformation_backend
        if any(s.name == name and s.status != "DELETED" for s in list(backend.stacksets.values())):
            raise _error("NameAlreadyExistsException", f"StackSet {name} already exists")
        auto = params.get("AutoDeployment") or {}
        stack_set = backend.create_stack_set(
            name=name, template=template,
            parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in params.get("Parameters", [])},
            tags={t["Key"]: t["Value"] for t in params.get("Tags", [])}, permission_model="SERVICE_MANAGED",
            admin_role=None, exec_role=None, description=params.get("Description"))
        stack_set.org = OrgStackSet(
            stack_set, self.current_account, self.region, master,
            {"Enabled": bool(auto.get("Enabled", False)),
             "RetainStacksOnAccountRemoval": bool(auto.get("RetainStacksOnAccountRemoval", False))},
            capabilities, bool((params.get("ManagedExecution") or {}).get("Active", False)))
        ENGINE.registry.append(stack_set.org)
        return ActionResult({"StackSetId": stack_set.id})

    @on_stack_set("describe_stack_set")
    def describe_stack_set(self: Any, _: Any, org_set: OrgStackSet) -> Any:
        _check_call(self)
        return ActionResult({"StackSet": org_set.describe()})

    @override("list_stack_sets")
    def list_stack_sets(self: Any) -> Any:
        params = self._get_params()
        wanted = params.get("Status")
        summaries = []
        for stack_set in list(self.cloudformation_backend.stacksets.values()):
            if wanted and stack_set.status != wanted:
                continue
            org_set = getattr(stack_set, "org", None)
            summaries.append(org_set.summary() if org_set else {
                "StackSetName": stack_set.name, "StackSetId": stack_set.id, "Description": stack_set.description,
                "Status": stack_set.status, "PermissionModel": stack_set.permission_model})
        return page_of(summaries, params)

    @on_stack_set("update_stack_set")
    def update_stack_set(self: Any, stack_set: Any, org_set: OrgStackSet) -> Any:
        params = self._get_params()
        _check_caller(self.current_account, params.get("CallAs") or "SELF")
        if params.get("UsePreviousTemplate"):
            template = stack_set.template
        elif params.get("TemplateURL"):
            template = self._get_stack_from_s3_url(params["TemplateURL"])
        else:
            template = params.get("TemplateBody") or stack_set.template
        capabilities = list(params.get("Capabilities") or [])
        _check_capabilities(template, capabilities)
        preferences = _preferences(params)
        targets = _deployment_targets(params, required=False)
        regions = list(params.get("Regions") or [])
        if bool(targets) != bool(regions):
            raise _validation("DeploymentTargets and Regions must be specified together")
        operation = Operation(_operation_id(params), "UPDATE", preferences, targets,
                              regions or sorted({i.region for i in org_set.instances.values()}))
        _submit(org_set, operation)
        # The StackSet changes at once, whatever becomes of the operation that updates its instances.
        previous = dict(stack_set.parameters)
        stack_set.parameters = {
            p["ParameterKey"]: previous.get(p["ParameterKey"], "") if p.get("UsePreviousValue")
            else p.get("ParameterValue", "") for p in params.get("Parameters", [])}
        stack_set.template = template
        org_set.capabilities = capabilities
        if params.get("Description") is not None:
            stack_set.description = params["Description"]
        if params.get("Tags") is not None:
            stack_set.tags = {t["Key"]: t["Value"] for t in params["Tags"]}
        if params.get("AutoDeployment"):
            auto = params["AutoDeployment"]
            org_set.auto_deployment = {
                "Enabled": bool(auto.get("Enabled", org_set.auto_deployment["Enabled"])),
                "RetainStacksOnAccountRemoval": bool(auto.get(
                    "RetainStacksOnAccountRemoval", org_set.auto_deployment["RetainStacksOnAccountRemoval"]))}
        if params.get("ManagedExecution"):
            org_set.managed_execution = bool(params["ManagedExecution"].get("Active", False))
        return ActionResult({"OperationId": operation.id})

    @on_stack_set("delete_stack_set")
    def delete_stack_set(self: Any, stack_set: Any, org_set: OrgStackSet) -> Any:
        _check_call(self)
        if org_set.current is not None:
            raise _error("OperationInProgressException",
                         f"Another Operation on StackSet {stack_set.arn} is in progress")
        if org_set.instances:
            raise _error("StackSetNotEmptyException", "StackSet is not empty")
        stack_set.delete()
        if org_set in ENGINE.registry:
            ENGINE.registry.remove(org_set)
        return EmptyResult()

    @on_stack_set("create_stack_instances")
    def create_stack_instances(self: Any, _: Any, org_set: OrgStackSet) -> Any:
        params = self._get_params()
        _check_caller(self.current_account, params.get("CallAs") or "SELF")
        targets = _deployment_targets(params, required=True)
        regions = _required_regions(params)
        operation = Operation(_operation_id(params), "CREATE", _preferences(params), targets, regions)
        _submit(org_set, operation)
        for ou in targets["OrganizationalUnitIds"]:
            known = org_set.targets.setdefault(ou, [])
            known.extend(r for r in regions if r not in known)
        return ActionResult({"OperationId": operation.id})

    @on_stack_set("update_stack_instances")
    def update_stack_instances(self: Any, _: Any, org_set: OrgStackSet) -> Any:
        raise _validation("The local cloud does not emulate UpdateStackInstances (parameter overrides) for a "
                          "service-managed StackSet")

    @on_stack_set("delete_stack_instances")
    def delete_stack_instances(self: Any, _: Any, org_set: OrgStackSet) -> Any:
        params = self._get_params()
        _check_caller(self.current_account, params.get("CallAs") or "SELF", trusted_access=False)
        targets = _deployment_targets(params, required=True)
        regions = _required_regions(params)
        if params.get("RetainStacks") is None:
            raise _validation("RetainStacks is required")
        operation = Operation(_operation_id(params), "DELETE", _preferences(params), targets, regions,
                              retain_stacks=bool(params["RetainStacks"]))
        _submit(org_set, operation)
        if targets.get("AccountFilterType", "NONE") == "NONE":
            for ou in targets["OrganizationalUnitIds"]:
                left = [r for r in org_set.targets.get(ou, []) if r not in regions]
                if left:
                    org_set.targets[ou] = left
                else:
                    org_set.targets.pop(ou, None)
        return ActionResult({"OperationId": operation.id})

    @on_stack_set("describe_stack_instance")
    def describe_stack_instance(self: Any, stack_set: Any, org_set: OrgStackSet) -> Any:
        _check_call(self)
        key = (self._get_param("StackInstanceAccount"), self._get_param("StackInstanceRegion"))
        instance = org_set.instances.get(key)
        if instance is None:
            raise _error("StackInstanceNotFoundException",
                         f"Stack instance {key[0]} {key[1]} of StackSet {stack_set.name} not found")
        described = instance.summary(stack_set.id)
        described["ParameterOverrides"] = []
        return ActionResult({"StackInstance": described})

    @on_stack_set("list_stack_instances")
    def list_stack_instances(self: Any, stack_set: Any, org_set: OrgStackSet) -> Any:
        _check_call(self)
        params = self._get_params()
        instances = sorted(org_set.instances.values(), key=lambda i: (i.account, i.region))
        if params.get("StackInstanceAccount"):
            instances = [i for i in instances if i.account == params["StackInstanceAccount"]]
        if params.get("StackInstanceRegion"):
            instances = [i for i in instances if i.region == params["StackInstanceRegion"]]
        for selector in params.get("Filters") or []:
            value = selector.get("Values", "")
            if selector.get("Name") == "DETAILED_STATUS":
                instances = [i for i in instances if i.detailed == value]
            elif selector.get("Name") == "LAST_OPERATION_ID":
                instances = [i for i in instances if i.last_operation_id == value]
        return page_of([i.summary(stack_set.id) for i in instances], params)

    @on_stack_set("list_stack_set_operations")
    def list_stack_set_operations(self: Any, _: Any, org_set: OrgStackSet) -> Any:
        _check_call(self)
        newest_first = sorted(org_set.operations, key=lambda o: o.created, reverse=True)
        return page_of([o.summary() for o in newest_first], self._get_params())

    def _operation(self: Any, org_set: OrgStackSet) -> Operation:
        wanted = self._get_param("OperationId")
        found = next((o for o in org_set.operations if o.id == wanted), None)
        if found is None:
            raise _error("OperationNotFoundException", f"Operation {wanted} not found")
        return found

    @on_stack_set("describe_stack_set_operation")
    def describe_stack_set_operation(self: Any, stack_set: Any, org_set: OrgStackSet) -> Any:
        _check_call(self)
        return ActionResult({"StackSetOperation": _operation(self, org_set).description(stack_set.id)})

    @on_stack_set("list_stack_set_operation_results")
    def list_stack_set_operation_results(self: Any, _: Any, org_set: OrgStackSet) -> Any:
        _check_call(self)
        params = self._get_params()
        results = _operation(self, org_set).results
        for selector in params.get("Filters") or []:
            if selector.get("Name") == "OPERATION_RESULT_STATUS":
                results = [r for r in results if r.status == selector.get("Values")]
        summaries = [{"Account": r.account, "Region": r.region, "Status": r.status, "OrganizationalUnitId": r.ou,
                      "AccountGateResult": {"Status": "SKIPPED", "StatusReason": "No account gate configured"},
                      **({"StatusReason": r.reason} if r.reason else {})} for r in results]
        return page_of(summaries, params)

    @on_stack_set("detect_stack_set_drift")
    def detect_stack_set_drift(self: Any, _: Any, org_set: OrgStackSet) -> Any:
        params = self._get_params()
        _check_caller(self.current_account, params.get("CallAs") or "SELF", trusted_access=False)
        operation = Operation(_operation_id(params), "DETECT_DRIFT", _preferences(params), {},
                              sorted({i.region for i in org_set.instances.values()}))
        _submit(org_set, operation)
        return ActionResult({"OperationId": operation.id})

    @on_stack_set("list_stack_instance_resource_drifts")
    def list_stack_instance_resource_drifts(self: Any, stack_set: Any, org_set: OrgStackSet) -> Any:
        _check_call(self)
        params = self._get_params()
        operation = _operation(self, org_set)
        key = (str(params.get("StackInstanceAccount", "")), str(params.get("StackInstanceRegion", "")))
        if operation.action != "DETECT_DRIFT" or not any((r.account, r.region) == key for r in operation.results):
            raise _error("StackInstanceNotFoundException",
                         f"Stack instance {key[0]} {key[1]} of StackSet {stack_set.name} not found in operation "
                         f"{operation.id}")
        drifts = operation.drifts.get(key, [])
        wanted = params.get("StackInstanceResourceDriftStatuses") or []
        if wanted:
            drifts = [d for d in drifts if d["StackResourceDriftStatus"] in wanted]
        return page_of(drifts, params)

    @on_stack_set("stop_stack_set_operation")
    def stop_stack_set_operation(self: Any, _: Any, org_set: OrgStackSet) -> Any:
        _check_call(self)
        operation = _operation(self, org_set)
        if operation.status == "QUEUED":
            _finish(org_set, operation, "STOPPED", "")
        elif operation.status == "RUNNING":
            operation.status, operation.stop_requested = "STOPPING", True
        elif operation.status != "STOPPING":
            raise _error("InvalidOperationException",
                         f"Operation {operation.id} is {operation.status} and can no longer be stopped")
        return EmptyResult()


def _cache_template_parsing() -> None:
    """A StackSet deploys one template to every account: parse its text once, not once per stack (moto's
    pure-Python YAML parse takes tens of milliseconds; a thousand accounts would wait a minute for it), and
    with libyaml (``cloudformation_templates.parse_as_moto``)."""
    import copy
    import functools

    from moto.cloudformation.models import Stack

    from local_cloud import cloudformation_templates

    original = Stack.parse_template
    parse = functools.lru_cache(maxsize=16)(cloudformation_templates.parse_as_moto)

    def parse_template(template: str) -> dict[str, Any]:
        # moto keeps and changes what it parsed: every stack gets its own copy.
        return copy.deepcopy(parse(template)) if isinstance(template, str) else original(template)

    Stack.parse_template = staticmethod(parse_template)  # type: ignore[method-assign,assignment]


def _patch_reset() -> None:
    """moto's reset (a new mock, ``/moto-api/reset``) forgets every StackSet: so does the worker."""
    from moto.core.base_backend import BackendDict

    original = BackendDict.reset.__func__  # type: ignore[attr-defined]

    def reset(cls: Any) -> None:
        ENGINE.clear()
        original(cls)

    BackendDict.reset = classmethod(reset)  # type: ignore[assignment,method-assign]


@once
def apply() -> None:
    """Install the emulation into moto (idempotent): in ``local serve`` and in the in-process tests."""
    _track_resources()
    _cache_template_parsing()
    _patch_organizations()
    _patch_responses()
    _patch_reset()


