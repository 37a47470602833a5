"""Guide step 8: the role Expel assumes, deployed by CloudFormation from ``roles/expel-role.yaml``.

Single account: one stack with the data path (``expel_role_stack``). AWS Organizations: a
service-managed StackSet of the template without the data path, which follows the organization's
member accounts; the management account gets guide step 9's stack (``step09_management_stack``),
started alongside because the StackSet's rollout takes minutes and the stack seconds.

``deploy`` starts or reconciles and returns at once; the state machine waits and calls ``status``
until everything settles. StackSets run one operation at a time, so when one succeeds ``status``
starts the next one still due (new target OUs after an update). Nothing here sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from expel_onboarding.aws import organizations, stacks, stacksets
from expel_onboarding.errors import OnboardingError, StillInProgress
from expel_onboarding.models import Config, QueueOutput, RoleOutput, RoleStatus, TrailOutput
from expel_onboarding.naming import owner_tags
from expel_onboarding.ownership import is_ours, require_ours
from expel_onboarding.steps import expel_role_stack, step09_management_stack
from expel_onboarding.steps.expel_role_stack import EXPEL_PRINCIPAL_ARN, significant_lines

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.literals import CallAsType

logger = Logger(child=True)


def deploy(config: Config, trail: TrailOutput, queue: QueueOutput, *,
           service_role_arn: str = "") -> RoleOutput:
    """Single account: the role stack. Organizations: step 9's stack, and the StackSet reconciled.

    ``service_role_arn``: the role CloudFormation acts as for the stack, so the onboarding
    function itself needs no IAM write permissions ("" = CloudFormation uses the caller's).
    """
    if not config.organization_mode:
        return expel_role_stack.deploy(config, trail, queue, service_role_arn)
    management = step09_management_stack.deploy(config, trail, queue, service_role_arn)
    return _combined(management, _reconcile_stack_set(config))


def status(config: Config, role: RoleOutput) -> RoleOutput:
    """One look at what ``deploy`` started: COMPLETE with the role ARN, IN_PROGRESS, or a failure."""
    if role.status == RoleStatus.COMPLETE:
        return role
    if config.organization_mode:
        return _status_organization(config, role)
    return expel_role_stack.status(config, role)


def remove(config: Config) -> RoleStatus:
    """Teardown of step 8: the single account's stack, or the StackSet (its instances, then itself).

    Returns DELETED (gone), IN_PROGRESS (call again after a wait) or SKIPPED (not ours). In
    Organizations mode the management account's stack is step 9's ``remove``.
    """
    if not config.organization_mode:
        return expel_role_stack.remove(config)
    return _remove_stack_set(config)


@dataclass(frozen=True)
class _Rollout:
    stack_set_id: str
    operation_id: str  # the operation to wait for, or the latest one when nothing runs
    running: bool


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
        # The boundary policy exists only in the onboarding's own account.
        "PermissionsBoundaryArn": "",
    }


def _status_organization(config: Config, role: RoleOutput) -> RoleOutput:
    """One look at the management stack and the StackSet operation. When the operation succeeded the
    StackSet is reconciled once more: an update (existing instances) may be followed by new targets."""
    management = step09_management_stack.status(config, role)
    if role.operation_id:
        call_as = organizations.call_as(config.account_id)
        name = stack_set_name(config)
        operation = stacksets.describe_stack_set_operation(name, role.operation_id, config.region, call_as)
        state = str(operation.get("Status", ""))
        if state in stacksets.RUNNING_OPERATION:
            return _combined(management, _Rollout(role.stack_set_id, role.operation_id, running=True))
        if state != "SUCCEEDED":
            raise _operation_failed(config, role.operation_id, state, call_as, operation)
    return _combined(management, _reconcile_stack_set(config))


def _combined(management: RoleOutput, rollout: _Rollout) -> RoleOutput:
    done = management.status == RoleStatus.COMPLETE and not rollout.running
    # The ARN Workbench gets is the management account's role: the one with the data path.
    return RoleOutput(stack_id=management.stack_id, status=RoleStatus.COMPLETE if done else RoleStatus.IN_PROGRESS,
                      role_arn=management.role_arn if done else "", stack_set_id=rollout.stack_set_id,
                      operation_id=rollout.operation_id)


def _reconcile_stack_set(config: Config) -> _Rollout:
    """Start at most one StackSet operation, and only for a difference: a missing StackSet, another
    template/parameters/auto-deployment, instances left OUTDATED, or target OUs without instances.
    StackSets run one operation at a time, so a running one is waited for, never queued behind."""
    organization = organizations.describe_organization()
    call_as = organizations.call_as(config.account_id, organization)
    name, region = stack_set_name(config), config.region
    body, wanted = expel_role_stack.role_template(), stack_set_parameters(config)
    targets = sorted(config.organization_target_ou_ids) or organizations.root_ids()
    preferences = (config.stack_set_max_concurrent_percentage, config.stack_set_failure_tolerance_percentage)
    # A delegated administrator is a member account too: its role is the step-9 stack's, not an instance.
    exclude = [config.account_id] if call_as == organizations.DELEGATED_ADMIN else []

    stack_set = stacksets.describe_stack_set(name, region, call_as)
    if stack_set is None:
        stack_set_id = stacksets.create_stack_set(
            name, body, wanted, owner_tags(config.stack_name), region, call_as,
            f"Expel CloudTrail integration: the role Expel assumes in every member account (stack "
            f"{config.stack_name})")
        operation_id = stacksets.create_stack_instances(name, targets, [region], region, call_as,
                                                             *preferences, exclude_accounts=exclude)
        logger.info("Created the Expel role StackSet", extra={"stack_set_id": stack_set_id,
                                                               "operation_id": operation_id, "targets": targets})
        return _Rollout(stack_set_id, operation_id, running=True)

    _require_stack_set_ours(config, stack_set)
    stack_set_id = str(stack_set["StackSetId"])
    operations = stacksets.recent_operations(name, region, call_as)
    running = next((o for o in operations if o.get("Status") in stacksets.RUNNING_OPERATION), None)
    if running is not None:
        return _Rollout(stack_set_id, str(running["OperationId"]), running=True)

    instances = stacksets.stack_instances(name, region, call_as)
    outdated = [i for i in instances if i.get("Status") == "OUTDATED"]
    if not _stack_set_matches(config, stack_set, body, wanted) or outdated:
        operation_id = stacksets.update_stack_set(name, body, wanted, region, call_as, *preferences)
        logger.info("Updating the Expel role StackSet",
                    extra={"operation_id": operation_id, "outdated_instances": len(outdated)})
        return _Rollout(stack_set_id, operation_id, running=True)

    covered = set(stack_set.get("OrganizationalUnitIds", []))
    covered.update(str(i["OrganizationalUnitId"]) for i in instances if i.get("OrganizationalUnitId"))
    missing = [t for t in targets if t not in covered]
    if missing:
        operation_id = stacksets.create_stack_instances(name, missing, [region], region, call_as,
                                                             *preferences, exclude_accounts=exclude)
        logger.info("Deploying the Expel role to more OUs", extra={"operation_id": operation_id,
                                                                    "targets": missing})
        return _Rollout(stack_set_id, operation_id, running=True)
    if extra := sorted(covered - set(targets)):
        # Removing a target deletes roles Expel may be using: left to a person (or to teardown).
        logger.warning("StackSet still targets OUs no longer configured; leaving them", extra={"targets": extra})
    latest = str(operations[0]["OperationId"]) if operations else ""
    return _Rollout(stack_set_id, latest, running=False)


def _stack_set_matches(config: Config, stack_set: dict[str, Any], body: str, wanted: dict[str, str]) -> bool:
    if stack_set.get("PermissionModel") != "SERVICE_MANAGED":
        raise OnboardingError(
            f"Step 8: StackSet {stack_set_name(config)} uses self-managed permissions, so it cannot follow the "
            "organization. Fix: delete its stack instances and the StackSet, then run the onboarding again")
    auto = stack_set.get("AutoDeployment") or {}
    return (stacks.parameters(stack_set) == wanted
            and significant_lines(str(stack_set.get("TemplateBody", ""))) == significant_lines(body)
            and auto.get("Enabled") is True and auto.get("RetainStacksOnAccountRemoval") is False)


def _require_stack_set_ours(config: Config, stack_set: dict[str, Any]) -> None:
    require_ours(stacks.tags(stack_set), config.stack_name, parameter="OrganizationMode",
                 what=f"a StackSet named {stack_set_name(config)}",
                 fix="delete that StackSet if it is unused, or deploy the onboarding under another stack name",
                 other_stack_fix="delete stack {stack} first (its teardown removes the StackSet), or deploy the "
                                 "onboarding under another stack name")


def _operation_failed(config: Config, operation_id: str, state: str, call_as: CallAsType,
                      operation: dict[str, Any]) -> OnboardingError:
    name = stack_set_name(config)
    failures = stacksets.failed_instances(name, operation_id, config.region, call_as)
    shown = "; ".join(f"account {account} ({region}): {reason}" for account, region, reason in failures[:3])
    detail = shown or str(operation.get("StatusReason", "")) or "no reason recorded"
    if len(failures) > 3:
        detail += " (more in CloudFormation > StackSets > Stack instances)"
    if "already exists" in detail:
        fix = (f"a role named {config.role_name} exists in those accounts outside the StackSet: delete it there or "
               "choose another RoleName, then run the onboarding again (failed accounts are retried)")
    elif state == "STOPPED":
        fix = "the operation was stopped by someone; run the onboarding again to finish it"
    else:
        fix = (f"fix the cause in those accounts (CloudFormation > StackSets > {name} > Stack instances lists "
               "every account), then run the onboarding again; failed accounts are retried")
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
            targets = set(stack_set.get("OrganizationalUnitIds", []))
            targets.update(str(i["OrganizationalUnitId"]) for i in instances if i.get("OrganizationalUnitId"))
            regions = sorted({str(i["Region"]) for i in instances})
            operation_id = stacksets.delete_stack_instances(name, sorted(targets), regions, region, call_as,
                                                                 *preferences)
            logger.info("Deleting the Expel role's stack instances", extra={"operation_id": operation_id})
            return RoleStatus.IN_PROGRESS
        if not stacksets.delete_stack_set(name, region, call_as):
            return RoleStatus.IN_PROGRESS
    except StillInProgress:
        return RoleStatus.IN_PROGRESS
    logger.info("Deleted the Expel role StackSet", extra={"stack_set_name": name})
    return RoleStatus.DELETED


