"""An organization trail (Organizations mode) writes with the policies of guide step 1: checked here as
CloudTrail evaluates them, for the management account's trail and for a member account's log file."""

from __future__ import annotations

from fnmatch import fnmatchcase

from expel_onboarding.policies.bucket_policy import WRITE_SID, cloudtrail_bucket_statements
from expel_onboarding.policies.key_policy import CLOUDTRAIL_ENCRYPT_SID, cloudtrail_key_policy

MANAGEMENT = "111122223333"
MEMBER = "444455556666"
ORG_ID = "o-a1b2c3d4e5"
BUCKET = "expel-cloudtrail-logs"
# An organization trail lives in the management account, whichever account's events it logs.
ORG_TRAIL_ARN = f"arn:aws:cloudtrail:us-east-1:{MANAGEMENT}:trail/ExpelCloudTrail"


def _string_like(pattern: str, value: str) -> bool:
    return fnmatchcase(value, pattern)  # IAM's StringLike: * and ? wildcards, case-sensitive


def test_bucket_admits_member_account_log_files_of_the_organization_trail_only() -> None:
    write = next(s for s in cloudtrail_bucket_statements("aws", BUCKET, MANAGEMENT, ORG_TRAIL_ARN, ORG_ID)
                 if s["Sid"] == WRITE_SID)
    member_log = f"arn:aws:s3:::{BUCKET}/AWSLogs/{ORG_ID}/{MEMBER}/CloudTrail/eu-west-1/2026/01/01/x.json.gz"

    assert any(_string_like(r, member_log) for r in write["Resource"])
    assert write["Condition"]["StringEquals"]["aws:SourceArn"] == ORG_TRAIL_ARN


def test_key_admits_data_keys_for_the_organization_trail_in_every_region() -> None:
    policy = cloudtrail_key_policy("aws", "us-east-1", MANAGEMENT, "ExpelCloudTrail")
    encrypt = next(s for s in policy["Statement"] if s["Sid"] == CLOUDTRAIL_ENCRYPT_SID)
    context = encrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"]

    # A multi-region organization trail encrypts member accounts' logs with its own ARN as context.
    assert _string_like(context, ORG_TRAIL_ARN)
    assert encrypt["Condition"]["StringEquals"]["aws:SourceArn"] == ORG_TRAIL_ARN
    assert not _string_like(context, f"arn:aws:cloudtrail:us-east-1:{MEMBER}:trail/ExpelCloudTrail")
