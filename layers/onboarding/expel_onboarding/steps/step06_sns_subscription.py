"""Guide step 6: subscribe the queue to the topic with raw message delivery, so Expel reads the S3
event itself rather than an SNS envelope around it.

An existing subscription of the queue is reused (SNS keeps one per topic, protocol and endpoint)
and only its RawMessageDelivery is fixed when off; a second run writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aws_lambda_powertools import Logger

from expel_onboarding.aws import cloudwatch, sns
from expel_onboarding.drift import Converge, Mode, StepCheck, applied, not_ready, run_check
from expel_onboarding.errors import OnboardingError
from expel_onboarding.models import Config, QueueOutput, SubscriptionOutput, TopicOutput
from expel_onboarding.ownership import is_ours

logger = Logger(child=True)

STEP = 6
PROTOCOL = "sqs"
RAW_MESSAGE_DELIVERY = "RawMessageDelivery"
# The delivery metric AWS keeps for the topic (CloudWatch, namespace AWS/SNS, dimension TopicName).
SNS_NAMESPACE = "AWS/SNS"
FAILED_DELIVERIES = "NumberOfNotificationsFailed"
DELIVERED = "NumberOfNotificationsDelivered"
DELIVERY_WINDOW_SECONDS = 3600


def _existing(topic: TopicOutput, queue: QueueOutput, region: str) -> str | None:
    """ARN of the queue's confirmed subscription to the topic, if any. (Unconfirmed ones are listed
    as "PendingConfirmation"; a same-account queue is confirmed at once.)"""
    for subscription in sns.subscriptions(topic.topic_arn, region):
        if (subscription.get("Protocol") == PROTOCOL and subscription.get("Endpoint") == queue.queue_arn
                and str(subscription.get("SubscriptionArn", "")).startswith("arn:")):
            return str(subscription["SubscriptionArn"])
    return None


def apply(config: Config, topic: TopicOutput, queue: QueueOutput) -> SubscriptionOutput:
    run = Converge(STEP)
    return SubscriptionOutput(subscription_arn=applied(run, converge(run, config, topic, queue), "a subscription"))


def check(config: Config, topic: TopicOutput, queue: QueueOutput, now: datetime | None = None) -> StepCheck:
    """Drift check: what ``apply`` would change, written nowhere; and the deliveries SNS counted as failed
    in the last hour (the topic's NumberOfNotificationsFailed), which no canary through Expel's queue could
    show without Expel receiving it."""
    if unready := not_ready(STEP, [("the topic", topic.topic_arn, 3), ("the queue", queue.queue_arn, 5)]):
        return unready
    run = Converge(STEP, Mode.CHECK)
    check = run_check(run, lambda r: converge(r, config, topic, queue))
    return _with_failed_deliveries(check, run, config, topic, now or datetime.now(UTC))


def converge(run: Converge, config: Config, topic: TopicOutput, queue: QueueOutput) -> str | None:
    """The end state: the queue subscribed to the topic (protocol sqs) with raw message delivery.
    Returns the subscription's ARN (None only when checking finds none)."""
    region = config.region
    subscription_arn = _existing(topic, queue, region)
    if subscription_arn is None:
        return run.change(run.finding(
            topic.topic_arn, f"subscription of queue {queue.queue_arn}", None,
            "protocol sqs, raw message delivery enabled",
            f"in the SNS console, topic {config.topic_name} > Create subscription: Amazon SQS, endpoint "
            f"{queue.queue_arn}, Enable raw message delivery"),
            lambda: sns.subscribe(topic.topic_arn, PROTOCOL, queue.queue_arn, {RAW_MESSAGE_DELIVERY: "true"},
                                  region))

    attributes = sns.subscription_attributes(subscription_arn, region)
    current = attributes.get(RAW_MESSAGE_DELIVERY, "false")
    if current.lower() != "true":
        run.change(run.finding(
            subscription_arn, RAW_MESSAGE_DELIVERY, current, "true",
            "in the SNS console, the subscription > Edit > check Enable raw message delivery (Expel reads the S3 "
            "event itself, not an SNS envelope)"),
            lambda: sns.set_subscription_attribute(subscription_arn, RAW_MESSAGE_DELIVERY, "true", region))
    return subscription_arn


def _with_failed_deliveries(check: StepCheck, run: Converge, config: Config, topic: TopicOutput,
                            now: datetime) -> StepCheck:
    """A finding when SNS failed deliveries in the last hour and none has succeeded since (per minute): after
    a fix (or a repair) the next delivery that succeeds clears it, not the end of the hour."""
    since, dimensions = now - timedelta(seconds=DELIVERY_WINDOW_SECONDS), {"TopicName": config.topic_name}
    try:
        failed = cloudwatch.metric_sum(SNS_NAMESPACE, FAILED_DELIVERIES, dimensions, since, now, config.region)
        if not failed:
            note = "no data in the last hour" if failed is None else "0 in the last hour"
            return StepCheck.of(run, note=f"{FAILED_DELIVERIES}: {note}")
        last_failed = cloudwatch.last_nonzero_minute(SNS_NAMESPACE, FAILED_DELIVERIES, dimensions, since, now,
                                                     config.region)
        last_delivered = cloudwatch.last_nonzero_minute(SNS_NAMESPACE, DELIVERED, dimensions, since, now,
                                                        config.region)
    except OnboardingError as exc:
        return StepCheck.of(run, note=f"{FAILED_DELIVERIES} not read: {exc}")
    if last_failed is not None and last_delivered is not None and last_delivered > last_failed:
        return StepCheck.of(run, note=f"{FAILED_DELIVERIES}: {failed:g} in the last hour, deliveries succeed since "
                                      f"{last_delivered:%H:%M} UTC")
    run.observe(run.finding(
        topic.topic_arn, f"{FAILED_DELIVERIES} (last hour)", f"{failed:g}, none delivered since", "0",
        "SNS could not deliver to the queue: check that the queue policy lets the topic send (guide step 5) and "
        "that the key policy lets sns.amazonaws.com use the key (guide step 4); this clears once a delivery "
        "succeeds again"))
    return StepCheck.of(run, note=f"{FAILED_DELIVERIES}: {failed:g} in the last hour")


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
