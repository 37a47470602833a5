"""The trail's event selectors (guide step 1: "Leave the Choose Log Events screen as is"). Pure.

That screen's default, on a trail the console creates, is one *basic* event selector: management events,
Read and Write, no exclusions (AWS KMS and Amazon RDS Data API events included), no data events; it is
also what CreateTrail gives a trail without selectors. We set the same basic selector explicitly
(PutEventSelectors) rather than an advanced one: it is the guide's default, and CIS 3.1's audit and
Security Hub's CloudTrail.1 (AWS Config's multi-region-cloudtrail-enabled: ``IncludeManagementEvents``,
``ReadWriteType``, ``ExcludeManagementEventSources``) read basic selectors, so the trail passes them as
written.

A trail logs an event that matches *any* of its selectors, so what matters is that one selector logs
every management event. Whatever else a person added (data events) is kept, in the form they chose:
a trail switched to advanced selectors gets an advanced management selector, never a basic one that
would overwrite theirs (AWS keeps one form per trail).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

Selector = dict[str, Any]

MANAGEMENT_EVENTS: Selector = {
    "ReadWriteType": "All",
    "IncludeManagementEvents": True,
    "DataResources": [],
    "ExcludeManagementEventSources": [],
}
# The advanced form of the same selector: every management event, no readOnly or eventSource filter.
ADVANCED_MANAGEMENT_EVENTS: Selector = {
    "Name": "Management events selector",
    "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}],
}
# CloudTrail's limit on basic event selectors per trail.
MAX_EVENT_SELECTORS = 5


@dataclass(frozen=True)
class EventSelectors:
    """A trail's selectors as GetEventSelectors returns them: one of the two lists is used."""

    basic: list[Selector]
    advanced: list[Selector]


def logs_all_management_events(current: EventSelectors) -> bool:
    """CIS 3.1 / CloudTrail.1: some selector logs read and write management events, excluding none."""
    if current.advanced:
        return any(_is_all_management(s) for s in current.advanced)
    return any(s.get("IncludeManagementEvents", True) and s.get("ReadWriteType", "All") == "All"
               and not s.get("ExcludeManagementEventSources") for s in current.basic)


def converge(current: EventSelectors) -> EventSelectors | None:
    """The selectors to put so the trail logs every management event, keeping every data-event
    selector; None when the trail already does (a rerun writes nothing)."""
    if logs_all_management_events(current):
        return None
    if current.advanced:
        # A management selector with filters (readOnly, eventSource) is superseded by ours; data stays.
        kept = [copy.deepcopy(s) for s in current.advanced if not _is_management(s)]
        return EventSelectors(basic=[], advanced=[copy.deepcopy(ADVANCED_MANAGEMENT_EVENTS), *kept])
    data = [{**copy.deepcopy(s), "IncludeManagementEvents": False, "ExcludeManagementEventSources": []}
            for s in current.basic if s.get("DataResources")]
    if len(data) < MAX_EVENT_SELECTORS:
        return EventSelectors(basic=[copy.deepcopy(MANAGEMENT_EVENTS), *data], advanced=[])
    # No room for a selector of its own: the first data selector also logs management events (and so
    # its data events for reads and writes both: more logging, never less).
    first = {**data[0], "ReadWriteType": "All", "IncludeManagementEvents": True}
    return EventSelectors(basic=[first, *data[1:]], advanced=[])


def _categories(selector: Selector) -> list[dict[str, Any]]:
    return [f for f in selector.get("FieldSelectors", []) if f.get("Field") == "eventCategory"]


def _is_management(selector: Selector) -> bool:
    return any(f.get("Equals") == ["Management"] for f in _categories(selector))


def _is_all_management(selector: Selector) -> bool:
    fields = selector.get("FieldSelectors", [])
    return len(fields) == 1 and _is_management(selector) and set(fields[0]) <= {"Field", "Equals"}


@dataclass(frozen=True)
class ManagementEvents:
    """What a trail's selectors log of management events, read from either form."""

    read: bool
    write: bool
    # Event sources left out by every selector that logs management events (AWS KMS, RDS Data API, ...).
    excluded: tuple[str, ...] = ()
    # An advanced selector narrows management events by something else (eventSource Equals, userIdentity...).
    filtered: bool = False


def management_events(current: EventSelectors) -> ManagementEvents:
    """A trail logs an event that matches any selector: reads and writes are each logged if some selector
    logs them, and a source is excluded only if every management selector excludes it."""
    read = write = filtered = False
    exclusions: list[set[str]] = []
    if current.advanced:
        for selector in current.advanced:
            if not _is_management(selector):
                continue
            fields = {str(f.get("Field")): f for f in selector.get("FieldSelectors", [])}
            read_only = fields.get("readOnly", {}).get("Equals")
            read = read or read_only in (None, ["true"])
            write = write or read_only in (None, ["false"])
            source = fields.get("eventSource", {})
            exclusions.append(set(source.get("NotEquals", [])))
            filtered = filtered or bool(set(fields) - {"eventCategory", "readOnly", "eventSource"}) or any(
                key != "NotEquals" and key != "Field" for key in source)
    else:
        for selector in current.basic:
            if not selector.get("IncludeManagementEvents", True):
                continue
            kind = selector.get("ReadWriteType", "All")
            read = read or kind in ("All", "ReadOnly")
            write = write or kind in ("All", "WriteOnly")
            exclusions.append(set(selector.get("ExcludeManagementEventSources", [])))
    excluded = tuple(sorted(set.intersection(*exclusions))) if exclusions else ()
    return ManagementEvents(read=read, write=write, excluded=excluded, filtered=filtered)
