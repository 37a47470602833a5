"""Guide step 1's buckets (the log bucket and its access-log bucket): created private and kept so.

Both are made the way the CloudTrail console makes a trail's bucket, made explicit: ACLs disabled
(BucketOwnerEnforced: every object is the account's, access is granted by policy only), every public
access blocked, versioning on, and our ownership tag among whatever tags the bucket carries. Each
setting is read first and written only when it differs, so a rerun writes nothing.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from expel_onboarding.aws import s3
from expel_onboarding.drift import Converge, statement_findings
from expel_onboarding.models import Config
from expel_onboarding.naming import owner_tags
from expel_onboarding.policies import Statement
from expel_onboarding.policies._equivalence import statement_differences
from expel_onboarding.policies.bucket_policy import merge_bucket_policy

logger = Logger(child=True)


def ensure(run: Converge, config: Config, bucket: str, exists: bool, *, parameter: str,
           object_lock: bool = False) -> bool:
    """``parameter`` names the template parameter that chose ``bucket`` (for a name taken meanwhile);
    ``object_lock`` creates the bucket with Object Lock on (S3 lets a bucket get it only at creation).
    False when checking finds no bucket (its settings cannot be compared then)."""
    owner = config.account_id
    tags = owner_tags(config.stack_name)
    resource = f"bucket {bucket}"
    if not exists:
        run.change(run.finding(resource, "bucket", None, f"the onboarding's bucket ({parameter})",
                               "run the onboarding again: it creates the bucket (what was in it before is gone)"),
                   lambda: _create(config, bucket, tags, parameter, object_lock))
        if run.checking:
            return False
    # S3 writes tags as a whole set: keep whatever else the bucket carries.
    current = s3.tags(bucket, owner)
    if {**current, **tags} != current:
        run.change(run.finding(resource, "ownership tag", {k: current.get(k) for k in tags} if current else None,
                               tags, f"tag bucket {bucket} back: " + ", ".join(f"{k}={v}" for k, v in tags.items())),
                   lambda: s3.put_tags(bucket, {**current, **tags}, owner))
    blocked = s3.public_access_block(bucket, owner)
    if blocked != s3.PUBLIC_ACCESS_BLOCK:
        run.change(run.finding(resource, "Block Public Access", blocked, s3.PUBLIC_ACCESS_BLOCK,
                               f"in the S3 console, bucket {bucket} > Permissions > Block public access: all on"),
                   lambda: s3.block_public_access(bucket, owner))
    versioning = s3.versioning_status(bucket, owner)
    if versioning != "Enabled":
        run.change(run.finding(resource, "versioning", versioning or "never enabled", "Enabled",
                               f"in the S3 console, bucket {bucket} > Properties > Bucket Versioning: Enable"),
                   lambda: s3.enable_versioning(bucket, owner))
    ownership = s3.object_ownership(bucket, owner)
    if ownership != s3.OBJECT_OWNERSHIP:
        run.change(run.finding(resource, "Object Ownership", ownership or None, s3.OBJECT_OWNERSHIP,
                               f"in the S3 console, bucket {bucket} > Permissions > Object Ownership: ACLs disabled"),
                   lambda: s3.enforce_bucket_owner(bucket, owner))
    return True


def ensure_policy_statements(run: Converge, bucket: str, owner: str, statements: list[Statement], why: str) -> None:
    """Our statements in the bucket's policy by Sid, every other statement as it is; ``why`` says what they let
    happen, for the fix a finding names."""
    current = s3.bucket_policy(bucket, owner)
    merged = merge_bucket_policy(current, statements)
    if merged != current:
        run.change(statement_findings(
            run.step, f"bucket {bucket}", "bucket policy", current, statement_differences(current, statements),
            f"add the statement {{sid!r}} back to bucket {bucket}'s policy ({why})"),
            lambda: s3.put_bucket_policy(bucket, merged, owner))


def _create(config: Config, bucket: str, tags: dict[str, str], parameter: str, object_lock: bool) -> None:
    s3.create_bucket(bucket, config.region, tags, parameter=parameter, object_lock=object_lock)
    logger.info("Created bucket", extra={"bucket": bucket, "object_lock": object_lock})
