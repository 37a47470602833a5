"""The CloudTrail KMS key's policy (guide steps 1 and 4).

``cloudtrail_key_policy`` is what the CloudTrail console writes when it creates a key for a new
trail (guide step 1 leaves that choice on "New"); ``guide_key_statements`` are the two statements
guide step 4 appends so S3 and SNS can use the key for the notification path.
"""

from __future__ import annotations

from typing import Any

from expel_onboarding.policies import PolicyDocument, Statement
from expel_onboarding.policies._equivalence import merge_keeping_equivalent

ROOT_SID = "Enable IAM User Permissions"
CLOUDTRAIL_ENCRYPT_SID = "Allow CloudTrail to encrypt logs"
CLOUDTRAIL_DESCRIBE_SID = "Allow CloudTrail to describe key"
ACCOUNT_DECRYPT_SID = "Allow principals in the account to decrypt log files"
CROSS_ACCOUNT_DECRYPT_SID = "Enable cross account log decryption"
CLOUDTRAIL_KEY_SIDS = (ROOT_SID, CLOUDTRAIL_ENCRYPT_SID, CLOUDTRAIL_DESCRIBE_SID, ACCOUNT_DECRYPT_SID,
                       CROSS_ACCOUNT_DECRYPT_SID)

# The guide's own Sids (step 4), kept verbatim so a statement someone pasted by hand is replaced,
# not duplicated. Key policies accept spaces and "/" in Sids.
BUCKET_SID = "Allow cloudtrail bucket to encrypt/decrypt"
SNS_SID = "Allow SNS to encrypt/decrypt"
GUIDE_KEY_SIDS = (BUCKET_SID, SNS_SID)

_ENCRYPT_DECRYPT = sorted(["kms:GenerateDataKey", "kms:Decrypt"])
_LOG_DECRYPT = sorted(["kms:Decrypt", "kms:ReEncryptFrom"])


def _cloudtrail_context(partition: str, account_id: str) -> dict[str, Any]:
    # CloudTrail puts the trail ARN in the encryption context of every log file's data key.
    return {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:{partition}:cloudtrail:*:{account_id}:trail/*"}


def _decrypt_statement(sid: str, partition: str, account_id: str) -> Statement:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": list(_LOG_DECRYPT),
        "Resource": "*",
        "Condition": {
            "StringEquals": {"kms:CallerAccount": account_id},
            "StringLike": _cloudtrail_context(partition, account_id),
        },
    }


def cloudtrail_key_policy(partition: str, region: str, account_id: str, trail_name: str) -> PolicyDocument:
    """The policy the CloudTrail console gives a key it creates for a trail.

    In a key policy ``"Resource": "*"`` means this key. The console's "Allow alias creation during
    setup" statement (kms:CreateAlias via EC2) is left out: nothing here needs it.
    """
    trail_arn = f"arn:{partition}:cloudtrail:{region}:{account_id}:trail/{trail_name}"
    return {
        "Version": "2012-10-17",
        "Id": "Key policy created by CloudTrail",
        "Statement": [
            _root_statement(partition, account_id),
            {
                "Sid": CLOUDTRAIL_ENCRYPT_SID,
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:SourceArn": trail_arn},
                    "StringLike": _cloudtrail_context(partition, account_id),
                },
            },
            {
                # aws:SourceArn here too, as CloudTrail's key policy guide recommends: only our trail.
                "Sid": CLOUDTRAIL_DESCRIBE_SID,
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:DescribeKey",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}},
            },
            _decrypt_statement(ACCOUNT_DECRYPT_SID, partition, account_id),
            # As in the guide's Troubleshooting JSON: the same grant under the console's second Sid.
            _decrypt_statement(CROSS_ACCOUNT_DECRYPT_SID, partition, account_id),
        ],
    }


def _root_statement(partition: str, account_id: str) -> Statement:
    # Without it IAM policies (including the onboarding's own role) cannot use the key.
    return {
        "Sid": ROOT_SID,
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


def own_key_policy(partition: str, account_id: str) -> PolicyDocument:
    """The policy of the key the onboarding creates for an existing trail's topic and queue (the trail's log
    files do not use it, so CloudTrail gets no statement): the account's IAM policies apply; step 4 adds the
    guide's two statements."""
    return {"Version": "2012-10-17", "Id": "Key policy of the Expel onboarding's topic and queue key",
            "Statement": [_root_statement(partition, account_id)]}


def stack_sid(sid: str, stack_name: str) -> str:
    """The Sid under which this stack adds one of the guide's statements to a key that is not its own (an
    existing trail's key, a customer's topic key): a stack delete removes exactly these, never the guide's
    statement a person pasted by hand under the guide's own Sid."""
    return f"{sid} (stack {stack_name})"


def guide_key_statements(bucket_arn: str, topic_arn: str) -> list[Statement]:
    """Guide step 4: S3 (publishing bucket events) and SNS (delivering to the encrypted queue)
    need data keys from this key, each only on behalf of our bucket or our topic."""
    return [
        {
            "Sid": BUCKET_SID,
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": list(_ENCRYPT_DECRYPT),
            "Resource": "*",
            "Condition": {"StringLike": {"aws:SourceArn": bucket_arn}},
        },
        {
            "Sid": SNS_SID,
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": list(_ENCRYPT_DECRYPT),
            "Resource": "*",
            "Condition": {"StringLike": {"aws:SourceArn": topic_arn}},
        },
    ]


def merge_key_policy(existing: PolicyDocument, bucket_arn: str, topic_arn: str) -> PolicyDocument:
    """Append the guide's statements to the key's current policy; everything else stays as it is."""
    return merge_keeping_equivalent(existing, guide_key_statements(bucket_arn, topic_arn))


# CloudWatch Logs encrypts the trail's log group with this key (CIS 3.4 delivery, encrypted like the bucket).
CLOUDWATCH_LOGS_SID = "Allow CloudWatch Logs to encrypt the trail's log group"


def cloudwatch_logs_key_statement(partition: str, region: str, account_id: str, log_group: str) -> Statement:
    """The statement the CloudWatch Logs guide ("Encrypt log data using AWS KMS") gives the regional logs
    service, pinned by the encryption context to our one log group."""
    return {
        "Sid": CLOUDWATCH_LOGS_SID,
        "Effect": "Allow",
        "Principal": {"Service": f"logs.{region}.amazonaws.com"},
        "Action": sorted(["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]),
        "Resource": "*",
        "Condition": {"ArnEquals": {
            "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:log-group:{log_group}"}},
    }
