"""AWS Organizations, read only: who manages the organization, what it has switched on, which OUs exist.

The onboarding never changes the organization itself; preflight tells a person what to switch on.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Final

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import Rule, aws_errors, suppress_codes
from expel_onboarding.errors import OnboardingError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.literals import CallAsType

STACKSETS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"
CLOUDTRAIL_PRINCIPAL = "cloudtrail.amazonaws.com"
SELF: Final = "SELF"
DELEGATED_ADMIN: Final = "DELEGATED_ADMIN"



class NotAdministrator(OnboardingError):
    """AWS Organizations refused a read because this account is a member that is no delegated administrator: only
    the management account and delegated administrators (for any service) may list the organization, whatever
    the caller's IAM policies allow."""


def _errors(action: str) -> AbstractContextManager[None]:
    return aws_errors(
        "AWS Organizations", action,
        Rule({"AWSOrganizationsNotInUseException"}, OnboardingError,
             "Parameter OrganizationMode: this account is not in an AWS Organization. Fix: set OrganizationMode to "
             "false, or deploy in your organization's management account"),
        # IAM's refusal names the caller and the action ("... is not authorized to perform: organizations:...").
        Rule({"AccessDeniedException"}, OnboardingError,
             "AWS Organizations refused {what} ({message}). Fix: give the onboarding function "
             "organizations:{what} (the template grants it; a permissions boundary or SCP may remove it)",
             contains="not authorized to perform"),
        # Organizations' own: "You don't have permissions to access this resource."
        Rule({"AccessDeniedException"}, NotAdministrator,
             "AWS Organizations refused {what} ({message}): this account is neither the organization's management "
             "account nor a delegated administrator, the only accounts Organizations lets list the organization. "
             "Fix: deploy the onboarding in the management account, or there register this account: aws "
             f"organizations register-delegated-administrator --service-principal {STACKSETS_PRINCIPAL} "
             "--account-id <this account>"))


def describe_organization() -> dict[str, Any]:
    """``Id``, ``MasterAccountId``, ``FeatureSet``; a clear error when the account is in no organization."""
    with _errors("DescribeOrganization"):
        return dict(clients.organizations().describe_organization()["Organization"])


def call_as(account_id: str, organization: dict[str, Any] | None = None) -> CallAsType:
    """How StackSet calls must present this account: the management account acts as itself, any
    other account (preflight made sure it is a delegated administrator) as DELEGATED_ADMIN."""
    organization = organization or describe_organization()
    return SELF if organization.get("MasterAccountId") == account_id else DELEGATED_ADMIN


def is_delegated_administrator(account_id: str, service_principal: str) -> bool:
    paginator = clients.organizations().get_paginator("list_delegated_administrators")
    with _errors("ListDelegatedAdministrators"):
        for page in paginator.paginate(ServicePrincipal=service_principal):
            if any(a.get("Id") == account_id for a in page.get("DelegatedAdministrators", [])):
                return True
    return False


def enabled_service_principals() -> set[str]:
    """Services with trusted access to the organization."""
    paginator = clients.organizations().get_paginator("list_aws_service_access_for_organization")
    principals: set[str] = set()
    with _errors("ListAWSServiceAccessForOrganization"):
        for page in paginator.paginate():
            principals.update(str(p["ServicePrincipal"]) for p in page.get("EnabledServicePrincipals", []))
    return principals


def root_ids() -> list[str]:
    paginator = clients.organizations().get_paginator("list_roots")
    with _errors("ListRoots"):
        return sorted(str(r["Id"]) for page in paginator.paginate() for r in page.get("Roots", []))


def describe_organizational_unit(ou_id: str) -> dict[str, Any] | None:
    """The OU, or None when the organization has no OU of that id."""
    with (suppress_codes("OrganizationalUnitNotFoundException", "InvalidInputException"),
          _errors("DescribeOrganizationalUnit")):
        response = clients.organizations().describe_organizational_unit(OrganizationalUnitId=ou_id)
        return dict(response["OrganizationalUnit"])
    return None


def accounts_under(parent_ids: list[str], *, active_only: bool) -> dict[str, str]:
    """The accounts under these roots or OUs, at any depth: account id -> the given parent it is under.

    ``active_only``: only ACTIVE accounts, where a service-managed StackSet targeting the parents deploys (guide
    step 8); otherwise every status (the OU filter gives each listed account its entry, a suspended one too).
    Organizations lists one level per call (ListAccountsForParent, ListOrganizationalUnitsForParent)."""
    client = clients.organizations()
    accounts, ous = client.get_paginator("list_accounts_for_parent"), client.get_paginator(
        "list_organizational_units_for_parent")
    found: dict[str, str] = {}
    for target in parent_ids:
        parents = [target]
        while parents:
            parent = parents.pop()
            with _errors("ListAccountsForParent"):
                for listed in accounts.paginate(ParentId=parent):
                    found.update({str(a["Id"]): target for a in listed.get("Accounts", [])
                                  if not active_only or a.get("Status", "ACTIVE") == "ACTIVE"})
            with _errors("ListOrganizationalUnitsForParent"):
                for children in ous.paginate(ParentId=parent):
                    parents.extend(str(ou["Id"]) for ou in children.get("OrganizationalUnits", []))
    return found
