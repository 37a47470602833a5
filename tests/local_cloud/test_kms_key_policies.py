"""KMS refuses the key policies KMS refuses: over 32 KB, not a policy document, or (through IAM's
evaluator) one that locks the caller out unless the bypass flag is set."""

from __future__ import annotations

import json
from typing import Any

import boto3

from local_cloud import kms_key_policies
from tests.conftest import ACCOUNT_ID, REGION
from tests.support import refusal


def _policy(padding: int = 0) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "Enable IAM User Permissions" + " " * padding, "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "Action": "kms:*", "Resource": "*"}]})


def test_a_policy_of_exactly_32_kb_is_taken_and_one_byte_more_is_a_limit_exceeded(aws: None) -> None:
    kms = boto3.client("kms", region_name=REGION)
    base = len(_policy().encode())
    at_limit = _policy(kms_key_policies.MAX_POLICY_BYTES - base)
    assert len(at_limit.encode()) == kms_key_policies.MAX_POLICY_BYTES
    key = kms.create_key(Policy=at_limit)["KeyMetadata"]["KeyId"]
    one_more = _policy(kms_key_policies.MAX_POLICY_BYTES - base + 1)
    error = refusal(kms.put_key_policy, KeyId=key, PolicyName="default", Policy=one_more)
    assert error.code == "LimitExceededException"
    assert kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"] == at_limit
    assert refusal(kms.create_key, Policy=one_more).code == "LimitExceededException"


def test_a_policy_that_is_not_json_is_malformed(aws: None) -> None:
    kms = boto3.client("kms", region_name=REGION)
    assert refusal(kms.create_key, Policy="{not json").code == "MalformedPolicyDocumentException"


def test_a_lockout_is_refused_unless_the_bypass_flag_is_set(aws: None, monkeypatch: Any) -> None:
    kms = boto3.client("kms", region_name=REGION)
    monkeypatch.setattr(kms_key_policies.checks, "allows_put_key_policy", lambda *args: False)
    error = refusal(kms.create_key, Policy=_policy())
    assert error == ("MalformedPolicyDocumentException", kms_key_policies.LOCKOUT)
    assert kms.create_key(Policy=_policy(), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]["KeyId"]
