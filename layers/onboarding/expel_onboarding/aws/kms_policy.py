"""KMS key policy reads and writes: guide step 1 puts CloudTrail's statements back on the trail's key, step 4
merges the guide's statements, teardown takes ours out (key creation and alias live in kms.py).

A key has exactly one policy, named "default"; PutKeyPolicy replaces it whole, which is why the steps
only ever write the merged document.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import Any

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import ACCESS_DENIED, Rule, aws_errors, has_code
from expel_onboarding.errors import OnboardingError

POLICY_NAME = "default"
# KMS's own limit on a key policy document.
MAX_POLICY_BYTES = 32 * 1024


def _errors(what: str, key_arn: str) -> AbstractContextManager[None]:
    return aws_errors(
        "KMS", what,
        Rule({"NotFoundException"}, OnboardingError,
             "KMS key {key_arn} does not exist (deleted since step 1?). Retry the onboarding: step 1 creates the "
             "key again"),
        Rule({"KMSInvalidStateException"}, OnboardingError,
             "KMS key {key_arn} is disabled or pending deletion, so {what} failed. Fix: enable it (or cancel its "
             "deletion) in the KMS console, then retry"),
        Rule(ACCESS_DENIED, OnboardingError,
             "KMS refused {what} on {key_arn} ({message}): the step's Lambda role needs kms:GetKeyPolicy and "
             "kms:PutKeyPolicy on the key, and the key policy must keep its 'Enable IAM User Permissions' "
             "statement so IAM policies apply to the key"),
        Rule({"LimitExceededException"}, OnboardingError,
             "KMS refused {what} on {key_arn}: a KMS quota is exceeded ({exc})"),
        Rule({"MalformedPolicyDocumentException"}, OnboardingError,
             "KMS rejected the merged key policy for {key_arn}: {exc}. The onboarding only adds its own "
             "statements (CloudTrail's, the guide's); check the statements already in the policy"),
        key_arn=key_arn)


def key_policy(key_arn: str, region: str) -> dict[str, Any]:
    with _errors("reading the key policy", key_arn):
        policy = clients.kms(region).get_key_policy(KeyId=key_arn, PolicyName=POLICY_NAME)["Policy"]
    return dict(json.loads(policy))


def key_policy_if_usable(key_arn: str, region: str) -> dict[str, Any] | None:
    """Teardown: the key's policy, or None when the key is gone, disabled or pending deletion
    (then there is nothing to clean up, and KMS would refuse the write anyway)."""
    try:
        return key_policy(key_arn, region)
    except OnboardingError as exc:
        if has_code(exc.__cause__, "NotFoundException", "KMSInvalidStateException"):
            return None
        raise


def put_key_policy(key_arn: str, policy: dict[str, Any], region: str) -> None:
    """Replace the key's policy with ``policy`` (the caller passes the merged document). The
    lockout safety check stays on: KMS refuses a policy that would lock the account out."""
    document = json.dumps(policy, indent=2)
    if len(document.encode()) > MAX_POLICY_BYTES:
        raise OnboardingError(
            f"The key policy of {key_arn} would exceed KMS's 32 KB limit with the onboarding's statements "
            "added. Fix: remove unused statements from the key policy, then retry")
    with _errors("writing the key policy", key_arn):
        clients.kms(region).put_key_policy(KeyId=key_arn, PolicyName=POLICY_NAME, Policy=document)
