"""The Expel role as one CloudFormation stack from ``roles/expel-role.yaml``, with the data path (bucket,
queue, key) and the read-only inventory: guide step 8's stack in a single account, and guide step 9's
additional stack in an organization's management account. The same template, parameters and name in both.

``deploy`` starts or reconciles and returns at once; the state machine waits and calls ``status`` until
the stack settles. Nothing here sleeps.

A role changed by hand in IAM (its trust policy, one of its inline policies, its boundary; or deleted) is put back
by CloudFormation itself: a drift-aware change set (``DeploymentMode: REVERT_DRIFT``) of the same template and
parameters, created only when the comparison with the template finds a difference (a clean rerun writes
nothing), executed by ``status`` once CloudFormation has read the role. A plain stack update would not do it:
CloudFormation leaves a resource whose template did not change as it is. Every inline policy of the role,
the data path's included, is the role's own ``Policies`` property, which CloudFormation detects drift of.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from aws_lambda_powertools import Logger

from expel_onboarding import cfn_template
from expel_onboarding.aws import iam, stacks
from expel_onboarding.drift import Converge, Finding, Mode, StepCheck, applied, run_check, statement_findings
from expel_onboarding.errors import OnboardingError, StillInProgress
from expel_onboarding.models import Config, QueueOutput, RoleOutput, RoleStatus, TrailOutput
from expel_onboarding.naming import owner_tags
from expel_onboarding.ownership import is_ours, require_ours
from expel_onboarding.policies._equivalence import statement_differences

logger = Logger(child=True)

# roles/expel-role.yaml's LogObjectPrefix pattern.
_SAFE_PREFIX = re.compile(r"[\w!./'()-]*")
# The role's logical id in roles/expel-role.yaml (preflight finds the role the stack made by it).
ROLE_LOGICAL_ID = "ExpelRole"
# Expel's service identity (their published Terraform module); also the template's default.
EXPEL_PRINCIPAL_ARN = "arn:aws:iam::012205512454:user/ExpelCloudService"

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
    log_key = trail.log_kms_key_arn if trail.log_kms_key_arn != trail.kms_key_arn else ""
    # An existing trail's log folder narrows s3:GetObject; a prefix with characters an IAM resource would
    # read otherwise (wildcards, spaces) falls back to the whole bucket.
    prefix = trail.log_prefix if _SAFE_PREFIX.fullmatch(trail.log_prefix) else ""
    return {
        "ExpelWorkbenchGuid": config.workbench_guid,
        "RoleName": config.role_name,
        "ExpelPrincipalArn": EXPEL_PRINCIPAL_ARN,
        "BucketArn": trail.bucket_arn,
        "QueueArn": queue.queue_arn,
        "KmsKeyArn": trail.kms_key_arn,
        "LogKmsKeyArn": log_key,
        "LogObjectPrefix": prefix,
        "PermissionsBoundaryArn": config.role_permissions_boundary_arn,
    }


def deploy(config: Config, trail: TrailOutput, queue: QueueOutput, service_role_arn: str = "") -> RoleOutput:
    """Create the role stack, update it if its template or parameters differ, or leave it.

    ``service_role_arn``: the role CloudFormation acts as for this stack, so the onboarding
    function itself needs no IAM write permissions ("" = CloudFormation uses the caller's).
    """
    run = Converge(step_number(config))
    return applied(run, converge(run, config, trail, queue, service_role_arn), "the stack started or complete")


def check(config: Config, trail: TrailOutput, queue: QueueOutput) -> StepCheck:
    """Drift check: what ``deploy`` would change, written nowhere."""
    if not (trail.bucket_arn and trail.kms_key_arn and queue.queue_arn):
        return StepCheck.not_checked(step_number(config), "the bucket, the KMS key or the queue is missing (guide "
                                                           "steps 1 and 5): the role's data path cannot be compared")
    return run_check(Converge(step_number(config), Mode.CHECK), lambda run: converge(run, config, trail, queue, ""))


def converge(run: Converge, config: Config, trail: TrailOutput, queue: QueueOutput,
             service_role_arn: str) -> RoleOutput | None:
    """The end state: the stack of ``roles/expel-role.yaml`` with this onboarding's parameters, complete,
    and its role as that template says. None only when checking finds a difference that leaves nothing
    more to compare."""
    name = config.role_stack_name
    body = role_template()
    wanted = stack_parameters(config, trail, queue)
    stack = stacks.describe_stack(name, config.region)
    resource = f"stack {name}"

    if stack is None:
        # A role of that name outside the stack makes the create roll back; status() then names it.
        stack_id = run.change(run.finding(
            resource, "Expel role stack", None, f"a stack of roles/expel-role.yaml holding role {config.role_name}",
            "run the onboarding again: it deploys the stack (Expel cannot assume a role until then)"),
            lambda: _create(config, body, wanted, service_role_arn))
        return None if stack_id is None else RoleOutput(stack_id=stack_id, status=RoleStatus.IN_PROGRESS)

    _require_ours(config, stack)
    stack_id, state = str(stack["StackId"]), str(stack["StackStatus"])
    if state in _DELETE_THEN_CREATE:
        run.change(run.finding(resource, "stack status", state, "CREATE_COMPLETE",
                               "run the onboarding again: it deletes the failed stack and creates it anew"),
                   lambda: stacks.delete_stack(name, config.region))
        if run.checking:
            return None
        raise StillInProgress(f"{_step(config)}: deleting the failed stack {name} ({state}) before creating it again")
    if state.endswith("_IN_PROGRESS") and state != "REVIEW_IN_PROGRESS":
        if run.checking:
            run.observe(run.finding(resource, "stack status", state, "a completed stack",
                                    "wait for the stack's operation to end, then check again"))
            return None
        if state in _FORWARD and not _differences(stack, body, wanted, config.region):
            return RoleOutput(stack_id=stack_id, status=RoleStatus.IN_PROGRESS)  # already doing what we want
        # A rollback, a delete, or someone else's change: reconcile once it has settled.
        raise StillInProgress(f"{_step(config)}: stack {name} is {state}; waiting for it to settle")
    if state not in _SETTLED:
        raise _stack_failed(config, stack)

    differences = _differences(stack, body, wanted, config.region)
    if not differences:
        drifted = _role_drift(run, config, stack)
        if not drifted:
            return _complete(config, stack)
        change_set_id = run.change(drifted, lambda: _revert_drift(config, body, wanted, service_role_arn))
        if change_set_id is None:
            return None
        return RoleOutput(stack_id=stack_id, status=RoleStatus.IN_PROGRESS, change_set_id=change_set_id)
    updated = run.change(
        [run.finding(resource, setting, actual, expected,
                     "run the onboarding again: it updates the stack (a change made to the stack by hand is undone)")
         for setting, actual, expected in differences],
        lambda: stacks.update_stack(name, body, wanted, owner_tags(config.stack_name), config.region,
                                    service_role_arn))
    if updated is None:
        return None
    if not updated:
        return _complete(config, stack)
    logger.info("Updating the Expel role stack", extra={"stack_id": stack_id})
    return RoleOutput(stack_id=stack_id, status=RoleStatus.IN_PROGRESS)


def _revert_drift(config: Config, body: str, wanted: dict[str, str], service_role_arn: str) -> str:
    name = f"expel-role-revert-drift-{datetime.now(UTC):%Y%m%d%H%M%S}"
    change_set_id = stacks.create_change_set(config.role_stack_name, name, body, wanted, owner_tags(config.stack_name),
                                             config.region, service_role_arn)
    logger.info("Putting the Expel role back as its template says (drift-aware change set)",
                extra={"change_set_id": change_set_id})
    return change_set_id


def _create(config: Config, body: str, wanted: dict[str, str], service_role_arn: str) -> str:
    stack_id = stacks.create_stack(config.role_stack_name, body, wanted, owner_tags(config.stack_name),
                                   config.region, service_role_arn)
    logger.info("Creating the Expel role stack", extra={"stack_id": stack_id})
    return stack_id


def status(config: Config, role: RoleOutput) -> RoleOutput:
    """One look at the stack ``deploy`` started: COMPLETE with the role ARN, IN_PROGRESS, or a failure."""
    stack = stacks.describe_stack(role.stack_id or config.role_stack_name, config.region)
    if stack is None:
        raise OnboardingError(
            f"{_step(config)}: the Expel role stack {config.role_stack_name} disappeared while it was being deployed. "
            "Fix: run the onboarding again")
    if role.change_set_id and (waiting := _revert_status(config, role)) is not None:
        return waiting
    state = str(stack["StackStatus"])
    if state in _DONE:
        return _complete(config, stack)
    if state in _FORWARD:
        return RoleOutput(stack_id=str(stack["StackId"]), status=RoleStatus.IN_PROGRESS,
                          change_set_id=role.change_set_id)
    # Rollbacks (even while still running), deletes and failures: the cause is already in the events.
    raise _stack_failed(config, stack)


def _revert_status(config: Config, role: RoleOutput) -> RoleOutput | None:
    """The drift-aware change set ``deploy`` created: still being created (CloudFormation reads the role), ready
    (executed now), or None once its execution is the stack's update to follow."""
    name = config.role_stack_name
    change_set = stacks.describe_change_set(name, role.change_set_id, config.region)
    if change_set is None:
        return None
    state, execution = str(change_set.get("Status", "")), str(change_set.get("ExecutionStatus", ""))
    reason = str(change_set.get("StatusReason", "")) or "no reason recorded"
    if state == "FAILED":
        if stacks.NO_CHANGES in reason:
            logger.info("CloudFormation found nothing of the Expel role to put back", extra={"reason": reason})
            return None  # the stack stays as it is: complete
        raise OnboardingError(
            f"{_step(config)}: CloudFormation could not prepare the change set that puts role {config.role_name} "
            f"back (stack {name}, change set {role.change_set_id}): {reason}. Fix: correct the role by hand "
            f"(IAM > Roles > {config.role_name}), or delete stack {name} and run the onboarding again")
    if state != "CREATE_COMPLETE" or execution == "EXECUTE_IN_PROGRESS":
        return role  # still reading the role, or the update has just begun
    if execution == "AVAILABLE":
        stacks.execute_change_set(name, role.change_set_id, config.region)
        logger.info("Executing the change set that puts the Expel role back", extra={"change_set_id":
                                                                                      role.change_set_id})
        return role
    return None


def remove(config: Config) -> RoleStatus:
    """Teardown: delete the role stack if it is ours. Returns DELETED (gone), IN_PROGRESS or SKIPPED.

    Call again until DELETED; a stack being deleted is not asked twice.
    """
    name = config.role_stack_name
    stack = stacks.describe_stack(name, config.region)
    if stack is None:
        return RoleStatus.DELETED
    if not is_ours(stacks.tags(stack), config.stack_name):
        logger.warning("Role stack is not ours; leaving it", extra={"stack_name": name})
        return RoleStatus.SKIPPED
    if stack["StackStatus"] != "DELETE_IN_PROGRESS":
        stacks.delete_stack(name, config.region)
        logger.info("Deleting the Expel role stack", extra={"stack_name": name})
    return RoleStatus.IN_PROGRESS


def _differences(stack: dict[str, Any], body: str, wanted: dict[str, str],
                 region: str) -> list[tuple[str, str | None, str]]:
    """(setting, what the stack has, what it should have) for each parameter and the template (reads only)."""
    current = stacks.parameters(stack)
    found: list[tuple[str, str | None, str]] = [
        (f"parameter {key}", current.get(key), value) for key, value in sorted(wanted.items())
        if current.get(key) != value]
    if significant_lines(stacks.template_body(str(stack["StackId"]), region)) != significant_lines(body):
        found.append(("template", "another template", "roles/expel-role.yaml of this onboarding"))
    return found


# ----------------------------------------------------------------------------- the role the stack made
@dataclass(frozen=True)
class ExpectedRole:
    """The Expel role as ``roles/expel-role.yaml`` makes it for the stack's parameters."""

    name: str
    trust: dict[str, Any]
    policies: dict[str, dict[str, Any]]  # inline policies (the role's Policies) by name
    boundary_arn: str  # "" = none


def expected_role(parameters: dict[str, str], partition: str = "aws") -> ExpectedRole:
    resources = cfn_template.resources(cfn_template.load(role_template()), parameters,
                                       {"AWS::Partition": partition})
    role = resources[ROLE_LOGICAL_ID]["Properties"]
    return ExpectedRole(name=str(role["RoleName"]), trust=role["AssumeRolePolicyDocument"],
                        policies={str(p["PolicyName"]): p["PolicyDocument"] for p in role.get("Policies", [])},
                        boundary_arn=str(role.get("PermissionsBoundary", "")))


def _role_drift(run: Converge, config: Config, stack: dict[str, Any]) -> list[Finding]:
    """What CloudFormation's own comparison cannot see without drift detection: the role changed in IAM since
    its stack made it (the trust policy edited, an inline policy or one of its statements changed or removed,
    the boundary changed, the role deleted). A drift-aware change set puts each back. Reads only."""
    expected = expected_role(stacks.parameters(stack), config.partition)
    found = iam.role(expected.name)
    resource = f"role {expected.name}"
    repair = ("run the onboarding again (`cloudtrail-onboarding doctor --stack <stack> --repair`): a drift-aware "
              f"change set of stack {config.role_stack_name} puts the template's value back")
    if found is None:
        return [run.finding(resource, "role", None, f"the role of stack {config.role_stack_name}",
                            f"{repair} (it creates the role again; Expel cannot assume it until then)")]
    findings: list[Finding] = []
    trust = found["AssumeRolePolicyDocument"]
    if differences := statement_differences(trust, expected.trust.get("Statement", [])):
        findings += statement_findings(run.step, resource, "trust policy", trust, differences,
                                       f"{repair}; by hand: put the statement {{sid!r}} back into the role's trust "
                                       "relationship (Expel assumes the role with it)")
    for policy_name, document in sorted(expected.policies.items()):
        current = iam.role_policy(expected.name, policy_name)
        differences = statement_differences(current, document.get("Statement", [])) if current else []
        if current is not None and not differences:
            continue
        findings += statement_findings(run.step, resource, f"inline policy {policy_name}", current, differences,
                                       f"{repair}; by hand: put the statement {{sid!r}} back into inline policy "
                                       f"{policy_name} of the role")
    boundary = str((found.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn", ""))
    if expected.boundary_arn and boundary != expected.boundary_arn:
        findings.append(run.finding(resource, "permissions boundary", boundary or None, expected.boundary_arn,
                                    f"{repair}; by hand: set the role's permissions boundary back to "
                                    f"{expected.boundary_arn}"))
    return findings


def significant_lines(body: str) -> list[str]:
    """The template without comment lines and blank lines. CloudFormation answers "No updates are to
    be performed" to a comment-only change and keeps the old text, so comparing raw text would send
    the same no-op update on every later run."""
    lines = (line.rstrip() for line in body.splitlines())
    return [line for line in lines if line and not line.lstrip().startswith("#")]


def step_number(config: Config) -> int:
    """Which guide step this stack is: a single account's step 8, a management account's step 9."""
    return 9 if config.organization_mode else 8


def _step(config: Config) -> str:
    return f"Step {step_number(config)}"


def _complete(config: Config, stack: dict[str, Any]) -> RoleOutput:
    role_arn = stacks.outputs(stack).get("RoleArn", "")
    if not role_arn:
        raise OnboardingError(
            f"{_step(config)}: stack {config.role_stack_name} has no RoleArn output; it was not made from "
            "roles/expel-role.yaml. Fix: delete the stack or choose another RoleStackName, then run again")
    return RoleOutput(stack_id=str(stack["StackId"]), status=RoleStatus.COMPLETE, role_arn=role_arn)


def _require_ours(config: Config, stack: dict[str, Any]) -> None:
    require_ours(stacks.tags(stack), config.stack_name, parameter="RoleStackName",
                 what=f"a CloudFormation stack named {config.role_stack_name}",
                 fix="choose another RoleStackName, or delete that stack if it is unused")


def _stack_failed(config: Config, stack: dict[str, Any]) -> OnboardingError:
    name, state = config.role_stack_name, str(stack["StackStatus"])
    resource, reason = stacks.first_failure(str(stack["StackId"]), config.region)
    reason = reason or str(stack.get("StackStatusReason", "")) or "no reason recorded"
    where = f"{resource}: " if resource else ""
    return OnboardingError(
        f"{_step(config)}: the Expel role stack {name} is {state}: {where}{reason}. Fix: {_fix(state, reason, config)}")


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
