"""Pure rules of the existing-trail mode: which notification entries collide with ours and what to do
about them, merging our statements into a customer's policy by meaning, and reading a trail's event
selectors. No AWS."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expel_onboarding.errors import InvalidParameter
from expel_onboarding.models import Config
from expel_onboarding.policies._equivalence import add_by_meaning, same_meaning
from expel_onboarding.policies.event_selectors import EventSelectors, ManagementEvents, management_events
from expel_onboarding.policies.key_policy import guide_key_statements, stack_sid
from expel_onboarding.policies.notification import (
    Destination,
    choose_destination,
    merge_notification_configuration,
    notification_present,
    overlapping,
)
from expel_onboarding.validation import validate_config
from tests.unit.test_policy_merges import foreign_statements

PREFIX = "org/AWSLogs/123456789012/"
OURS = "expel-onboarding-s1"
THEIR_TOPIC = "arn:aws:sns:us-east-1:123456789012:siem-feed"
BUCKET_ARN = "arn:aws:s3:::customer-trail-logs"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:ExpelCloudTrailTopic"


def entry(kind: str, entry_id: str, events: list[str], prefix: str = "", suffix: str = "") -> dict[str, Any]:
    key = {"TopicConfigurations": "TopicArn", "QueueConfigurations": "QueueArn",
           "LambdaFunctionConfigurations": "LambdaFunctionArn"}[kind]
    found: dict[str, Any] = {"Id": entry_id, key: THEIR_TOPIC if kind == "TopicConfigurations" else f"arn:{entry_id}",
                             "Events": events}
    rules = [{"Name": n, "Value": v} for n, v in (("Prefix", prefix), ("Suffix", suffix)) if v]
    if rules:
        found["Filter"] = {"Key": {"FilterRules": rules}}
    return found


# ------------------------------------------------------------------------------- notifications

@pytest.mark.parametrize(("theirs", "collides"), [
    (entry("QueueConfigurations", "q", ["s3:ObjectRemoved:*"]), False),
    (entry("QueueConfigurations", "q", ["s3:ObjectCreated:Put"]), True),
    (entry("QueueConfigurations", "q", ["s3:ObjectCreated:*"], prefix="other/"), False),
    (entry("QueueConfigurations", "q", ["s3:ObjectCreated:*"], prefix="org/"), True),
    (entry("QueueConfigurations", "q", ["s3:ObjectCreated:*"], prefix=PREFIX + "CloudTrail/"), True),
    (entry("QueueConfigurations", "q", ["s3:ObjectCreated:*"], suffix=".csv"), True),  # our suffix is empty
    (entry("TopicConfigurations", OURS, ["s3:ObjectCreated:*"]), False),  # ours: the merge replaces it
])
def test_overlapping_follows_s3s_rule(theirs: dict[str, Any], collides: bool) -> None:
    configuration = {"TopicConfigurations" if "TopicArn" in theirs else "QueueConfigurations": [theirs]}
    assert bool(overlapping(configuration, PREFIX, ignore_id=OURS)) is collides


def test_no_collision_adds_our_entry_to_our_topic_or_the_one_given() -> None:
    configuration = {"QueueConfigurations": [entry("QueueConfigurations", "deletes", ["s3:ObjectRemoved:*"])]}
    assert choose_destination(configuration, PREFIX, OURS) == Destination()
    assert choose_destination(configuration, PREFIX, OURS, THEIR_TOPIC) == Destination(topic_arn=THEIR_TOPIC)


@pytest.mark.parametrize("theirs", [
    entry("TopicConfigurations", "feed", ["s3:ObjectCreated:*"]),
    entry("TopicConfigurations", "feed", ["s3:ObjectCreated:Put"], prefix="org/AWSLogs/"),
    entry("TopicConfigurations", "feed", ["s3:ObjectCreated:*"], suffix=".gz"),
])
def test_their_topic_getting_every_log_file_is_used_instead_of_an_entry(theirs: dict[str, Any]) -> None:
    chosen = choose_destination({"TopicConfigurations": [theirs]}, PREFIX, OURS)
    assert chosen == Destination(topic_arn=THEIR_TOPIC, entry_id="feed")


@pytest.mark.parametrize(("kind", "theirs", "words"), [
    ("QueueConfigurations", entry("QueueConfigurations", "indexer", ["s3:ObjectCreated:*"]), "an SQS queue"),
    ("LambdaFunctionConfigurations",
     entry("LambdaFunctionConfigurations", "parser", ["s3:ObjectCreated:Put"], prefix="org/"), "a Lambda function"),
    ("TopicConfigurations",
     entry("TopicConfigurations", "digests", ["s3:ObjectCreated:*"], prefix=PREFIX + "CloudTrail-Digest/"),
     "does not send all of them"),
    ("TopicConfigurations", entry("TopicConfigurations", "posts", ["s3:ObjectCreated:Post"]),
     "does not send all of them"),
])
def test_any_other_collision_is_refused_naming_the_entry_and_the_fix(kind: str, theirs: dict[str, Any],
                                                                     words: str) -> None:
    with pytest.raises(InvalidParameter) as raised:
        choose_destination({kind: [theirs]}, PREFIX, OURS)
    assert raised.value.parameter == "ExistingTrailName"
    assert f"notification {theirs['Id']}" in str(raised.value) and words in str(raised.value)


def test_existing_topic_arn_other_than_the_topic_their_entry_feeds_is_refused() -> None:
    configuration = {"TopicConfigurations": [entry("TopicConfigurations", "feed", ["s3:ObjectCreated:*"])]}
    with pytest.raises(InvalidParameter) as raised:
        choose_destination(configuration, PREFIX, OURS, "arn:aws:sns:us-east-1:123456789012:another")
    assert raised.value.parameter == "ExistingTopicArn" and THEIR_TOPIC in str(raised.value)
    assert choose_destination(configuration, PREFIX, OURS, THEIR_TOPIC).entry_id == "feed"


def test_our_filtered_entry_is_present_only_with_its_prefix() -> None:
    merged = merge_notification_configuration({}, TOPIC_ARN, OURS, prefix=PREFIX)
    assert merged["TopicConfigurations"][0]["Filter"] == {"Key": {"FilterRules": [{"Name": "prefix",
                                                                                     "Value": PREFIX}]}}
    assert notification_present(merged, TOPIC_ARN, OURS, prefix=PREFIX)
    assert not notification_present(merged, TOPIC_ARN, OURS, prefix="org/AWSLogs/")
    assert not notification_present(merged, TOPIC_ARN, OURS)


# ------------------------------------------------------------------------ merging by meaning

SNS = guide_key_statements(BUCKET_ARN, TOPIC_ARN)[1]
OUR_SNS = {**SNS, "Sid": stack_sid(SNS["Sid"], "s1")}


@pytest.mark.parametrize("spelling", [
    {**SNS, "Sid": "pasted by hand"},  # the guide's statement under a Sid of their own
    {**SNS},  # under the guide's own Sid
    {**SNS, "Sid": "x", "Action": ["KMS:GenerateDataKey", "kms:decrypt"]},
    {**SNS, "Sid": "x", "Principal": {"Service": ["sns.amazonaws.com"]}},
    {**SNS, "Sid": "x", "Condition": {"ArnEquals": {"aws:sourcearn": [TOPIC_ARN]}}},
    {**SNS, "Sid": "x", "Condition": {"StringEquals": {"AWS:SourceArn": TOPIC_ARN}}},
])
def test_a_statement_granting_the_same_under_any_sid_or_spelling_is_not_added_again(spelling: dict) -> None:
    document = {"Version": "2012-10-17", "Statement": [spelling]}
    assert same_meaning(spelling, OUR_SNS)
    assert add_by_meaning(document, [OUR_SNS]) == document


@pytest.mark.parametrize("different", [
    {**SNS, "Sid": "x", "Condition": {"StringLike": {"aws:SourceArn": "arn:aws:sns:us-east-1:123456789012:*"}}},
    {**SNS, "Sid": "x", "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*"}}},
    {**SNS, "Sid": "x", "Action": "kms:Decrypt"},
    {**SNS, "Sid": "x", "Effect": "Deny"},
])
def test_a_statement_granting_something_else_does_not_count(different: dict) -> None:
    document = {"Version": "2012-10-17", "Statement": [different]}
    assert add_by_meaning(document, [OUR_SNS])["Statement"] == [different, OUR_SNS]


def test_a_stale_statement_under_our_sid_is_replaced_in_place_and_nothing_else_moves() -> None:
    stale = {**OUR_SNS, "Condition": {"StringLike": {"aws:SourceArn": "arn:aws:sns:us-east-1:123456789012:Old"}}}
    theirs = {"Sid": "theirs", "Effect": "Allow", "Principal": "*", "Action": "kms:DescribeKey", "Resource": "*"}
    merged = add_by_meaning({"Statement": [stale, theirs]}, [OUR_SNS])
    assert merged["Statement"] == [OUR_SNS, theirs]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(foreign=foreign_statements(), position=st.integers(0, 6))
def test_add_by_meaning_keeps_every_foreign_statement_and_is_idempotent(foreign: list[dict], position: int) -> None:
    existing = {"Version": "2012-10-17", "Statement": copy.deepcopy(foreign)}
    merged = add_by_meaning(existing, [OUR_SNS])
    assert merged["Statement"][: len(foreign)] == foreign
    assert [s for s in merged["Statement"] if s.get("Sid") == OUR_SNS["Sid"]] == [OUR_SNS]
    assert add_by_meaning(merged, [OUR_SNS]) == merged
    pasted = {"Version": "2012-10-17",
              "Statement": [*foreign[:position], {**SNS, "Sid": "pasted"}, *foreign[position:]]}
    assert add_by_meaning(pasted, [OUR_SNS]) == pasted


# ---------------------------------------------------------------------------- event selectors

@pytest.mark.parametrize(("selectors", "expected"), [
    (EventSelectors(basic=[{"ReadWriteType": "All", "IncludeManagementEvents": True}], advanced=[]),
     ManagementEvents(read=True, write=True)),
    (EventSelectors(basic=[{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True,
                            "ExcludeManagementEventSources": ["kms.amazonaws.com"]}], advanced=[]),
     ManagementEvents(read=False, write=True, excluded=("kms.amazonaws.com",))),
    (EventSelectors(basic=[{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True},
                           {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True,
                            "ExcludeManagementEventSources": ["kms.amazonaws.com"]}], advanced=[]),
     ManagementEvents(read=True, write=True)),  # the read selector logs KMS reads: nothing left out by all
    (EventSelectors(basic=[{"ReadWriteType": "All", "IncludeManagementEvents": False,
                            "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}], advanced=[]),
     ManagementEvents(read=False, write=False)),
    (EventSelectors(basic=[], advanced=[{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                                            {"Field": "readOnly", "Equals": ["false"]}]}]),
     ManagementEvents(read=False, write=True)),
    (EventSelectors(basic=[], advanced=[{"FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Management"]},
        {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com", "rdsdata.amazonaws.com"]}]}]),
     ManagementEvents(read=True, write=True, excluded=("kms.amazonaws.com", "rdsdata.amazonaws.com"))),
    (EventSelectors(basic=[], advanced=[{"FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Management"]},
        {"Field": "eventSource", "Equals": ["iam.amazonaws.com"]}]}]),
     ManagementEvents(read=True, write=True, filtered=True)),
])
def test_management_events_read_from_either_selector_form(selectors: EventSelectors,
                                                          expected: ManagementEvents) -> None:
    assert management_events(selectors) == expected


# ---------------------------------------------------------------------------------- parameters

@pytest.mark.parametrize(("changes", "parameter", "words"), [
    ({"existing_trail_name": "arn:aws:cloudtrail:us-east-1:123456789012:trail/Org"}, "ExistingTrailName",
     "give the trail's name, 'Org'"),
    ({"existing_trail_name": "bad--name"}, "ExistingTrailName", "adjacent"),
    ({"existing_topic_arn": "arn:aws:sns:us-east-1:123456789012:feed"}, "ExistingTopicArn",
     "ExistingTrailName is empty"),
    ({"existing_trail_name": "Org", "existing_topic_arn": "feed"}, "ExistingTopicArn", "not an SNS topic ARN"),
    ({"existing_trail_name": "Org", "existing_topic_arn": "arn:aws:sns:us-east-1:123456789012:feed.fifo"},
     "ExistingTopicArn", "FIFO"),
    ({"existing_trail_name": "Org", "log_prefix_organization_id": "ou-ab12-cdef3456"}, "LogPrefixOrganizationId",
     "not organizational units"),
    ({"log_prefix_organization_id": "o-a1b2c3d4e5"}, "LogPrefixOrganizationId", "ExistingTrailName is empty"),
    ({"log_filter_organizational_unit_id": "ou-ab12-cdef3456"}, "LogFilterOrganizationalUnitId",
     "ExistingTrailName is empty"),
    ({"existing_trail_name": "Org", "log_filter_organizational_unit_id": "r-ab12"}, "LogFilterOrganizationalUnitId",
     "not an organizational unit id"),
])
def test_existing_trail_parameters_are_checked(config: Config, changes: dict, parameter: str, words: str) -> None:
    with pytest.raises(InvalidParameter) as raised:
        validate_config(dataclasses.replace(config, **changes))
    assert raised.value.parameter == parameter and words in str(raised.value)


def test_valid_existing_trail_parameters_pass(config: Config) -> None:
    validate_config(dataclasses.replace(config, existing_trail_name="OrgTrail", existing_topic_arn=THEIR_TOPIC,
                                        log_prefix_organization_id="o-a1b2c3d4e5",
                                        log_filter_organizational_unit_id="ou-ab12-cdef3456"))
