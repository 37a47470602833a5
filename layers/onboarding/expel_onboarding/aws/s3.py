"""S3: the CloudTrail log bucket and its access-log bucket, and their settings (guide steps 1, 2 and 7).

Every call carries ``ExpectedBucketOwner``: bucket names are global, so if the bucket were
deleted and re-created by another account between two calls, S3 refuses (403) instead of us
configuring (or notifying into) someone else's bucket.
"""

from __future__ import annotations

import json
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import Rule, aws_errors, has_code, suppress_codes
from expel_onboarding.errors import OnboardingError, ResourceConflict, StillInProgress, TransientError

if TYPE_CHECKING:
    from mypy_boto3_s3.literals import BucketLocationConstraintType, TransitionDefaultMinimumObjectSizeType
    from mypy_boto3_s3.type_defs import (
        BucketLifecycleConfigurationTypeDef,
        CreateBucketConfigurationTypeDef,
        NotificationConfigurationTypeDef,
        ObjectIdentifierTypeDef,
        ObjectLockConfigurationTypeDef,
        PublicAccessBlockConfigurationTypeDef,
        ServerSideEncryptionRuleTypeDef,
        TagTypeDef,
    )

PUBLIC_ACCESS_BLOCK: PublicAccessBlockConfigurationTypeDef = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
OBJECT_OWNERSHIP: Final = "BucketOwnerEnforced"
# The most keys one ListObjectVersions page and one DeleteObjects call take.
DELETE_BATCH = 1000


@dataclass(frozen=True)
class BucketHead:
    """What HeadBucket says about a name: free, ours (and where), or someone else's."""

    exists: bool
    owned: bool = False
    region: str = ""


def head_bucket(bucket: str, owner: str) -> BucketHead:
    with aws_errors("S3", f"bucket {bucket}"):
        try:
            response = clients.s3().head_bucket(Bucket=bucket, ExpectedBucketOwner=owner)
        except Exception as exc:
            if has_code(exc, "404", "NoSuchBucket", "NotFound"):
                return BucketHead(exists=False)
            if has_code(exc, "403", "AccessDenied", "Forbidden"):
                # Another account's bucket (or one that is not owner-matched): never ours to configure.
                return BucketHead(exists=True, owned=False)
            raise
    region = response.get("BucketRegion") or response["ResponseMetadata"]["HTTPHeaders"].get(
        "x-amz-bucket-region", "")
    return BucketHead(exists=True, owned=True, region=str(region))


def create_bucket(bucket: str, region: str, tags: dict[str, str], *, parameter: str = "BucketName",
                  object_lock: bool = False) -> None:
    """Create in ``region`` with ACLs disabled, tagged at creation: the ownership tag is what lets a
    re-run and teardown recognise the bucket. An already-ours bucket (a concurrent run) is fine.
    ``object_lock`` turns S3 Object Lock on (and with it versioning); ``parameter`` names the template
    parameter that chose the name, for the message when someone else owns it."""
    configuration: CreateBucketConfigurationTypeDef = {
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}
    if region != "us-east-1":  # us-east-1 rejects its own name as a LocationConstraint
        configuration["LocationConstraint"] = cast("BucketLocationConstraintType", region)
    taken = Rule({"BucketAlreadyExists"}, ResourceConflict,
                 "Parameter {parameter}: the bucket {what} exists and belongs to another AWS account. Fix: choose "
                 "another name (bucket names are unique across all of AWS)")
    with (aws_errors("S3", bucket, taken, busy="S3 is busy ({code}) creating bucket {what}; retrying",
                     parameter=parameter),
          suppress_codes("BucketAlreadyOwnedByYou")):
        clients.s3(region).create_bucket(Bucket=bucket, ObjectOwnership=OBJECT_OWNERSHIP,
                                         CreateBucketConfiguration=configuration,
                                         ObjectLockEnabledForBucket=object_lock)


