"""AWS's Service Authorization Reference as data: IAM actions, their resource types and ARN formats.

The data is the copy parliament ships (``iam_definition.json``, a pinned dev dependency), read once.
Which IAM action(s) an API operation needs is the action of the same name, except for the documented
exceptions in ``OPERATION_ACTIONS`` (each one tested): S3's historical names, Lambda's Invoke, and the
like. Extra permissions some requests need beyond their own action (PassRole, tag-on-create, ...) are
decided per request in ``local_cloud.iam.requests``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

# API operation -> IAM action(s), where the two differ (Service Authorization Reference, per service's
# "Actions" table and its API reference's "Permissions" notes).
OPERATION_ACTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    # S3 kept the action names of its first API when the operations were renamed.
    ("s3", "PutBucketNotificationConfiguration"): ("s3:PutBucketNotification",),
    ("s3", "GetBucketNotificationConfiguration"): ("s3:GetBucketNotification",),
    ("s3", "ListObjectVersions"): ("s3:ListBucketVersions",),
    ("s3", "ListObjects"): ("s3:ListBucket",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    ("s3", "HeadObject"): ("s3:GetObject",),
    ("s3", "ListBuckets"): ("s3:ListAllMyBuckets",),
    ("s3", "GetBucketEncryption"): ("s3:GetEncryptionConfiguration",),
    ("s3", "PutBucketEncryption"): ("s3:PutEncryptionConfiguration",),
    ("s3", "DeleteBucketEncryption"): ("s3:PutEncryptionConfiguration",),
    ("s3", "GetPublicAccessBlock"): ("s3:GetBucketPublicAccessBlock",),
    ("s3", "PutPublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
    ("s3", "DeletePublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
    ("s3", "DeleteBucketTagging"): ("s3:PutBucketTagging",),
    ("s3", "DeleteBucketOwnershipControls"): ("s3:PutBucketOwnershipControls",),
    ("s3", "GetBucketLifecycleConfiguration"): ("s3:GetLifecycleConfiguration",),
    ("s3", "PutBucketLifecycleConfiguration"): ("s3:PutLifecycleConfiguration",),
    ("s3", "GetObjectLockConfiguration"): ("s3:GetBucketObjectLockConfiguration",),
    ("s3", "PutObjectLockConfiguration"): ("s3:PutBucketObjectLockConfiguration",),
    # S3 Control's account-level Block Public Access (the Service Authorization Reference lists it under s3).
    ("s3control", "GetPublicAccessBlock"): ("s3:GetAccountPublicAccessBlock",),
    ("s3control", "PutPublicAccessBlock"): ("s3:PutAccountPublicAccessBlock",),
    ("s3control", "DeletePublicAccessBlock"): ("s3:PutAccountPublicAccessBlock",),
    ("s3", "CreateMultipartUpload"): ("s3:PutObject",),
    ("s3", "UploadPart"): ("s3:PutObject",),
    ("s3", "CompleteMultipartUpload"): ("s3:PutObject",),
    ("s3", "CopyObject"): ("s3:PutObject",),
    # Lambda names the invoke permission after the function, not the operation.
    ("lambda", "Invoke"): ("lambda:InvokeFunction",),
    ("lambda", "InvokeAsync"): ("lambda:InvokeFunction",),
    # SQS and SNS batch operations need the permission of the single operation (SQS developer guide,
    # "Amazon SQS batch actions"; SNS PublishBatch).
    ("sqs", "SendMessageBatch"): ("sqs:SendMessage",),
    ("sqs", "DeleteMessageBatch"): ("sqs:DeleteMessage",),
    ("sqs", "ChangeMessageVisibilityBatch"): ("sqs:ChangeMessageVisibility",),
    ("sns", "PublishBatch"): ("sns:Publish",),
}
# Operations IAM never authorizes (AWS answers them for any valid credentials).
UNAUTHORIZED_OPERATIONS = frozenset({("sts", "GetCallerIdentity")})


class UnknownAction(LookupError):
    """An operation the Service Authorization Reference has no action for (the request is refused)."""


@dataclass(frozen=True)
class ResourceType:
    name: str
    required: bool
    arn_format: str  # "arn:${Partition}:kms:${Region}:${Account}:key/${KeyId}"


@dataclass(frozen=True)
class Action:
    name: str  # "kms:CreateAlias", spelled as the reference spells it
    resource_types: tuple[ResourceType, ...]
    condition_keys: frozenset[str]  # lower case
    dependent_actions: tuple[str, ...]


def _definition_path() -> Path:
    spec = importlib.util.find_spec("parliament")
    if spec is None or spec.origin is None:
        raise RuntimeError("parliament (a dev dependency) is not installed: its IAM reference data is needed")
    return Path(spec.origin).parent / "iam_definition.json"


_index_lock = threading.Lock()  # built once per service: a second caller waits for the first
_indexes: dict[str, dict[str, Action]] = {}  # service prefix (lower case) -> its actions by lower-case name


def _index(prefix: str) -> dict[str, Action]:
    """The actions of one service (``kms``), read from the reference the first time it is asked for: the whole
    reference (four hundred services, fifteen thousand actions) took a third of a second to build, and a local
    cloud asks about a dozen services."""
    key = prefix.lower()
    found = _indexes.get(key)
    if found is None:
        with _index_lock:
            found = _indexes.get(key)
            if found is None:
                found = _indexes[key] = _built_index(_entries().get(key, ()))
    return found


@cache
def _entries() -> dict[str, list[dict[str, Any]]]:
    """The reference's entries by service prefix (lower case), in the reference's order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for service in json.loads(_definition_path().read_text(encoding="utf-8")):
        grouped.setdefault(service["prefix"].lower(), []).append(service)
    return grouped


