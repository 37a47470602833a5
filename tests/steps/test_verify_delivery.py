"""Verification: a canary object's S3 event travels bucket -> topic -> queue (moto delivers it)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from expel_onboarding.errors import DeliveryNotConfirmed, OnboardingError
from expel_onboarding.models import Config, DeliveryOutput, QueueOutput, TrailOutput
from expel_onboarding.naming import CANARY_PREFIX
from expel_onboarding.steps import verify_delivery
from expel_onboarding.steps.verify_delivery import canary_key, check_canary, classify, put_canary
from tests.conftest import ACCOUNT_ID, REGION, boto
from tests.steps.shared import CONTEXT, ROOT, handler
from tests.support import count_mutating_calls

RUN_ID = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:execution:expel-onboarding:onboarding-1"
FOREIGN = json.dumps({"Records": [{"eventSource": "aws:s3", "s3": {
    "bucket": {"name": "expel-cloudtrail-123456789012-us-east-1"},
    "object": {"key": "AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/26/log.json.gz"}}}]})


@pytest.fixture(autouse=True)
def _short_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto really waits out a long poll on an empty queue."""
    monkeypatch.setattr(verify_delivery, "RECEIVE_WAIT_SECONDS", 0)


def _data_path(config: Config, *, subscribe: bool = True, raw: bool = True) -> tuple[TrailOutput, QueueOutput]:
    """Steps 1-7 as the guide leaves them, built with plain boto3."""
    key_arn = boto("kms").create_key()["KeyMetadata"]["Arn"]
    s3, sns, sqs = boto("s3"), boto("sns"), boto("sqs")
    bucket = config.bucket_name
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
        "BucketKeyEnabled": True}]})
    topic_arn = sns.create_topic(Name=config.topic_name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=config.queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    if subscribe:
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                      Attributes={"RawMessageDelivery": "true"} if raw else {})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "TopicConfigurations": [{"TopicArn": topic_arn, "Events": ["s3:ObjectCreated:*"]}]})
    trail = TrailOutput(trail_arn=f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/{config.trail_name}",
                        bucket_name=bucket, bucket_arn=f"arn:aws:s3:::{bucket}", kms_key_arn=key_arn,
                        kms_alias=config.kms_alias)
    return trail, QueueOutput(queue_arn=queue_arn, queue_url=queue_url)


def _queue_bodies(queue: QueueOutput) -> list[str]:
    """Everything receivable right now (so: nothing left hidden by the check)."""
    messages = boto("sqs").receive_message(QueueUrl=queue.queue_url, MaxNumberOfMessages=10,
                                           VisibilityTimeout=0, WaitTimeSeconds=0).get("Messages", [])
    return [m["Body"] for m in messages]


def _canary_versions(bucket: str) -> list[Any]:
    listing = boto("s3").list_object_versions(Bucket=bucket, Prefix=CANARY_PREFIX)
    return listing.get("Versions", []) + listing.get("DeleteMarkers", [])


# --- end to end through moto ----------------------------------------------------------------------------

def test_canary_is_confirmed_and_removed_while_foreign_messages_stay_receivable(aws, config):
    trail, queue = _data_path(config)
    boto("sqs").send_message(QueueUrl=queue.queue_url, MessageBody=FOREIGN)

    delivery = put_canary(config, trail, run_id=RUN_ID)
    assert boto("s3").head_object(Bucket=trail.bucket_name, Key=delivery.canary_key)["ServerSideEncryption"] == (
        "aws:kms")  # the bucket default did the encrypting
    checked = check_canary(config, trail, queue, delivery)

    assert checked == DeliveryOutput(canary_key=delivery.canary_key, confirmed=True, attempts=1)
    assert _canary_versions(trail.bucket_name) == []
    bodies = _queue_bodies(queue)
    assert FOREIGN in bodies  # Expel's message is visible again at once
    assert any("s3:TestEvent" in b for b in bodies)  # so is the test event S3 sent on configuration
    assert not any(delivery.canary_key in b for b in bodies)


def test_canary_key_is_named_after_the_execution(config):
    assert canary_key(RUN_ID) == f"{CANARY_PREFIX}onboarding-1.json"
    assert canary_key("weird name/with:colons")[len(CANARY_PREFIX):] == "colons.json"
    assert canary_key("").startswith(CANARY_PREFIX)


