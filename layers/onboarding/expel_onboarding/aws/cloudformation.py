"""CloudFormation: the stacks the onboarding deploys itself (the Expel role, guide steps 8 and 9).

Thin: each function is one API call (or one paginated read) with CloudFormation's error codes
mapped to ours. Deciding what to do with a stack is the step's job.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from expel_onboarding.aws.clients import client, error_code
from expel_onboarding.aws.errors import ACCESS_DENIED, Rule, aws_errors, error_message, suppress_codes
from expel_onboarding.errors import OnboardingError, StillInProgress, TransientError

CAPABILITIES = ["CAPABILITY_NAMED_IAM"]  # the role template names its role


def _denied(stack_name: str, action: str) -> AbstractContextManager[None]:
    """A missing permission of the onboarding function is a deployment bug: say which one."""
    return aws_errors(
        "CloudFormation", action,
        Rule(ACCESS_DENIED, OnboardingError,
             "CloudFormation refused {what} on stack {stack_name}: {message}. Fix: give the onboarding function "
             "cloudformation:{what} (and iam:PassRole on the stack's service role) on stack/{stack_name}/*"),
        stack_name=stack_name)


def describe_stack(stack_name: str, region: str) -> dict[str, Any] | None:
    """The stack (by name or id), or None if there is none. By name, a deleted stack is None."""
    try:
        with _denied(stack_name, "DescribeStacks"):
            response = client("cloudformation", region).describe_stacks(StackName=stack_name)
    except Exception as exc:
        if error_code(exc) == "ValidationError" and "does not exist" in error_message(exc):
            return None
        raise
    stacks = response.get("Stacks", [])
    return dict(stacks[0]) if stacks else None


def template_body(stack_name: str, region: str) -> str:
    """The template as it was submitted (``Original``: no transforms applied), for comparison."""
    with _denied(stack_name, "GetTemplate"):
        response = client("cloudformation", region).get_template(
            StackName=stack_name, TemplateStage="Original")
    body = response.get("TemplateBody", "")
    # botocore hands JSON templates back parsed; ours is YAML, so any dict means "not our template".
    return body if isinstance(body, str) else ""


def parameters(stack: dict[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}


def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}


def tags(stack: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in stack.get("Tags", [])}


def _stack_arguments(stack_name: str, body: str, params: dict[str, str], stack_tags: dict[str, str],
                     role_arn: str) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "StackName": stack_name,
        "TemplateBody": body,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(params.items())],
        "Capabilities": CAPABILITIES,
        # Stack tags propagate to the stack's resources: the role carries the ownership tag too.
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(stack_tags.items())],
    }
    if role_arn:
        arguments["RoleARN"] = role_arn
    return arguments


def create_stack(stack_name: str, body: str, params: dict[str, str], stack_tags: dict[str, str],
                 region: str, role_arn: str = "") -> str:
    """Start creating the stack; returns its id. Rolls back on failure (the default), so a failed
    create never leaves half a role behind."""
    try:
        with _denied(stack_name, "CreateStack"):
            response = client("cloudformation", region).create_stack(
                **_stack_arguments(stack_name, body, params, stack_tags, role_arn))
    except Exception as exc:
        if error_code(exc) == "AlreadyExistsException":
            # A concurrent run got there first: look again on the next attempt.
            raise StillInProgress(f"Stack {stack_name} appeared while creating it; checking it again") from exc
        raise
    return str(response["StackId"])


def update_stack(stack_name: str, body: str, params: dict[str, str], stack_tags: dict[str, str],
                 region: str, role_arn: str = "") -> bool:
    """Start updating the stack. False when CloudFormation finds nothing to change."""
    try:
        with _denied(stack_name, "UpdateStack"):
            client("cloudformation", region).update_stack(
                **_stack_arguments(stack_name, body, params, stack_tags, role_arn))
    except Exception as exc:
        message = error_message(exc)
        if error_code(exc) == "ValidationError" and "No updates are to be performed" in message:
            return False
        if error_code(exc) == "ValidationError" and "state and can not be updated" in message:
            raise StillInProgress(f"Stack {stack_name} is busy: {message}") from exc
        raise
    return True


def delete_stack(stack_name: str, region: str) -> None:
    """Start deleting. CloudFormation uses the service role stored with the stack, if any."""
    with _denied(stack_name, "DeleteStack"):
        client("cloudformation", region).delete_stack(StackName=stack_name)


def first_failure(stack_name: str, region: str) -> tuple[str, str]:
    """(logical id, reason) of the first resource that failed in the stack's latest operation.

    Events come newest first and span the stack's whole history; the latest operation starts at
    the stack's own ``*_IN_PROGRESS`` event with reason "User Initiated". Its oldest failure is the
    cause; later ones are usually "Resource creation cancelled" knock-ons.
    """
    failures: list[tuple[str, str]] = []
    paginator = client("cloudformation", region).get_paginator("describe_stack_events")
    with _denied(stack_name, "DescribeStackEvents"):
        for page in paginator.paginate(StackName=stack_name):
            for event in page.get("StackEvents", []):
                status = str(event.get("ResourceStatus", ""))
                reason = str(event.get("ResourceStatusReason", ""))
                is_stack = event.get("PhysicalResourceId") == event.get("StackId")
                if is_stack and reason == "User Initiated":
                    return failures[-1] if failures else ("", "")
                if status.endswith("_FAILED") and reason:
                    failures.append((str(event.get("LogicalResourceId", "")), reason))
    return failures[-1] if failures else ("", "")


# --- StackSets (Organizations mode, guide step 8) ---------------------------------------------------------
# Every call names CallAs: SELF from the management account, DELEGATED_ADMIN from a member account
# registered as StackSets delegated administrator (CloudFormation then acts for the management account).

RUNNING_OPERATION = {"QUEUED", "RUNNING", "STOPPING"}
_STACK_SET_TRANSIENT = {"Throttling", "ThrottlingException", "TooManyRequestsException",
                        "LimitExceededException", "StaleRequestException"}


def _stack_set_errors(name: str, action: str) -> AbstractContextManager[None]:
    """StackSets run one operation at a time: another one running is a wait, not a failure."""
    return aws_errors(
        "CloudFormation", name,
        Rule({"OperationInProgressException"}, StillInProgress,
             "StackSet {what}: another operation is running ({message})"),
        Rule(_STACK_SET_TRANSIENT, TransientError, "StackSet {what}: CloudFormation is busy ({code}); retrying"),
        Rule(ACCESS_DENIED, OnboardingError,
             "CloudFormation refused {action} on StackSet {what}: {message}. Fix: give the onboarding function "
             "cloudformation:{action} on stackset/{what}:* (and, for a delegated administrator, register the "
             "account: aws organizations register-delegated-administrator --service-principal "
             "member.org.stacksets.cloudformation.amazonaws.com --account-id <id>)"),
        Rule({"ValidationError"}, OnboardingError,
             "StackSet {what}: {message}. Fix: in the management account run 'aws cloudformation "
             "activate-organizations-access' (console: CloudFormation > StackSets > Activate trusted access)",
             contains="trusted access"),
        action=action)


def _preferences(max_concurrent_percentage: int, failure_tolerance_percentage: int) -> dict[str, Any]:
    return {"MaxConcurrentPercentage": max_concurrent_percentage,
            "FailureTolerancePercentage": failure_tolerance_percentage}


def _targets(ou_ids: list[str], exclude_accounts: list[str]) -> dict[str, Any]:
    targets: dict[str, Any] = {"OrganizationalUnitIds": sorted(ou_ids)}
    if exclude_accounts:
        # A delegated administrator is itself a member account: its role comes from the step-9 stack.
        targets.update(AccountFilterType="DIFFERENCE", Accounts=sorted(exclude_accounts))
    return targets


def describe_stack_set(name: str, region: str, call_as: str) -> dict[str, Any] | None:
    """The StackSet, or None when there is none (a deleted one is None too)."""
    with suppress_codes("StackSetNotFoundException"), _stack_set_errors(name, "DescribeStackSet"):
        stack_set = dict(client("cloudformation", region).describe_stack_set(
            StackSetName=name, CallAs=call_as)["StackSet"])
        return None if stack_set.get("Status") == "DELETED" else stack_set
    return None


def create_stack_set(name: str, body: str, params: dict[str, str], stack_set_tags: dict[str, str],
                     region: str, call_as: str, description: str) -> str:
    """A service-managed StackSet that follows the organization: accounts joining a target OU get the
    role, accounts leaving it lose it (nothing of ours is left behind in an account that left)."""
    try:
        with _stack_set_errors(name, "CreateStackSet"):
            response = client("cloudformation", region).create_stack_set(
                StackSetName=name, Description=description, TemplateBody=body,
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(params.items())],
                Capabilities=CAPABILITIES,
                Tags=[{"Key": k, "Value": v} for k, v in sorted(stack_set_tags.items())],
                PermissionModel="SERVICE_MANAGED",
                AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
                CallAs=call_as)
    except Exception as exc:
        if error_code(exc) == "NameAlreadyExistsException":
            raise StillInProgress(f"StackSet {name} appeared while creating it; checking it again") from exc
        raise
    return str(response["StackSetId"])


def update_stack_set(name: str, body: str, params: dict[str, str], region: str, call_as: str,
                     max_concurrent_percentage: int, failure_tolerance_percentage: int) -> str:
    """Template, parameters and auto-deployment; no targets given, so every instance is updated
    (which also retries instances an earlier operation left OUTDATED). Returns the operation id."""
    with _stack_set_errors(name, "UpdateStackSet"):
        response = client("cloudformation", region).update_stack_set(
            StackSetName=name, TemplateBody=body,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(params.items())],
            Capabilities=CAPABILITIES,
            AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
            OperationPreferences=_preferences(max_concurrent_percentage, failure_tolerance_percentage),
            CallAs=call_as)
    return str(response["OperationId"])


def create_stack_instances(name: str, ou_ids: list[str], regions: list[str], region: str, call_as: str,
                           max_concurrent_percentage: int, failure_tolerance_percentage: int,
                           exclude_accounts: list[str] | None = None) -> str:
    """Deploy to every account under these roots/OUs (CloudFormation resolves them, nested OUs
    included, and skips the management account). Returns the operation id; nothing waits here."""
    with _stack_set_errors(name, "CreateStackInstances"):
        response = client("cloudformation", region).create_stack_instances(
            StackSetName=name, DeploymentTargets=_targets(ou_ids, exclude_accounts or []), Regions=regions,
            OperationPreferences=_preferences(max_concurrent_percentage, failure_tolerance_percentage),
            CallAs=call_as)
    return str(response["OperationId"])


def delete_stack_instances(name: str, ou_ids: list[str], regions: list[str], region: str, call_as: str,
                           max_concurrent_percentage: int, failure_tolerance_percentage: int) -> str:
    with _stack_set_errors(name, "DeleteStackInstances"):
        response = client("cloudformation", region).delete_stack_instances(
            StackSetName=name, DeploymentTargets={"OrganizationalUnitIds": sorted(ou_ids)}, Regions=regions,
            RetainStacks=False,
            OperationPreferences=_preferences(max_concurrent_percentage, failure_tolerance_percentage),
            CallAs=call_as)
    return str(response["OperationId"])


def delete_stack_set(name: str, region: str, call_as: str) -> bool:
    """False while instances remain (their deletion is still running)."""
    try:
        with _stack_set_errors(name, "DeleteStackSet"):
            client("cloudformation", region).delete_stack_set(StackSetName=name, CallAs=call_as)
    except Exception as exc:
        if error_code(exc) == "StackSetNotEmptyException":
            return False
        if error_code(exc) == "StackSetNotFoundException":
            return True
        raise
    return True


def stack_instances(name: str, region: str, call_as: str) -> list[dict[str, Any]]:
    """Every instance (one per account and region), all pages: 1,000 accounts are ten reads."""
    paginator = client("cloudformation", region).get_paginator("list_stack_instances")
    instances: list[dict[str, Any]] = []
    with _stack_set_errors(name, "ListStackInstances"):
        for page in paginator.paginate(StackSetName=name, CallAs=call_as, PaginationConfig={"PageSize": 100}):
            instances.extend(page.get("Summaries", []))
    return instances


def recent_operations(name: str, region: str, call_as: str) -> list[dict[str, Any]]:
    """The latest operations, newest first (one page is enough: only the newest ones matter)."""
    with _stack_set_errors(name, "ListStackSetOperations"):
        response = client("cloudformation", region).list_stack_set_operations(
            StackSetName=name, MaxResults=20, CallAs=call_as)
    operations = [dict(o) for o in response.get("Summaries", [])]
    return sorted(operations, key=lambda o: o.get("CreationTimestamp") or 0, reverse=True)


def describe_stack_set_operation(name: str, operation_id: str, region: str, call_as: str) -> dict[str, Any]:
    with _stack_set_errors(name, "DescribeStackSetOperation"):
        response = client("cloudformation", region).describe_stack_set_operation(
            StackSetName=name, OperationId=operation_id, CallAs=call_as)
    return dict(response["StackSetOperation"])


def failed_instances(name: str, operation_id: str, region: str, call_as: str,
                     limit: int = 5) -> list[tuple[str, str, str]]:
    """(account, region, reason) of the first few accounts where the operation failed: enough for a
    person to see the cause without reading a thousand results."""
    paginator = client("cloudformation", region).get_paginator("list_stack_set_operation_results")
    failures: list[tuple[str, str, str]] = []
    with _stack_set_errors(name, "ListStackSetOperationResults"):
        for page in paginator.paginate(StackSetName=name, OperationId=operation_id, CallAs=call_as,
                                       PaginationConfig={"PageSize": 100, "MaxItems": 500}):
            for result in page.get("Summaries", []):
                if result.get("Status") in ("FAILED", "CANCELLED") and result.get("StatusReason"):
                    failures.append((str(result.get("Account", "")), str(result.get("Region", "")),
                                     str(result["StatusReason"])))
                    if len(failures) >= limit:
                        return failures
    return failures
