"""The CloudTrail bucket's policy (guide step 1: what the console writes for "Create new S3 bucket"),
plus a TLS-only statement."""

from __future__ import annotations

from expel_onboarding.policies import PolicyDocument, Statement
from expel_onboarding.policies._equivalence import merge_keeping_equivalent

ACL_CHECK_SID = "AWSCloudTrailAclCheck"
WRITE_SID = "AWSCloudTrailWrite"
TLS_SID = "DenyInsecureTransport"
BUCKET_POLICY_SIDS = (ACL_CHECK_SID, WRITE_SID, TLS_SID)


def cloudtrail_bucket_statements(partition: str, bucket_name: str, account_id: str, trail_arn: str,
                                 organization_id: str | None = None) -> list[Statement]:
    """CloudTrail may check the ACL and write log files, only for this trail (``aws:SourceArn``).

    An organization trail also writes every member account's logs under ``AWSLogs/<org-id>/``.
    """
    bucket = f"arn:{partition}:s3:::{bucket_name}"
    prefixes = [f"{bucket}/AWSLogs/{account_id}/*"]
    if organization_id:
        prefixes.append(f"{bucket}/AWSLogs/{organization_id}/*")
    return [
        {
            "Sid": ACL_CHECK_SID,
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": bucket,
            "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}},
        },
        {
            "Sid": WRITE_SID,
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": sorted(prefixes),
            "Condition": {
                "StringEquals": {"aws:SourceArn": trail_arn, "s3:x-amz-acl": "bucket-owner-full-control"},
            },
        },
        {
            # Log files are evidence: refuse any plain-HTTP access, whoever asks.
            "Sid": TLS_SID,
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": [bucket, f"{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]


def merge_bucket_policy(existing: PolicyDocument | None, statements: list[Statement]) -> PolicyDocument:
    """Our statements into the bucket's policy (None when it has none); the rest is kept."""
    return merge_keeping_equivalent(existing, statements)
