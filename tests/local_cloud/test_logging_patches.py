"""The local cloud's CloudTrail logging settings behave like AWS's (in-process moto, patches applied as in
``local serve``): each rule with the refusal AWS answers."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import REGION

MANAGEMENT = {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [],
              "ExcludeManagementEventSources": []}
ADVANCED = [{"Name": "writes", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                                  {"Field": "readOnly", "Equals": ["false"]}]}]


@pytest.fixture
def trail(aws: None) -> str:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="trail-logs")
    boto3.client("cloudtrail", region_name=REGION).create_trail(Name="trail-one", S3BucketName="trail-logs")
    return "trail-one"


def test_new_trail_logs_read_and_write_management_events(trail: str) -> None:
    selectors = boto3.client("cloudtrail", region_name=REGION).get_event_selectors(TrailName=trail)
    assert selectors["EventSelectors"] == [MANAGEMENT]
    assert selectors.get("AdvancedEventSelectors", []) == []


def test_basic_selectors_come_back_with_defaults_filled_in(trail: str) -> None:
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    cloudtrail.put_event_selectors(TrailName=trail, EventSelectors=[{"ReadWriteType": "WriteOnly"}])
    assert cloudtrail.get_event_selectors(TrailName=trail)["EventSelectors"] == [
        {**MANAGEMENT, "ReadWriteType": "WriteOnly"}]


def test_one_form_replaces_the_other(trail: str) -> None:
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    cloudtrail.put_event_selectors(TrailName=trail, AdvancedEventSelectors=ADVANCED)
    after_advanced = cloudtrail.get_event_selectors(TrailName=trail)
    assert after_advanced["AdvancedEventSelectors"] == ADVANCED
    assert after_advanced.get("EventSelectors", []) == []

    cloudtrail.put_event_selectors(TrailName=trail, EventSelectors=[MANAGEMENT])
    after_basic = cloudtrail.get_event_selectors(TrailName=trail)
    assert after_basic["EventSelectors"] == [MANAGEMENT]
    assert after_basic.get("AdvancedEventSelectors", []) == []


def test_both_forms_in_one_request_are_refused(trail: str) -> None:
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    with pytest.raises(ClientError) as refused:
        cloudtrail.put_event_selectors(TrailName=trail, EventSelectors=[MANAGEMENT], AdvancedEventSelectors=ADVANCED)
    assert refused.value.response["Error"]["Code"] == "InvalidEventSelectorsException"
    assert cloudtrail.get_event_selectors(TrailName=trail)["EventSelectors"] == [MANAGEMENT]


def test_more_than_five_basic_selectors_are_refused(trail: str) -> None:
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    with pytest.raises(ClientError) as refused:
        cloudtrail.put_event_selectors(TrailName=trail, EventSelectors=[MANAGEMENT] * 6)
    assert refused.value.response["Error"]["Code"] == "InvalidEventSelectorsException"


@pytest.mark.parametrize("retention", [{"Mode": "GOVERNANCE", "Days": 30}, {"Mode": "COMPLIANCE", "Years": 1}])
def test_object_lock_default_retention_reads_back_as_it_was_set(aws: None, retention: dict[str, object]) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="locked-logs", ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket="locked-logs", ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}})
    assert s3.get_object_lock_configuration(Bucket="locked-logs")["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}}
