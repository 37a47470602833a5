"""The buckets' policies: the CloudTrail log bucket's (guide step 1: what the console writes for "Create new
S3 bucket") and its access-log bucket's (server access log delivery), each with a TLS-only statement."""

from __future__ import annotations

from expel_onboarding.policies import PolicyDocument, Statement
from expel_onboarding.policies._equivalence import merge_keeping_equivalent

ACL_CHECK_SID = "AWSCloudTrailAclCheck"
WRITE_SID = "AWSCloudTrailWrite"
TLS_SID = "DenyInsecureTransport"
BUCKET_POLICY_SIDS = (ACL_CHECK_SID, WRITE_SID, TLS_SID)
# The Sid of AWS's own example (S3 user guide, "Permissions for log delivery").
ACCESS_LOG_DELIVERY_SID = "S3ServerAccessLogsPolicy"


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
        tls_only_statement(bucket),
    ]


def tls_only_statement(bucket_arn: str) -> Statement:
    """Log files are evidence: refuse any plain-HTTP access, whoever asks (CIS 2.1.2, Security Hub S3.5)."""
    return {
        "Sid": TLS_SID,
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def access_log_bucket_statements(partition: str, access_log_bucket: str, source_bucket: str, account_id: str,
                                 prefix: str) -> list[Statement]:
    """S3's log delivery may put the source bucket's access logs under ``prefix``, for that bucket in this
    account only (AWS's documented policy; ACLs are disabled, so a policy is the only way), plus TLS-only.
    S3 delivers over TLS, so the Deny does not stop it."""
    target = f"arn:{partition}:s3:::{access_log_bucket}"
    return [
        {
            "Sid": ACCESS_LOG_DELIVERY_SID,
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{target}/{prefix}*",
            "Condition": {
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:s3:::{source_bucket}"},
                "StringEquals": {"aws:SourceAccount": account_id},
            },
        },
        tls_only_statement(target),
    ]


def merge_bucket_policy(existing: PolicyDocument | None, statements: list[Statement]) -> PolicyDocument:
    """Our statements into the bucket's policy (None when it has none); the rest is kept."""
    return merge_keeping_equivalent(existing, statements)
