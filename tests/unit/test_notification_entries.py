"""Our notification entries on an existing trail's bucket, pure: which Ids are ours, the per-account entries
of an OU filter, their merge and differences, and S3's quota of entries per bucket."""

from __future__ import annotations

import pytest

from expel_onboarding.errors import InvalidParameter
from expel_onboarding.policies.notification import (
    MAX_ENTRIES,
    account_entry_id,
    account_prefixes,
    choose_destination,
    entry_differences,
    is_ours,
    merge_entries,
    notification_id,
    wanted_entries,
)

BASE = notification_id("stack")
TOPIC = "arn:aws:sns:us-east-1:123456789012:t"
FOLDER = "AWSLogs/o-abcdefghij/"
THEIRS = {"Id": "their-deletes", "QueueArn": "arn:aws:sqs:us-east-1:123456789012:q", "Events": ["s3:ObjectRemoved:*"]}


@pytest.mark.parametrize(("entry_id", "ours"), [
    (BASE, True), (f"{BASE}.111111111111", True),
    (f"{BASE}-other.111111111111", False),  # another stack named stack-other
    (f"{BASE}.11111111111", False), (f"{BASE}.111111111111x", False), ("their-feed", False),
])
def test_our_ids_are_the_stacks_and_its_per_account_ones_only(entry_id: str, ours: bool) -> None:
    assert is_ours(entry_id, BASE) is ours


def test_merge_keeps_theirs_replaces_ours_and_drops_an_account_that_left() -> None:
    current = {"QueueConfigurations": [THEIRS],
               "TopicConfigurations": wanted_entries(TOPIC, BASE, FOLDER, ["111111111111", "222222222222"])}
    wanted = wanted_entries(TOPIC, BASE, FOLDER, ["222222222222", "333333333333"])

    merged = merge_entries(current, wanted, BASE)

    assert merged["QueueConfigurations"] == [THEIRS]
    assert [e["Id"] for e in merged["TopicConfigurations"]] == [
        account_entry_id(BASE, "222222222222"), account_entry_id(BASE, "333333333333")]
    assert [(i, there is None, ours is None) for i, there, ours in entry_differences(current, wanted, BASE)] == [
        (account_entry_id(BASE, "333333333333"), True, False), (account_entry_id(BASE, "111111111111"), False, True)]
    assert entry_differences(merged, wanted, BASE) == []


def test_the_single_entry_replaces_per_account_ones_when_the_filter_is_turned_off() -> None:
    current = {"TopicConfigurations": wanted_entries(TOPIC, BASE, FOLDER, ["111111111111"])}
    merged = merge_entries(current, wanted_entries(TOPIC, BASE, FOLDER, None), BASE)
    assert [(e["Id"], e["Filter"]["Key"]["FilterRules"][0]["Value"]) for e in merged["TopicConfigurations"]] == [
        (BASE, FOLDER)]


def test_more_entries_than_s3_holds_per_bucket_are_refused_naming_the_parameter() -> None:
    theirs = [{"Id": f"their-{n}", "QueueArn": THEIRS["QueueArn"], "Events": ["s3:ObjectRemoved:*"]}
              for n in range(10)]
    fits = account_prefixes(FOLDER, [f"{n:012d}" for n in range(MAX_ENTRIES - 10)])
    choose_destination({"QueueConfigurations": theirs}, FOLDER, BASE, account_prefixes=fits)

    with pytest.raises(InvalidParameter) as raised:
        choose_destination({"QueueConfigurations": theirs}, FOLDER, BASE,
                           account_prefixes=[*fits, f"{FOLDER}999999999999/"])

    assert raised.value.parameter == "LogFilterOrganizationalUnitId" and f"at most {MAX_ENTRIES}" in str(raised.value)


def test_with_a_filter_an_entry_of_theirs_elsewhere_in_the_organization_is_no_conflict() -> None:
    elsewhere = {"Id": "their-other-account", "QueueArn": THEIRS["QueueArn"], "Events": ["s3:ObjectCreated:*"],
                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": f"{FOLDER}999999999999/"}]}}}
    chosen = choose_destination({"QueueConfigurations": [elsewhere]}, FOLDER, BASE,
                                account_prefixes=account_prefixes(FOLDER, ["111111111111"]))
    assert chosen.topic_arn == "" and chosen.entry_id == ""
