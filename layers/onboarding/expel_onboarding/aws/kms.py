"""KMS: the trail's key and its alias (guide step 1). Its key policy is read and written in kms_policy.py."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import Any

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import ACCESS_DENIED, Rule, aws_errors, suppress_codes
from expel_onboarding.errors import OnboardingError


def _errors(what: str) -> AbstractContextManager[None]:
    return aws_errors(
        "KMS", what,
        Rule(ACCESS_DENIED, OnboardingError,
             "KMS refused {what} ({code}): {message}. The step's Lambda role lacks that permission, or the key "
             "policy or a service control policy denies it. Fix the role (see template.yaml) and retry"),
        Rule({"LimitExceededException"}, OnboardingError,
             "KMS refused {what}: an account quota is reached ({exc}). Fix: delete unused keys or aliases, or "
             "request a quota increase"))


def describe_alias_target(alias: str, region: str) -> dict[str, Any] | None:
    """KeyMetadata of the key ``alias`` (``alias/...``) points to, or None when the alias is free."""
    with _errors(f"looking up {alias}"), suppress_codes("NotFoundException"):
        return dict(clients.kms(region).describe_key(KeyId=alias)["KeyMetadata"])
    return None


def describe_key(key_id: str, region: str) -> dict[str, Any] | None:
    """KeyMetadata of a key given by id, ARN, alias name or alias ARN; None when there is no such key."""
    with _errors(f"describing key {key_id}"), suppress_codes("NotFoundException"):
        return dict(clients.kms(region).describe_key(KeyId=key_id)["KeyMetadata"])
    return None


def key_tags(key_id: str, region: str) -> dict[str, str]:
    with _errors(f"reading the tags of key {key_id}"):
        pages = clients.kms(region).get_paginator("list_resource_tags").paginate(KeyId=key_id)
        return {t["TagKey"]: t["TagValue"] for page in pages for t in page["Tags"]}


def create_key(description: str, policy: dict[str, Any], tags: dict[str, str], region: str) -> dict[str, Any]:
    """A symmetric encrypt/decrypt key, tagged at creation so it is ours from its first moment."""
    with _errors("creating the key"):
        response = clients.kms(region).create_key(
            Description=description,
            KeyUsage="ENCRYPT_DECRYPT",
            KeySpec="SYMMETRIC_DEFAULT",
            Policy=json.dumps(policy),
            Tags=[{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())],
        )
    return dict(response["KeyMetadata"])


def rotation_enabled(key_id: str, region: str) -> bool:
    with _errors(f"reading the rotation of key {key_id}"):
        return bool(clients.kms(region).get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"])


def enable_rotation(key_id: str, region: str) -> None:
    with _errors(f"enabling rotation of key {key_id}"):
        clients.kms(region).enable_key_rotation(KeyId=key_id)


def create_alias(alias: str, key_id: str, region: str) -> bool:
    """Point ``alias`` at the key. False when the alias was taken meanwhile (a concurrent run)."""
    with _errors(f"creating {alias}"), suppress_codes("AlreadyExistsException"):
        clients.kms(region).create_alias(AliasName=alias, TargetKeyId=key_id)
        return True
    return False


def schedule_deletion(key_id: str, region: str, days: int = 7) -> str:
    """Returns when KMS will delete the key (ISO 8601), for the log."""
    with _errors(f"scheduling deletion of key {key_id}"):
        response = clients.kms(region).schedule_key_deletion(KeyId=key_id, PendingWindowInDays=days)
    deletion = response.get("DeletionDate")
    return deletion.isoformat() if hasattr(deletion, "isoformat") else str(deletion or "")


def delete_alias(alias: str, region: str) -> bool:
    """Teardown. False when the alias is already gone."""
    with _errors(f"deleting {alias}"), suppress_codes("NotFoundException"):
        clients.kms(region).delete_alias(AliasName=alias)
        return True
    return False