def test_confirmed_delivery_is_not_checked_again(aws, config):
    trail, queue = _data_path(config)
    done = DeliveryOutput(canary_key=f"{CANARY_PREFIX}x.json", confirmed=True, attempts=2)

    with count_mutating_calls() as calls:
        assert check_canary(config, trail, queue, done) == done
    assert calls == []


def test_raw_delivery_off_fails_naming_the_subscription_attribute(aws, config):
    trail, queue = _data_path(config, raw=False)
    delivery = put_canary(config, trail, run_id=RUN_ID)

    with pytest.raises(OnboardingError, match="RawMessageDelivery to true") as raised:
        check_canary(config, trail, queue, delivery)

    assert not isinstance(raised.value, DeliveryNotConfirmed)
    assert _canary_versions(trail.bucket_name) == []


def test_no_subscription_is_not_confirmed_then_gives_up_with_what_to_check(aws, config):
    trail, queue = _data_path(config, subscribe=False)
    boto("sqs").send_message(QueueUrl=queue.queue_url, MessageBody=FOREIGN)
    delivery = put_canary(config, trail, run_id=RUN_ID)

    first = check_canary(config, trail, queue, delivery, max_checks=2)
    assert (first.confirmed, first.attempts) == (False, 1)
    assert _queue_bodies(queue) == [FOREIGN]
    with pytest.raises(DeliveryNotConfirmed) as raised:
        check_canary(config, trail, queue, first, max_checks=2)

    message = str(raised.value)
    for what in ("after 2 checks", "key policy", "s3.amazonaws.com and sns.amazonaws.com", "topic policy",
                 "queue policy", "raw message delivery", "event notification"):
        assert what in message
    assert _canary_versions(trail.bucket_name) == []  # nothing left behind in the trail's bucket
    assert _queue_bodies(queue) == [FOREIGN]


def test_deleted_queue_fails_naming_the_step_that_creates_it(aws, config):
    trail, queue = _data_path(config)
    delivery = put_canary(config, trail, run_id=RUN_ID)
    boto("sqs").delete_queue(QueueUrl=queue.queue_url)

    with pytest.raises(OnboardingError, match="guide step 5"):
        check_canary(config, trail, queue, delivery)


# --- recognising the canary (pure) -----------------------------------------------------------------------

def _s3_event(bucket: str, key: str) -> dict[str, Any]:
    return {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]}


@pytest.mark.parametrize(("body", "expected"), [
    (json.dumps(_s3_event("b", "expel-onboarding-canary/a%3Ab+c.json")), "raw"),  # URL-encoded key
    (json.dumps(_s3_event("other-bucket", "expel-onboarding-canary/a:b c.json")), ""),
    (json.dumps(_s3_event("b", "expel-onboarding-canary/else.json")), ""),
    (json.dumps({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                 "Message": json.dumps(_s3_event("b", "expel-onboarding-canary/a%3Ab+c.json"))}), "envelope"),
    (json.dumps({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": "hello"}), ""),
    (json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}), ""),
    ("not json", ""),
    ("[1, 2]", ""),
])
def test_classify_recognises_only_our_canary(body, expected):
    assert classify(body, "b", "expel-onboarding-canary/a:b c.json") == expected


# --- handlers with their sample events ----------------------------------------------------------------------

def test_handlers_put_then_confirm_from_their_sample_events(aws, config):
    trail, queue = _data_path(config)
    event = json.loads((ROOT / "events/verify_delivery.json").read_text())
    event["Trail"] = trail.to_dict()
    event["Queue"] = queue.to_dict()

    delivery = handler("verify_delivery")(event, CONTEXT)
    check_event = json.loads((ROOT / "events/verify_delivery_check.json").read_text()) | {
        "Trail": trail.to_dict(), "Queue": queue.to_dict(), "Delivery": delivery}
    checked = handler("verify_delivery_check")(check_event, CONTEXT)

    assert delivery == {"CanaryKey": f"{CANARY_PREFIX}onboarding-1.json", "Confirmed": False, "Attempts": 0,
                        "Skipped": ""}
    assert checked == dataclasses.replace(DeliveryOutput.from_dict(delivery), confirmed=True, attempts=1).to_dict()
