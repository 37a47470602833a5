"""CloudFormation StackSets: the service-managed StackSet that puts the Expel role in every member
account of an organization (guide step 8, Organizations mode).

Thin: each function is one API call (or one paginated read) with CloudFormation's error codes mapped
to ours. Every call names CallAs: SELF from the management account, DELEGATED_ADMIN from a member
account registered as StackSets delegated administrator (CloudFormation then acts for the organization).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import ACCESS_DENIED, Rule, aws_errors, suppress_codes
from expel_onboarding.aws.stacks import CAPABILITIES
from expel_onboarding.errors import OnboardingError, StillInProgress

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.literals import CallAsType
    from mypy_boto3_cloudformation.type_defs import (
        DeploymentTargetsTypeDef,
        ListStackInstanceResourceDriftsInputTypeDef,
        StackSetOperationPreferencesTypeDef,
    )

RUNNING_OPERATION = {"QUEUED", "RUNNING", "STOPPING"}


def _stack_set_errors(name: str, action: str, *rules: Rule) -> AbstractContextManager[None]:
    """StackSets run one operation at a time: another one running is a wait, not a failure. ``rules`` (a
    call site's special cases) come first."""
    return aws_errors(
        "CloudFormation StackSets", name, *rules,
        Rule({"OperationInProgressException"}, StillInProgress,
             "StackSet {what}: another operation is running ({message})"),
        Rule(ACCESS_DENIED, OnboardingError,
             "CloudFormation refused {action} on StackSet {what}: {message}. Fix: give the step 8 function's role the "
             "action named above (the template grants it; a permissions boundary or SCP may remove it), and, for "
             "a delegated administrator, register the "
             "account: aws organizations register-delegated-administrator --service-principal "
             "member.org.stacksets.cloudformation.amazonaws.com --account-id <id>"),
        # "You must enable organizations access to operate a service managed stack set"
        Rule({"ValidationError"}, OnboardingError,
             "StackSet {what}: {message}. Fix: in the management account run 'aws cloudformation "
             "activate-organizations-access' (console: CloudFormation > StackSets > Activate trusted access)",
             contains="organizations access"),
        # "You must be the management account or delegated admin account of an organization ...", "Account
        # used is not a delegated administrator"
        Rule({"ValidationError"}, OnboardingError,
             "StackSet {what}: {message}. Fix: deploy the onboarding in the organization's management account, or "
             "register this account as StackSets delegated administrator (aws organizations "
             "register-delegated-administrator --service-principal member.org.stacksets.cloudformation.amazonaws.com "
             "--account-id <id>)", contains="delegated admin"),
        busy="StackSet {what}: CloudFormation is busy ({code}); retrying", action=action)


def _preferences(max_concurrent_percentage: int,
                 failure_tolerance_percentage: int) -> StackSetOperationPreferencesTypeDef:
    return {"MaxConcurrentPercentage": max_concurrent_percentage,
            "FailureTolerancePercentage": failure_tolerance_percentage}


def _targets(ou_ids: list[str], exclude_accounts: list[str], only_accounts: list[str]) -> DeploymentTargetsTypeDef:
    if only_accounts:
        # These accounts of the OUs (at any depth), no other: the instances someone deleted, deployed again.
        return {"OrganizationalUnitIds": sorted(ou_ids), "AccountFilterType": "INTERSECTION",
                "Accounts": sorted(set(only_accounts) - set(exclude_accounts))}
    if exclude_accounts:
        # A delegated administrator is itself a member account: its role comes from the step-9 stack.
        return {"OrganizationalUnitIds": sorted(ou_ids), "AccountFilterType": "DIFFERENCE",
                "Accounts": sorted(exclude_accounts)}
    return {"OrganizationalUnitIds": sorted(ou_ids)}


def describe_stack_set(name: str, region: str, call_as: CallAsType) -> dict[str, Any] | None:
    """The StackSet, or None when there is none (a deleted one is None too)."""
    with suppress_codes("StackSetNotFoundException"), _stack_set_errors(name, "DescribeStackSet"):
        stack_set = dict(clients.cloudformation(region).describe_stack_set(
            StackSetName=name, CallAs=call_as)["StackSet"])
        return None if stack_set.get("Status") == "DELETED" else stack_set
    return None


def create_stack_set(name: str, body: str, params: dict[str, str], stack_set_tags: dict[str, str],
                     region: str, call_as: CallAsType, description: str) -> str:
    """A service-managed StackSet that follows the organization: accounts joining a target OU get the
    role, accounts leaving it lose it (nothing of ours is left behind in an account that left)."""
    appeared = Rule({"NameAlreadyExistsException"}, StillInProgress,
                    "StackSet {what} appeared while creating it; checking it again")
    with _stack_set_errors(name, "CreateStackSet", appeared):
        response = clients.cloudformation(region).create_stack_set(
            StackSetName=name, Description=description, TemplateBody=body,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(params.items())],
            Capabilities=CAPABILITIES,
            Tags=[{"Key": k, "Value": v} for k, v in sorted(stack_set_tags.items())],
            PermissionModel="SERVICE_MANAGED",
            AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
            CallAs=call_as)
    return str(response["StackSetId"])


def update_stack_set(name: str, body: str, params: dict[str, str], region: str, call_as: CallAsType,
                     max_concurrent_percentage: int, failure_tolerance_percentage: int) -> str:
    """Template, parameters and auto-deployment; no targets given, so every instance is updated
    (which also retries instances an earlier operation left OUTDATED). Returns the operation id."""
    with _stack_set_errors(name, "UpdateStackSet"):
        response = clients.cloudformation(region).update_stack_set(
            StackSetName=name, TemplateBody=body,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(params.items())],
            Capabilities=CAPABILITIES,
            AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
            OperationPreferences=_preferences(max_concurrent_percentage, failure_tolerance_percentage),
            CallAs=call_as)
    return str(response["OperationId"])