def _bucket_errors(bucket: str, *rules: Rule, **fields: str) -> AbstractContextManager[None]:
    """``rules`` come before the module's own: a call site's special case wins; ``fields`` fill their messages."""
    return aws_errors(
        "S3", f"bucket {bucket}", *rules,
        Rule({"NoSuchBucket"}, OnboardingError,
             "The bucket {bucket} no longer exists. Fix: run the onboarding again from step 1, which re-creates it"),
        Rule({"AccessDenied"}, OnboardingError,
             "Access to bucket {bucket} was denied ({message}): the step's Lambda role lacks that permission, the "
             "bucket belongs to another account, or its policy denies the onboarding role. Fix: the role (see "
             "template.yaml) or the bucket policy, or choose another BucketName"),
        bucket=bucket, **fields)


def tags(bucket: str, owner: str) -> dict[str, str]:
    with _bucket_errors(bucket), suppress_codes("NoSuchTagSet"):
        response = clients.s3().get_bucket_tagging(Bucket=bucket, ExpectedBucketOwner=owner)
        return {t["Key"]: t["Value"] for t in response["TagSet"]}
    return {}


def put_tags(bucket: str, tags: dict[str, str], owner: str) -> None:
    """Write the whole tag set (S3 has no 'add tag'): callers pass existing tags merged with ours."""
    tag_set: list[TagTypeDef] = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    with _bucket_errors(bucket):
        clients.s3().put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set}, ExpectedBucketOwner=owner)


def public_access_block(bucket: str, owner: str) -> dict[str, bool] | None:
    with _bucket_errors(bucket), suppress_codes("NoSuchPublicAccessBlockConfiguration"):
        response = clients.s3().get_public_access_block(Bucket=bucket, ExpectedBucketOwner=owner)
        return {k: bool(v) for k, v in response["PublicAccessBlockConfiguration"].items()}
    return None


def account_public_access_block(account_id: str, region: str) -> dict[str, bool] | None:
    """The account's S3 Block Public Access (S3 Control), which applies to every bucket of the account on top
    of the bucket's own; None when the account has none."""
    with aws_errors("S3", f"the S3 Block Public Access of account {account_id}"), \
            suppress_codes("NoSuchPublicAccessBlockConfiguration"):
        response = clients.s3control(region).get_public_access_block(AccountId=account_id)
        return {k: bool(v) for k, v in response["PublicAccessBlockConfiguration"].items()}
    return None


def effective_public_access_block(bucket: str, owner: str, region: str) -> dict[str, bool]:
    """What S3 applies to the bucket: each setting on when the bucket's or the account's has it on."""
    bucket_block = public_access_block(bucket, owner) or {}
    if all(bucket_block.get(setting) for setting in PUBLIC_ACCESS_BLOCK):
        return dict(bucket_block)  # nothing the account's could add: no S3 Control call
    account_block = account_public_access_block(owner, region) or {}
    return {setting: bool(bucket_block.get(setting) or account_block.get(setting)) for setting in PUBLIC_ACCESS_BLOCK}


def block_public_access(bucket: str, owner: str) -> None:
    with _bucket_errors(bucket):
        clients.s3().put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK, ExpectedBucketOwner=owner)


def versioning_status(bucket: str, owner: str) -> str:
    with _bucket_errors(bucket):
        response = clients.s3().get_bucket_versioning(Bucket=bucket, ExpectedBucketOwner=owner)
    return str(response.get("Status", ""))


def enable_versioning(bucket: str, owner: str) -> None:
    with _bucket_errors(bucket):
        clients.s3().put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}, ExpectedBucketOwner=owner)


def object_ownership(bucket: str, owner: str) -> str:
    with _bucket_errors(bucket), suppress_codes("OwnershipControlsNotFoundError"):
        rules = clients.s3().get_bucket_ownership_controls(
            Bucket=bucket, ExpectedBucketOwner=owner)["OwnershipControls"]["Rules"]
        return str(rules[0]["ObjectOwnership"]) if rules else ""
    return ""


