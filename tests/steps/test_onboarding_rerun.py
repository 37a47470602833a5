"""The whole onboarding, in the state machine's order, run twice against one moto account.

The second run must converge without a single mutating call from the configuration steps and
return the same outputs. Verification is a probe, not configuration: it writes and removes its own
canary on every run, so its calls are checked to be exactly that and nothing else.
"""

from __future__ import annotations

from typing import Any

from expel_onboarding.models import Config, DeliveryOutput
from expel_onboarding.steps import (
    preflight,
    step01_trail,
    step02_bucket_encryption,
    step03_sns_topic,
    step04_key_policy,
    step05_sqs_queue,
    step06_sns_subscription,
    step07_bucket_notification,
    step08_expel_role,
    step10_workbench_device,
    verify_delivery,
)
from tests.conftest import boto
from tests.support import count_mutating_calls

CANARY_CALLS = {"s3.PutObject", "s3.DeleteObject", "s3.DeleteObjects", "sqs.DeleteMessage",
                "sqs.DeleteMessageBatch", "sqs.ChangeMessageVisibility", "sqs.ChangeMessageVisibilityBatch"}


def configure(config: Config) -> dict[str, Any]:
    """Guide steps 1-8 and 10, in the order and with the inputs the state machine gives them."""
    preflight.check(config)
    trail = step01_trail.apply(config)
    encryption = step02_bucket_encryption.apply(config, trail)
    topic = step03_sns_topic.apply(config, trail)
    queue = step05_sqs_queue.apply(config, trail, topic)
    key_policy = step04_key_policy.apply(config, trail, topic)
    subscription = step06_sns_subscription.apply(config, topic, queue)
    notification = step07_bucket_notification.apply(config, trail, topic)
    role = step08_expel_role.deploy(config, trail, queue)
    while role.status != "COMPLETE":
        role = step08_expel_role.status(config, role)
    device = step10_workbench_device.register(config, role, queue)
    return {"Trail": trail, "BucketEncryption": encryption, "Topic": topic, "Queue": queue,
            "KeyPolicy": key_policy, "Subscription": subscription, "BucketNotification": notification,
            "Role": role, "Device": device}


def verify(config: Config, outputs: dict[str, Any], run_id: str) -> DeliveryOutput:
    delivery = verify_delivery.put_canary(config, outputs["Trail"], outputs["Topic"], run_id=run_id)
    while not delivery.confirmed:
        delivery = verify_delivery.check_canary(config, outputs["Trail"], outputs["Queue"], delivery)
    return delivery


def assert_a_second_run_writes_nothing(config: Config, first: dict[str, Any]) -> None:
    """A second onboarding after ``first``: no mutating call from the configuration steps, the same outputs, and
    its verification writes and removes its own canary only."""
    with count_mutating_calls() as calls:
        second = configure(config)
    assert calls == []
    assert second == first
    with count_mutating_calls() as calls:
        assert verify(config, second, "second-run").confirmed
    assert set(calls) <= CANARY_CALLS, calls


def test_second_onboarding_changes_nothing_and_returns_the_same_outputs(aws: None, config: Config) -> None:
    first = configure(config)
    assert verify(config, first, "first-run").confirmed
    assert_a_second_run_writes_nothing(config, first)


def test_onboarding_leaves_the_guides_end_state(aws: None, config: Config) -> None:
    outputs = configure(config)
    trail = boto("cloudtrail").get_trail(Name=config.trail_name)["Trail"]
    assert trail["IsMultiRegionTrail"] and trail["LogFileValidationEnabled"]
    assert trail["KmsKeyId"] == outputs["Trail"].kms_key_arn
    attributes = boto("sqs").get_queue_attributes(QueueUrl=outputs["Queue"].queue_url,
                                                  AttributeNames=["All"])["Attributes"]
    assert attributes["MessageRetentionPeriod"] == "604800"
    subscription = boto("sns").get_subscription_attributes(
        SubscriptionArn=outputs["Subscription"].subscription_arn)["Attributes"]
    assert subscription["RawMessageDelivery"] == "true"
    assert outputs["Role"].role_arn.endswith(f":role/{config.role_name}")
    assert outputs["Device"].status == "MANUAL_REGISTRATION_REQUIRED"
    assert outputs["Device"].registration_url.startswith(config.workbench_base_url)
