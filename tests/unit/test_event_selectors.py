"""The trail's event selectors: every management event logged, every data-event selector kept."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from expel_onboarding.policies.event_selectors import (
    ADVANCED_MANAGEMENT_EVENTS,
    MANAGEMENT_EVENTS,
    MAX_EVENT_SELECTORS,
    EventSelectors,
    converge,
    logs_all_management_events,
)

S3_DATA = {"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::payroll/"]}


def basic(read_write: str = "All", management: bool = True, excluded: list[str] | None = None,
          data: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"ReadWriteType": read_write, "IncludeManagementEvents": management, "DataResources": data or [],
            "ExcludeManagementEventSources": excluded or []}


DATA_ADVANCED = {"Name": "payroll objects", "FieldSelectors": [
    {"Field": "eventCategory", "Equals": ["Data"]}, {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}


@pytest.mark.parametrize("current", [
    EventSelectors(basic=[MANAGEMENT_EVENTS], advanced=[]),  # what CreateTrail and the console give a new trail
    EventSelectors(basic=[basic(data=[S3_DATA])], advanced=[]),  # management and data in one selector
    EventSelectors(basic=[basic("ReadOnly", data=[S3_DATA]), basic()], advanced=[]),
    EventSelectors(basic=[], advanced=[ADVANCED_MANAGEMENT_EVENTS, DATA_ADVANCED]),
], ids=["api-default", "with-data", "second-selector", "advanced"])
def test_a_trail_logging_every_management_event_needs_no_change(current: EventSelectors) -> None:
    assert logs_all_management_events(current)
    assert converge(current) is None


@pytest.mark.parametrize(("current", "expected"), [
    (EventSelectors(basic=[basic("WriteOnly")], advanced=[]), [MANAGEMENT_EVENTS]),
    (EventSelectors(basic=[basic(excluded=["kms.amazonaws.com"])], advanced=[]), [MANAGEMENT_EVENTS]),
    (EventSelectors(basic=[basic(management=False, data=[S3_DATA])], advanced=[]),
     [MANAGEMENT_EVENTS, basic(management=False, data=[S3_DATA])]),
    # A selector that logged write management events and S3 reads keeps its data events as they were.
    (EventSelectors(basic=[basic("ReadOnly", excluded=["rdsdata.amazonaws.com"], data=[S3_DATA])], advanced=[]),
     [MANAGEMENT_EVENTS, basic("ReadOnly", management=False, data=[S3_DATA])]),
    (EventSelectors(basic=[], advanced=[]), [MANAGEMENT_EVENTS]),
], ids=["write-only", "kms-excluded", "data-only", "read-only-with-data", "none"])
def test_basic_selectors_gain_the_management_selector_and_keep_data_events(current: EventSelectors,
                                                                          expected: list[dict[str, Any]]) -> None:
    assert converge(current) == EventSelectors(basic=expected, advanced=[])


def test_advanced_selectors_stay_advanced_and_a_filtered_management_selector_is_replaced() -> None:
    read_only = {"Name": "reads", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                                     {"Field": "readOnly", "Equals": ["true"]}]}
    result = converge(EventSelectors(basic=[], advanced=[read_only, DATA_ADVANCED]))
    assert result == EventSelectors(basic=[], advanced=[ADVANCED_MANAGEMENT_EVENTS, DATA_ADVANCED])


def test_five_data_selectors_leave_no_room_so_the_first_also_logs_management_events() -> None:
    data = [basic("ReadOnly", management=False, data=[{"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::b{i}/"]}])
            for i in range(MAX_EVENT_SELECTORS)]
    result = converge(EventSelectors(basic=data, advanced=[]))
    assert result is not None and len(result.basic) == MAX_EVENT_SELECTORS
    assert result.basic[0] == {**data[0], "ReadWriteType": "All", "IncludeManagementEvents": True}
    assert result.basic[1:] == data[1:]


def test_converge_does_not_change_its_input() -> None:
    current = EventSelectors(basic=[basic("WriteOnly", data=[S3_DATA])], advanced=[])
    before = copy.deepcopy(current)
    converge(current)
    assert current == before


_selectors = st.builds(
    basic, read_write=st.sampled_from(["All", "ReadOnly", "WriteOnly"]), management=st.booleans(),
    excluded=st.lists(st.sampled_from(["kms.amazonaws.com", "rdsdata.amazonaws.com"]), max_size=2, unique=True),
    data=st.lists(st.builds(lambda i: {"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::b{i}/"]},
                            st.integers(0, 9)), max_size=2))


@given(st.lists(_selectors, max_size=MAX_EVENT_SELECTORS))
def test_converged_basic_selectors_log_every_management_event_and_keep_every_data_resource(
        selectors: list[dict[str, Any]]) -> None:
    current = EventSelectors(basic=selectors, advanced=[])
    result = converge(current) or current
    assert logs_all_management_events(result)
    assert len(result.basic) <= MAX_EVENT_SELECTORS
    before = [r for s in selectors for r in s["DataResources"]]
    assert sorted(map(str, before)) == sorted(str(r) for s in result.basic for r in s["DataResources"])
    # No data resource is logged for fewer event types than before.
    for old in selectors:
        for resource in old["DataResources"]:
            assert any(resource in s["DataResources"] and s["ReadWriteType"] in (old["ReadWriteType"], "All")
                       for s in result.basic)
