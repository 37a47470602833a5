"""CloudTrail's Event history in the local cloud: ``LookupEvents`` over the calls the recorder saw.

AWS keeps the last 90 days of management events of every account and Region, whether or not a trail
exists, and answers ``LookupEvents`` from them; the history outlives the resources the events name (a
deleted stack's functions, a deleted state machine). Here the history is ``cloudtrail_logs.EventLog``,
every management-event call the local cloud answered (refused ones too), as AWS would:

- events of the caller's account in the Region called (global services' events in us-east-1, where their
  calls are signed), newest first, none older than 90 days;
- at most one lookup attribute (``EventId``, ``EventName``, ``ReadOnly``, ``Username``, ``EventSource``,
  ``AccessKeyId``, ``ResourceType``, ``ResourceName``), matched exactly; ``StartTime``/``EndTime`` inclusive,
  on the event's time (whole seconds, as CloudTrail records it);
- ``MaxResults`` 1 to 50 (default 50) and a ``NextToken`` that only the same query may pass back;
- each event with ``Username`` (an IAM user's name, an assumed role's session name, ``root``), its access key,
  and the whole record as the ``CloudTrailEvent`` JSON string;
- AWS's refusals: InvalidLookupAttributesException, InvalidTimeRangeException, InvalidMaxResultsException,
  InvalidNextTokenException, InvalidEventCategoryException, and ThrottlingException beyond two lookups per
  second per account and Region.

Not emulated: the local cloud does not work out which resources an event names (AWS does so per
operation), so events carry no ``Resources`` and a lookup by ``ResourceType`` or ``ResourceName`` is refused
(UnsupportedOperationException) rather than answered with nothing. No Insights: ``EventCategory=insight``
finds no events.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.core.exceptions import JsonRESTError

from local_cloud.cloudtrail_logs import EventLog
from local_cloud.once import once

RETENTION_SECONDS = 90 * 86400
MAX_RESULTS = 50
MAX_ATTRIBUTE_VALUE = 2000
LOOKUPS_PER_SECOND = 2
ATTRIBUTE_KEYS = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource",
                  "AccessKeyId")
_INSIGHT_KEYS = ("EventId", "EventName", "EventSource")
_NOT_EMULATED_KEYS = ("ResourceType", "ResourceName")


class LookupRefusal(JsonRESTError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


class Throttled(JsonRESTError):
    def __init__(self) -> None:
        super().__init__("ThrottlingException", "Rate exceeded")


def _username(identity: dict[str, Any]) -> str:
    kind = identity.get("type")
    if kind == "Root":
        return "root"
    if kind == "IAMUser":
        return str(identity.get("userName", ""))
    if kind == "AssumedRole":
        return str(identity.get("arn", "")).rsplit("/", 1)[-1]  # the role session's name
    return str(identity.get("principalId", ""))


def _event_time(record: dict[str, Any]) -> int:
    return int(datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def _attribute_of(record: dict[str, Any], key: str) -> str:
    identity = record.get("userIdentity") or {}
    return {
        "EventId": lambda: record.get("eventID", ""),
        "EventName": lambda: record.get("eventName", ""),
        "ReadOnly": lambda: str(bool(record.get("readOnly"))).lower(),
        "Username": lambda: _username(identity),
        "EventSource": lambda: record.get("eventSource", ""),
        "AccessKeyId": lambda: identity.get("accessKeyId", ""),
    }[key]()


def event(record: dict[str, Any]) -> dict[str, Any]:
    """One event of LookupEvents' answer."""
    identity = record.get("userIdentity") or {}
    found: dict[str, Any] = {
        "EventId": record["eventID"], "EventName": record["eventName"],
        "ReadOnly": str(bool(record.get("readOnly"))).lower(), "EventTime": _event_time(record),
        "EventSource": record["eventSource"], "Username": _username(identity), "Resources": [],
        "CloudTrailEvent": json.dumps(record, separators=(",", ":")),
    }
    if identity.get("accessKeyId"):
        found["AccessKeyId"] = identity["accessKeyId"]
    return found


