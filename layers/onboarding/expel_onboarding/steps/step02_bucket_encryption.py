"""Guide step 2: the bucket's default encryption becomes SSE-KMS with the trail's key, bucket key on.

CloudTrail already encrypts its log files with the key; this makes every other object (digests,
the verification canary) use it too, instead of S3's default SSE-S3.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from expel_onboarding.aws import s3
from expel_onboarding.drift import Converge, Mode, StepCheck, not_ready, run_check
from expel_onboarding.models import BucketEncryptionOutput, Config, TrailOutput

logger = Logger(child=True)

STEP = 2
SSE_ALGORITHM = "aws:kms"


def _already_set(rules: list[dict[str, Any]], key_arn: str) -> bool:
    # S3 holds one default-encryption rule; the key may have been given as ARN or bare key id.
    key_id = key_arn.rsplit("/", 1)[-1]
    for rule in rules:
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        if (default.get("SSEAlgorithm") == SSE_ALGORITHM
                and default.get("KMSMasterKeyID") in (key_arn, key_id)
                and rule.get("BucketKeyEnabled") is True):
            return True
    return False


def apply(config: Config, trail: TrailOutput) -> BucketEncryptionOutput:
    if trail.existing_trail:
        rules = s3.encryption_rules(trail.bucket_name, config.account_id)
        # The customer's bucket keeps its encryption (a difference from the guide is among step 1's findings).
        default: dict[str, Any] = next((rule.get("ApplyServerSideEncryptionByDefault", {}) for rule in rules), {})
        return BucketEncryptionOutput(sse_algorithm=str(default.get("SSEAlgorithm", "")),
                                      kms_key_arn=str(default.get("KMSMasterKeyID", "")),
                                      bucket_key_enabled=any(rule.get("BucketKeyEnabled") is True for rule in rules))
    converge(Converge(STEP), config, trail)
    return BucketEncryptionOutput(sse_algorithm=SSE_ALGORITHM, kms_key_arn=trail.kms_key_arn,
                                  bucket_key_enabled=True)


def check(config: Config, trail: TrailOutput) -> StepCheck:
    """Drift check: what ``apply`` would change, written nowhere."""
    skip = "an existing trail: the customer's bucket keeps its encryption" if trail.existing_trail else ""
    needs = [("the bucket", trail.bucket_name, 1), ("the KMS key", trail.kms_key_arn, 1)]
    return not_ready(STEP, needs, skip) or run_check(Converge(STEP, Mode.CHECK),
                                                     lambda run: converge(run, config, trail))


def converge(run: Converge, config: Config, trail: TrailOutput) -> None:
    """The end state: one default-encryption rule, SSE-KMS with the trail's key, bucket key on."""
    rules = s3.encryption_rules(trail.bucket_name, config.account_id)
    if not _already_set(rules, trail.kms_key_arn):
        wanted = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": SSE_ALGORITHM,
                                                         "KMSMasterKeyID": trail.kms_key_arn},
                  "BucketKeyEnabled": True}
        run.change(run.finding(
            f"bucket {trail.bucket_name}", "default encryption", rules[0] if rules else None, wanted,
            f"in the S3 console, bucket {trail.bucket_name} > Properties > Default encryption: SSE-KMS with "
            f"{trail.kms_key_arn}, bucket key enabled"),
            lambda: s3.put_kms_encryption(trail.bucket_name, trail.kms_key_arn, config.account_id))
