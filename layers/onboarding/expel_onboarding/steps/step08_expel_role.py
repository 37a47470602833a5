"""Guide step 8 (and 9): the role Expel assumes, deployed by CloudFormation from ``roles/expel-role.yaml``.

Single account: one stack, ``config.role_stack_name``, with the data path (bucket, queue, key) and
the read-only inventory. Organizations mode: that same stack in this (management) account (guide
step 9), plus a service-managed StackSet of the template without the data path that follows the
organization's accounts (guide step 8).

``deploy`` starts or reconciles and returns at once; the state machine waits and calls ``status``
until everything settles. StackSets run one operation at a time, so when one succeeds ``status``
starts the next one still due (new target OUs after an update). Nothing here sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from aws_lambda_powertools import Logger

from expel_onboarding.aws import cloudformation, organizations
from expel_onboarding.errors import OnboardingError, ResourceConflict, StillInProgress
from expel_onboarding.models import Config, QueueOutput, RoleOutput, TrailOutput
from expel_onboarding.naming import OWNER_TAG_KEY, owner_tags

logger = Logger(child=True)

# Expel's service identity (their published Terraform module); also the template's default.
EXPEL_PRINCIPAL_ARN = "arn:aws:iam::012205512454:user/ExpelCloudService"
IN_PROGRESS = "IN_PROGRESS"
COMPLETE = "COMPLETE"

# Stable states in which the stack holds a working role (an update that rolled back left the
# previous one in place), so deploy may compare and update it.
_SETTLED = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE",
            "IMPORT_ROLLBACK_COMPLETE"}
# A create that failed: CloudFormation allows neither update nor a new stack of the same name
# until this one is deleted, and there is no role in it to keep.
_DELETE_THEN_CREATE = {"ROLLBACK_COMPLETE", "CREATE_FAILED"}
# Operations status() may wait for; they end in a _SETTLED state.
_FORWARD = {"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            "IMPORT_IN_PROGRESS"}
# Where status() reports success.
_DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}


def role_template() -> str:
    """The role template shipped in the layer (``templates/`` links to ``roles/`` in the repository)."""
    return resources.files("expel_onboarding").joinpath("templates/expel-role.yaml").read_text("utf-8")


def stack_parameters(config: Config, trail: TrailOutput, queue: QueueOutput) -> dict[str, str]:
    """Every parameter, defaults included, so comparing with the stack's own list is exact."""
    return {
        "ExpelWorkbenchGuid": config.workbench_guid,
        "RoleName": config.role_name,
        "ExpelPrincipalArn": EXPEL_PRINCIPAL_ARN,
        "BucketArn": trail.bucket_arn,
        "QueueArn": queue.queue_arn,
        "KmsKeyArn": trail.kms_key_arn,
        "PermissionsBoundaryArn": config.role_permissions_boundary_arn,
    }


def deploy(config: Config, trail: TrailOutput, queue: QueueOutput, *,
           service_role_arn: str = "") -> RoleOutput:
    """Create the role stack, update it if its template or parameters differ, or leave it.

    ``service_role_arn``: the role CloudFormation acts as for this stack, so the onboarding
    function itself needs no IAM write permissions ("" = CloudFormation uses the caller's).
    """
    if config.organization_mode:
        return _deploy_organization(config, trail, queue, service_role_arn)
    return _deploy_stack(config, trail, queue, service_role_arn)


def _deploy_stack(config: Config, trail: TrailOutput, queue: QueueOutput, service_role_arn: str) -> RoleOutput:
    """The role stack with the data path: the single account's, or the management account's (step 9)."""
    name = config.role_stack_name
    body = role_template()
    wanted = stack_parameters(config, trail, queue)
    stack = cloudformation.describe_stack(name, config.region)

    if stack is None:
        # A role of that name outside the stack makes the create roll back; status() then names it.
        stack_id = cloudformation.create_stack(name, body, wanted, owner_tags(config.stack_name),
                                               config.region, service_role_arn)
        logger.info("Creating the Expel role stack", extra={"stack_id": stack_id})
        return RoleOutput(stack_id=stack_id, status=IN_PROGRESS)

    _require_ours(config, stack)
    stack_id, state = str(stack["StackId"]), str(stack["StackStatus"])
    if state in _DELETE_THEN_CREATE:
        cloudformation.delete_stack(name, config.region)
        raise StillInProgress(f"Step 8: deleting the failed stack {name} ({state}) before creating it again")
    if state.endswith("_IN_PROGRESS") and state != "REVIEW_IN_PROGRESS":
        if state in _FORWARD and _matches(stack, body, wanted, config.region):
            return RoleOutput(stack_id=stack_id, status=IN_PROGRESS)  # already doing what we want
        # A rollback, a delete, or someone else's change: reconcile once it has settled.
        raise StillInProgress(f"Step 8: stack {name} is {state}; waiting for it to settle")
    if state not in _SETTLED:
        raise _stack_failed(config, stack)

    if _matches(stack, body, wanted, config.region):
        return _complete(config, stack)
    if not cloudformation.update_stack(name, body, wanted, owner_tags(config.stack_name), config.region,
                                       service_role_arn):
        return _complete(config, stack)
    logger.info("Updating the Expel role stack", extra={"stack_id": stack_id})
    return RoleOutput(stack_id=stack_id, status=IN_PROGRESS)


