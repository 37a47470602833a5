"""The CloudFormation custom resource's view of an onboarding. Pure: no boto3, no environment.

CloudFormation sends Create/Update/Delete; we start one Step Functions execution per request
and answer with the guide's ten values (as ``Data``) or with the failing step and its reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from expel_onboarding.errors import InvalidParameter
from expel_onboarding.execution_history import Failure, console_url
from expel_onboarding.models import Config

# Properties of the custom resource that steer the lifecycle rather than describe the onboarding.
SETTINGS_KEYS = ("RetryWindowSeconds", "DeadlineSeconds", "PollSeconds")
DEFAULT_SETTINGS = {"RetryWindowSeconds": 1200, "DeadlineSeconds": 2700, "PollSeconds": 10}

# Stack Output name -> where the value sits in the final state document.
OUTPUT_PATHS: dict[str, tuple[str, ...]] = {
    "WorkbenchGuid": ("Config", "WorkbenchGuid"),
    "AwsRegion": ("Config", "Region"),
    "S3BucketName": ("Trail", "BucketName"),
    "KmsAlias": ("Trail", "KmsAlias"),
    "S3BucketArn": ("Trail", "BucketArn"),
    "SnsTopicArn": ("Topic", "TopicArn"),
    "KmsKeyArn": ("Trail", "KmsKeyArn"),
    "SqsQueueArn": ("Queue", "QueueArn"),
    "SqsQueueUrl": ("Queue", "QueueUrl"),
    "IamRoleArn": ("Role", "RoleArn"),
    "TrailArn": ("Trail", "TrailArn"),
    "AwsAccountId": ("Config", "AccountId"),
    "WorkbenchDeviceId": ("Device", "DeviceId"),
    "WorkbenchDeviceStatus": ("Device", "Status"),
    "WorkbenchRegistrationUrl": ("Device", "RegistrationUrl"),
    "ExecutionArn": ("ExecutionId",),
}


def execution_name(request_type: str, request_id: str) -> str:
    """Derived from the RequestId: a re-delivered request maps to the same execution."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "-", request_id)
    return f"{request_type.lower()}-{clean}"[:80]


# The names that say WHICH trail, bucket, key, topic, queue and role this onboarding is. Changing one on an
# update would build a second set and leave the first (a billed, multi-region trail among it) behind.
IDENTITY_KEYS = ("TrailName", "BucketName", "KmsAlias", "TopicName", "QueueName", "RoleName", "OrganizationMode")
# The poll answers a missed deadline this much before CloudFormation's own ServiceTimeout (the same
# parameter), so a person reads the failed step and not CloudFormation's generic timeout: the poll runs
# once a minute, and the execution starts a little after CloudFormation's request.
DEADLINE_MARGIN_SECONDS = 180


def physical_id(properties: dict[str, Any]) -> str:
    """Stable while the identity stays: CloudFormation never 'replaces' (and deletes) the onboarding.
    The identity's digest is part of it, so an update can tell which names are deployed."""
    identity = json.dumps({key: str(properties.get(key, "")) for key in IDENTITY_KEYS}, sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return f"{properties['StackName']}-cloudtrail-onboarding-{digest}"


def check_update(event: dict[str, Any]) -> None:
    """Refuse an update that renames what the onboarding made, before anything is written.

    The deployed identity is the one in the PhysicalResourceId; a rollback (old properties back)
    matches it again and goes through.
    """
    current = str(event.get("PhysicalResourceId", ""))
    stack = event["ResourceProperties"]["StackName"]
    if not current.startswith(f"{stack}-cloudtrail-onboarding-") or current == physical_id(
            event["ResourceProperties"]):
        return
    old = event.get("OldResourceProperties", {})
    changed = [key for key in IDENTITY_KEYS
               if str(old.get(key, "")) != str(event["ResourceProperties"].get(key, ""))] or list(IDENTITY_KEYS)
    raise InvalidParameter(
        ", ".join(changed), "cannot change on a stack update: the onboarding would build a second trail, bucket, "
        "key, topic, queue or role and leave the first one behind",
        "update the stack with the previous values; to move to new names, delete the stack (it keeps the log "
        "bucket and key by default) and create it again")


def check_settings(properties: dict[str, Any]) -> None:
    """The retry window must end before the deadline, or the person's retry could never complete the stack."""
    values = settings(properties)
    latest = values["DeadlineSeconds"] - DEADLINE_MARGIN_SECONDS
    if values["RetryWindowSeconds"] > latest:
        raise InvalidParameter(
            "RetryWindowSeconds", f"{values['RetryWindowSeconds']} s does not end before the deadline "
                                  f"(OnboardingDeadlineSeconds {values['DeadlineSeconds']} s less a "
                                  f"{DEADLINE_MARGIN_SECONDS} s margin)",
            f"use at most {latest}, or raise OnboardingDeadlineSeconds")


def settings(properties: dict[str, Any]) -> dict[str, int]:
    return {key: int(properties.get(key, default)) for key, default in DEFAULT_SETTINGS.items()}


def execution_input(event: dict[str, Any]) -> dict[str, Any]:
    """The state machine's input: the onboarding config, where to answer, and timing settings.

    The Workbench API key is never here: only its secret's ARN travels in Config.
    """
    properties = {k: v for k, v in event["ResourceProperties"].items()
                  if k not in ("ServiceToken", "ServiceTimeout") and k not in SETTINGS_KEYS}
    config = Config.from_dict(properties)
    return {
        "Config": config.to_dict(),
        "Settings": settings(event["ResourceProperties"]),
        "CloudFormation": {
            "RequestType": event["RequestType"],
            "RequestId": event["RequestId"],
            "ResponseURL": event["ResponseURL"],
            "StackId": event["StackId"],
            "LogicalResourceId": event["LogicalResourceId"],
            # The trigger's ARN: after a delete its crhelper poll rule is removed by target.
            "ServiceToken": event["ResourceProperties"].get("ServiceToken", ""),
            # Delete echoes the id CloudFormation sent (after a failed Create it may not be ours).
            "PhysicalResourceId": (event.get("PhysicalResourceId") if event["RequestType"] == "Delete" else "")
            or physical_id(event["ResourceProperties"]),
        },
    }


def outputs(state: dict[str, Any]) -> dict[str, str]:
    """The stack Outputs from a finished execution's state document (missing parts -> "")."""
    data: dict[str, str] = {}
    for name, path in OUTPUT_PATHS.items():
        value: Any = state
        for key in path:
            value = value.get(key, {}) if isinstance(value, dict) else {}
        data[name] = value if isinstance(value, str) else ""
    return data


def failure_reason(failure: Failure, region: str, execution_arn: str, retry_hint: str = "") -> str:
    """One line a person reads in CloudFormation's events: step, error, and where to retry."""
    reason = f"{failure.step} failed: {failure.error}: {failure.cause}".strip()
    return f"{reason[:700]} | Execution: {console_url(region, execution_arn)}{retry_hint}"


@dataclass
class Outcome:
    """What the poll decided: answer now (SUCCESS/FAILED) or keep waiting (PENDING)."""

    status: str
    data: dict[str, str] = field(default_factory=dict)
    reason: str = ""