def enforce_bucket_owner(bucket: str, owner: str) -> None:
    with _bucket_errors(bucket):
        clients.s3().put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": OBJECT_OWNERSHIP}]},
            ExpectedBucketOwner=owner)


def bucket_policy(bucket: str, owner: str) -> dict[str, Any] | None:
    with _bucket_errors(bucket), suppress_codes("NoSuchBucketPolicy"):
        response = clients.s3().get_bucket_policy(Bucket=bucket, ExpectedBucketOwner=owner)
        return dict(json.loads(response["Policy"]))
    return None


def put_bucket_policy(bucket: str, policy: dict[str, Any], owner: str) -> None:
    with _bucket_errors(bucket):
        clients.s3().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy), ExpectedBucketOwner=owner)


def encryption_rules(bucket: str, owner: str) -> list[dict[str, Any]]:
    with _bucket_errors(bucket), suppress_codes("ServerSideEncryptionConfigurationNotFoundError"):
        response = clients.s3().get_bucket_encryption(Bucket=bucket, ExpectedBucketOwner=owner)
        return [dict(rule) for rule in response["ServerSideEncryptionConfiguration"]["Rules"]]
    return []


def put_kms_encryption(bucket: str, key_arn: str, owner: str) -> None:
    """Default encryption SSE-KMS with our key; the bucket key cuts KMS requests (and cost) per object."""
    rule: ServerSideEncryptionRuleTypeDef = {
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
        "BucketKeyEnabled": True,
    }
    with _bucket_errors(bucket):
        clients.s3().put_bucket_encryption(
            Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]}, ExpectedBucketOwner=owner)


def notification_configuration(bucket: str, owner: str) -> dict[str, Any]:
    with _bucket_errors(bucket):
        response = clients.s3().get_bucket_notification_configuration(
            Bucket=bucket, ExpectedBucketOwner=owner)
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def put_notification_configuration(bucket: str, configuration: dict[str, Any], owner: str) -> None:
    """Replaces the whole configuration: callers pass the merged document, never just ours."""
    unvalidated = Rule(
        {"InvalidArgument"}, TransientError,
        "S3 could not validate the notification destination for bucket {bucket} ({exc}). S3 test-publishes to the "
        "topic before saving; right after steps 3 and 4 that can fail until the policies propagate. If it "
        "persists: check that the topic policy lets s3.amazonaws.com publish for this bucket (step 3), that the "
        "key policy lets s3.amazonaws.com use the key (step 4), and that the topic is in the bucket's region "
        "(guide: Troubleshooting)")
    with _bucket_errors(bucket, unvalidated):
        clients.s3().put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=cast("NotificationConfigurationTypeDef", configuration),
            ExpectedBucketOwner=owner)


def delete_bucket_with_all_versions(bucket: str, owner: str, stop_at: float | None = None) -> int:
    """Teardown, when the person chose not to keep the logs: every object version and delete marker,
    then the bucket (S3 deletes only an empty bucket). Returns how many versions were deleted.

    Works in batches of at most 1000 (one ListObjectVersions from the start, one DeleteObjects), so a
    call that stops early leaves nothing half done and the next call simply carries on. When
    ``time.monotonic()`` has passed ``stop_at`` after a batch and versions remain, raises
    StillInProgress (the state machine calls again); every call deletes at least one batch.

    A log file CloudTrail delivers meanwhile makes DeleteBucket fail with BucketNotEmpty: retried."""
    deleted = 0
    s3 = clients.s3()
    refilled = Rule({"BucketNotEmpty"}, TransientError,
                    "Bucket {bucket} received new objects while it was emptied; retrying")
    with _bucket_errors(bucket, refilled):
        while True:
            page = s3.list_object_versions(Bucket=bucket, MaxKeys=DELETE_BATCH, ExpectedBucketOwner=owner)
            versions: list[ObjectIdentifierTypeDef] = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]]
            if versions:
                response = s3.delete_objects(Bucket=bucket, Delete={"Objects": versions, "Quiet": True},
                                             ExpectedBucketOwner=owner)
                if response.get("Errors"):
                    first = response["Errors"][0]
                    raise TransientError(f"S3 could not delete {len(response['Errors'])} object versions in "
                                         f"{bucket} (first: {first.get('Key')}: {first.get('Code')}); retrying")
                deleted += len(versions)
            if not page.get("IsTruncated"):
                break  # that was the last page: the bucket is empty
            if stop_at is not None and time.monotonic() >= stop_at:
                raise StillInProgress(
                    f"Emptying bucket {bucket}: deleted {deleted} object versions and delete markers in this "
                    "call, more remain; the next call carries on")
        s3.delete_bucket(Bucket=bucket, ExpectedBucketOwner=owner)
    return deleted