def _built_index(services: Iterable[dict[str, Any]]) -> dict[str, Action]:
    services = list(services)
    arns: dict[tuple[str, str], str] = {}
    for service in services:
        for resource in service["resources"]:
            arns.setdefault((service["prefix"], resource["resource"].lower()), resource["arn"])
    actions: dict[str, Action] = {}
    for service in services:
        prefix = service["prefix"]
        for privilege in service["privileges"]:
            types: list[ResourceType] = []
            keys: set[str] = set()
            dependent: list[str] = []
            for entry in privilege["resource_types"]:
                keys.update(k.lower() for k in entry["condition_keys"])
                dependent.extend(entry["dependent_actions"])
                name = entry["resource_type"]
                if not name:
                    continue
                required = name.endswith("*")
                name = name.rstrip("*")
                arn = arns.get((prefix, name.lower()))
                if arn:
                    types.append(ResourceType(name, required, arn))
            full = f"{prefix}:{privilege['privilege']}"
            actions.setdefault(full.lower(), Action(full, tuple(types), frozenset(keys), tuple(dependent)))
    return actions


def action(name: str) -> Action | None:
    """The reference's entry for ``service:Action`` (any case), None when there is none."""
    return _index(name.split(":", 1)[0]).get(name.lower())


def service_actions(prefix: str) -> tuple[Action, ...]:
    """Every action of one service (``s3``...) the reference lists."""
    return tuple(_index(prefix).values())


def resource_arn_format(prefix: str, resource_type: str) -> str | None:
    for entry in _index(prefix).values():
        if entry.name.split(":")[0] == prefix:
            for rt in entry.resource_types:
                if rt.name.lower() == resource_type.lower():
                    return rt.arn_format
    return None


def actions_for(prefix: str, operation: str) -> tuple[str, ...]:
    """The IAM action(s) the API operation ``operation`` of service ``prefix`` needs."""
    if (prefix, operation) in UNAUTHORIZED_OPERATIONS:
        return ()
    mapped = OPERATION_ACTIONS.get((prefix, operation))
    if mapped:
        return mapped
    found = action(f"{prefix}:{operation}")
    if found is None:
        raise UnknownAction(f"{prefix}:{operation} has no IAM action in the Service Authorization Reference")
    return (found.name,)


_VARIABLE = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def fill(arn_format: str, variables: dict[str, str]) -> str | None:
    """The ARN with every ``${Var}`` replaced, or None when a variable is not known."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        found = variables.get(match.group(1))
        if found is None:
            missing = True
            return ""
        return found

    filled = _VARIABLE.sub(value, arn_format)
    return None if missing else filled
