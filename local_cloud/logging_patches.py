"""Where moto 5.2.5's CloudTrail logging settings and the log buckets' protection differ from AWS, made to
behave like AWS.

Used by ``local serve`` (through ``moto_patches.apply``) and by the in-process moto tests
(tests/conftest.py), so both see the same AWS.

Event selectors (CloudTrail API reference, PutEventSelectors / GetEventSelectors):
- A new trail logs read and write management events: GetEventSelectors answers one basic selector
  saying so (moto: none).
- A trail holds basic or advanced selectors, never both: putting one form replaces the other (moto kept
  the advanced ones under new basic ones).
- Basic selectors come back with every field (ReadWriteType, IncludeManagementEvents, DataResources,
  ExcludeManagementEventSources), defaults filled in.
- More than five basic selectors, or both forms in one request: InvalidEventSelectorsException.

S3 Object Lock (S3 API reference, GetObjectLockConfiguration): a default retention holds Days or Years, and
S3 answers only the one that is set (moto answered ``Years: 0`` beside ``Days``).
"""

from __future__ import annotations

import copy
from typing import Any

from moto.core.exceptions import JsonRESTError

MAX_BASIC_SELECTORS = 5
_DEFAULT_SELECTOR = {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [],
                     "ExcludeManagementEventSources": []}
_applied = False


class InvalidEventSelectorsException(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidEventSelectorsException", message)


def _basic(selector: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(_DEFAULT_SELECTOR), **copy.deepcopy(selector)}


def patch_event_selectors() -> None:
    from moto.cloudtrail.models import Trail

    original_init = Trail.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.event_selectors = [copy.deepcopy(_DEFAULT_SELECTOR)]

    def put_event_selectors(self: Any, event_selectors: list[dict[str, Any]] | None,
                            advanced_event_selectors: list[dict[str, Any]] | None) -> None:
        if event_selectors and advanced_event_selectors:
            raise InvalidEventSelectorsException(
                "You can use either EventSelectors or AdvancedEventSelectors in a PutEventSelectors request, "
                "but not both.")
        if event_selectors is not None and len(event_selectors) > MAX_BASIC_SELECTORS:
            raise InvalidEventSelectorsException(
                f"The number of event selectors ({len(event_selectors)}) exceeds the limit of "
                f"{MAX_BASIC_SELECTORS}.")
        if advanced_event_selectors:
            self.event_selectors, self.advanced_event_selectors = [], copy.deepcopy(advanced_event_selectors)
        else:
            self.event_selectors = [_basic(s) for s in event_selectors or []]
            self.advanced_event_selectors = []

    Trail.__init__ = __init__  # type: ignore[method-assign]
    Trail.put_event_selectors = put_event_selectors  # type: ignore[method-assign]


def patch_object_lock_retention() -> None:
    from moto.s3.models import S3Backend

    original = S3Backend.get_object_lock_configuration

    def get_object_lock_configuration(self: Any, bucket_name: str) -> tuple[bool, str | None, int | None, int | None]:
        enabled, mode, days, years = original(self, bucket_name)
        return enabled, mode, days or None, years or None

    S3Backend.get_object_lock_configuration = get_object_lock_configuration  # type: ignore[method-assign]


def apply() -> None:
    """Every patch of this module (idempotent)."""
    global _applied
    if _applied:
        return
    patch_event_selectors()
    patch_object_lock_retention()
    _applied = True
