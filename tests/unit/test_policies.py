"""The policy builders produce exactly the documents the guide (and CloudTrail's console) describe."""

from __future__ import annotations

import copy
import json

import pytest

from expel_onboarding.policies import policy_attribute
from expel_onboarding.policies.bucket_policy import (
    BUCKET_POLICY_SIDS,
    cloudtrail_bucket_statements,
    merge_bucket_policy,
)
from expel_onboarding.policies.key_policy import (
    GUIDE_KEY_SIDS,
    cloudtrail_key_policy,
    guide_key_statements,
    merge_key_policy,
)
from expel_onboarding.policies.notification import (
    NOTIFICATION_ID,
    merge_notification_configuration,
    notification_present,
    remove_notification,
)
from expel_onboarding.policies.queue_policy import merge_queue_policy, queue_statements
from expel_onboarding.policies.topic_policy import merge_topic_policy, topic_statements

ACCOUNT = "123456789012"
BUCKET_ARN = "arn:aws:s3:::expel-cloudtrail-logs"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:ExpelCloudTrailTopic"
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:ExpelCloudTrailQueue"
TRAIL_ARN = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/ExpelCloudTrail"


def _decrypt(sid: str, partition: str) -> dict:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": ["kms:Decrypt", "kms:ReEncryptFrom"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {"kms:CallerAccount": ACCOUNT},
            "StringLike": {
                "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:{partition}:cloudtrail:*:{ACCOUNT}:trail/*",
            },
        },
    }


def _console_key_policy(partition: str, region: str) -> dict:
    trail = f"arn:{partition}:cloudtrail:{region}:{ACCOUNT}:trail/ExpelCloudTrail"
    return {
        "Version": "2012-10-17",
        "Id": "Key policy created by CloudTrail",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Allow CloudTrail to encrypt logs",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:SourceArn": trail},
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn":
                            f"arn:{partition}:cloudtrail:*:{ACCOUNT}:trail/*"},
                },
            },
            {
                "Sid": "Allow CloudTrail to describe key",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:DescribeKey",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceArn": trail}},
            },
            _decrypt("Allow principals in the account to decrypt log files", partition),
            _decrypt("Enable cross account log decryption", partition),
        ],
    }


# The guide's step 4 JSON, actions in sorted order (the same grant; IAM ignores their order).
GUIDE_STEP4 = [
    {
        "Sid": "Allow cloudtrail bucket to encrypt/decrypt",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": "*",
        "Condition": {"StringLike": {"aws:SourceArn": BUCKET_ARN}},
    },
    {
        "Sid": "Allow SNS to encrypt/decrypt",
        "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": "*",
        "Condition": {"StringLike": {"aws:SourceArn": TOPIC_ARN}},
    },
]


