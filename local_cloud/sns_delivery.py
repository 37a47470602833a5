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

from local_cloud.once import once

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


@once
def install() -> None:
    """Delivery rules and metrics in moto's SNS (idempotent; also used by in-process tests)."""
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
    _add_topic_policy_model()


def _add_topic_policy_model() -> None:
    """``AWS::SNS::TopicPolicy`` in CloudFormation: moto skips the type, so a template's topic policy never
    reached its topics (every topic kept its default policy). Create and update put the document on each
    topic of ``Topics``; a topic an update drops, and every topic on delete, gets SNS's default policy back."""
    import json

    from moto.core.common_models import CloudFormationModel
    from moto.sns.models import sns_backends

    from local_cloud.cloudformation_models import ResourceModel, UpdatedInPlace, register, registered

    if registered("AWS::SNS::TopicPolicy"):
        return

    def put(account_id: str, region: str, topics: list[str], document: Any) -> None:
        text = document if isinstance(document, str) else json.dumps(document)
        for arn in topics:
            sns_backends[account_id][region].set_topic_attribute(arn, "policy", text)

    def reset(account_id: str, region: str, topics: list[str]) -> None:
        backend = sns_backends[account_id][region]
        for arn in topics:
            topic = backend.topics.get(arn)
            if topic is not None:
                topic._policy_json = topic._create_default_topic_policy(region, account_id, topic.name)

    class CfnTopicPolicy(ResourceModel, UpdatedInPlace, CloudFormationModel):
        TYPE, ATTRIBUTES = "AWS::SNS::TopicPolicy", {"Id": "physical_id"}

        def __init__(self, physical_id: str, topics: list[str]) -> None:
            super().__init__(physical_id)
            self.topics = topics

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str, **kwargs: Any
        ) -> Any:
            properties = cloudformation_json.get("Properties", {})
            topics = [str(t) for t in properties.get("Topics", [])]
            put(account_id, region_name, topics, properties.get("PolicyDocument", {}))
            return cls(resource_name, topics)  # moto names it <stack>-<logical id>-<suffix>, as AWS does

        @classmethod
        def update(cls, original: Any, properties: dict[str, Any], account_id: str, region_name: str) -> Any:
            topics = [str(t) for t in properties.get("Topics", [])]
            reset(account_id, region_name, [t for t in original.topics if t not in topics])
            put(account_id, region_name, topics, properties.get("PolicyDocument", {}))
            return cls(original.physical_id, topics)

        def delete(self, account_id: str, region_name: str) -> None:
            reset(account_id, region_name, self.topics)

    register(CfnTopicPolicy)
