"""Guide step 8: the role Expel assumes, deployed by CloudFormation from ``roles/expel-role.yaml``.

Single account: one stack with the data path (``expel_role_stack``). AWS Organizations: a
service-managed StackSet of the template without the data path, which follows the organization's
member accounts; the management account gets guide step 9's stack (``step09_management_stack``),
started alongside because the StackSet's rollout takes minutes and the stack seconds.

``deploy`` starts or reconciles and returns at once; the state machine waits and calls ``status``
until everything settles. Nothing here sleeps.

The StackSet reconcile converges or says why not. Each look starts at most one operation, and only for a
difference it can name (template, a parameter, auto-deployment, instances not current, target OUs
without instances, accounts under the targets without their instance: someone deleted it). StackSets
run one operation at a time, so a running one is waited for. Once an operation this run started has
SUCCEEDED, a difference of the kind it was started for is an error that names it, never another
operation: a false difference (a value CloudFormation echoes back otherwise) cannot loop until the
deadline. Accounts an operation failed within the failure tolerance are read from the instances after it
and reported in the step's output. No operation is waited for longer than ``OPERATION_LIMIT``.

A repair (``repair``: a run after a drift check, ``doctor --repair`` or DriftRepair) also replaces the stack
instance of each member account whose role CloudFormation's drift detection found DRIFTED (or whose instance
a failed delete left INOPERABLE): StackSets have no drift-aware mode, and an update with an unchanged template
leaves a role changed by hand as it is, so that account's instance is deleted (its stack, so the role) and
created again from the template, that account alone. A role IAM refuses to delete (a managed policy attached by
hand: DeleteConflict) stops the repair with an error naming the account and the fix; the policy is never
detached here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from expel_onboarding.aws import organizations, stacks, stacksets, stepfunctions
from expel_onboarding.drift import ABSENT, Converge, DriftStatus, Finding, Mode, StepCheck, run_check
from expel_onboarding.errors import OnboardingError, StillInProgress
from expel_onboarding.models import Config, QueueOutput, RoleOutput, RoleStatus, TrailOutput
from expel_onboarding.naming import owner_tags
from expel_onboarding.ownership import is_ours, require_ours
from expel_onboarding.steps import expel_role_stack, step09_management_stack
from expel_onboarding.steps.expel_role_stack import EXPEL_PRINCIPAL_ARN, significant_lines
from expel_onboarding.validation import MAX_OUS_PER_OPERATION

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.literals import CallAsType

logger = Logger(child=True)

# What a difference is about; an UpdateStackSet fixes the first four, CreateStackInstances the next two
# (a target OU without instances; accounts of the targets without theirs), DeleteStackInstances then
# CreateStackInstances the last (a repair: accounts whose role drifted, or whose instance is INOPERABLE).
TEMPLATE, PARAMETERS, AUTO_DEPLOYMENT, INSTANCES, TARGETS, ACCOUNTS, REPLACE = (
    "template", "parameters", "auto-deployment", "instances", "targets", "accounts", "replace")
_UPDATE_FIXES = (TEMPLATE, PARAMETERS, AUTO_DEPLOYMENT, INSTANCES)
# Failed accounts carried in the step's output: enough to act on, small enough for the state.
MAX_FAILED_ACCOUNTS = 20
# Findings of one kind a drift check names account by account (the state machine's document stays small);
# more are summed up in one finding.
MAX_ACCOUNT_FINDINGS = 20
# How long a drift check waits for CloudFormation's drift detection of the member accounts before it reports
# the step as not checked (a few seconds per account on AWS, MaxConcurrentPercentage of them at a time).
DRIFT_DETECTION_LIMIT = timedelta(minutes=30)
# How long the onboarding waits for one StackSet operation (its own or another's), counted from its start or from
# the execution's latest redrive, before step 8 fails naming it: an operation stuck RUNNING (an account that never
# answers, an account gate) must not hold the step until the execution times out. Within the default
# OnboardingDeadlineSeconds (45 minutes), so CloudFormation is answered with this reason and a redrive can follow.
OPERATION_LIMIT = timedelta(minutes=30)
# In an instance's StatusReason when IAM refused to delete the role (DeleteConflict: "Cannot delete entity, must
# detach all policies first."): a managed policy attached by hand, which the onboarding never detaches.
_POLICY_ATTACHED_BY_HAND = "must detach all policies"


def deploy(config: Config, trail: TrailOutput, queue: QueueOutput, *,
           service_role_arn: str = "", repair: bool = False) -> RoleOutput:
    """Single account: the role stack. Organizations: step 9's stack, and the StackSet reconciled.

    ``service_role_arn``: the role CloudFormation acts as for the stack, so the onboarding
    function itself needs no IAM write permissions ("" = CloudFormation uses the caller's).
    ``repair``: a run after a drift check (``repairing``): member accounts' drifted roles are replaced.
    """
    if not config.organization_mode:
        return expel_role_stack.deploy(config, trail, queue, service_role_arn)
    management = step09_management_stack.deploy(config, trail, queue, service_role_arn)
    return _combined(management, _reconcile_stack_set(config, None, repair=repair))


def status(config: Config, role: RoleOutput, execution_arn: str = "", repair: bool = False,
           now: datetime | None = None) -> RoleOutput:
    """One look at what ``deploy`` started: COMPLETE with the role ARN, IN_PROGRESS, or a failure.

    ``execution_arn``: the onboarding execution making this look; when it was redriven after a StackSet
    operation failed, the failure was reported and (the person says) fixed, so the look retries. A StackSet
    operation still running ``OPERATION_LIMIT`` after its start (or after the latest redrive) fails the look.
    """
    if role.status == RoleStatus.COMPLETE:
        return role
    if not config.organization_mode:
        return expel_role_stack.status(config, role)
    management = step09_management_stack.status(config, role)
    rollout = _reconcile_stack_set(config, role, execution_arn, repair=repair, now=now or datetime.now(UTC))
    return _combined(management, rollout)


def repairing(state: dict[str, Any]) -> bool:
    """Whether the onboarding runs as a repair after a drift check (``doctor --repair``, DriftRepair): the
    check's report travels in its CloudFormation request as ``Repairs``."""
    return bool((state.get("CloudFormation") or {}).get("Repairs"))


def remove(config: Config) -> RoleStatus:
    """Teardown of step 8: the single account's stack, or the StackSet (its instances, then itself).

    Returns DELETED (gone), IN_PROGRESS (call again after a wait) or SKIPPED (not ours). In
    Organizations mode the management account's stack is step 9's ``remove``.
    """
    if not config.organization_mode:
        return expel_role_stack.remove(config)
    return _remove_stack_set(config)


# --- Organizations mode: the StackSet ---------------------------------------------------------------------

@dataclass(frozen=True)
class _Difference:
    kind: str  # one of TEMPLATE, PARAMETERS, AUTO_DEPLOYMENT, INSTANCES, TARGETS
    detail: str  # what differs, for a person


@dataclass(frozen=True)
class _Rollout:
    stack_set_id: str
    operation_id: str = ""  # the operation to wait for, or the latest one when nothing runs
    running: bool = False
    ours: bool = False
    addressed: tuple[str, ...] = ()
    failed: tuple[dict[str, str], ...] = ()


def stack_set_name(config: Config) -> str:
    return f"{config.stack_name}-expel-role"


def stack_set_parameters(config: Config) -> dict[str, str]:
    """Member accounts hold no bucket, queue or key: the template's data path stays empty there."""
    return {
        "ExpelWorkbenchGuid": config.workbench_guid,
        "RoleName": config.role_name,
        "ExpelPrincipalArn": EXPEL_PRINCIPAL_ARN,
        "BucketArn": "",
        "QueueArn": "",
        "KmsKeyArn": "",
        "LogKmsKeyArn": "",
        "LogObjectPrefix": "",
        # The boundary policy exists only in the onboarding's own account.
        "PermissionsBoundaryArn": "",
    }


def _combined(management: RoleOutput, rollout: _Rollout) -> RoleOutput:
    done = management.status == RoleStatus.COMPLETE and not rollout.running
    # The ARN Workbench gets is the management account's role: the one with the data path. Once done,
    # only what a person (and a rerun's comparison) needs stays: no bookkeeping of this run.
    return RoleOutput(stack_id=management.stack_id, status=RoleStatus.COMPLETE if done else RoleStatus.IN_PROGRESS,
                      role_arn=management.role_arn if done else "", stack_set_id=rollout.stack_set_id,
                      operation_id=rollout.operation_id, operation_ours=rollout.ours and not done,
                      addressed=[] if done else list(rollout.addressed), failed_accounts=list(rollout.failed),
                      change_set_id="" if done else management.change_set_id)


def _reconcile_stack_set(config: Config, previous: RoleOutput | None, execution_arn: str = "",
                         repair: bool = False, now: datetime | None = None) -> _Rollout:
    """One look at the StackSet: wait for a running operation, or start at most one for a difference. ``now``
    (the status looks): a running operation is waited for up to ``OPERATION_LIMIT``."""
    organization = organizations.describe_organization()
    call_as = organizations.call_as(config.account_id, organization)
    name, region = stack_set_name(config), config.region
    addressed = tuple(previous.addressed) if previous else ()
    failed = tuple(previous.failed_accounts) if previous else ()

    stack_set = stacksets.describe_stack_set(name, region, call_as)
    if stack_set is None:
        if addressed:
            raise OnboardingError(
                f"Step 8: StackSet {name} disappeared while the onboarding was deploying it. Fix: run the "
                "onboarding again")
        return _create_stack_set(config, call_as)
    _require_stack_set_ours(config, stack_set)
    stack_set_id = str(stack_set["StackSetId"])

    ours = previous.operation_id if previous and previous.operation_ours else ""
    if ours:
        operation = stacksets.describe_stack_set_operation(name, ours, region, call_as)
        state = str(operation.get("Status", ""))
        if state in stacksets.RUNNING_OPERATION:
            _check_waited(config, operation, call_as, execution_arn, now)
            return _Rollout(stack_set_id, ours, running=True, ours=True, addressed=addressed, failed=failed)
        if state != "SUCCEEDED" and not _redriven_since(operation, execution_arn):
            raise _operation_failed(config, ours, state, operation, stacksets.stack_instances(name, region, call_as))
        if state != "SUCCEEDED":
            # A redrive of the look that reported this failure: look afresh, so the failed accounts are retried.
            logger.info("Redriven after the StackSet operation failed; retrying its accounts",
                        extra={"operation_id": ours, "operation_status": state})
            ours, addressed, failed = "", (), ()

    operations = stacksets.recent_operations(name, region, call_as)
    running = next((o for o in operations if o.get("Status") in stacksets.RUNNING_OPERATION), None)
    instances = stacksets.stack_instances(name, region, call_as) if ours or running is None else []
    if ours:
        # After each operation, the instances it failed within the failure tolerance (it still SUCCEEDED).
        failed = _with_failures(failed, instances, ours)
    if running is not None:
        # Someone else's (an automatic deployment, a person): wait for it, then look again.
        _check_waited(config, running, call_as, execution_arn, now)
        return _Rollout(stack_set_id, str(running["OperationId"]), running=True, addressed=addressed, failed=failed)

    accepted = {(f["Account"], f["Region"]) for f in failed}
    targets = sorted(config.organization_target_ou_ids) or organizations.root_ids()
    wanted = _wanted_accounts(config, organization, call_as, targets)
    differences = _differences(config, stack_set, instances, targets, accepted, wanted, repair)
    # Accounts a replacement could not delete are reported once the others are deployed again (below).
    repeated = [d for d in differences if d.kind in addressed and d.kind != REPLACE]
    if repeated:
        raise _not_converging(config, ours, repeated)

    preferences = (config.stack_set_max_concurrent_percentage, config.stack_set_failure_tolerance_percentage)
    update = [d for d in differences if d.kind in _UPDATE_FIXES]
    if update:
        operation_id = stacksets.update_stack_set(name, expel_role_stack.role_template(), stack_set_parameters(config),
                                                  region, call_as, *preferences)
        logger.info("Updating the Expel role StackSet", extra={"operation_id": operation_id,
                                                                "differences": [d.detail for d in update]})
        return _Rollout(stack_set_id, operation_id, running=True, ours=True,
                        addressed=tuple(sorted({*addressed, *_UPDATE_FIXES})), failed=failed)
    missing = [d for d in differences if d.kind == TARGETS]
    if missing:
        ous = _missing_targets(stack_set, instances, targets)
        operation_id = stacksets.create_stack_instances(name, ous, [region], region, call_as, *preferences,
                                                        exclude_accounts=_excluded(config, call_as))
        logger.info("Deploying the Expel role to more OUs", extra={"operation_id": operation_id, "targets": ous})
        return _Rollout(stack_set_id, operation_id, running=True, ours=True,
                        addressed=tuple(sorted({*addressed, TARGETS})), failed=failed)
    replaced = any(d.kind == REPLACE for d in differences)
    if replaced and REPLACE not in addressed:
        doomed = _to_replace(instances, config.region, wanted)
        # Every account is tried (failure tolerance 100 %): one whose role cannot be deleted stops no other.
        operation_id = stacksets.delete_stack_instances(name, sorted(set(doomed.values())), [region], region, call_as,
                                                        config.stack_set_max_concurrent_percentage, 100,
                                                        only_accounts=sorted(doomed))
        logger.info("Replacing the stack instances of member accounts whose Expel role was changed by hand: deleting "
                    "them, then creating them again", extra={"operation_id": operation_id, "accounts": sorted(doomed)})
        return _Rollout(stack_set_id, operation_id, running=True, ours=True,
                        addressed=tuple(sorted({*addressed, REPLACE})), failed=failed)
    if any(d.kind == ACCOUNTS for d in differences):
        absent = _absent_accounts(config, stack_set, instances, targets, wanted)
        operation_id = stacksets.create_stack_instances(name, sorted(set(absent.values())), [region], region, call_as,
                                                        *preferences, only_accounts=sorted(absent))
        logger.info("Deploying the Expel role again to accounts without their stack instance",
                    extra={"operation_id": operation_id, "accounts": sorted(absent)})
        return _Rollout(stack_set_id, operation_id, running=True, ours=True,
                        addressed=tuple(sorted({*addressed, ACCOUNTS})), failed=failed)

    if replaced:
        raise _replacement_blocked(config, call_as, instances, _to_replace(instances, config.region, wanted))
    if failed:
        logger.warning("The Expel role is missing in member accounts the StackSet failed within its failure "
                       "tolerance", extra={"failed_accounts": list(failed)})
    latest = str(operations[0]["OperationId"]) if operations else ""
    return _Rollout(stack_set_id, latest, failed=failed)


def _create_stack_set(config: Config, call_as: CallAsType) -> _Rollout:
    name, region = stack_set_name(config), config.region
    targets = sorted(config.organization_target_ou_ids) or organizations.root_ids()
    stack_set_id = stacksets.create_stack_set(
        name, expel_role_stack.role_template(), stack_set_parameters(config), owner_tags(config.stack_name), region,
        call_as, f"Expel CloudTrail integration: the role Expel assumes in every member account (stack "
        f"{config.stack_name})")
    operation_id = stacksets.create_stack_instances(
        name, targets, [region], region, call_as, config.stack_set_max_concurrent_percentage,
        config.stack_set_failure_tolerance_percentage, exclude_accounts=_excluded(config, call_as))
    logger.info("Created the Expel role StackSet", extra={"stack_set_id": stack_set_id, "operation_id": operation_id,
                                                           "targets": targets})
    return _Rollout(stack_set_id, operation_id, running=True, ours=True,
                    addressed=(*_UPDATE_FIXES, TARGETS, ACCOUNTS))


def _redriven_since(operation: dict[str, Any], execution_arn: str) -> bool:
    """Whether the execution was redriven after the operation ended: a redrive resumes the failed look with
    the same input, which names the failed operation again."""
    ended = operation.get("EndTimestamp")
    if not execution_arn or ended is None:
        return False
    redriven = stepfunctions.describe_execution(execution_arn).get("redriveDate")
    return redriven is not None and redriven > ended


def _check_waited(config: Config, operation: dict[str, Any], call_as: CallAsType, execution_arn: str,
                  now: datetime | None) -> None:
    """Fails the look once the running ``operation`` has been waited for ``OPERATION_LIMIT``, from its start or from
    the execution's latest redrive (a person who redrives chose to wait again), naming it and the accounts it has
    not finished."""
    started = operation.get("CreationTimestamp")
    if now is None or started is None or now - _aware(started) <= OPERATION_LIMIT:
        return
    redriven = stepfunctions.describe_execution(execution_arn).get("redriveDate") if execution_arn else None
    if redriven is not None and now - _aware(redriven) <= OPERATION_LIMIT:
        return
    name, operation_id = stack_set_name(config), str(operation["OperationId"])
    pending = sorted({f"{i.get('Account')} ({i.get('Region')})"
                      for i in stacksets.stack_instances(name, config.region, call_as)
                      if i.get("LastOperationId") == operation_id
                      and (i.get("StackInstanceStatus") or {}).get("DetailedStatus") in ("PENDING", "RUNNING")})
    minutes = int(OPERATION_LIMIT.total_seconds() // 60)
    raise OnboardingError(
        f"Step 8: StackSet {name} operation {operation_id} ({operation.get('Action')}) is still "
        f"{operation.get('Status')} after {int((now - _aware(started)).total_seconds() // 60)} minutes (step 8 waits "
        f"{minutes}); accounts pending: {_listed(pending) if pending else 'none listed'}. Fix: CloudFormation > "
        f"StackSets > {name} > Operations > {operation_id} shows why (an account that does not answer, an account "
        "gate); once it has ended (or you stopped it: aws cloudformation stop-stack-set-operation --stack-set-name "
        f"{name} --operation-id {operation_id}{_call_as_flag(call_as)}), redrive the execution (Step Functions > "
        f"Redrive; step 8 then waits up to {minutes} minutes more) or run `cloudtrail-onboarding doctor --stack "
        f"{config.stack_name} --repair`")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _excluded(config: Config, call_as: CallAsType) -> list[str]:
    # A delegated administrator is a member account too: its role is the step-9 stack's, not an instance.
    return [config.account_id] if call_as == organizations.DELEGATED_ADMIN else []


def _wanted_accounts(config: Config, organization: dict[str, Any], call_as: CallAsType,
                     targets: list[str]) -> dict[str, str]:
    """Each account that needs an instance: under the targets (at any depth), active, neither the management
    account (step 9's stack) nor a delegated administrator running the onboarding; account id -> its target."""
    wanted = organizations.accounts_under(targets, active_only=True)
    for excluded in {str(organization.get("MasterAccountId", "")), *_excluded(config, call_as)}:
        wanted.pop(excluded, None)
    return wanted


def _absent_accounts(config: Config, stack_set: dict[str, Any], instances: list[dict[str, Any]], targets: list[str],
                     wanted: dict[str, str]) -> dict[str, str]:
    """Accounts of covered targets without an instance in this region (someone deleted it: CloudFormation still
    counts their OU as a target and does not deploy it again), account id -> its target. Targets without any
    instance are a TARGETS difference instead."""
    uncovered = set(_missing_targets(stack_set, instances, targets))
    held = {str(i.get("Account")) for i in instances if i.get("Region") == config.region}
    return {a: t for a, t in sorted(wanted.items()) if a not in held and t not in uncovered}


def _to_replace(instances: list[dict[str, Any]], region: str, wanted: dict[str, str]) -> dict[str, str]:
    """A repair's replacements in ``region``: the accounts whose role the latest drift detection found DRIFTED, or
    whose instance a failed delete left INOPERABLE; account id -> the OU its instance was deployed through."""
    return {str(i["Account"]): str(i.get("OrganizationalUnitId") or wanted.get(str(i["Account"]), ""))
            for i in instances if i.get("Region") == region
            and (i.get("DriftStatus") == "DRIFTED" or i.get("Status") == "INOPERABLE")}


def _differences(config: Config, stack_set: dict[str, Any], instances: list[dict[str, Any]], targets: list[str],
                 accepted: set[tuple[str, str]], accounts: dict[str, str], repair: bool = False) -> list[_Difference]:
    """Everything the StackSet holds that is not what this onboarding wants, each named for a person; under a
    repair also the member accounts whose instance is to be replaced."""
    if stack_set.get("PermissionModel") != "SERVICE_MANAGED":
        raise OnboardingError(
            f"Step 8: StackSet {stack_set_name(config)} uses self-managed permissions, so it cannot follow the "
            "organization. Fix: delete its stack instances and the StackSet, then run the onboarding again")
    found: list[_Difference] = []
    if significant_lines(str(stack_set.get("TemplateBody", ""))) != significant_lines(expel_role_stack.role_template()):
        found.append(_Difference(TEMPLATE, "its template is not this release's roles/expel-role.yaml"))
    held, wanted = stacks.parameters(stack_set), stack_set_parameters(config)
    for key in sorted(set(held) | set(wanted)):
        if held.get(key) != wanted.get(key):
            found.append(_Difference(PARAMETERS, f"parameter {key} is {held.get(key)!r}, wanted {wanted.get(key)!r}"))
    auto = stack_set.get("AutoDeployment") or {}
    if auto.get("Enabled") is not True or auto.get("RetainStacksOnAccountRemoval") is not False:
        found.append(_Difference(AUTO_DEPLOYMENT, f"AutoDeployment is {auto or 'not set'}, wanted Enabled true and "
                                                  "RetainStacksOnAccountRemoval false"))
    replace = _to_replace(instances, config.region, accounts) if repair else {}
    stale = sorted({str(i.get("Account")) for i in instances if i.get("Status") != "CURRENT"
                    and (i.get("Account"), i.get("Region")) not in accepted and str(i.get("Account")) not in replace})
    if stale:
        found.append(_Difference(INSTANCES, f"the stack instances of accounts {_listed(stale)} are not CURRENT"))
    if replace:
        found.append(_Difference(REPLACE, f"the Expel roles of accounts {_listed(sorted(replace))} were changed by "
                                          "hand (drift detection: DRIFTED), or their instance is INOPERABLE"))
    missing = _missing_targets(stack_set, instances, targets)
    if missing:
        found.append(_Difference(TARGETS, f"target OUs {', '.join(missing)} have no stack instances"))
    if absent := sorted(_absent_accounts(config, stack_set, instances, targets, accounts)):
        found.append(_Difference(ACCOUNTS, f"accounts {_listed(absent)} under the targets have no stack instance"))
    if extra := sorted(_covered(stack_set, instances) - set(targets)):
        # Removing a target deletes roles Expel may be using: left to a person (or to teardown).
        logger.warning("StackSet still targets OUs no longer configured; leaving them", extra={"targets": extra})
    return found


def _covered(stack_set: dict[str, Any], instances: list[dict[str, Any]]) -> set[str]:
    covered = {str(o) for o in stack_set.get("OrganizationalUnitIds", [])}
    covered.update(str(i["OrganizationalUnitId"]) for i in instances if i.get("OrganizationalUnitId"))
    return covered


def _missing_targets(stack_set: dict[str, Any], instances: list[dict[str, Any]], targets: list[str]) -> list[str]:
    covered = _covered(stack_set, instances)
    return [t for t in targets if t not in covered]


def _with_failures(known: tuple[dict[str, str], ...], instances: list[dict[str, Any]],
                   operation_id: str) -> tuple[dict[str, str], ...]:
    """``known`` plus the accounts whose instance this operation left FAILED, each once."""
    failed = list(known)
    seen = {(f["Account"], f["Region"]) for f in failed}
    for instance in instances:
        detailed = (instance.get("StackInstanceStatus") or {}).get("DetailedStatus")
        key = (str(instance.get("Account", "")), str(instance.get("Region", "")))
        # INOPERABLE: a delete that failed there (a repair's replacement).
        if detailed in ("FAILED", "INOPERABLE") and instance.get("LastOperationId") in (operation_id, None) \
                and key not in seen:
            seen.add(key)
            failed.append({"Account": key[0], "Region": key[1],
                           "Reason": str(instance.get("StatusReason", "")) or "no reason recorded"})
    return tuple(failed[:MAX_FAILED_ACCOUNTS])


def _listed(accounts: list[str], shown: int = 5) -> str:
    more = f" and {len(accounts) - shown} more" if len(accounts) > shown else ""
    return ", ".join(accounts[:shown]) + more


def _not_converging(config: Config, operation_id: str, differences: list[_Difference]) -> OnboardingError:
    name = stack_set_name(config)
    detail = "; ".join(d.detail for d in differences)
    started = f"operation {operation_id}" if operation_id else "the operations this run started"
    return OnboardingError(
        f"Step 8: StackSet {name} does not converge: {started} SUCCEEDED, yet {detail}. Starting the same "
        "operation again would not change that. Fix: compare the StackSet in CloudFormation > StackSets > "
        f"{name} with the difference named here (someone or something else may be changing it, or CloudFormation "
        "stores the value differently), correct it, then run the onboarding again")


def _replacement_blocked(config: Config, call_as: CallAsType, instances: list[dict[str, Any]],
                         blocked: dict[str, str]) -> OnboardingError:
    """A repair deleted the instances of the drifted accounts to create them again; these it could not delete."""
    name, role = stack_set_name(config), config.role_name
    held = {str(i["Account"]): i for i in instances if i.get("Region") == config.region}
    accounts = sorted(blocked)
    reasons = [f"account {a}: {held[a].get('Status')}, {held[a].get('StatusReason') or 'no reason recorded'}"
               for a in accounts[:3] if a in held]
    more = f" (and {len(accounts) - 3} more: CloudFormation > StackSets > {name} > Stack instances)" \
        if len(accounts) > 3 else ""
    if any(_POLICY_ATTACHED_BY_HAND in r for r in reasons):
        fix = (f"a managed policy attached by hand to role {role} in that account keeps IAM from deleting the role "
               "(CloudFormation detaches only what the template attaches, and the onboarding never detaches yours): "
               f"in that account, IAM > Roles > {role} > Permissions, note and detach it, run `cloudtrail-onboarding "
               f"doctor --stack {config.stack_name} --repair` again (it deletes the instance and creates it anew), "
               "then attach the policy again if you still need it")
    else:
        fix = (f"fix the cause named here in that account, then run `cloudtrail-onboarding doctor --stack "
               f"{config.stack_name} --repair` again (it deletes the instance and creates it anew)")
    by_hand = (f"; by hand: aws cloudformation delete-stack-instances --stack-set-name {name} --deployment-targets "
               f"OrganizationalUnitIds={blocked[accounts[0]]},Accounts={accounts[0]},AccountFilterType=INTERSECTION "
               f"--regions {config.region} --no-retain-stacks{_call_as_flag(call_as)}")
    return OnboardingError(
        f"Step 8: the Expel role of member accounts {_listed(accounts)} ({config.region}) could not be replaced: "
        f"CloudFormation could not delete their stack instance of StackSet {name} ({'; '.join(reasons)}{more}); "
        "every other account's role is in place. Until fixed, the role there is as the failed delete left it. "
        f"Fix: {fix}{by_hand}")


def _require_stack_set_ours(config: Config, stack_set: dict[str, Any]) -> None:
    require_ours(stacks.tags(stack_set), config.stack_name, parameter="OrganizationMode",
                 what=f"a StackSet named {stack_set_name(config)}",
                 fix="delete that StackSet if it is unused, or deploy the onboarding under another stack name",
                 other_stack_fix="delete stack {stack} first (its teardown removes the StackSet), or deploy the "
                                 "onboarding under another stack name")


def _operation_failed(config: Config, operation_id: str, state: str, operation: dict[str, Any],
                      instances: list[dict[str, Any]]) -> OnboardingError:
    name = stack_set_name(config)
    failures = _with_failures((), instances, operation_id)
    shown = "; ".join(f"account {f['Account']} ({f['Region']}): {f['Reason']}" for f in failures[:3])
    detail = shown or str(operation.get("StatusReason", "")) or "no reason recorded"
    if len(failures) > 3:
        detail += f" (and {len(failures) - 3} more: CloudFormation > StackSets > {name} > Stack instances)"
    if "already exists" in detail:
        fix = (f"a role named {config.role_name} exists in those accounts outside the StackSet: delete it there or "
               "choose another RoleName, then redrive the execution: the failed accounts are retried")
    elif state == "STOPPED":
        fix = "the operation was stopped by someone; redrive the execution to finish it"
    else:
        fix = (f"fix the cause in those accounts (CloudFormation > StackSets > {name} > Stack instances lists "
               "every account), then redrive the execution: the failed accounts are retried")
    return OnboardingError(f"Step 8: StackSet {name} operation {operation_id} {state}: {detail}. Fix: {fix}")


def _remove_stack_set(config: Config) -> RoleStatus:
    """Teardown of the StackSet, if ours: its instances first, then the StackSet."""
    call_as = organizations.call_as(config.account_id)
    name, region = stack_set_name(config), config.region
    stack_set = stacksets.describe_stack_set(name, region, call_as)
    if stack_set is None:
        return RoleStatus.DELETED
    if not is_ours(stacks.tags(stack_set), config.stack_name):
        logger.warning("StackSet is not ours; leaving it", extra={"stack_set_name": name})
        return RoleStatus.SKIPPED
    operations = stacksets.recent_operations(name, region, call_as)
    if any(o.get("Status") in stacksets.RUNNING_OPERATION for o in operations):
        return RoleStatus.IN_PROGRESS
    preferences = (config.stack_set_max_concurrent_percentage, config.stack_set_failure_tolerance_percentage)
    try:
        instances = stacksets.stack_instances(name, region, call_as)
        if instances:
            regions = sorted({str(i["Region"]) for i in instances})
            # One operation takes so many OUs; the next look deletes the rest (deleted targets leave the StackSet).
            ous = sorted(_covered(stack_set, instances))[:MAX_OUS_PER_OPERATION]
            operation_id = stacksets.delete_stack_instances(name, ous, regions, region, call_as, *preferences)
            logger.info("Deleting the Expel role's stack instances", extra={"operation_id": operation_id})
            return RoleStatus.IN_PROGRESS
        if not stacksets.delete_stack_set(name, region, call_as):
            return RoleStatus.IN_PROGRESS
    except StillInProgress:
        return RoleStatus.IN_PROGRESS
    logger.info("Deleted the Expel role StackSet", extra={"stack_set_name": name})
    return RoleStatus.DELETED


# --- Organizations mode: the drift check of the member accounts' roles -------------------------------------

def check(config: Config, previous: StepCheck | None = None, now: datetime | None = None) -> StepCheck:
    """Drift check of guide step 8 in Organizations mode, writing nothing: the StackSet as the onboarding leaves
    it (template, parameters, automatic deployment), every account under the targeted OUs holding a CURRENT
    instance, and CloudFormation's drift detection of each member account's role (someone changed its trust or
    its policy in that account). Drift detection is a StackSet operation that takes a while: the first look
    starts it and returns a pending check; ``previous`` (that pending check) makes the next look read it."""
    now = now or datetime.now(UTC)
    run = Converge(8, Mode.CHECK, findings=list(previous.findings) if previous else [])
    detection: list[str | None] = []
    result = run_check(run, lambda r: detection.append(
        _check_member_roles(r, config, previous, now) if previous else _check_stack_set(r, config, now)))
    if not detection or detection[0] is None:
        return result
    operation_id, started = detection[0], previous.detection_started if previous else now.isoformat()
    if now - datetime.fromisoformat(started) > DRIFT_DETECTION_LIMIT:
        status = DriftStatus.DRIFTED if result.findings else DriftStatus.NOT_CHECKED
        return dataclasses.replace(result, status=status, note=(
            f"CloudFormation's drift detection of the member accounts' roles did not finish within "
            f"{int(DRIFT_DETECTION_LIMIT.total_seconds() // 60)} minutes (operation {operation_id or 'not started: '
            'another StackSet operation kept running'}; CloudFormation > StackSets > {stack_set_name(config)} > "
            "Operations): check again later"))
    return dataclasses.replace(result, pending=True, detection=operation_id, detection_started=started)


def _check_stack_set(run: Converge, config: Config, now: datetime) -> str | None:
    """The StackSet and its instances; returns the drift detection's operation id ("" while another operation
    holds the StackSet, None when there is nothing to detect)."""
    organization = organizations.describe_organization()
    call_as = organizations.call_as(config.account_id, organization)
    name, region = stack_set_name(config), config.region
    stack_set = stacksets.describe_stack_set(name, region, call_as)
    if stack_set is None:
        run.observe(run.finding(f"StackSet {name}", "StackSet", None, "the service-managed StackSet of "
                                "roles/expel-role.yaml, in every member account", _REPAIR))
        return None
    _require_stack_set_ours(config, stack_set)
    instances = stacksets.stack_instances(name, region, call_as)
    targets = sorted(config.organization_target_ou_ids) or organizations.root_ids()
    wanted = _wanted_accounts(config, organization, call_as, targets)
    for difference in _differences(config, stack_set, instances, targets, set(), wanted):
        if difference.kind not in (INSTANCES, TARGETS, ACCOUNTS):  # named account by account below
            run.observe(run.finding(f"StackSet {name}", difference.kind, difference.detail,
                                    "as this onboarding deploys it", _REPAIR))
    _instance_findings(run, config, call_as, [i for i in instances if i.get("Region") == region], wanted)
    if not instances:
        return None
    return _start_detection(config, call_as)


def _instance_findings(run: Converge, config: Config, call_as: CallAsType, instances: list[dict[str, Any]],
                       wanted: dict[str, str]) -> None:
    """An account under the targets without an instance, and an instance that is not CURRENT, each named."""
    name, region = stack_set_name(config), config.region
    held = {str(i.get("Account")): i for i in instances}
    missing = sorted(set(wanted) - set(held))
    for account in missing[:MAX_ACCOUNT_FINDINGS]:
        run.observe(run.finding(
            f"account {account} ({region})", f"stack instance of StackSet {name}", None,
            f"a CURRENT instance (the account is under {wanted[account]}, a target of the StackSet)",
            "`cloudtrail-onboarding doctor --stack <stack> --repair` deploys it again (Expel cannot assume a role in "
            f"that account until then); by hand: aws cloudformation create-stack-instances --stack-set-name {name} "
            f"--deployment-targets OrganizationalUnitIds={wanted[account]},Accounts={account},"
            f"AccountFilterType=INTERSECTION --regions {region}{_call_as_flag(call_as)}"))
    if len(missing) > MAX_ACCOUNT_FINDINGS:
        run.observe(run.finding(f"{len(missing) - MAX_ACCOUNT_FINDINGS} more accounts ({region})",
                                f"stack instance of StackSet {name}", None, "a CURRENT instance",
                                "`cloudtrail-onboarding doctor --stack <stack> --repair` deploys them again "
                                "(the accounts above and these)"))
    stale = sorted((a, i) for a, i in held.items() if i.get("Status") != "CURRENT")
    for account, instance in stale[:MAX_ACCOUNT_FINDINGS]:
        detailed = (instance.get("StackInstanceStatus") or {}).get("DetailedStatus", "")
        reason = str(instance.get("StatusReason", ""))
        actual = f"{instance.get('Status')} ({detailed})" + (f": {reason}" if reason else "")
        if instance.get("Status") == "INOPERABLE":
            # A delete failed there (a repair's replacement): only another delete, then a create, clears it.
            cause = ("a managed policy attached to the role by hand blocks IAM's delete: detach it there, then "
                     if _POLICY_ATTACHED_BY_HAND in reason else "fix the cause named here in that account, then ")
            fix = (f"{cause}`cloudtrail-onboarding doctor --stack <stack> --repair` deletes that instance again and "
                   "creates it anew")
        elif "already exists" in reason:
            fix = (f"a role named {config.role_name} exists in that account outside the StackSet: delete it there "
                   f"(or choose another RoleName), then {_REPAIR_RETRIES}")
        else:
            fix = f"fix the cause named here in that account, then {_REPAIR_RETRIES}"
        run.observe(run.finding(f"account {account} ({instance.get('Region')})", f"stack instance of StackSet {name}",
                                actual, "CURRENT", fix))
    if len(stale) > MAX_ACCOUNT_FINDINGS:
        run.observe(run.finding(f"{len(stale) - MAX_ACCOUNT_FINDINGS} more accounts", f"stack instances of "
                                f"StackSet {name}", "not CURRENT", "CURRENT", _REPAIR_RETRIES))


def _start_detection(config: Config, call_as: CallAsType) -> str:
    try:
        operation_id = stacksets.detect_stack_set_drift(stack_set_name(config), config.region, call_as,
                                                        config.stack_set_max_concurrent_percentage)
    except StillInProgress:
        return ""  # another operation (an automatic deployment, an onboarding): start once it has ended
    logger.info("Started the drift detection of the Expel role StackSet", extra={"operation_id": operation_id})
    return operation_id


def _check_member_roles(run: Converge, config: Config, previous: StepCheck, now: datetime) -> str | None:
    """The drift detection ``previous`` started (or waits to start): still running, or each drifted property of
    each member account's role as a finding. Returns the operation id while it runs, None once read."""
    call_as = organizations.call_as(config.account_id)
    name, region = stack_set_name(config), config.region
    if not previous.detection:
        return _start_detection(config, call_as)
    operation = stacksets.describe_stack_set_operation(name, previous.detection, region, call_as)
    if operation.get("Status") in stacksets.RUNNING_OPERATION:
        return previous.detection
    details = operation.get("StackSetDriftDetectionDetails") or {}
    if details.get("FailedStackInstancesCount"):
        logger.warning("Drift detection could not check some stack instances (they are named as not CURRENT)",
                       extra={"operation_id": previous.detection, "details": details})
    if operation.get("Status") != "SUCCEEDED":
        run.observe(run.finding(f"StackSet {name}", "drift detection of the member accounts' roles",
                                f"{operation.get('Status')}: {operation.get('StatusReason', '') or 'no reason'}",
                                "SUCCEEDED", "check again (`cloudtrail-onboarding doctor`); CloudFormation > "
                                f"StackSets > {name} > Operations > {previous.detection} says why it stopped"))
        return None
    # The operation's own count. Each instance's DriftStatus is the *latest* detection's (a person may have run
    # another since, or fixed a role and run one): what ours found is read instance by instance with its operation
    # id, the instances now DRIFTED first, until every instance it counted is found (none read when it found none).
    counted = int(details.get("DriftedStackInstancesCount") or 0)
    if not counted:
        return None
    instances = sorted(stacksets.stack_instances(name, region, call_as),
                       key=lambda i: (i.get("DriftStatus") != "DRIFTED", str(i.get("Account"))))
    found = 0
    for instance in instances:
        if found >= min(counted, MAX_ACCOUNT_FINDINGS):
            break
        account, where = str(instance["Account"]), str(instance["Region"])
        drifts = stacksets.stack_instance_resource_drifts(name, account, where, previous.detection, region, call_as)
        found += bool(drifts)
        for drift in drifts:
            for finding in _drift_findings(run, config, call_as, account, where, instance, drift):
                run.observe(finding)
    if counted > found:
        run.observe(run.finding(f"{counted - found} more accounts", "Expel role", "drifted",
                                "as the StackSet's template says", f"{_REPLACES} (CloudFormation > StackSets > {name} "
                                f"> Operations > {previous.detection} > drift results lists them)"))
    return None


def _drift_findings(run: Converge, config: Config, call_as: CallAsType, account: str, where: str,
                    instance: dict[str, Any], drift: dict[str, Any]) -> list[Finding]:
    """One finding per property CloudFormation found changed in a member account's resource (the Expel role)."""
    kind = str(drift.get("ResourceType", ""))
    thing = "role" if kind == "AWS::IAM::Role" else kind
    named = drift.get("PhysicalResourceId") or drift.get("LogicalResourceId")
    resource = f"{thing} {named} in account {account} ({where})"
    fix = _member_fix(config, call_as, account, where, str(instance.get("OrganizationalUnitId", "")))
    if drift.get("StackResourceDriftStatus") == "DELETED":
        return [run.finding(resource, thing, None, f"the {kind} of StackSet {stack_set_name(config)}", fix)]
    return [run.finding(resource, f"{str(d.get('PropertyPath', '')).lstrip('/')} ({d.get('DifferenceType')})",
                        str(d.get("ActualValue", "")) or ABSENT, str(d.get("ExpectedValue", "")) or ABSENT, fix)
            for d in drift.get("PropertyDifferences", [])]


def _member_fix(config: Config, call_as: CallAsType, account: str, where: str, ou: str) -> str:
    name = stack_set_name(config)
    return (f"{_REPLACES}; by hand: in account {account}, IAM > Roles > {config.role_name}, put the value back as "
            f"the StackSet's template says, or replace the instance yourself: aws cloudformation "
            f"delete-stack-instances --stack-set-name {name} --deployment-targets OrganizationalUnitIds={ou},"
            f"Accounts={account},AccountFilterType=INTERSECTION --regions {where} --no-retain-stacks"
            f"{_call_as_flag(call_as)}, then create-stack-instances with the same arguments (without "
            "--no-retain-stacks)")


def _call_as_flag(call_as: CallAsType) -> str:
    return "" if call_as == organizations.SELF else " --call-as DELEGATED_ADMIN"


_REPAIR = "run the onboarding again: `cloudtrail-onboarding doctor --stack <stack> --repair` updates the StackSet"
# What a repair does about a member account's role changed by hand (StackSets have no drift-aware mode).
_REPLACES = ("`cloudtrail-onboarding doctor --stack <stack> --repair` replaces that account's stack instance: "
             "CloudFormation deletes the role there and creates it again from the template (Expel cannot assume it "
             "there meanwhile; a managed policy attached to the role by hand blocks the delete, and the repair then "
             "stops, naming it)")
_REPAIR_RETRIES = ("`cloudtrail-onboarding doctor --stack <stack> --repair` (the onboarding updates every instance, "
                   "retrying this one)")
