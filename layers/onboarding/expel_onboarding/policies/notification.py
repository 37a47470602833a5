"""The bucket's event notification configuration (guide step 7).

S3's PutBucketNotificationConfiguration replaces the whole configuration, so writing only ours
would silently delete every other notification on the bucket. These functions build the full
document to write: every other entry kept as it is, ours replaced by its Id.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

NOTIFICATION_ID = "expel-cloudtrail-object-created"
DEFAULT_EVENTS = ("s3:ObjectCreated:*",)  # the guide's "All object create events"

# The destination lists of a notification configuration; Ids are unique across all of them.
_LISTS = ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations")

NotificationConfiguration = dict[str, Any]


def _ours(topic_arn: str, configuration_id: str, events: Sequence[str]) -> dict[str, Any]:
    # No Filter: the guide asks for every object, CloudTrail's digests included.
    return {"Id": configuration_id, "TopicArn": topic_arn, "Events": sorted(set(events))}


def _writable(existing: NotificationConfiguration | None) -> NotificationConfiguration:
    """The GET response as a PUT body: without boto3's ResponseMetadata, lists copied."""
    result = copy.deepcopy(existing or {})
    result.pop("ResponseMetadata", None)
    return result


def merge_notification_configuration(existing: NotificationConfiguration | None, topic_arn: str,
                                     configuration_id: str = NOTIFICATION_ID,
                                     events: Sequence[str] = DEFAULT_EVENTS) -> NotificationConfiguration:
    """The whole configuration to write with our topic entry in it.

    An entry with our Id is replaced where it stands (so the order of the rest is stable) and an
    entry with our Id in another destination list is dropped, since S3 requires unique Ids.
    Everything else, including ``EventBridgeConfiguration``, is kept unchanged.
    """
    result = _writable(existing)
    ours = _ours(topic_arn, configuration_id, events)
    for name in _LISTS:
        if name == "TopicConfigurations" or name not in result:
            continue
        result[name] = [entry for entry in result[name] if entry.get("Id") != configuration_id]
        if not result[name]:
            del result[name]
    topics = list(result.get("TopicConfigurations", []))
    for index, entry in enumerate(topics):
        if entry.get("Id") == configuration_id:
            topics[index] = ours
            break
    else:
        topics.append(ours)
    result["TopicConfigurations"] = topics
    return result


def remove_notification(existing: NotificationConfiguration | None,
                        configuration_id: str = NOTIFICATION_ID) -> NotificationConfiguration:
    """Teardown: the whole configuration without our entry; lists left empty are dropped, as S3
    itself omits them."""
    result = _writable(existing)
    for name in _LISTS:
        if name in result:
            result[name] = [entry for entry in result[name] if entry.get("Id") != configuration_id]
            if not result[name]:
                del result[name]
    return result


def notification_present(existing: NotificationConfiguration | None, topic_arn: str,
                         configuration_id: str = NOTIFICATION_ID,
                         events: Sequence[str] = DEFAULT_EVENTS) -> bool:
    """True when our entry is already exactly right, so step 7 need not write at all."""
    wanted = _ours(topic_arn, configuration_id, events)
    found = [entry for name in _LISTS for entry in (existing or {}).get(name, [])
             if entry.get("Id") == configuration_id]
    if len(found) != 1:
        return False
    entry = found[0]
    return (entry.get("TopicArn") == wanted["TopicArn"]
            and sorted(set(entry.get("Events", []))) == wanted["Events"]
            and not entry.get("Filter"))
