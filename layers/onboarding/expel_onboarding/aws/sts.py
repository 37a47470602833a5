"""Who is calling: account, partition, region, and (Organizations mode) the organization id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from expel_onboarding.aws import clients
from expel_onboarding.aws.clients import error_code
from expel_onboarding.errors import OnboardingError


@dataclass(frozen=True)
class Identity:
    account_id: str
    partition: str
    arn: str


def caller_identity() -> Identity:
    response = clients.sts().get_caller_identity()
    arn = str(response["Arn"])
    return Identity(account_id=str(response["Account"]), partition=arn.split(":")[1], arn=arn)


def session_region() -> str:
    """The region the code runs in (the Lambda's ``AWS_REGION``), as boto3 resolved it."""
    return str(clients.sts().meta.region_name)


def describe_organization() -> dict[str, Any]:
    """The caller's organization (``Id`` ``o-...``, ``MasterAccountId``, ``FeatureSet``)."""
    try:
        return dict(clients.organizations().describe_organization()["Organization"])
    except Exception as exc:
        if error_code(exc) == "AWSOrganizationsNotInUseException":
            raise OnboardingError(
                "Parameter OrganizationMode: this account is not in an AWS Organization. Fix: set "
                "OrganizationMode to false, or deploy in your organization's management account") from exc
        raise
