"""With IAM enforced, the services' questions to one another are IAM's evaluator's (``enforcement.service_checks``):
S3 may publish to a topic only as its policy (and key) allow, SNS may send to a queue only as its policy
(and key) allow, and a key policy that would lock its caller out is refused. Each rule next to the same call
accepted. In-process moto with the checks installed, as ``local serve`` installs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_cloud import kms_key_policies, s3_notifications
from local_cloud.enforcement import service_checks
from tests.conftest import ACCOUNT_ID, REGION, boto
from tests.local_cloud.test_sns_delivery import _metric

BUCKET = "logs-with-events"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
ROOT = {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "Action": "kms:*",
        "Resource": "*"}


@pytest.fixture
def enforced(aws: None) -> Iterator[None]:
    service_checks.install()
    try:
        yield
    finally:
        service_checks.uninstall()


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _s3_may_publish(topic: str, bucket_arn: str = BUCKET_ARN) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sns:Publish",
            "Resource": topic, "Condition": {"ArnLike": {"aws:SourceArn": bucket_arn},
                                             "StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}}


def _notify(topic: str) -> None:
    boto("s3").put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
        "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]})


def _key(*statements: dict[str, Any]) -> str:
    return str(boto("kms").create_key(Policy=_document(ROOT, *statements))["KeyMetadata"]["Arn"])


@pytest.fixture
def topic(enforced: None) -> str:
    boto("s3").create_bucket(Bucket=BUCKET)
    return str(boto("sns").create_topic(Name="log-events")["TopicArn"])


def test_s3_may_notify_a_topic_only_as_its_policy_allows_for_this_bucket(topic: str) -> None:
    sns = boto("sns")
    for policy in (None, _document(_s3_may_publish(topic, "arn:aws:s3:::another-bucket"))):
        if policy:
            sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=policy)
        with pytest.raises(ClientError) as refused:
            _notify(topic)
        error = refused.value.response["Error"]
        assert (error["Code"], error["Message"], error["ArgumentName"], error["ArgumentValue"]) == (
            "InvalidArgument", s3_notifications.UNABLE_TO_VALIDATE, topic,
            "Permissions on the destination topic do not allow S3 to publish notifications from this bucket")
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=_document(_s3_may_publish(topic)))
    _notify(topic)
    assert boto("s3").get_bucket_notification_configuration(Bucket=BUCKET)["TopicConfigurations"]


def test_an_encrypted_topics_key_must_let_s3_use_it(topic: str) -> None:
    sns = boto("sns")
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=_document(_s3_may_publish(topic)))
    sns.set_topic_attributes(TopicArn=topic, AttributeName="KmsMasterKeyId", AttributeValue=_key())
    with pytest.raises(ClientError) as refused:
        _notify(topic)
    assert refused.value.response["Error"]["ArgumentValue"] == \
        "The KMS key of the destination topic does not allow S3 to use it"
    s3_uses_key = {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
                   "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*"}
    sns.set_topic_attributes(TopicArn=topic, AttributeName="KmsMasterKeyId", AttributeValue=_key(s3_uses_key))
    _notify(topic)


def _subscribed_queue(topic: str, policy: str | None) -> str:
    sqs = boto("sqs")
    url = sqs.create_queue(QueueName="expel-queue", Attributes={"Policy": policy} if policy else {})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return str(url)


def _sns_may_send(topic: str, queue_arn: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic}}}


def test_sns_delivers_to_a_queue_only_as_its_policy_allows_else_drops_and_counts(topic: str) -> None:
    url = _subscribed_queue(topic, None)  # no queue policy: SNS may not send
    boto("sns").publish(TopicArn=topic, Message="dropped")
    assert "Messages" not in boto("sqs").receive_message(QueueUrl=url)
    assert _metric("NumberOfNotificationsFailed", "log-events") == 1
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:expel-queue"
    boto("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": _document(_sns_may_send(topic, queue_arn))})
    boto("sns").publish(TopicArn=topic, Message="delivered")
    assert boto("sqs").receive_message(QueueUrl=url)["Messages"][0]["Body"] == "delivered"


def test_an_encrypted_queue_whose_key_does_not_admit_sns_gets_nothing(topic: str) -> None:
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:expel-queue"
    url = _subscribed_queue(topic, _document(_sns_may_send(topic, queue_arn)))
    boto("sqs").set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": _key()})
    boto("sns").publish(TopicArn=topic, Message="dropped")
    assert "Messages" not in boto("sqs").receive_message(QueueUrl=url)
    assert _metric("NumberOfNotificationsFailed", "log-events") == 1


def test_a_key_policy_that_would_lock_its_caller_out_is_refused_unless_bypassed(enforced: None) -> None:
    kms = boto("kms")
    service_only = _document({"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                              "Action": "kms:GenerateDataKey*", "Resource": "*"})
    with pytest.raises(ClientError) as refused:
        kms.create_key(Policy=service_only)
    assert refused.value.response["Error"] == {"Code": "MalformedPolicyDocumentException",
                                               "Message": kms_key_policies.LOCKOUT}
    key = kms.create_key(Policy=_document(ROOT))["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as refused_put:
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=service_only)
    assert refused_put.value.response["Error"]["Code"] == "MalformedPolicyDocumentException"
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=service_only, BypassPolicyLockoutSafetyCheck=True)
