"""S3 event notifications as S3 validates and sends them (moto accepts any configuration and sends a
reduced event).

PutBucketNotificationConfiguration is refused, with nothing stored, as S3 refuses it:
- two configurations that share an event type (``s3:ObjectCreated:*`` covers ``s3:ObjectCreated:Put``) and
  whose key filters overlap (one prefix starts the other, one suffix ends the other; none = every key):
  ``InvalidArgument`` "Configurations overlap. Configurations on the same bucket cannot share a common event
  type." (no filters), or "Configuration is ambiguously defined. Cannot have overlapping suffixes in two
  rules if the prefixes are overlapping for the same event type." (filters);
- a destination in another region: "The notification destination service region is not valid for the
  bucket location constraint";
- a destination S3 cannot deliver to: ``InvalidArgument`` "Unable to validate the following destination
  configurations" with the destination ARN and the reason (it does not exist, or its policy, or for an
  encrypted topic or queue its key, does not let ``s3.amazonaws.com`` use it for this bucket). S3 checks
  by sending the ``s3:TestEvent``, so a stored configuration has been proven deliverable.

Events are what S3 sends (event version 2.1, ``userIdentity``, ``requestParameters``, ``responseElements``,
the bucket owner, the object's ``versionId`` and ``sequencer``; the key URL-encoded with ``/`` kept), and
reach an SNS topic with the subject "Amazon S3 Notification". A destination that no longer admits S3 gets
nothing, and nobody is told (S3 delivers asynchronously).

Whether a resource policy admits a service principal is ``PolicyChecks``' business: IAM's evaluator answers
it while IAM is enforced (``enforcement.service_checks``, on by default in ``local serve``); without it every
destination that exists admits S3.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from local_cloud.once import once

log = logging.getLogger(__name__)

UNABLE_TO_VALIDATE = "Unable to validate the following destination configurations"
OVERLAP = "Configurations overlap. Configurations on the same bucket cannot share a common event type."
AMBIGUOUS = ("Configuration is ambiguously defined. Cannot have overlapping suffixes in two rules if the "
             "prefixes are overlapping for the same event type.")
WRONG_REGION = "The notification destination service region is not valid for the bucket location constraint"
SNS_SUBJECT = "Amazon S3 Notification"
# moto's keys of the parsed configuration -> (ARN field, AWS's name of the destination kind)
_KINDS = {"TopicConfiguration": ("Topic", "topic"), "QueueConfiguration": ("Queue", "queue"),
          "CloudFunctionConfiguration": ("CloudFunction", "Lambda function")}


@dataclass
class PolicyChecks:
    """Resource-policy questions S3 asks about a destination; None = allowed, else why not (AWS's words).

    ``publish(kind, destination_arn, bucket_arn, account)`` is asked at configuration time and for every
    event; the default admits every destination that exists (installed by the IAM evaluator when present)."""

    publish: Callable[[str, str, str, str], str | None] = lambda kind, arn, bucket_arn, account: None


checks = PolicyChecks()


# ------------------------------------------------------------------------------------------ validation
def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _filters(entry: dict[str, Any]) -> tuple[str, str]:
    rules = _as_list(((entry.get("Filter") or {}).get("S3Key") or {}).get("FilterRule"))
    found = {str(rule.get("Name", "")).lower(): str(rule.get("Value", "")) for rule in rules}
    return found.get("prefix", ""), found.get("suffix", "")


def _events_meet(left: str, right: str) -> bool:
    """Whether two event types have an event in common (``s3:ObjectCreated:*`` covers every ObjectCreated)."""
    if left == right:
        return True
    for wide, narrow in ((left, right), (right, left)):
        if wide.endswith(":*") and narrow.startswith(wide[:-1]):
            return True
    return False


def overlap_error(configuration: dict[str, Any]) -> tuple[str, str, str] | None:
    """(message, argument name, argument value) of the first overlap S3 refuses, or None."""
    entries = [(kind, entry) for kind in _KINDS for entry in _as_list(configuration.get(kind))]
    for index, (_, first) in enumerate(entries):
        for _, second in entries[index + 1:]:
            shared = [(a, b) for a in _as_list(first.get("Event")) for b in _as_list(second.get("Event"))
                      if _events_meet(str(a), str(b))]
            if not shared:
                continue
            (prefix_a, suffix_a), (prefix_b, suffix_b) = _filters(first), _filters(second)
            prefixes_overlap = prefix_a.startswith(prefix_b) or prefix_b.startswith(prefix_a)
            suffixes_overlap = suffix_a.endswith(suffix_b) or suffix_b.endswith(suffix_a)
            if prefixes_overlap and suffixes_overlap:
                unfiltered = not (prefix_a or suffix_a or prefix_b or suffix_b)
                return (OVERLAP if unfiltered else AMBIGUOUS, "Event", f"{shared[0][0]}, {shared[0][1]}")
    return None


def destination_error(bucket: Any, kind: str, arn: str) -> str | None:
    """Why S3 could not deliver a test event to ``arn`` (AWS's words), or None when it can."""
    if arn.split(":")[3:4] != [bucket.region_name]:
        return WRONG_REGION
    label = _KINDS[kind][1]
    if not _destination_exists(kind, arn):
        return f"The destination {label} does not exist"
    refused = checks.publish(kind, arn, bucket.arn, bucket.account_id)
    if refused:
        return refused
    return None


def _destination_exists(kind: str, arn: str) -> bool:
    parts = arn.split(":")
    if len(parts) < 6:
        return False
    account, region, name = parts[4], parts[3], parts[5]
    try:
        if kind == "TopicConfiguration":
            from moto.sns.models import sns_backends

            sns_backends[account][region].get_topic(arn)
        elif kind == "QueueConfiguration":
            from moto.sqs.models import sqs_backends

            sqs_backends[account][region].get_queue(name)
        else:
            from moto.awslambda.utils import get_backend

            get_backend(account, region).get_function(arn)
    except Exception:
        return False
    return True


def validate(bucket: Any, configuration: dict[str, Any]) -> None:
    """Raise S3's InvalidArgument for a configuration S3 would refuse; nothing is stored then."""
    from moto.s3.exceptions import InvalidArgumentError

    overlap = overlap_error(configuration)
    if overlap:
        raise InvalidArgumentError(*overlap)
    for kind, (field_name, _) in _KINDS.items():
        for entry in _as_list(configuration.get(kind)):
            arn = str(entry.get(field_name, ""))
            reason = destination_error(bucket, kind, arn)
            if reason == WRONG_REGION:
                from moto.s3.exceptions import InvalidNotificationDestination

                raise InvalidNotificationDestination()
            if reason:
                raise InvalidArgumentError(UNABLE_TO_VALIDATE, arn, reason)


# ------------------------------------------------------------------------------------------ the events
_sequence = 0
_sequence_lock = threading.Lock()


def _sequencer() -> str:
    """S3's per-key ordering token: hexadecimal, increasing."""
    global _sequence
    with _sequence_lock:
        _sequence += 1
        return f"{int(time.time() * 1000):012X}{_sequence:06X}"


def s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
    """One S3 event record as S3 sends it (event structure version 2.1)."""
    owner = f"A{bucket.account_id}"  # S3 shows the bucket owner's canonical principal id
    obj: dict[str, Any] = {"key": quote_plus(key.name, safe="/"), "size": key.size,
                           "eTag": key.etag.replace('"', ""), "sequencer": _sequencer()}
    if getattr(key, "version_id", None) not in (None, "null"):
        obj["versionId"] = key.version_id
    return {"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": bucket.region_name,
        "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": event_name[3:] if event_name.startswith("s3:") else event_name,
        "userIdentity": {"principalId": f"AWS:{owner}"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                              "x-amz-id-2": uuid.uuid4().hex},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": notification_id,
               "bucket": {"name": bucket.name, "ownerIdentity": {"principalId": owner}, "arn": bucket.arn},
               "object": obj},
    }]}