def status(config: Config, role: RoleOutput) -> RoleOutput:
    """One look at the stack ``deploy`` started: COMPLETE with the role ARN, IN_PROGRESS, or a failure."""
    if role.status == COMPLETE:
        return role
    if config.organization_mode:
        return _status_organization(config, role)
    return _stack_status(config, role)


def _stack_status(config: Config, role: RoleOutput) -> RoleOutput:
    stack = cloudformation.describe_stack(role.stack_id or config.role_stack_name, config.region)
    if stack is None:
        raise OnboardingError(
            f"Step 8: the Expel role stack {config.role_stack_name} disappeared while it was being deployed. "
            "Fix: run the onboarding again")
    state = str(stack["StackStatus"])
    if state in _DONE:
        return _complete(config, stack)
    if state in _FORWARD:
        return RoleOutput(stack_id=str(stack["StackId"]), status=IN_PROGRESS)
    # Rollbacks (even while still running), deletes and failures: the cause is already in the events.
    raise _stack_failed(config, stack)


def remove(config: Config) -> str:
    """Teardown: delete the role stack if it is ours. Returns DELETED (gone), IN_PROGRESS or SKIPPED.

    Call again until DELETED; a stack being deleted is not asked twice.
    """
    name = config.role_stack_name
    stack = cloudformation.describe_stack(name, config.region)
    if stack is None:
        return "DELETED"
    if cloudformation.tags(stack).get(OWNER_TAG_KEY) != config.stack_name:
        logger.warning("Role stack is not ours; leaving it", extra={"stack_name": name})
        return "SKIPPED"
    if stack["StackStatus"] != "DELETE_IN_PROGRESS":
        cloudformation.delete_stack(name, config.region)
        logger.info("Deleting the Expel role stack", extra={"stack_name": name})
    return IN_PROGRESS


# --- Organizations mode: guide step 8 (the StackSet) and guide step 9 (the management-account stack) ------

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


def _deploy_organization(config: Config, trail: TrailOutput, queue: QueueOutput,
                         service_role_arn: str) -> RoleOutput:
    """Guide step 9's stack here (service-managed StackSets skip the management account), then the
    StackSet for every member account. Both are started and left to the state machine's polling."""
    management = _deploy_stack(config, trail, queue, service_role_arn)
    return _combined(management, _reconcile_stack_set(config))


def _status_organization(config: Config, role: RoleOutput) -> RoleOutput:
    """One look at the management stack and the StackSet operation. When the operation succeeded the
    StackSet is reconciled once more: an update (existing instances) may be followed by new targets."""
    management = _stack_status(config, role)
    if role.operation_id:
        call_as = organizations.call_as(config.account_id)
        name = stack_set_name(config)
        operation = cloudformation.describe_stack_set_operation(name, role.operation_id, config.region, call_as)
        state = str(operation.get("Status", ""))
        if state in cloudformation.RUNNING_OPERATION:
            return _combined(management, _Rollout(role.stack_set_id, role.operation_id, running=True))
        if state != "SUCCEEDED":
            raise _operation_failed(config, role.operation_id, state, call_as, operation)
    return _combined(management, _reconcile_stack_set(config))


def _combined(management: RoleOutput, rollout: _Rollout) -> RoleOutput:
    done = management.status == COMPLETE and not rollout.running
    # The ARN Workbench gets is the management account's role: the one with the data path.
    return RoleOutput(stack_id=management.stack_id, status=COMPLETE if done else IN_PROGRESS,
                      role_arn=management.role_arn if done else "", stack_set_id=rollout.stack_set_id,
                      operation_id=rollout.operation_id)


