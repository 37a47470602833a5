"""Guide step 7 against moto: our entry is merged into the bucket's notifications, others survive."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import boto3
import pytest

from expel_onboarding.errors import OnboardingError
from expel_onboarding.models import BucketNotificationOutput, Config, TopicOutput, TrailOutput
from expel_onboarding.policies.notification import NOTIFICATION_ID
from expel_onboarding.steps import step01_trail, step07_bucket_notification
from tests.conftest import REGION
from tests.steps.notification_path import FakeLambdaContext
from tests.support import count_mutating_calls

EVENTS = Path(__file__).resolve().parents[2] / "events"




@pytest.fixture
def trail(aws: None, config: Config) -> TrailOutput:
    return step01_trail.apply(config)


@pytest.fixture
def topic(aws: None, config: Config) -> TopicOutput:
    return TopicOutput(boto3.client("sns", region_name=REGION).create_topic(Name=config.topic_name)["TopicArn"])


def _notifications(bucket: str) -> dict:
    response = boto3.client("s3", region_name=REGION).get_bucket_notification_configuration(Bucket=bucket)
    response.pop("ResponseMetadata")
    return response


def _foreign_queue_entry() -> dict:
    """A customer's entry on the bucket, on other events than ours (S3 refuses overlapping ones)."""
    queue_url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="customer-deletes")["QueueUrl"]
    queue_arn = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Id": "customer-deletes", "QueueArn": queue_arn, "Events": ["s3:ObjectRemoved:*"]}


def test_all_object_created_events_go_to_the_topic(config: Config, trail: TrailOutput, topic: TopicOutput) -> None:
    out = step07_bucket_notification.apply(config, trail, topic)
    assert out == BucketNotificationOutput(configuration_id=NOTIFICATION_ID)
    topics = _notifications(trail.bucket_name)["TopicConfigurations"]
    assert len(topics) == 1
    assert topics[0]["Id"] == NOTIFICATION_ID
    assert topics[0]["TopicArn"] == topic.topic_arn
    assert topics[0]["Events"] == ["s3:ObjectCreated:*"]
    assert "Filter" not in topics[0]


def test_second_run_makes_no_mutating_call_and_returns_the_same_output(config: Config, trail: TrailOutput,
                                                                      topic: TopicOutput) -> None:
    first = step07_bucket_notification.apply(config, trail, topic)
    with count_mutating_calls() as calls:
        assert step07_bucket_notification.apply(config, trail, topic) == first
    assert calls == []


def test_existing_foreign_queue_configuration_is_kept(config: Config, trail: TrailOutput,
                                                      topic: TopicOutput) -> None:
    foreign = _foreign_queue_entry()
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_bucket_notification_configuration(
        Bucket=trail.bucket_name, NotificationConfiguration={"QueueConfigurations": [foreign]})

    step07_bucket_notification.apply(config, trail, topic)

    after = _notifications(trail.bucket_name)
    assert after["QueueConfigurations"] == [foreign]
    assert [t["Id"] for t in after["TopicConfigurations"]] == [NOTIFICATION_ID]
    with count_mutating_calls() as calls:
        step07_bucket_notification.apply(config, trail, topic)
    assert calls == []


def test_foreign_object_created_entry_fails_clearly_and_writes_nothing(config: Config, trail: TrailOutput,
                                                                       topic: TopicOutput) -> None:
    foreign = {**_foreign_queue_entry(), "Events": ["s3:ObjectCreated:Put"]}
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_bucket_notification_configuration(
        Bucket=trail.bucket_name, NotificationConfiguration={"QueueConfigurations": [foreign]})
    with count_mutating_calls() as calls, pytest.raises(OnboardingError, match="customer-deletes"):
        step07_bucket_notification.apply(config, trail, topic)
    assert calls == []
    assert _notifications(trail.bucket_name) == {"QueueConfigurations": [foreign]}


def test_remove_drops_only_our_entry(config: Config, trail: TrailOutput, topic: TopicOutput) -> None:
    foreign = _foreign_queue_entry()
    boto3.client("s3", region_name=REGION).put_bucket_notification_configuration(
        Bucket=trail.bucket_name, NotificationConfiguration={"QueueConfigurations": [foreign]})
    step07_bucket_notification.apply(config, trail, topic)

    assert step07_bucket_notification.remove(config, trail) is True
    assert _notifications(trail.bucket_name) == {"QueueConfigurations": [foreign]}
    with count_mutating_calls() as calls:
        assert step07_bucket_notification.remove(config, trail) is False
    assert calls == []


def test_remove_when_the_bucket_is_gone_is_done(aws: None, config: Config) -> None:
    trail = TrailOutput(trail_arn="", bucket_name="expel-gone-bucket", bucket_arn="arn:aws:s3:::expel-gone-bucket",
                        kms_key_arn="", kms_alias="")
    assert step07_bucket_notification.remove(config, trail) is False


def test_handler_runs_the_sample_event(aws: None) -> None:
    event = json.loads((EVENTS / "step07_bucket_notification.json").read_text())
    config = Config.from_state(event)
    event["Trail"] = step01_trail.apply(config).to_dict()
    event["Topic"] = {"TopicArn": boto3.client("sns", region_name=REGION).create_topic(
        Name=config.topic_name)["TopicArn"]}
    app = importlib.import_module("functions.step07_bucket_notification.app")
    result = app.lambda_handler(event, FakeLambdaContext("step07_bucket_notification"))
    assert result == {"ConfigurationId": NOTIFICATION_ID, "Customers": False, "CanaryPrefix": ""}
    topics = _notifications(config.bucket_name)["TopicConfigurations"]
    assert [(t["TopicArn"], t["Events"]) for t in topics] == [(event["Topic"]["TopicArn"], ["s3:ObjectCreated:*"])]