def create_stack_instances(name: str, ou_ids: list[str], regions: list[str], region: str, call_as: CallAsType,
                           max_concurrent_percentage: int, failure_tolerance_percentage: int,
                           exclude_accounts: list[str] | None = None, only_accounts: list[str] | None = None) -> str:
    """Deploy to every account under these roots/OUs (CloudFormation resolves them, nested OUs
    included, and skips the management account), or to ``only_accounts`` of them. Returns the operation id;
    nothing waits here."""
    targets = _targets(ou_ids, exclude_accounts or [], only_accounts or [])
    with _stack_set_errors(name, "CreateStackInstances"):
        response = clients.cloudformation(region).create_stack_instances(
            StackSetName=name, DeploymentTargets=targets, Regions=regions,
            OperationPreferences=_preferences(max_concurrent_percentage, failure_tolerance_percentage),
            CallAs=call_as)
    return str(response["OperationId"])


def delete_stack_instances(name: str, ou_ids: list[str], regions: list[str], region: str, call_as: CallAsType,
                           max_concurrent_percentage: int, failure_tolerance_percentage: int,
                           only_accounts: list[str] | None = None) -> str:
    """Delete the instances under these roots/OUs, or only those of ``only_accounts`` (the OUs stay targets),
    and their stacks (the roles go). Returns the operation id; nothing waits here."""
    with _stack_set_errors(name, "DeleteStackInstances"):
        response = clients.cloudformation(region).delete_stack_instances(
            StackSetName=name, DeploymentTargets=_targets(ou_ids, [], only_accounts or []), Regions=regions,
            RetainStacks=False,
            OperationPreferences=_preferences(max_concurrent_percentage, failure_tolerance_percentage),
            CallAs=call_as)
    return str(response["OperationId"])


def delete_stack_set(name: str, region: str, call_as: CallAsType) -> bool:
    """False while instances remain (their deletion is still running)."""
    with suppress_codes("StackSetNotEmptyException"), _stack_set_errors(name, "DeleteStackSet"):
        with suppress_codes("StackSetNotFoundException"):  # gone: done
            clients.cloudformation(region).delete_stack_set(StackSetName=name, CallAs=call_as)
        return True
    return False


def stack_instances(name: str, region: str, call_as: CallAsType) -> list[dict[str, Any]]:
    """Every instance (one per account and region), all pages: 1,000 accounts are ten reads."""
    paginator = clients.cloudformation(region).get_paginator("list_stack_instances")
    instances: list[dict[str, Any]] = []
    with _stack_set_errors(name, "ListStackInstances"):
        for page in paginator.paginate(StackSetName=name, CallAs=call_as, PaginationConfig={"PageSize": 100}):
            instances.extend(dict(summary) for summary in page.get("Summaries", []))
    return instances


def recent_operations(name: str, region: str, call_as: CallAsType) -> list[dict[str, Any]]:
    """The latest operations, newest first (one page is enough: only the newest ones matter)."""
    with _stack_set_errors(name, "ListStackSetOperations"):
        response = clients.cloudformation(region).list_stack_set_operations(
            StackSetName=name, MaxResults=20, CallAs=call_as)
    operations = [dict(o) for o in response.get("Summaries", [])]
    return sorted(operations, key=lambda o: o.get("CreationTimestamp") or 0, reverse=True)


def describe_stack_set_operation(name: str, operation_id: str, region: str, call_as: CallAsType) -> dict[str, Any]:
    with _stack_set_errors(name, "DescribeStackSetOperation"):
        response = clients.cloudformation(region).describe_stack_set_operation(
            StackSetName=name, OperationId=operation_id, CallAs=call_as)
    return dict(response["StackSetOperation"])


def detect_stack_set_drift(name: str, region: str, call_as: CallAsType, max_concurrent_percentage: int) -> str:
    """Start CloudFormation's drift detection of every stack instance (each instance's stack compared with the
    StackSet's template and parameters, in its account). A read: nothing in any account changes. Failure
    tolerance 100 %: an instance that cannot be checked is reported, the others are still checked. Returns the
    operation id; another operation running is ``StillInProgress``."""
    with _stack_set_errors(name, "DetectStackSetDrift"):
        response = clients.cloudformation(region).detect_stack_set_drift(
            StackSetName=name, OperationPreferences=_preferences(max_concurrent_percentage, 100), CallAs=call_as)
    return str(response["OperationId"])


def stack_instance_resource_drifts(name: str, account: str, instance_region: str, operation_id: str, region: str,
                                   call_as: CallAsType) -> list[dict[str, Any]]:
    """The resources of one instance that the drift detection ``operation_id`` found MODIFIED or DELETED, all
    pages; none for an instance that operation did not check (one created since)."""
    found: list[dict[str, Any]] = []
    arguments: ListStackInstanceResourceDriftsInputTypeDef = {
        "StackSetName": name, "StackInstanceAccount": account, "StackInstanceRegion": instance_region,
        "OperationId": operation_id, "StackInstanceResourceDriftStatuses": ["MODIFIED", "DELETED"], "CallAs": call_as}
    with suppress_codes("StackInstanceNotFoundException"), _stack_set_errors(name, "ListStackInstanceResourceDrifts"):
        while True:  # botocore has no paginator for this list
            page = clients.cloudformation(region).list_stack_instance_resource_drifts(**arguments)
            found.extend(dict(summary) for summary in page.get("Summaries", []))
            if not page.get("NextToken"):
                return found
            arguments["NextToken"] = page["NextToken"]
    return found
