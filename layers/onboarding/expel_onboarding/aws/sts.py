"""Who is calling: account, partition and region. (The organization is ``organizations.describe_organization``.)"""

from __future__ import annotations

from dataclasses import dataclass

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import aws_errors


@dataclass(frozen=True)
class Identity:
    account_id: str
    partition: str
    arn: str


def caller_identity() -> Identity:
    with aws_errors("STS", "GetCallerIdentity"):
        response = clients.sts().get_caller_identity()
    arn = str(response["Arn"])
    return Identity(account_id=str(response["Account"]), partition=arn.split(":")[1], arn=arn)


def session_region() -> str:
    """The region the code runs in (the Lambda's ``AWS_REGION``), as boto3 resolved it."""
    return str(clients.sts().meta.region_name)
