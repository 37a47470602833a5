"""Before guide step 1, Organizations mode: what an organization trail and a service-managed StackSet
need from the organization, checked read-only so a missing switch is named with its fix before
anything is created. Called by ``preflight.check``; reads only.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from expel_onboarding.aws import organizations, sts
from expel_onboarding.aws.organizations import CLOUDTRAIL_PRINCIPAL, STACKSETS_PRINCIPAL
from expel_onboarding.errors import InvalidParameter
from expel_onboarding.models import Config

logger = Logger(child=True)

_TURN_OFF = "or set OrganizationMode to false to onboard this account alone"


def check(config: Config) -> dict[str, Any]:
    """Returns ``{"OrganizationId", "ManagementAccountId", "Targets"}`` (the roots/OUs the StackSet deploys to)."""
    if not config.organization_mode:
        return {"OrganizationId": "", "ManagementAccountId": "", "Targets": []}
    _check_rollout_settings(config)
    organization = organizations.describe_organization()
    organization_id, management = str(organization["Id"]), str(organization.get("MasterAccountId", ""))
    account = sts.caller_identity().account_id
    _check_administrator(account, organization_id, management)
    if organization.get("FeatureSet") != "ALL":
        raise InvalidParameter(
            "OrganizationMode", f"organization {organization_id} has only consolidated billing, but organization "
                                "trails and service-managed StackSets need all features",
            f"in the management account {management} open AWS Organizations > Settings > Enable all features "
            f"(CLI: aws organizations enable-all-features; every member account must approve), {_TURN_OFF}")
    _check_trusted_access(management)
    targets = _check_targets(config, organization_id)
    logger.info("Organizations preflight passed", extra={"organization_id": organization_id, "targets": targets})
    return {"OrganizationId": organization_id, "ManagementAccountId": management, "Targets": targets}


def _check_rollout_settings(config: Config) -> None:
    concurrent = config.stack_set_max_concurrent_percentage
    if not isinstance(concurrent, int) or not 1 <= concurrent <= 100:
        raise InvalidParameter("StackSetMaxConcurrentPercentage", f"{concurrent!r} is not a percentage from 1 to 100",
                               "use 25 (the default) or any whole number from 1 to 100")
    tolerance = config.stack_set_failure_tolerance_percentage
    if not isinstance(tolerance, int) or not 0 <= tolerance <= 100:
        raise InvalidParameter("StackSetFailureTolerancePercentage",
                               f"{tolerance!r} is not a percentage from 0 to 100",
                               "use 10 (the default) or any whole number from 0 to 100")


def _check_administrator(account: str, organization_id: str, management: str) -> None:
    """The management account, or a member registered to administer StackSets (and CloudTrail, whose
    organization trail a delegated administrator creates on the management account's behalf). A member that
    administers nothing cannot even list the delegated administrators: Organizations refuses it."""
    if account == management:
        return
    register = ("in the management account {management} run 'aws organizations register-delegated-administrator "
                "--account-id {account} --service-principal {principal}'")
    for principal, what in ((STACKSETS_PRINCIPAL, "CloudFormation StackSets"), (CLOUDTRAIL_PRINCIPAL, "CloudTrail")):
        try:
            registered = organizations.is_delegated_administrator(account, principal)
        except organizations.NotAdministrator:
            registered = False  # a delegated administrator for no service at all
        if not registered:
            raise InvalidParameter(
                "OrganizationMode", f"account {account} is neither the management account ({management}) of "
                                    f"organization {organization_id} nor a delegated administrator for {what}",
                f"deploy the stack in the management account {management} (guide: prerequisites), or "
                + register.format(management=management, account=account, principal=principal) + f", {_TURN_OFF}")


def _check_trusted_access(management: str) -> None:
    enabled = organizations.enabled_service_principals()
    if STACKSETS_PRINCIPAL not in enabled:
        raise InvalidParameter(
            "OrganizationMode", "trusted access for CloudFormation StackSets is off in AWS Organizations, so a "
                                "service-managed StackSet cannot reach the member accounts",
            f"in the management account {management} open CloudFormation > StackSets > Activate trusted access "
            f"(CLI: aws cloudformation activate-organizations-access), {_TURN_OFF}")
    if CLOUDTRAIL_PRINCIPAL not in enabled:
        raise InvalidParameter(
            "OrganizationMode", "trusted access for CloudTrail is off in AWS Organizations, so an organization "
                                "trail cannot be created",
            f"in the management account {management} run 'aws organizations enable-aws-service-access "
            "--service-principal cloudtrail.amazonaws.com' (console: AWS Organizations > Services > CloudTrail > "
            f"Enable trusted access), {_TURN_OFF}")


def _check_targets(config: Config, organization_id: str) -> list[str]:
    roots = organizations.root_ids()
    if not config.organization_target_ou_ids:
        return roots
    for target in config.organization_target_ou_ids:
        known = target in roots if target.startswith("r-") else (
            organizations.describe_organizational_unit(target) is not None)
        if not known:
            raise InvalidParameter(
                "OrganizationTargetOuIds", f"{target} is not a root or organizational unit of organization "
                                           f"{organization_id}",
                "copy the OU ids (ou-...) from AWS Organizations > AWS accounts, or leave the parameter empty to "
                "deploy the role to every account of the organization")
    return sorted(config.organization_target_ou_ids)
