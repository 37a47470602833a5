"""Guide step 1, hardened: the log bucket's server access logs (CIS 3.6, Security Hub CloudTrail.7).

Who read or deleted a log file is recorded by S3 server access logging, delivered to a bucket of its own
that the onboarding makes beside the log bucket (``AccessLogBucketName``). That bucket is private like the
log bucket (ACLs disabled, public access blocked, versioned, TLS-only) and differs where S3 requires it:
- default encryption SSE-S3, not the onboarding's KMS key: S3 delivers server access logs only to a target
  bucket whose default encryption is SSE-S3 (SSE-KMS is not supported for the target);
- no Object Lock and no default retention, which S3 refuses on a target bucket;
- delivery is granted by bucket policy to ``logging.s3.amazonaws.com``, only for our log bucket
  (``aws:SourceArn``) in this account (``aws:SourceAccount``), as AWS documents; never by ACL, which
  BucketOwnerEnforced disables;
- access logs expire after a year (``policies.lifecycle``), so the bucket does not grow for ever;
- it does not log its own access: that would log into itself (AWS advises against it).

``AccessLogging=false`` skips all of it, and stops the log bucket's delivery to our access-log bucket if an
earlier run started it (the access logs already delivered stay). Access logging a person pointed at another
bucket (their central log archive) is kept as it is.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from expel_onboarding.aws import s3
from expel_onboarding.drift import Converge
from expel_onboarding.models import Config, Removal
from expel_onboarding.ownership import is_ours
from expel_onboarding.policies.bucket_policy import access_log_bucket_statements
from expel_onboarding.policies.lifecycle import access_log_expiry_rule
from expel_onboarding.steps import lifecycle_rules, private_bucket

logger = Logger(child=True)

STEP = 1


def target_prefix(config: Config) -> str:
    """Where the log bucket's access logs go in the access-log bucket: one folder per source bucket."""
    return f"{config.bucket_name}/"


def ensure_bucket(run: Converge, config: Config, exists: bool) -> None:
    """The access-log bucket, ready to receive the log bucket's access logs. Call before ``ensure_logging``:
    S3 checks the target's policy when logging is turned on."""
    bucket, owner = config.access_log_bucket_name, config.account_id
    if not private_bucket.ensure(run, config, bucket, exists, parameter="AccessLogBucketName"):
        return
    encryption = s3.encryption_rules(bucket, owner)
    if not _sse_s3_only(encryption):
        run.change(run.finding(f"bucket {bucket}", "default encryption", encryption or None, "SSE-S3 (AES256)",
                               f"in the S3 console, bucket {bucket} > Properties > Default encryption: SSE-S3 (S3 "
                               "delivers server access logs only to an SSE-S3 bucket)"),
                   lambda: s3.put_sse_s3_encryption(bucket, owner))
    statements = access_log_bucket_statements(config.partition, bucket, config.bucket_name, config.account_id,
                                              target_prefix(config))
    private_bucket.ensure_policy_statements(run, bucket, owner, statements,
                                            "S3 delivers the log bucket's access logs with it")
    lifecycle_rules.ensure_rule(run, bucket, owner, access_log_expiry_rule())


def _sse_s3_only(rules: list[dict[str, Any]]) -> bool:
    return len(rules) == 1 and rules[0].get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") == s3.SSE_S3


def ensure_logging(run: Converge, config: Config) -> None:
    """The log bucket's server access logging: to our access-log bucket, or off when AccessLogging is false."""
    bucket, owner = config.bucket_name, config.account_id
    current = s3.logging_target(bucket, owner)
    ours = current is not None and current.bucket == config.access_log_bucket_name
    resource, setting = f"bucket {bucket}", "server access logging"
    if not config.access_logging:
        if ours:
            run.change(run.finding(resource, setting, _shown(current), "off (AccessLogging is false)",
                                   f"in the S3 console, bucket {bucket} > Properties > Server access logging: "
                                   "Disable (the access logs delivered so far stay)"),
                       lambda: s3.stop_logging(bucket, owner))
        return
    wanted = s3.LoggingTarget(bucket=config.access_log_bucket_name, prefix=target_prefix(config))
    if current == wanted:
        return
    if current is not None and not ours:
        logger.warning("Keeping the log bucket's server access logging to a bucket you chose",
                       extra={"bucket": bucket, "target_bucket": current.bucket})
        return
    run.change(run.finding(resource, setting, _shown(current), _shown(wanted),
                           f"in the S3 console, bucket {bucket} > Properties > Server access logging: Enable, "
                           f"destination s3://{wanted.bucket}/{wanted.prefix}"),
               lambda: s3.start_logging(bucket, wanted, owner))


def _shown(target: s3.LoggingTarget | None) -> str | None:
    return None if target is None else f"s3://{target.bucket}/{target.prefix}"


def remove(config: Config, log_bucket: Removal, stop_at: float | None) -> Removal:
    """Stack delete: the access-log bucket goes with the log bucket (KeepLogBucket false, and the log
    bucket deleted or already gone), emptied of every version first; kept whenever the log bucket is.
    ``stop_at``: as for the log bucket, emptying stops then (StillInProgress) and the next call carries on."""
    bucket = config.access_log_bucket_name
    if not bucket:
        return Removal.ABSENT
    if config.keep_log_bucket or log_bucket not in (Removal.DELETED, Removal.ABSENT):
        logger.info("Keeping the access-log bucket and its logs, as the log bucket is kept", extra={"bucket": bucket})
        return Removal.KEPT
    head = s3.head_bucket(bucket, config.account_id)
    if not head.exists:
        return Removal.ABSENT
    if not head.owned or not is_ours(s3.tags(bucket, config.account_id), config.stack_name):
        logger.warning("Leaving an access-log bucket this stack did not create", extra={"bucket": bucket})
        return Removal.NOT_OURS
    count = s3.delete_bucket_with_all_versions(bucket, config.account_id, stop_at)
    logger.info("Deleted the access-log bucket and every object version in it (KeepLogBucket is false)",
                extra={"bucket": bucket, "object_versions": count})
    return Removal.DELETED
