"""SNS: the notification topic (guide step 3) and its subscription to the queue (guide step 6).

Thin wrappers: one AWS call each, ClientError codes mapped to our errors. Reads return None for
"does not exist" so the steps can look before they create.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import ACCESS_DENIED, REFUSED, Rule, aws_errors, suppress_codes
from expel_onboarding.errors import OnboardingError, TransientError
from expel_onboarding.policies import policy_attribute


def _errors(what: str, *rules: Rule, **fields: Any) -> AbstractContextManager[None]:
    """``rules`` come before the module's own: a call site's special case wins."""
    return aws_errors(
        "SNS", what, *rules,
        Rule({"AuthorizationError", *ACCESS_DENIED}, OnboardingError, REFUSED),
        Rule({"InvalidParameter", "InvalidParameterValue", "TagPolicy", "StaleTag", "TagLimitExceeded"},
             OnboardingError, "SNS rejected {what}: {exc}"),
        **fields)


def topic_attributes(topic_arn: str, region: str) -> dict[str, str] | None:
    """The topic's attributes, or None when there is no topic with that ARN."""
    with _errors(f"reading topic {topic_arn}"), suppress_codes("NotFound"):
        return dict(clients.sns(region).get_topic_attributes(TopicArn=topic_arn)["Attributes"])
    return None


def topic_tags(topic_arn: str, region: str) -> dict[str, str]:
    with _errors(f"reading the tags of topic {topic_arn}"):
        tags = clients.sns(region).list_tags_for_resource(ResourceArn=topic_arn)["Tags"]
    return {t["Key"]: t["Value"] for t in tags}


def create_topic(name: str, attributes: dict[str, str], tags: dict[str, str], region: str) -> str:
    """A Standard topic with its attributes and tags set in the same call, so it never exists
    unencrypted, open, or without the ownership tag. Returns the topic ARN."""
    # CreateTopic is idempotent only with identical attributes: a concurrent run got there first. The
    # retry finds the topic and converges it.
    appeared = Rule({"InvalidParameter"}, TransientError,
                    "Topic {name} appeared while creating it; retrying to adopt it", contains="already exists")
    with _errors(f"creating topic {name}", appeared, name=name):
        response = clients.sns(region).create_topic(
            Name=name, Attributes=attributes, Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())])
    return str(response["TopicArn"])


def set_topic_attribute(topic_arn: str, name: str, value: str, region: str) -> None:
    with _errors(f"setting {name} on topic {topic_arn}"):
        clients.sns(region).set_topic_attributes(TopicArn=topic_arn, AttributeName=name, AttributeValue=value)


def delete_topic(topic_arn: str, region: str) -> None:
    """Teardown of a topic this stack created (its subscriptions go with it). Idempotent in SNS."""
    with _errors(f"deleting topic {topic_arn}"):
        clients.sns(region).delete_topic(TopicArn=topic_arn)


def topic_policy(attributes: dict[str, str]) -> dict[str, Any] | None:
    """The topic's access policy from its attributes, parsed; None when it has none."""
    return policy_attribute(attributes)


def subscriptions(topic_arn: str, region: str) -> list[dict[str, Any]]:
    """Every subscription of the topic (all pages)."""
    with _errors(f"listing the subscriptions of topic {topic_arn}"):
        paginator = clients.sns(region).get_paginator("list_subscriptions_by_topic")
        return [dict(s) for page in paginator.paginate(TopicArn=topic_arn) for s in page["Subscriptions"]]


def subscriptions_to(endpoint: str, region: str) -> list[dict[str, Any]]:
    """Every subscription of the account (in ``region``) that delivers to ``endpoint``: teardown finds the
    topics Expel's queue was subscribed to, a customer's among them."""
    with _errors(f"listing the subscriptions of {endpoint}"):
        paginator = clients.sns(region).get_paginator("list_subscriptions")
        return [dict(s) for page in paginator.paginate() for s in page["Subscriptions"]
                if s.get("Endpoint") == endpoint]


def subscription_attributes(subscription_arn: str, region: str) -> dict[str, str]:
    with _errors(f"reading subscription {subscription_arn}"):
        response = clients.sns(region).get_subscription_attributes(SubscriptionArn=subscription_arn)
    return dict(response["Attributes"])


def set_subscription_attribute(subscription_arn: str, name: str, value: str, region: str) -> None:
    with _errors(f"setting {name} on subscription {subscription_arn}"):
        clients.sns(region).set_subscription_attributes(
            SubscriptionArn=subscription_arn, AttributeName=name, AttributeValue=value)


def subscribe(topic_arn: str, protocol: str, endpoint: str, attributes: dict[str, str], region: str) -> str:
    """Subscribe with the attributes set at once; returns the subscription ARN (same-account SQS
    subscriptions are confirmed immediately)."""
    with _errors(f"subscribing {endpoint} to topic {topic_arn}"):
        response = clients.sns(region).subscribe(
            TopicArn=topic_arn, Protocol=protocol, Endpoint=endpoint, Attributes=attributes,
            ReturnSubscriptionArn=True)
    return str(response["SubscriptionArn"])


def unsubscribe(subscription_arn: str, region: str) -> None:
    with _errors(f"removing subscription {subscription_arn}"), suppress_codes("NotFound"):  # gone: done
        clients.sns(region).unsubscribe(SubscriptionArn=subscription_arn)
