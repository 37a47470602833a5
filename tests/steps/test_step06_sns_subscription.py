"""Guide step 6 against moto: the queue subscribed to the topic, protocol sqs, raw message delivery on."""

from __future__ import annotations

import importlib
from typing import Any

import boto3
import pytest

from expel_onboarding.models import Config, QueueOutput, SubscriptionOutput, TopicOutput
from expel_onboarding.naming import owner_tags
from expel_onboarding.steps import step06_sns_subscription
from tests.conftest import REGION
from tests.steps.notification_path import FakeLambdaContext, load_event
from tests.support import count_mutating_calls


def _sns() -> Any:
    return boto3.client("sns", region_name=REGION)


def _make_queue(name: str) -> QueueOutput:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return QueueOutput(queue_arn=arn, queue_url=url)


@pytest.fixture
def topic(aws: None, config: Config) -> TopicOutput:
    """The topic as step 3 leaves it: with this stack's ownership tag."""
    tags = [{"Key": k, "Value": v} for k, v in owner_tags(config.stack_name).items()]
    return TopicOutput(topic_arn=_sns().create_topic(Name=config.topic_name, Tags=tags)["TopicArn"])


@pytest.fixture
def queue(aws: None, config: Config) -> QueueOutput:
    return _make_queue(config.queue_name)


def _subscriptions(topic: TopicOutput) -> list[dict]:
    return _sns().list_subscriptions_by_topic(TopicArn=topic.topic_arn)["Subscriptions"]


def _attributes(subscription_arn: str) -> dict[str, str]:
    return _sns().get_subscription_attributes(SubscriptionArn=subscription_arn)["Attributes"]


def test_queue_is_subscribed_with_raw_message_delivery(config: Config, topic: TopicOutput,
                                                       queue: QueueOutput) -> None:
    out = step06_sns_subscription.apply(config, topic, queue)

    [subscription] = _subscriptions(topic)
    assert out == SubscriptionOutput(subscription_arn=subscription["SubscriptionArn"])
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("sqs", queue.queue_arn)
    attributes = _attributes(out.subscription_arn)
    assert attributes["RawMessageDelivery"] == "true"
    assert attributes["PendingConfirmation"] == "false"


def test_second_run_makes_no_mutating_call_and_returns_the_same_output(
        config: Config, topic: TopicOutput, queue: QueueOutput) -> None:
    first = step06_sns_subscription.apply(config, topic, queue)
    with count_mutating_calls() as calls:
        assert step06_sns_subscription.apply(config, topic, queue) == first
    assert calls == []
    assert len(_subscriptions(topic)) == 1


def test_existing_subscription_without_raw_delivery_is_fixed_not_duplicated(
        config: Config, topic: TopicOutput, queue: QueueOutput) -> None:
    existing = _sns().subscribe(TopicArn=topic.topic_arn, Protocol="sqs", Endpoint=queue.queue_arn,
                                ReturnSubscriptionArn=True)["SubscriptionArn"]

    with count_mutating_calls() as calls:
        out = step06_sns_subscription.apply(config, topic, queue)

    assert calls == ["sns.SetSubscriptionAttributes"]
    assert out == SubscriptionOutput(subscription_arn=existing)
    assert len(_subscriptions(topic)) == 1
    assert _attributes(existing)["RawMessageDelivery"] == "true"


def test_other_subscriptions_of_the_topic_are_left_alone(config: Config, topic: TopicOutput,
                                                         queue: QueueOutput) -> None:
    other = _make_queue("someone-elses-queue")
    theirs = _sns().subscribe(TopicArn=topic.topic_arn, Protocol="sqs", Endpoint=other.queue_arn,
                              ReturnSubscriptionArn=True)["SubscriptionArn"]

    out = step06_sns_subscription.apply(config, topic, queue)

    assert out.subscription_arn != theirs
    assert {s["Endpoint"] for s in _subscriptions(topic)} == {queue.queue_arn, other.queue_arn}
    assert _attributes(theirs)["RawMessageDelivery"] == "false"


def test_a_published_message_arrives_in_the_queue_without_an_sns_envelope(
        config: Config, topic: TopicOutput, queue: QueueOutput) -> None:
    step06_sns_subscription.apply(config, topic, queue)
    body = '{"Records": [{"eventName": "ObjectCreated:Put"}]}'
    _sns().publish(TopicArn=topic.topic_arn, Message=body)

    messages = boto3.client("sqs", region_name=REGION).receive_message(
        QueueUrl=queue.queue_url, WaitTimeSeconds=0)["Messages"]

    assert [m["Body"] for m in messages] == [body]


def test_remove_unsubscribes_only_our_queue(config: Config, topic: TopicOutput, queue: QueueOutput) -> None:
    other = _make_queue("someone-elses-queue")
    _sns().subscribe(TopicArn=topic.topic_arn, Protocol="sqs", Endpoint=other.queue_arn)
    step06_sns_subscription.apply(config, topic, queue)

    assert step06_sns_subscription.remove(config, topic, queue) is True

    assert [s["Endpoint"] for s in _subscriptions(topic)] == [other.queue_arn]
    with count_mutating_calls() as calls:
        assert step06_sns_subscription.remove(config, topic, queue) is False
    assert calls == []


def test_remove_after_the_topic_is_gone_is_done(config: Config, topic: TopicOutput, queue: QueueOutput) -> None:
    step06_sns_subscription.apply(config, topic, queue)
    _sns().delete_topic(TopicArn=topic.topic_arn)
    assert step06_sns_subscription.remove(config, topic, queue) is False


def test_remove_on_a_topic_without_our_tag_leaves_its_subscription_and_makes_no_mutating_call(
        aws: None, config: Config, queue: QueueOutput) -> None:
    customers = TopicOutput(topic_arn=_sns().create_topic(Name=config.topic_name)["TopicArn"])
    theirs = _sns().subscribe(TopicArn=customers.topic_arn, Protocol="sqs", Endpoint=queue.queue_arn,
                              Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]

    with count_mutating_calls() as calls:
        assert step06_sns_subscription.remove(config, customers, queue) is False

    assert calls == []
    assert [s["SubscriptionArn"] for s in _subscriptions(customers)] == [theirs]


def test_handler_runs_the_sample_event(aws: None) -> None:
    event = load_event("step06_sns_subscription")
    config = Config.from_state(event)
    topic = TopicOutput(topic_arn=_sns().create_topic(Name=config.topic_name)["TopicArn"])
    queue = _make_queue(config.queue_name)
    assert (event["Topic"]["TopicArn"], event["Queue"]["QueueArn"]) == (topic.topic_arn, queue.queue_arn)

    app = importlib.import_module("functions.step06_sns_subscription.app")
    result = app.lambda_handler(event, FakeLambdaContext("step06_sns_subscription"))

    [subscription] = _subscriptions(topic)
    assert result == {"SubscriptionArn": subscription["SubscriptionArn"]}
    assert _attributes(subscription["SubscriptionArn"])["RawMessageDelivery"] == "true"