def _seconds(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LookupRefusal("InvalidTimeRangeException", f"{name} is not a valid timestamp.") from None


def _query(request: dict[str, Any]) -> tuple[str, str | None, str | None, float | None, float | None, int]:
    """(category, key, value, start, end, max results) of a request, each refusal as AWS words it."""
    category = request.get("EventCategory")
    if category is not None and category != "insight":
        raise LookupRefusal("InvalidEventCategoryException",
                            f"Event category {category} is not valid. The valid value is: insight.")
    attributes = request.get("LookupAttributes") or []
    if not isinstance(attributes, list) or len(attributes) > 1:
        raise LookupRefusal("InvalidLookupAttributesException", "You can specify only one lookup attribute.")
    key = value = None
    if attributes:
        key, value = attributes[0].get("AttributeKey"), attributes[0].get("AttributeValue")
        allowed = _INSIGHT_KEYS if category == "insight" else ATTRIBUTE_KEYS
        if key not in allowed:
            raise LookupRefusal("InvalidLookupAttributesException",
                                f"Lookup attribute key {key} is not valid. Valid keys are: {', '.join(allowed)}.")
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_ATTRIBUTE_VALUE:
            raise LookupRefusal("InvalidLookupAttributesException",
                                f"The value of lookup attribute {key} must be 1 to {MAX_ATTRIBUTE_VALUE} characters "
                                "long.")
        if key in _NOT_EMULATED_KEYS:
            raise LookupRefusal("UnsupportedOperationException",
                                f"The local cloud does not record the resources an event names: a lookup by {key} "
                                "is not emulated.")
    start, end = _seconds(request.get("StartTime"), "StartTime"), _seconds(request.get("EndTime"), "EndTime")
    if start is not None and end is not None and start > end:
        raise LookupRefusal("InvalidTimeRangeException", "The start time must be before the end time.")
    limit = request.get("MaxResults", MAX_RESULTS)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
        raise LookupRefusal("InvalidMaxResultsException",
                            f"MaxResults {limit} is not valid. Specify a value from 1 to {MAX_RESULTS}.")
    return category or "", key, value, start, end, limit


def _fingerprint(request: dict[str, Any]) -> str:
    """What a NextToken is bound to: the query, without the token and the page size."""
    query = {k: v for k, v in request.items() if k not in ("NextToken", "MaxResults")}
    return hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _token(after: tuple[int, int], fingerprint: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"t": after[0], "s": after[1], "q": fingerprint}).encode()).decode()


def _position(token: str, fingerprint: str) -> tuple[int, int]:
    invalid = LookupRefusal("InvalidNextTokenException", "Invalid NextToken.")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        position = (int(decoded["t"]), int(decoded["s"]))
        bound_to = decoded["q"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise invalid from None
    if bound_to != fingerprint:
        raise invalid
    return position


def lookup(history: list[tuple[int, dict[str, Any]]], account: str, region: str, request: dict[str, Any],
           now: float) -> dict[str, Any]:
    """LookupEvents over ``history`` ((sequence number, record) in recording order) for ``account`` in
    ``region``."""
    category, key, value, start, end, limit = _query(request)
    fingerprint = _fingerprint(request)
    before = _position(request["NextToken"], fingerprint) if request.get("NextToken") else None
    if category == "insight":
        return {"Events": []}
    oldest = now - RETENTION_SECONDS
    matching: list[tuple[tuple[int, int], dict[str, Any]]] = []
    for seq, record in history:
        if record.get("recipientAccountId") != account or record.get("awsRegion") != region:
            continue
        at = _event_time(record)
        if at < oldest or (start is not None and at < start) or (end is not None and at > end):
            continue
        if key is not None and _attribute_of(record, key) != value:
            continue
        matching.append(((at, seq), record))
    matching.sort(key=lambda item: item[0], reverse=True)  # newest first
    if before is not None:
        matching = [item for item in matching if item[0] < before]
    page = matching[:limit]
    answer: dict[str, Any] = {"Events": [event(record) for _, record in page]}
    if len(matching) > limit:
        answer["NextToken"] = _token(page[-1][0], fingerprint)
    return answer


class RateLimit:
    """At most ``per_second`` lookups in any second, per account and Region (AWS: two)."""

    def __init__(self, per_second: int = LOOKUPS_PER_SECOND, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.clock = clock
        self._recent: dict[tuple[str, str], collections.deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, account: str, region: str) -> None:
        with self._lock:
            now = self.clock()
            recent = self._recent.setdefault((account, region), collections.deque())
            while recent and recent[0] <= now - 1.0:
                recent.popleft()
            if len(recent) >= self.per_second:
                raise Throttled()
            recent.append(now)


# ------------------------------------------------------------------------------------- moto integration
_events: EventLog | None = None
_limit = RateLimit()


def install(events: EventLog) -> None:
    """LookupEvents in the running server, over ``events`` (the recorder's log)."""
    global _events
    _events = events
    _patch()


@once
def _patch() -> None:
    from moto.cloudtrail.responses import CloudTrailResponse

    def lookup_events(self: Any) -> str:
        request = json.loads(self.body or "{}")
        _limit.admit(self.current_account, self.region)
        history = _events.history() if _events is not None else []
        return json.dumps(lookup(history, self.current_account, self.region, request, time.time()))

    CloudTrailResponse.lookup_events = lookup_events  # type: ignore[attr-defined]
