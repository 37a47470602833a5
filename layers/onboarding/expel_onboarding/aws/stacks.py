"""CloudFormation stacks: the Expel role stack the onboarding deploys itself (guide step 8 in a single
account, step 9 in an organization's management account). StackSets are ``stacksets``'s.

Thin: each function is one API call (or one paginated read) with CloudFormation's error codes
mapped to ours. Deciding what to do with a stack is the step's job.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import ACCESS_DENIED, Rule, aws_errors, suppress_codes
from expel_onboarding.errors import OnboardingError, StillInProgress, TransientError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.literals import CapabilityType, DeploymentModeType
    from mypy_boto3_cloudformation.type_defs import ParameterTypeDef, TagTypeDef

CAPABILITIES: list[CapabilityType] = ["CAPABILITY_NAMED_IAM"]  # the role template names its role
# The service role is made by the template moments before step 8 uses it: until IAM has propagated it,
# CloudFormation answers that it cannot assume it. Retried; if it lasts, the message says what to check.
_ROLE_NOT_YET = Rule({"ValidationError"}, TransientError,
                     "CloudFormation cannot (yet) assume the service role of stack {stack_name} ({message}); its "
                     "trust policy must let cloudformation.amazonaws.com assume it. Retrying",
                     contains="cannot be assumed")


def _denied(stack_name: str, action: str, *rules: Rule) -> AbstractContextManager[None]:
    """A missing permission of the onboarding function is a deployment bug: say which one. ``rules`` (a
    call site's special cases) come first."""
    return aws_errors(
        "CloudFormation", action, *rules,
        Rule(ACCESS_DENIED, OnboardingError,
             "CloudFormation refused {what} on stack {stack_name}: {message}. Fix: give the onboarding function "
             "cloudformation:{what} (and iam:PassRole on the stack's service role) on stack/{stack_name}/*"),
        stack_name=stack_name)


def describe_stack(stack_name: str, region: str) -> dict[str, Any] | None:
    """The stack (by name or id), or None if there is none. By name, a deleted stack is None."""
    with suppress_codes("ValidationError", contains="does not exist"), _denied(stack_name, "DescribeStacks"):
        stacks = clients.cloudformation(region).describe_stacks(StackName=stack_name).get("Stacks", [])
        return dict(stacks[0]) if stacks else None
    return None


def template_body(stack_name: str, region: str) -> str:
    """The template as it was submitted (``Original``: no transforms applied), for comparison."""
    with _denied(stack_name, "GetTemplate"):
        response = clients.cloudformation(region).get_template(
            StackName=stack_name, TemplateStage="Original")
    body = response.get("TemplateBody", "")
    # botocore hands JSON templates back parsed; ours is YAML, so any dict means "not our template".
    return body if isinstance(body, str) else ""


def parameters(stack: dict[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}


def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}


def stack_resource(stack_name: str, logical_id: str, region: str) -> dict[str, Any] | None:
    """One resource of the stack (``StackResourceDetail``), or None when the stack or the resource is not there."""
    with (suppress_codes("ValidationError", contains="does not exist"),
          _denied(stack_name, "DescribeStackResource")):
        return dict(clients.cloudformation(region).describe_stack_resource(
            StackName=stack_name, LogicalResourceId=logical_id)["StackResourceDetail"])
    return None


def tags(stack: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in stack.get("Tags", [])}


class _StackArguments(TypedDict):
    """What CreateStack and UpdateStack are given alike."""

    StackName: str
    TemplateBody: str
    Parameters: list[ParameterTypeDef]
    Capabilities: list[CapabilityType]
    Tags: list[TagTypeDef]
    RoleARN: NotRequired[str]


def _stack_arguments(stack_name: str, body: str, params: dict[str, str], stack_tags: dict[str, str],
                     role_arn: str) -> _StackArguments:
    arguments: _StackArguments = {
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
    # A concurrent run got there first: look again on the next attempt.
    appeared = Rule({"AlreadyExistsException"}, StillInProgress,
                    "Stack {stack_name} appeared while creating it; checking it again")
    with _denied(stack_name, "CreateStack", appeared, _ROLE_NOT_YET):
        response = clients.cloudformation(region).create_stack(
            **_stack_arguments(stack_name, body, params, stack_tags, role_arn))
    return str(response["StackId"])


def update_stack(stack_name: str, body: str, params: dict[str, str], stack_tags: dict[str, str],
                 region: str, role_arn: str = "") -> bool:
    """Start updating the stack. False when CloudFormation finds nothing to change."""
    busy = Rule({"ValidationError"}, StillInProgress, "Stack {stack_name} is busy: {message}",
                contains="state and can not be updated")
    with (suppress_codes("ValidationError", contains="No updates are to be performed"),
          _denied(stack_name, "UpdateStack", busy, _ROLE_NOT_YET)):
        clients.cloudformation(region).update_stack(
            **_stack_arguments(stack_name, body, params, stack_tags, role_arn))
        return True
    return False


# A drift-aware change set: executing it puts each resource someone changed outside CloudFormation back to what
# the template says (a plain update leaves a resource whose template did not change as it is).
REVERT_DRIFT: DeploymentModeType = "REVERT_DRIFT"
# The change set of an unchanged template over resources in sync.
NO_CHANGES = "didn't contain changes"


def create_change_set(stack_name: str, change_set_name: str, body: str, params: dict[str, str],
                      stack_tags: dict[str, str], region: str, role_arn: str = "") -> str:
    """Start creating a drift-aware (``REVERT_DRIFT``) UPDATE change set of the stack; returns its id.
    CloudFormation reads the stack's resources as they are now while it creates it (DescribeChangeSet)."""
    busy = Rule({"ValidationError"}, StillInProgress, "Stack {stack_name} is busy: {message}",
                contains="state and can not be updated")
    # Another run made one of that name this very second: look again on the next attempt.
    appeared = Rule({"AlreadyExistsException"}, StillInProgress,
                    "A change set of that name appeared on stack {stack_name}; checking the role again")
    with _denied(stack_name, "CreateChangeSet", busy, appeared, _ROLE_NOT_YET):
        response = clients.cloudformation(region).create_change_set(
            **_stack_arguments(stack_name, body, params, stack_tags, role_arn), ChangeSetName=change_set_name,
            ChangeSetType="UPDATE", DeploymentMode=REVERT_DRIFT,
            Description="Expel CloudTrail onboarding: put the Expel role back as its template says")
    return str(response["Id"])


def describe_change_set(stack_name: str, change_set_id: str, region: str) -> dict[str, Any] | None:
    """The change set (its Status, ExecutionStatus, StatusReason and Changes), or None once it is gone
    (CloudFormation deletes a stack's other change sets when one is executed)."""
    with suppress_codes("ChangeSetNotFound"), _denied(stack_name, "DescribeChangeSet"):
        return dict(clients.cloudformation(region).describe_change_set(
            StackName=stack_name, ChangeSetName=change_set_id))
    return None


def execute_change_set(stack_name: str, change_set_id: str, region: str) -> None:
    """Start the stack update the change set describes (as the service role it was created with)."""
    busy = Rule({"InvalidChangeSetStatus"}, StillInProgress,
                "Change set of stack {stack_name} cannot be executed yet: {message}")
    with _denied(stack_name, "ExecuteChangeSet", busy):
        clients.cloudformation(region).execute_change_set(StackName=stack_name, ChangeSetName=change_set_id)


def delete_stack(stack_name: str, region: str) -> None:
    """Start deleting. CloudFormation uses the service role stored with the stack, if any."""
    with _denied(stack_name, "DeleteStack"):
        clients.cloudformation(region).delete_stack(StackName=stack_name)


def first_failure(stack_name: str, region: str) -> tuple[str, str]:
    """(logical id, reason) of the first resource that failed in the stack's latest operation.

    Events come newest first and span the stack's whole history; the latest operation starts at
    the stack's own ``*_IN_PROGRESS`` event with reason "User Initiated". Its oldest failure is the
    cause; later ones are usually "Resource creation cancelled" knock-ons.
    """
    failures: list[tuple[str, str]] = []
    paginator = clients.cloudformation(region).get_paginator("describe_stack_events")
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