def test_event(bucket_name: str) -> dict[str, Any]:
    return {"Service": "Amazon S3", "Event": "s3:TestEvent",
            "Time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "Bucket": bucket_name,
            "RequestId": uuid.uuid4().hex[:16].upper(), "HostId": uuid.uuid4().hex}


def publish_to_topic(event_body: Any, topic_arn: str, bucket_arn: str, account: str) -> None:
    """S3 -> SNS: published only if the topic (and its key) admit S3 for this bucket; else silently nothing."""
    refused = checks.publish("TopicConfiguration", topic_arn, bucket_arn, account)
    if refused:
        log.info("S3 event for %s not published to %s: %s", bucket_arn, topic_arn, refused)
        return
    try:
        from moto.sns.models import sns_backends

        parts = topic_arn.split(":")
        topic = sns_backends[parts[4]][parts[3]].get_topic(topic_arn)
        topic.publish(json.dumps(event_body), subject=SNS_SUBJECT)
    except Exception:
        log.info("S3 event for %s not delivered to %s", bucket_arn, topic_arn, exc_info=True)


# ------------------------------------------------------------------------------------------ moto hooks


@once
def install() -> None:
    """Validation, event shape and delivery rules in moto's S3 (idempotent; also used by in-process tests)."""
    from moto.s3 import notifications
    from moto.s3.models import S3Backend

    original_put = S3Backend.put_bucket_notification_configuration

    def put_bucket_notification_configuration(self: Any, bucket_name: str, notification_config: dict[str, Any]
                                              ) -> None:
        validate(self.get_bucket(bucket_name), notification_config or {})
        original_put(self, bucket_name, notification_config)

    S3Backend.put_bucket_notification_configuration = put_bucket_notification_configuration  # type: ignore[method-assign]

    notifications._get_s3_event = s3_event  # type: ignore[assignment]
    notifications._get_test_event = test_event  # type: ignore[assignment]
    original_send_event = notifications.send_event

    def send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
        _current_bucket.value = bucket
        try:
            original_send_event(account_id, event_name, bucket, key)
        finally:
            _current_bucket.value = None

    original_send_test = notifications.send_test_event

    def send_test_event(account_id: str, bucket: Any) -> None:
        _current_bucket.value = bucket
        try:
            original_send_test(account_id, bucket)
        finally:
            _current_bucket.value = None

    def send_sns_message(account_id: str, event_body: Any, topic_arn: str, region_name: str) -> None:
        bucket = _current_bucket.value
        bucket_arn = bucket.arn if bucket is not None else ""
        publish_to_topic(event_body, topic_arn, bucket_arn, bucket.account_id if bucket is not None else account_id)

    notifications.send_event = send_event  # type: ignore[assignment]
    notifications.send_test_event = send_test_event  # type: ignore[assignment]
    notifications._send_sns_message = send_sns_message  # type: ignore[assignment]


class _BucketOfEvent(threading.local):
    value: Any = None


_current_bucket = _BucketOfEvent()