def _bucket_statements(resources: list[str]) -> list[dict]:
    return [
        {
            "Sid": "AWSCloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": BUCKET_ARN,
            "Condition": {"StringEquals": {"aws:SourceArn": TRAIL_ARN}},
        },
        {
            "Sid": "AWSCloudTrailWrite",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": resources,
            "Condition": {"StringEquals": {"aws:SourceArn": TRAIL_ARN,
                                           "s3:x-amz-acl": "bucket-owner-full-control"}},
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]


TOPIC_STATEMENT = {
    "Sid": "expel-statement-ID",
    "Effect": "Allow",
    "Principal": {"Service": "s3.amazonaws.com"},
    "Action": ["SNS:Publish"],
    "Resource": TOPIC_ARN,
    "Condition": {"ArnLike": {"aws:SourceArn": BUCKET_ARN}, "StringEquals": {"aws:SourceAccount": ACCOUNT}},
}

FOREIGN = {"Sid": "Other", "Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": QUEUE_ARN,
           "Condition": {"Bool": {"aws:SecureTransport": "false"}}}

QUEUE_STATEMENT = {
    "Sid": "Sid1572965666162",
    "Effect": "Allow",
    "Principal": {"Service": "sns.amazonaws.com"},
    "Action": "SQS:SendMessage",
    "Resource": QUEUE_ARN,
    "Condition": {"ArnEquals": {"aws:SourceArn": TOPIC_ARN}},
}

# What SNS gives a topic created without a policy.
SNS_DEFAULT_POLICY = {
    "Version": "2008-10-17",
    "Id": "__default_policy_ID",
    "Statement": [{
        "Sid": "__default_statement_ID",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                   "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                   "SNS:ListSubscriptionsByTopic", "SNS:Publish"],
        "Resource": TOPIC_ARN,
        "Condition": {"StringEquals": {"AWS:SourceOwner": ACCOUNT}},
    }],
}


@pytest.mark.parametrize(("partition", "region"), [("aws", "us-east-1"), ("aws-us-gov", "us-gov-west-1"),
                                                   ("aws-cn", "cn-north-1")])
def test_cloudtrail_key_policy_is_the_console_policy_for_the_partition(partition: str, region: str) -> None:
    assert cloudtrail_key_policy(partition, region, ACCOUNT, "ExpelCloudTrail") == \
        _console_key_policy(partition, region)


def test_guide_key_statements_are_the_guide_step4_statements() -> None:
    assert guide_key_statements(BUCKET_ARN, TOPIC_ARN) == GUIDE_STEP4
    assert tuple(s["Sid"] for s in GUIDE_STEP4) == GUIDE_KEY_SIDS


def test_merge_key_policy_appends_guide_statements_after_the_console_policy() -> None:
    console = _console_key_policy("aws", "us-east-1")
    assert merge_key_policy(console, BUCKET_ARN, TOPIC_ARN) == {
        **console, "Statement": console["Statement"] + GUIDE_STEP4}


def test_merge_key_policy_replaces_a_stale_guide_statement_in_place() -> None:
    console = _console_key_policy("aws", "us-east-1")
    stale = copy.deepcopy(GUIDE_STEP4[0])
    stale["Condition"]["StringLike"]["aws:SourceArn"] = "arn:aws:s3:::old-bucket"
    existing = {**console, "Statement": [stale, *console["Statement"]]}
    merged = merge_key_policy(existing, BUCKET_ARN, TOPIC_ARN)
    assert merged["Statement"] == [GUIDE_STEP4[0], *console["Statement"], GUIDE_STEP4[1]]


def test_merge_key_policy_keeps_a_hand_pasted_guide_statement_in_the_guides_action_order() -> None:
    """Someone who followed the guide by hand wrote ["kms:GenerateDataKey", "kms:Decrypt"]: same grant,
    so the policy is left exactly as it is and step 4 writes nothing."""
    by_hand = copy.deepcopy(GUIDE_STEP4)
    for statement in by_hand:
        statement["Action"] = ["kms:GenerateDataKey", "kms:Decrypt"]
    existing = {**_console_key_policy("aws", "us-east-1")}
    existing["Statement"] = existing["Statement"] + by_hand
    assert merge_key_policy(existing, BUCKET_ARN, TOPIC_ARN) == existing


@pytest.mark.parametrize(("organization_id", "resources"), [
    (None, [f"{BUCKET_ARN}/AWSLogs/{ACCOUNT}/*"]),
    ("o-a1b2c3d4e5", [f"{BUCKET_ARN}/AWSLogs/{ACCOUNT}/*", f"{BUCKET_ARN}/AWSLogs/o-a1b2c3d4e5/*"]),
])
def test_cloudtrail_bucket_statements_grant_this_trail_only(organization_id: str | None,
                                                           resources: list[str]) -> None:
    statements = cloudtrail_bucket_statements("aws", "expel-cloudtrail-logs", ACCOUNT, TRAIL_ARN,
                                              organization_id)
    assert statements == _bucket_statements(resources)
    assert tuple(s["Sid"] for s in statements) == BUCKET_POLICY_SIDS


def test_merge_bucket_policy_without_a_policy_creates_one() -> None:
    statements = _bucket_statements([f"{BUCKET_ARN}/AWSLogs/{ACCOUNT}/*"])
    assert merge_bucket_policy(None, statements) == {"Version": "2012-10-17", "Statement": statements}


def test_topic_statements_let_only_the_bucket_publish() -> None:
    assert topic_statements("aws", TOPIC_ARN, BUCKET_ARN, ACCOUNT) == [TOPIC_STATEMENT]


@pytest.mark.parametrize(("existing", "expected"), [
    (None, {"Version": "2008-10-17", "Id": "expel-topic-policy-ID", "Statement": [TOPIC_STATEMENT]}),
    ({}, {"Version": "2008-10-17", "Id": "expel-topic-policy-ID", "Statement": [TOPIC_STATEMENT]}),
    (SNS_DEFAULT_POLICY, {**SNS_DEFAULT_POLICY,
                          "Statement": SNS_DEFAULT_POLICY["Statement"] + [TOPIC_STATEMENT]}),
])
def test_merge_topic_policy_keeps_the_sns_default_statement(existing: dict | None, expected: dict) -> None:
    assert merge_topic_policy(existing, [TOPIC_STATEMENT]) == expected


def test_merge_topic_policy_replaces_the_guides_public_statement() -> None:
    """The guide's own statement (Principal "AWS": "*") under the same Sid becomes ours."""
    guide = {"Version": "2008-10-17", "Id": "expel-topic-policy-ID", "Statement": [{
        "Sid": "expel-statement-ID", "Effect": "Allow", "Principal": {"AWS": "*"},
        "Action": ["SNS:Publish"], "Resource": TOPIC_ARN,
        "Condition": {"ArnLike": {"aws:SourceArn": BUCKET_ARN}}}]}
    assert merge_topic_policy(guide, [TOPIC_STATEMENT]) == {**guide, "Statement": [TOPIC_STATEMENT]}


def test_queue_statements_let_only_the_topic_send() -> None:
    assert queue_statements(QUEUE_ARN, TOPIC_ARN) == [QUEUE_STATEMENT]


@pytest.mark.parametrize(("existing", "expected"), [
    (None, {"Version": "2012-10-17", "Id": "SQSDefaultPolicy", "Statement": [QUEUE_STATEMENT]}),
    ({"Version": "2012-10-17", "Id": "mine", "Statement": [FOREIGN]},
     {"Version": "2012-10-17", "Id": "mine", "Statement": [FOREIGN, QUEUE_STATEMENT]}),
])
def test_merge_queue_policy_keeps_foreign_statements(existing: dict | None, expected: dict) -> None:
    assert merge_queue_policy(existing, [QUEUE_STATEMENT]) == expected


OURS = {"Id": NOTIFICATION_ID, "TopicArn": TOPIC_ARN, "Events": ["s3:ObjectCreated:*"]}
OURS_AS_QUEUE = {"Id": NOTIFICATION_ID, "QueueArn": QUEUE_ARN, "Events": ["s3:ObjectCreated:*"]}
LAMBDA = {"Id": "thumbnails", "LambdaFunctionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:t",
          "Events": ["s3:ObjectCreated:Put"], "Filter": {"Key": {"FilterRules": [
              {"Name": "Prefix", "Value": "images/"}]}}}
OTHER_TOPIC = {"Id": "audit", "TopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:audit",
               "Events": ["s3:ObjectRemoved:*"]}


@pytest.mark.parametrize(("existing", "expected"), [
    ({}, {"TopicConfigurations": [OURS]}),
    ({"ResponseMetadata": {"HTTPStatusCode": 200}}, {"TopicConfigurations": [OURS]}),
    ({"TopicConfigurations": [OTHER_TOPIC], "LambdaFunctionConfigurations": [LAMBDA],
      "EventBridgeConfiguration": {}},
     {"TopicConfigurations": [OTHER_TOPIC, OURS], "LambdaFunctionConfigurations": [LAMBDA],
      "EventBridgeConfiguration": {}}),
    ({"TopicConfigurations": [{**OURS, "TopicArn": "arn:aws:sns:us-east-1:1:old"}, OTHER_TOPIC]},
     {"TopicConfigurations": [OURS, OTHER_TOPIC]}),
    ({"QueueConfigurations": [{**OURS_AS_QUEUE}]}, {"TopicConfigurations": [OURS]}),
])
def test_merge_notification_configuration_keeps_other_entries(existing: dict, expected: dict) -> None:
    assert merge_notification_configuration(existing, TOPIC_ARN, NOTIFICATION_ID) == expected


def test_remove_notification_drops_only_ours() -> None:
    existing = {"TopicConfigurations": [OURS, OTHER_TOPIC], "LambdaFunctionConfigurations": [LAMBDA],
                "ResponseMetadata": {}}
    assert remove_notification(existing, NOTIFICATION_ID) == {
        "TopicConfigurations": [OTHER_TOPIC], "LambdaFunctionConfigurations": [LAMBDA]}
    assert remove_notification({"TopicConfigurations": [OURS]}, NOTIFICATION_ID) == {}


@pytest.mark.parametrize(("existing", "present"), [
    ({}, False),
    ({"TopicConfigurations": [OURS]}, True),
    ({"TopicConfigurations": [OTHER_TOPIC, OURS], "ResponseMetadata": {}}, True),
    ({"TopicConfigurations": [{**OURS, "Events": ["s3:ObjectCreated:Put"]}]}, False),
    ({"TopicConfigurations": [{**OURS, "TopicArn": OTHER_TOPIC["TopicArn"]}]}, False),
    ({"TopicConfigurations": [{**OURS, "Filter": LAMBDA["Filter"]}]}, False),
    ({"TopicConfigurations": [{**OURS, "Id": "someone-elses"}]}, False),
])
def test_notification_present_only_when_ours_is_exactly_right(existing: dict, present: bool) -> None:
    assert notification_present(existing, TOPIC_ARN, NOTIFICATION_ID) is present


def test_a_topics_or_queues_policy_attribute_is_parsed_and_none_when_it_has_none() -> None:
    document = {"Version": "2012-10-17", "Id": "SQSDefaultPolicy", "Statement": [QUEUE_STATEMENT]}
    assert policy_attribute({"Policy": json.dumps(document), "QueueArn": "arn"}) == document
    assert policy_attribute({"QueueArn": "arn"}) is None
    assert policy_attribute({"Policy": ""}) is None
