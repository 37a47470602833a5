"""SNS delivery to SQS as SNS does it, and the topic's CloudWatch metrics (moto delivers to any queue that
exists, raises to the publisher when it does not, and counts nothing).

A message published to a topic goes to each SQS subscription only if the queue exists, the queue's
policy lets the topic send (``sqs:SendMessage`` by ``sns.amazonaws.com`` with ``aws:SourceArn`` = the
topic), and, for a KMS-encrypted queue, the queue's key lets SNS use it. Otherwise the message is dropped:
the publisher never hears of it (Publish succeeded), and it is counted where AWS counts it, the topic's
``NumberOfNotificationsFailed`` metric (namespace ``AWS/SNS``, dimension ``TopicName``). Delivered ones
count in ``NumberOfNotificationsDelivered``, and every publish in ``NumberOfMessagesPublished``.

Whether a policy admits SNS is ``PolicyChecks``' business: IAM's evaluator answers it while IAM is enforced
(``enforcement.service_checks``, on by default in ``local serve``); without it every queue that exists admits
the topic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

NAMESPACE = "AWS/SNS"
PUBLISHED = "NumberOfMessagesPublished"
DELIVERED = "NumberOfNotificationsDelivered"
FAILED = "NumberOfNotificationsFailed"


@dataclass
class PolicyChecks:
    """``send(topic_arn, queue_arn) -> None`` (allowed) or why not; asked for every delivery."""

    send: Callable[[str, str], str | None] = lambda topic_arn, queue_arn: None


checks = PolicyChecks()


def count(topic: Any, metric: str) -> None:
    """One more in the topic's metric (Sum statistic, Count unit), as SNS reports it to CloudWatch."""
    try:
        from moto.cloudwatch.models import cloudwatch_backends

        cloudwatch_backends[topic.account_id][topic.arn.split(":")[3]].put_metric_data(NAMESPACE, [{
            "MetricName": metric, "Dimensions": [{"Name": "TopicName", "Value": topic.name}],
            "Value": 1.0, "Unit": "Count"}])
    except Exception:
        log.exception("could not count %s for %s", metric, topic.arn)


def refusal(topic_arn: str, queue_arn: str) -> str | None:
    """Why SNS cannot deliver to the queue, or None."""
    parts = queue_arn.split(":")
    try:
        from moto.sqs.models import sqs_backends

        sqs_backends[parts[4]][parts[3]].get_queue(parts[5])
    except Exception:
        return "the queue does not exist"
    return checks.send(topic_arn, queue_arn)


_installed = False


def install() -> None:
    """Delivery rules and metrics in moto's SNS (idempotent; also used by in-process tests)."""
    global _installed
    if _installed:
        return
    from moto.sns.models import Subscription, Topic

    original_deliver = Subscription.publish

    def publish(self: Any, message: str, message_id: str, *args: Any, **kwargs: Any) -> None:
        if self.protocol != "sqs":
            return original_deliver(self, message, message_id, *args, **kwargs)
        reason = refusal(self.topic.arn, self.endpoint)
        if reason is None:
            try:
                original_deliver(self, message, message_id, *args, **kwargs)
            except Exception as exc:
                reason = f"SQS refused the message: {exc}"
        if reason:
            log.info("SNS dropped a message of %s for %s: %s", self.topic.arn, self.endpoint, reason)
            count(self.topic, FAILED)
        else:
            count(self.topic, DELIVERED)
        return None

    Subscription.publish = publish  # type: ignore[method-assign]

    original_publish = Topic.publish

    def topic_publish(self: Any, *args: Any, **kwargs: Any) -> str:
        count(self, PUBLISHED)
        return str(original_publish(self, *args, **kwargs))

    Topic.publish = topic_publish  # type: ignore[method-assign]
    _installed = True
