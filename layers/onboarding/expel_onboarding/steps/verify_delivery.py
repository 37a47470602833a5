"""Verification (not in the guide): prove the data path end to end before Expel is told to poll.

A small canary object goes into the trail's bucket (encrypted by the bucket's default, so step 2's
key is exercised); its S3 event must reach the queue through the topic, as a raw S3 event. The
state machine calls ``check_canary`` in a Wait loop; each check looks once and returns.

The queue is Expel's: every message that is not our canary is made visible again when a check
ends, and only the canary's message is deleted.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from expel_onboarding.aws import s3, sqs
from expel_onboarding.aws.errors import ACCESS_DENIED, Rule, aws_errors
from expel_onboarding.errors import DeliveryNotConfirmed, OnboardingError
from expel_onboarding.models import Config, DeliveryOutput, QueueOutput, TopicOutput, TrailOutput
from expel_onboarding.naming import CANARY_PREFIX

logger = Logger(child=True)

MAX_CHECKS = 18  # with the state machine's Wait of ~10 s: about three minutes before giving up
RECEIVES_PER_CHECK = 5  # up to 50 messages looked at per check: CloudTrail's own files share the queue
RECEIVE_WAIT_SECONDS = 5  # long polling asks every SQS server, so a lone message is not missed
# Hides the messages we look at while one check runs; released early (visibility 0) at its end.
# Short, so a crashed check hides Expel's messages for seconds only.
VISIBILITY_SECONDS = 30

_STEPS_TO_CHECK = (
    "(1) the KMS key policy lets s3.amazonaws.com and sns.amazonaws.com use the key (guide step 4); "
    "(2) the topic policy lets the bucket publish (step 3); "
    "(3) the queue policy lets the topic send (step 5); "
    "(4) the topic has an SQS subscription to the queue with raw message delivery on (step 6); "
    "(5) the bucket's event notification sends all ObjectCreated events to the topic (step 7)")


def canary_key(run_id: str = "") -> str:
    """Execution-specific, so a redrive finds its own canary and parallel runs never collide."""
    name = run_id.rsplit(":", 1)[-1]  # a Step Functions execution ARN ends with the execution name
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", name)[:200] or uuid.uuid4().hex
    return f"{CANARY_PREFIX}{safe}.json"


def put_canary(config: Config, trail: TrailOutput, topic: TopicOutput | None = None, *,
               run_id: str = "", notification_prefix: str = "") -> DeliveryOutput:
    if topic is not None and topic.customers:
        # Their topic has subscribers of their own (a SIEM, a Lambda): they would get the canary's event too.
        reason = (f"no canary: the trail's bucket notifies the customer's topic {topic.topic_arn}, whose other "
                  "subscribers would receive it; Expel's queue is subscribed to that topic")
        logger.info("Delivery check skipped", extra={"reason": reason})
        return DeliveryOutput(canary_key="", confirmed=True, attempts=0, skipped=reason)
    # An existing trail's bucket notifies only for its log folder: the canary goes there, beside the
    # trail's own CloudTrail/ and CloudTrail-Digest/ folders, and is deleted once seen.
    # With an OU filter our entries cover member accounts' folders only: step 7 names the first
    # (``notification_prefix``).
    folder = notification_prefix or trail.log_prefix
    key = f"{folder}{canary_key(run_id)}" if trail.existing_trail else canary_key(run_id)
    body = json.dumps({"purpose": "Expel CloudTrail onboarding delivery check; deleted once seen",
                       "stack": config.stack_name, "run": run_id}).encode()
    refused = Rule(
        {"AccessDenied", "KMS.AccessDeniedException", "KMS.DisabledException"}, OnboardingError,
        "Verification: writing the canary s3://{bucket}/{key} was refused: {exc}. Fix: the onboarding function "
        "needs s3:PutObject on the canary prefix and kms:GenerateDataKey on {key_arn} (the bucket encrypts with "
        "it by default), and the key must be enabled")
    with aws_errors("S3", f"bucket {trail.bucket_name}", refused, bucket=trail.bucket_name, key=key,
                    key_arn=trail.kms_key_arn):
        # The bucket's default encryption (SSE-KMS with the trail's key) must do the encrypting.
        s3.put_object(trail.bucket_name, key, body, "application/json", config.account_id)
    logger.info("Canary written", extra={"bucket": trail.bucket_name, "key": key})
    return DeliveryOutput(canary_key=key, confirmed=False, attempts=0)


def check_canary(config: Config, trail: TrailOutput, queue: QueueOutput, delivery: DeliveryOutput, *,
                 max_checks: int = MAX_CHECKS) -> DeliveryOutput:
    """Look for the canary's S3 event in the queue once. Confirmed: its message and object are deleted.

    Raises DeliveryNotConfirmed after ``max_checks`` looks, and OnboardingError when the canary
    arrives wrapped in an SNS envelope (raw message delivery is off: Expel could not parse it).
    """
    if delivery.confirmed:
        return delivery
    attempts = delivery.attempts + 1
    with aws_errors("SQS", f"queue {queue.queue_arn}", *_QUEUE_RULES, queue_arn=queue.queue_arn,
                    key_arn=trail.kms_key_arn):
        found = _find_in_queue(queue.queue_url, trail.bucket_name, delivery.canary_key)
    if found == "raw":
        _delete_canary_object(config, trail, delivery.canary_key)
        logger.info("Canary arrived", extra={"attempts": attempts})
        return DeliveryOutput(canary_key=delivery.canary_key, confirmed=True, attempts=attempts)
    if found == "envelope":
        _delete_canary_object(config, trail, delivery.canary_key)
        raise OnboardingError(
            f"Verification: the canary reached queue {queue.queue_arn} wrapped in an SNS envelope, so raw "
            "message delivery is off on the topic's subscription to the queue; Expel expects the S3 event "
            "itself. Fix: set the subscription attribute RawMessageDelivery to true (guide step 6), then run "
            "the onboarding again")
    if attempts >= max_checks:
        _delete_canary_object(config, trail, delivery.canary_key)
        raise DeliveryNotConfirmed(
            f"Verification: the canary s3://{trail.bucket_name}/{delivery.canary_key} did not reach queue "
            f"{queue.queue_arn} after {attempts} checks. Check: {_STEPS_TO_CHECK}. Then run the onboarding "
            "again (a new run puts a new canary)")
    return DeliveryOutput(canary_key=delivery.canary_key, confirmed=False, attempts=attempts)


def _find_in_queue(queue_url: str, bucket: str, key: str) -> str:
    """Returns "raw", "envelope" or "" (not seen). Deletes the canary's message; releases every other one."""
    others: list[str] = []
    found = ""
    try:
        for _ in range(RECEIVES_PER_CHECK):
            messages = sqs.receive_messages(queue_url, 10, RECEIVE_WAIT_SECONDS, VISIBILITY_SECONDS)
            if not messages:
                break
            for message in messages:
                kind = classify(message.get("Body", ""), bucket, key)
                if kind:
                    sqs.delete_message(queue_url, message["ReceiptHandle"])
                    found = found or kind
                else:
                    others.append(message["ReceiptHandle"])
            if found:
                break
    finally:
        _release(queue_url, others)
    return found