# --- Objects: the verification canary. Only transient codes are mapped here; the verification step maps
# refusals itself, because its message names its own fix.

def put_object(bucket: str, key: str, body: bytes, content_type: str, owner: str) -> None:
    """No SSE arguments: the bucket's default encryption applies."""
    with aws_errors("S3", f"bucket {bucket}"):
        clients.s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type,
                                ExpectedBucketOwner=owner)


def object_versions(bucket: str, prefix: str, owner: str) -> list[tuple[str, str]]:
    """(key, version id) of the versions and delete markers under ``prefix`` (the first page: a few keys)."""
    with aws_errors("S3", f"bucket {bucket}"):
        response = clients.s3().list_object_versions(Bucket=bucket, Prefix=prefix, ExpectedBucketOwner=owner)
    return [(str(entry["Key"]), str(entry["VersionId"]))
            for entry in [*response.get("Versions", []), *response.get("DeleteMarkers", [])]]


def delete_object_version(bucket: str, key: str, version_id: str, owner: str,
                          bypass_governance: bool = False) -> None:
    """``bypass_governance``: remove a version Object Lock's governance mode retains (the caller needs
    s3:BypassGovernanceRetention on it)."""
    with aws_errors("S3", f"bucket {bucket}"):
        if bypass_governance:
            clients.s3().delete_object(Bucket=bucket, Key=key, VersionId=version_id, ExpectedBucketOwner=owner,
                                       BypassGovernanceRetention=True)
        else:
            clients.s3().delete_object(Bucket=bucket, Key=key, VersionId=version_id, ExpectedBucketOwner=owner)


# --- Guide step 1, hardened (CIS 3.6, Security Hub S3.13/S3.15): access logging, lifecycle, Object Lock.

# S3-managed keys: the only default encryption a server access logging target may have.
SSE_S3: Final = "AES256"


def put_sse_s3_encryption(bucket: str, owner: str) -> None:
    rule: ServerSideEncryptionRuleTypeDef = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": SSE_S3}}
    with _bucket_errors(bucket):
        clients.s3().put_bucket_encryption(
            Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]}, ExpectedBucketOwner=owner)


@dataclass(frozen=True)
class LoggingTarget:
    """Where a bucket's server access logs go."""

    bucket: str
    prefix: str


def logging_target(bucket: str, owner: str) -> LoggingTarget | None:
    """None when the bucket's server access logging is off."""
    with _bucket_errors(bucket):
        response = clients.s3().get_bucket_logging(Bucket=bucket, ExpectedBucketOwner=owner)
    enabled = response.get("LoggingEnabled")
    if not enabled:
        return None
    return LoggingTarget(bucket=str(enabled["TargetBucket"]), prefix=str(enabled.get("TargetPrefix", "")))


