"""Guide step 7: the bucket notifies the topic of every new object ("All object create events").

S3's PutBucketNotificationConfiguration replaces the bucket's whole configuration, so we read it,
merge our one entry in and write it back only when ours is missing or differs: other teams'
notifications on the bucket survive (terraform-provider-aws #501 is what happens otherwise).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from expel_onboarding.aws import s3
from expel_onboarding.errors import OnboardingError
from expel_onboarding.models import BucketNotificationOutput, Config, TopicOutput, TrailOutput
from expel_onboarding.policies.notification import (
    NOTIFICATION_ID,
    merge_notification_configuration,
    notification_present,
    remove_notification,
)

logger = Logger(child=True)

_DESTINATIONS = ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations")


def apply(config: Config, trail: TrailOutput, topic: TopicOutput) -> BucketNotificationOutput:
    bucket = trail.bucket_name
    current = s3.notification_configuration(bucket, config.account_id)
    if not notification_present(current, topic.topic_arn, NOTIFICATION_ID):
        _refuse_overlap(bucket, current)
        merged = merge_notification_configuration(current, topic.topic_arn, NOTIFICATION_ID)
        s3.put_notification_configuration(bucket, merged, config.account_id)
        logger.info("Added the object-created notification", extra={"bucket": bucket, "topic": topic.topic_arn})
    return BucketNotificationOutput(configuration_id=NOTIFICATION_ID)


def remove(config: Config, trail: TrailOutput) -> bool:
    """Teardown: drop only our entry; True when something was written. A missing bucket is done."""
    head = s3.head_bucket(trail.bucket_name, config.account_id)
    if not head.exists or not head.owned:
        return False
    current = s3.notification_configuration(trail.bucket_name, config.account_id)
    remaining = remove_notification(current, NOTIFICATION_ID)
    if remaining == current:
        return False
    s3.put_notification_configuration(trail.bucket_name, remaining, config.account_id)
    logger.info("Removed the object-created notification", extra={"bucket": trail.bucket_name})
    return True


def _refuse_overlap(bucket: str, current: dict[str, Any]) -> None:
    """S3 rejects two entries sharing an event type with overlapping prefixes; ours covers every key,
    so any other object-created entry collides. Say so plainly instead of S3's "Configurations overlap"."""
    for name in _DESTINATIONS:
        for entry in current.get(name, []):
            if entry.get("Id") == NOTIFICATION_ID:
                continue
            if any(str(event).startswith(("s3:ObjectCreated:", "s3:*")) for event in entry.get("Events", [])):
                destination = entry.get("TopicArn") or entry.get("QueueArn") or entry.get("LambdaFunctionArn")
                raise OnboardingError(
                    f"Bucket {bucket} already sends object-created events to {destination} "
                    f"(notification {entry.get('Id', '?')}), and S3 allows only one destination per event "
                    "type and key prefix. Fix: subscribe that destination to the onboarding's SNS topic "
                    "instead and remove its entry from the bucket's event notifications, then retry")
