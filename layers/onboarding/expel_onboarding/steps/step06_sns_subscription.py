"""Guide step 6: subscribe the queue to the topic with raw message delivery, so Expel reads the S3
event itself rather than an SNS envelope around it.

An existing subscription of the queue is reused (SNS keeps one per topic, protocol and endpoint)
and only its RawMessageDelivery is fixed when off; a second run writes nothing.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from expel_onboarding.aws import sns
from expel_onboarding.models import Config, QueueOutput, SubscriptionOutput, TopicOutput
from expel_onboarding.ownership import is_ours

logger = Logger(child=True)

PROTOCOL = "sqs"
RAW_MESSAGE_DELIVERY = "RawMessageDelivery"


def _existing(topic: TopicOutput, queue: QueueOutput, region: str) -> str | None:
    """ARN of the queue's confirmed subscription to the topic, if any. (Unconfirmed ones are listed
    as "PendingConfirmation"; a same-account queue is confirmed at once.)"""
    for subscription in sns.subscriptions(topic.topic_arn, region):
        if (subscription.get("Protocol") == PROTOCOL and subscription.get("Endpoint") == queue.queue_arn
                and str(subscription.get("SubscriptionArn", "")).startswith("arn:")):
            return str(subscription["SubscriptionArn"])
    return None


def apply(config: Config, topic: TopicOutput, queue: QueueOutput) -> SubscriptionOutput:
    region = config.region
    subscription_arn = _existing(topic, queue, region)
    if subscription_arn is None:
        subscription_arn = sns.subscribe(topic.topic_arn, PROTOCOL, queue.queue_arn,
                                         {RAW_MESSAGE_DELIVERY: "true"}, region)
        logger.info("Subscribed the queue to the topic", extra={"subscription": subscription_arn})
        return SubscriptionOutput(subscription_arn=subscription_arn)

    attributes = sns.subscription_attributes(subscription_arn, region)
    if attributes.get(RAW_MESSAGE_DELIVERY, "false").lower() != "true":
        sns.set_subscription_attribute(subscription_arn, RAW_MESSAGE_DELIVERY, "true", region)
        logger.info("Turned on raw message delivery", extra={"subscription": subscription_arn})
    return SubscriptionOutput(subscription_arn=subscription_arn)


def remove(config: Config, topic: TopicOutput, queue: QueueOutput) -> bool:
    """Teardown: unsubscribe the queue (deleting our topic also does it). True when something was
    removed; a topic or subscription already gone is done.

    On a topic carrying this stack's tag; on a customer's topic only for an existing trail, whose create
    path subscribed Expel's queue there (teardown discovery hands over the queue only when it carries
    this stack's tag, so the subscription found is ours). A new trail's onboarding never subscribes on a
    customer's topic (step 3 refuses one), so a subscription there is theirs, even between names from
    our Config."""
    if sns.topic_attributes(topic.topic_arn, config.region) is None:
        return False
    if not topic.customers and not is_ours(sns.topic_tags(topic.topic_arn, config.region), config.stack_name):
        logger.info("SNS topic not created by this stack: its subscriptions are left as they are",
                    extra={"topic": topic.topic_arn})
        return False
    subscription_arn = _existing(topic, queue, config.region)
    if subscription_arn is None:
        return False
    sns.unsubscribe(subscription_arn, config.region)
    logger.info("Unsubscribed the queue from the topic", extra={"subscription": subscription_arn})
    return True
