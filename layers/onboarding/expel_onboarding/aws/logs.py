"""CloudWatch Logs: the trail's log group (guide step 1, CIS 3.4). Calls go to the trail's home region."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import REFUSED, Rule, aws_errors, suppress_codes
from expel_onboarding.errors import OnboardingError, TransientError

SERVICE = "CloudWatch Logs"


@dataclass(frozen=True)
class LogGroup:
    name: str
    arn: str  # without the ":*" of the stream form
    kms_key_id: str
    retention_days: int  # 0: never expire


def _errors(name: str) -> AbstractContextManager[None]:
    return aws_errors(
        SERVICE, f"log group {name}",
        # Logs checks the key policy when a group is created with a key; right after step 1 merged the logs
        # statement into it, the new policy may not be visible yet.
        Rule({"AccessDeniedException"}, TransientError,
             "{service} cannot use the KMS key for {what} yet ({message}); retrying. If it persists, check that the "
             "key policy lets logs.<region>.amazonaws.com use the key for this log group", contains="KMS key"),
        Rule({"AccessDeniedException"}, OnboardingError, REFUSED),
        Rule({"LimitExceededException"}, OnboardingError,
             "{service} refused {what}: {message}. Fix: delete log groups you no longer use, or ask AWS for more"))


def log_group(name: str, region: str) -> LogGroup | None:
    """The group named exactly ``name`` (DescribeLogGroups matches a prefix), None when absent."""
    paginator = clients.logs(region).get_paginator("describe_log_groups")
    with _errors(name):
        for page in paginator.paginate(logGroupNamePrefix=name):
            for group in page.get("logGroups", []):
                if group.get("logGroupName") == name:
                    return LogGroup(name=name, arn=str(group.get("arn", "")).removesuffix(":*"),
                                    kms_key_id=str(group.get("kmsKeyId", "")),
                                    retention_days=int(group.get("retentionInDays", 0)))
    return None


def create_log_group(name: str, kms_key_arn: str, tags: dict[str, str], region: str) -> None:
    """Encrypted with ``kms_key_arn`` and tagged at creation. Already there (a concurrent run) is fine."""
    with _errors(name), suppress_codes("ResourceAlreadyExistsException"):
        clients.logs(region).create_log_group(logGroupName=name, kmsKeyId=kms_key_arn, tags=tags)


def associate_kms_key(name: str, kms_key_arn: str, region: str) -> None:
    """New events of the group are encrypted with ``kms_key_arn``; stored ones keep the key they have."""
    with _errors(name):
        clients.logs(region).associate_kms_key(logGroupName=name, kmsKeyId=kms_key_arn)


def tags(arn: str, region: str) -> dict[str, str]:
    with _errors(arn):
        return dict(clients.logs(region).list_tags_for_resource(resourceArn=arn).get("tags", {}))


def put_retention(name: str, days: int, region: str) -> None:
    with _errors(name):
        clients.logs(region).put_retention_policy(logGroupName=name, retentionInDays=days)


def delete_log_group(name: str, region: str) -> bool:
    """False when the group was already gone."""
    with _errors(name), suppress_codes("ResourceNotFoundException"):
        clients.logs(region).delete_log_group(logGroupName=name)
        return True
    return False