def _reconcile_stack_set(config: Config) -> _Rollout:
    """Start at most one StackSet operation, and only for a difference: a missing StackSet, another
    template/parameters/auto-deployment, instances left OUTDATED, or target OUs without instances.
    StackSets run one operation at a time, so a running one is waited for, never queued behind."""
    organization = organizations.describe_organization()
    call_as = organizations.call_as(config.account_id, organization)
    name, region = stack_set_name(config), config.region
    body, wanted = role_template(), stack_set_parameters(config)
    targets = sorted(config.organization_target_ou_ids) or organizations.root_ids()
    preferences = (config.stack_set_max_concurrent_percentage, config.stack_set_failure_tolerance_percentage)
    # A delegated administrator is a member account too: its role is the step-9 stack's, not an instance.
    exclude = [config.account_id] if call_as == organizations.DELEGATED_ADMIN else []

    stack_set = cloudformation.describe_stack_set(name, region, call_as)
    if stack_set is None:
        stack_set_id = cloudformation.create_stack_set(
            name, body, wanted, owner_tags(config.stack_name), region, call_as,
            f"Expel CloudTrail integration: the role Expel assumes in every member account (stack "
            f"{config.stack_name})")
        operation_id = cloudformation.create_stack_instances(name, targets, [region], region, call_as,
                                                             *preferences, exclude_accounts=exclude)
        logger.info("Created the Expel role StackSet", extra={"stack_set_id": stack_set_id,
                                                               "operation_id": operation_id, "targets": targets})
        return _Rollout(stack_set_id, operation_id, running=True)

    _require_stack_set_ours(config, stack_set)
    stack_set_id = str(stack_set["StackSetId"])
    operations = cloudformation.recent_operations(name, region, call_as)
    running = next((o for o in operations if o.get("Status") in cloudformation.RUNNING_OPERATION), None)
    if running is not None:
        return _Rollout(stack_set_id, str(running["OperationId"]), running=True)

    instances = cloudformation.stack_instances(name, region, call_as)
    outdated = [i for i in instances if i.get("Status") == "OUTDATED"]
    if not _stack_set_matches(config, stack_set, body, wanted) or outdated:
        operation_id = cloudformation.update_stack_set(name, body, wanted, region, call_as, *preferences)
        logger.info("Updating the Expel role StackSet",
                    extra={"operation_id": operation_id, "outdated_instances": len(outdated)})
        return _Rollout(stack_set_id, operation_id, running=True)

    covered = set(stack_set.get("OrganizationalUnitIds", []))
    covered.update(str(i["OrganizationalUnitId"]) for i in instances if i.get("OrganizationalUnitId"))
    missing = [t for t in targets if t not in covered]
    if missing:
        operation_id = cloudformation.create_stack_instances(name, missing, [region], region, call_as,
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
    return (cloudformation.parameters(stack_set) == wanted
            and _significant(str(stack_set.get("TemplateBody", ""))) == _significant(body)
            and auto.get("Enabled") is True and auto.get("RetainStacksOnAccountRemoval") is False)


def _require_stack_set_ours(config: Config, stack_set: dict[str, Any]) -> None:
    owner = cloudformation.tags(stack_set).get(OWNER_TAG_KEY)
    if owner != config.stack_name:
        whose = f"onboarding stack {owner}" if owner else "no onboarding (it has no ownership tag)"
        raise ResourceConflict(
            f"Parameter OrganizationMode: a StackSet named {stack_set_name(config)} already exists and belongs to "
            f"{whose}. Fix: delete that StackSet if it is unused, or deploy the onboarding under another stack "
            "name")


def _operation_failed(config: Config, operation_id: str, state: str, call_as: str,
                      operation: dict[str, Any]) -> OnboardingError:
    name = stack_set_name(config)
    failures = cloudformation.failed_instances(name, operation_id, config.region, call_as)
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


def remove_organization(config: Config) -> str:
    """Teardown of the StackSet, if ours: its instances first, then the StackSet.

    Returns IN_PROGRESS (call again after a wait), DELETED (gone) or SKIPPED (not ours). The
    management-account stack is ``remove``'s.
    """
    call_as = organizations.call_as(config.account_id)
    name, region = stack_set_name(config), config.region
    stack_set = cloudformation.describe_stack_set(name, region, call_as)
    if stack_set is None:
        return "DELETED"
    if cloudformation.tags(stack_set).get(OWNER_TAG_KEY) != config.stack_name:
        logger.warning("StackSet is not ours; leaving it", extra={"stack_set_name": name})
        return "SKIPPED"
    operations = cloudformation.recent_operations(name, region, call_as)
    if any(o.get("Status") in cloudformation.RUNNING_OPERATION for o in operations):
        return IN_PROGRESS
    preferences = (config.stack_set_max_concurrent_percentage, config.stack_set_failure_tolerance_percentage)
    try:
        instances = cloudformation.stack_instances(name, region, call_as)
        if instances:
            targets = set(stack_set.get("OrganizationalUnitIds", []))
            targets.update(str(i["OrganizationalUnitId"]) for i in instances if i.get("OrganizationalUnitId"))
            regions = sorted({str(i["Region"]) for i in instances})
            operation_id = cloudformation.delete_stack_instances(name, sorted(targets), regions, region, call_as,
                                                                 *preferences)
            logger.info("Deleting the Expel role's stack instances", extra={"operation_id": operation_id})
            return IN_PROGRESS
        if not cloudformation.delete_stack_set(name, region, call_as):
            return IN_PROGRESS
    except StillInProgress:
        return IN_PROGRESS
    logger.info("Deleted the Expel role StackSet", extra={"stack_set_name": name})
    return "DELETED"


def _matches(stack: dict[str, Any], body: str, wanted: dict[str, str], region: str) -> bool:
    """Same parameters and same template: nothing to change (reads only)."""
    if cloudformation.parameters(stack) != wanted:
        return False
    return _significant(cloudformation.template_body(str(stack["StackId"]), region)) == _significant(body)


def _significant(body: str) -> list[str]:
    """The template without comment lines and blank lines. CloudFormation answers "No updates are to
    be performed" to a comment-only change and keeps the old text, so comparing raw text would send
    the same no-op update on every later run."""
    lines = (line.rstrip() for line in body.splitlines())
    return [line for line in lines if line and not line.lstrip().startswith("#")]


def _complete(config: Config, stack: dict[str, Any]) -> RoleOutput:
    role_arn = cloudformation.outputs(stack).get("RoleArn", "")
    if not role_arn:
        raise OnboardingError(
            f"Step 8: stack {config.role_stack_name} has no RoleArn output; it was not made from "
            "roles/expel-role.yaml. Fix: delete the stack or choose another RoleStackName, then run again")
    return RoleOutput(stack_id=str(stack["StackId"]), status=COMPLETE, role_arn=role_arn)


def _require_ours(config: Config, stack: dict[str, Any]) -> None:
    owner = cloudformation.tags(stack).get(OWNER_TAG_KEY)
    if owner != config.stack_name:
        whose = f"onboarding stack {owner}" if owner else "no onboarding (it has no ownership tag)"
        raise ResourceConflict(
            f"Parameter RoleStackName: a CloudFormation stack named {config.role_stack_name} already exists "
            f"and belongs to {whose}. Fix: choose another RoleStackName, or delete that stack if it is unused")


def _stack_failed(config: Config, stack: dict[str, Any]) -> OnboardingError:
    name, state = config.role_stack_name, str(stack["StackStatus"])
    resource, reason = cloudformation.first_failure(str(stack["StackId"]), config.region)
    reason = reason or str(stack.get("StackStatusReason", "")) or "no reason recorded"
    where = f"{resource}: " if resource else ""
    return OnboardingError(
        f"Step 8: the Expel role stack {name} is {state}: {where}{reason}. Fix: {_fix(state, reason, config)}")


def _fix(state: str, reason: str, config: Config) -> str:
    if "already exists" in reason:
        return (f"a role named {config.role_name} exists outside this stack: choose another RoleName or delete "
                "that role, then run the onboarding again")
    if "not authorized" in reason or "AccessDenied" in reason:
        return ("give the role CloudFormation uses for this stack (the onboarding's stack service role) the "
                f"IAM permissions on role/{config.role_name} named above, then run the onboarding again")
    if state == "UPDATE_ROLLBACK_FAILED":
        return ("in the CloudFormation console choose Stack actions > Continue update rollback, then run the "
                "onboarding again")
    if state in ("DELETE_FAILED", "ROLLBACK_FAILED"):
        return "delete the stack in the CloudFormation console, then run the onboarding again"
    if state == "REVIEW_IN_PROGRESS":
        return "a change set was created but never executed: delete the stack, then run the onboarding again"
    return ("fix the cause above, then run the onboarding again (a stack whose creation failed is deleted "
            "and created again automatically)")
