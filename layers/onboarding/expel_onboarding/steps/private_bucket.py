"""Guide step 1's buckets (the log bucket and its access-log bucket): created private and kept so.

Both are made the way the CloudTrail console makes a trail's bucket, made explicit: ACLs disabled
(BucketOwnerEnforced: every object is the account's, access is granted by policy only), every public
access blocked, versioning on, and our ownership tag among whatever tags the bucket carries. Each
setting is read first and written only when it differs, so a rerun writes nothing.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from expel_onboarding.aws import s3
from expel_onboarding.models import Config
from expel_onboarding.naming import owner_tags

logger = Logger(child=True)


def ensure(config: Config, bucket: str, exists: bool, *, parameter: str, object_lock: bool = False) -> None:
    """``parameter`` names the template parameter that chose ``bucket`` (for a name taken meanwhile);
    ``object_lock`` creates the bucket with Object Lock on (S3 lets a bucket get it only at creation)."""
    owner = config.account_id
    tags = owner_tags(config.stack_name)
    if not exists:
        s3.create_bucket(bucket, config.region, tags, parameter=parameter, object_lock=object_lock)
        logger.info("Created bucket", extra={"bucket": bucket, "object_lock": object_lock})
    # S3 writes tags as a whole set: keep whatever else the bucket carries.
    current = s3.tags(bucket, owner)
    if {**current, **tags} != current:
        s3.put_tags(bucket, {**current, **tags}, owner)
    if s3.public_access_block(bucket, owner) != s3.PUBLIC_ACCESS_BLOCK:
        s3.block_public_access(bucket, owner)
    if s3.versioning_status(bucket, owner) != "Enabled":
        s3.enable_versioning(bucket, owner)
    if s3.object_ownership(bucket, owner) != s3.OBJECT_OWNERSHIP:
        s3.enforce_bucket_owner(bucket, owner)