def start_logging(bucket: str, target: LoggingTarget, owner: str) -> None:
    """S3 checks that the target bucket exists in this account and region and that its policy lets
    logging.s3.amazonaws.com write there; right after that policy was written it may not see it yet."""
    propagation = Rule({"InvalidTargetBucketForLogging"}, TransientError,
                       "S3 refused {target} as the target of bucket {bucket}'s access logs ({message}). Right after "
                       "step 1 wrote the access-log bucket's policy this can happen until it propagates; if it "
                       "persists, check that the policy lets logging.s3.amazonaws.com put objects under "
                       "{target}/{prefix} for this bucket")
    with _bucket_errors(bucket, propagation, target=target.bucket, prefix=target.prefix):
        clients.s3().put_bucket_logging(
            Bucket=bucket, ExpectedBucketOwner=owner,
            BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": target.bucket, "TargetPrefix": target.prefix}})


def stop_logging(bucket: str, owner: str) -> None:
    with _bucket_errors(bucket):
        clients.s3().put_bucket_logging(Bucket=bucket, BucketLoggingStatus={}, ExpectedBucketOwner=owner)


@dataclass(frozen=True)
class Lifecycle:
    """A bucket's lifecycle configuration: its rules, and the minimum object size for transitions (S3's
    default when None), which PutBucketLifecycleConfiguration resets unless it is passed back."""

    rules: list[dict[str, Any]]
    transition_default: str | None = None


def lifecycle_configuration(bucket: str, owner: str) -> Lifecycle:
    with _bucket_errors(bucket), suppress_codes("NoSuchLifecycleConfiguration"):
        response = clients.s3().get_bucket_lifecycle_configuration(Bucket=bucket, ExpectedBucketOwner=owner)
        return Lifecycle(rules=[dict(rule) for rule in response.get("Rules", [])],
                         transition_default=response.get("TransitionDefaultMinimumObjectSize"))
    return Lifecycle(rules=[])


def put_lifecycle_configuration(bucket: str, lifecycle: Lifecycle, owner: str) -> None:
    """Replaces the whole configuration: callers pass the merged rules, never just ours."""
    configuration = cast("BucketLifecycleConfigurationTypeDef", {"Rules": lifecycle.rules})
    with _bucket_errors(bucket):
        if lifecycle.transition_default is None:
            clients.s3().put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration=configuration, ExpectedBucketOwner=owner)
        else:
            clients.s3().put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration=configuration, ExpectedBucketOwner=owner,
                TransitionDefaultMinimumObjectSize=cast("TransitionDefaultMinimumObjectSizeType",
                                                        lifecycle.transition_default))


# Governance mode: a principal granted s3:BypassGovernanceRetention can still remove a version (the onboarding's
# own canary); compliance mode would lock even the root user out until the retention ends.
OBJECT_LOCK_MODE: Final = "GOVERNANCE"


@dataclass(frozen=True)
class ObjectLock:
    """A bucket's Object Lock: whether it is on (only ever chosen at creation), and its default retention."""

    enabled: bool
    mode: str = ""
    days: int = 0


def object_lock(bucket: str, owner: str) -> ObjectLock:
    with _bucket_errors(bucket), suppress_codes("ObjectLockConfigurationNotFoundError"):
        configuration = clients.s3().get_object_lock_configuration(
            Bucket=bucket, ExpectedBucketOwner=owner)["ObjectLockConfiguration"]
        retention = configuration.get("Rule", {}).get("DefaultRetention", {})
        return ObjectLock(enabled=configuration.get("ObjectLockEnabled") == "Enabled",
                          mode=str(retention.get("Mode", "")), days=int(retention.get("Days", 0)))
    return ObjectLock(enabled=False)


def put_object_lock_retention(bucket: str, days: int, owner: str) -> None:
    """The default retention of a bucket that has Object Lock: ``days`` in governance mode, none when 0."""
    configuration: ObjectLockConfigurationTypeDef = {"ObjectLockEnabled": "Enabled"}
    if days:
        configuration["Rule"] = {"DefaultRetention": {"Mode": OBJECT_LOCK_MODE, "Days": days}}
    with _bucket_errors(bucket):
        clients.s3().put_object_lock_configuration(
            Bucket=bucket, ObjectLockConfiguration=configuration, ExpectedBucketOwner=owner)