_QUEUE_RULES = (
    Rule({"KMS.*"}, OnboardingError,
         "Verification: SQS could not decrypt messages of queue {queue_arn} ({code}). Fix: the check function needs "
         "kms:Decrypt on {key_arn}, and the key must be enabled"),
    Rule(sqs.MISSING, OnboardingError,
         "Verification: the queue {queue_arn} no longer exists. Fix: run the onboarding again, which creates it "
         "(guide step 5)"),
    Rule(ACCESS_DENIED, OnboardingError,
         "Verification: reading queue {queue_arn} was refused ({message}). Fix: the check function needs "
         "sqs:ReceiveMessage, "
         "sqs:DeleteMessage and sqs:ChangeMessageVisibility on it"),
)


def _release(queue_url: str, receipt_handles: list[str]) -> None:
    """Make the messages we looked at visible again now, not when their visibility timeout ends."""
    failed = sqs.release_messages(queue_url, receipt_handles)
    if failed:
        # They reappear by themselves after VISIBILITY_SECONDS; nothing is lost.
        logger.warning("Some messages stay hidden until their visibility timeout", extra={"failed": failed})


def classify(body: str, bucket: str, key: str) -> str:
    """Is this queue message our canary? "raw" (the S3 event itself), "envelope" (the S3 event inside
    an SNS notification: raw delivery is off) or "" (anything else, left for Expel)."""
    document = _json(body)
    if document.get("Type") == "Notification" and "TopicArn" in document:
        return "envelope" if _mentions(_json(document.get("Message", "")), bucket, key) else ""
    return "raw" if _mentions(document, bucket, key) else ""


def _mentions(event: dict[str, Any], bucket: str, key: str) -> bool:
    records = event.get("Records")
    if not isinstance(records, list):
        return False  # e.g. the s3:TestEvent S3 sends when a notification is configured
    for record in records:
        entity = record.get("s3", {}) if isinstance(record, dict) else {}
        # S3 URL-encodes object keys in events (spaces as '+').
        if (entity.get("bucket", {}).get("name") == bucket
                and unquote_plus(str(entity.get("object", {}).get("key", ""))) == key):
            return True
    return False


def _json(text: Any) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _delete_canary_object(config: Config, trail: TrailOutput, key: str) -> None:
    """Remove every version of the canary (the bucket is versioned: a plain delete would only add a
    delete marker). A failure here is logged, not raised: delivery is already decided. With Object Lock the
    bucket's default retention holds the canary too: governance mode lets this step's role remove it."""
    locked = config.object_lock_retention_days > 0
    try:
        for version_key, version_id in s3.object_versions(trail.bucket_name, key, config.account_id):
            if version_key == key:
                s3.delete_object_version(trail.bucket_name, key, version_id, config.account_id,
                                         bypass_governance=locked)
    except Exception:
        logger.warning("Could not delete the canary object; delete it by hand",
                       extra={"bucket": trail.bucket_name, "key": key}, exc_info=True)
