"""Property tests: whatever a customer already has, a merge keeps all of it, adds ours exactly once,
and merging again changes nothing."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expel_onboarding.policies._equivalence import equivalent
from expel_onboarding.policies.bucket_policy import cloudtrail_bucket_statements, merge_bucket_policy
from expel_onboarding.policies.key_policy import guide_key_statements, merge_key_policy
from expel_onboarding.policies.notification import (
    NOTIFICATION_ID,
    merge_notification_configuration,
    notification_present,
    remove_notification,
)
from expel_onboarding.policies.queue_policy import merge_queue_policy, queue_statements
from expel_onboarding.policies.topic_policy import merge_topic_policy, topic_statements

ACCOUNT = "123456789012"
BUCKET_ARN = "arn:aws:s3:::expel-logs"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:ExpelTopic"
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:ExpelQueue"
TRAIL_ARN = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/ExpelCloudTrail"

Merge = Callable[[Any], dict[str, Any]]

# name -> (our statements, merge(existing) -> merged)
MERGES: dict[str, tuple[list[dict[str, Any]], Merge]] = {
    "key": (guide_key_statements(BUCKET_ARN, TOPIC_ARN),
            lambda doc: merge_key_policy(doc, BUCKET_ARN, TOPIC_ARN)),
    "bucket": (cloudtrail_bucket_statements("aws", "expel-logs", ACCOUNT, TRAIL_ARN),
               lambda doc: merge_bucket_policy(doc, cloudtrail_bucket_statements(
                   "aws", "expel-logs", ACCOUNT, TRAIL_ARN))),
    "topic": (topic_statements("aws", TOPIC_ARN, BUCKET_ARN, ACCOUNT),
              lambda doc: merge_topic_policy(doc, topic_statements("aws", TOPIC_ARN, BUCKET_ARN, ACCOUNT))),
    "queue": (queue_statements(QUEUE_ARN, TOPIC_ARN),
              lambda doc: merge_queue_policy(doc, queue_statements(QUEUE_ARN, TOPIC_ARN))),
}
OUR_SIDS = {s["Sid"] for statements, _ in MERGES.values() for s in statements}

_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_/:*", min_size=1,
                max_size=20)
_actions = st.one_of(_text, st.lists(_text, min_size=1, max_size=4))
_principal = st.one_of(st.just("*"), st.fixed_dictionaries({"AWS": st.one_of(st.just("*"), _text)}),
                       st.fixed_dictionaries({"Service": _text}))
_condition = st.dictionaries(st.sampled_from(["StringEquals", "ArnLike", "Bool"]),
                             st.dictionaries(_text, st.one_of(_text, st.lists(_text, max_size=3)),
                                             min_size=1, max_size=2), max_size=2)
_foreign_sid = _text.filter(lambda sid: sid not in OUR_SIDS)


@st.composite
def foreign_statements(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Statements someone else wrote: Sids unique (AWS requires it) and never ours; some without a Sid."""
    statements = []
    sids = draw(st.lists(st.one_of(st.none(), _foreign_sid), max_size=6))
    seen: set[str] = set()
    for sid in sids:
        if sid in seen:
            continue
        statement: dict[str, Any] = {
            "Effect": draw(st.sampled_from(["Allow", "Deny"])),
            "Principal": draw(_principal),
            "Action": draw(_actions),
            "Resource": draw(st.one_of(st.just("*"), _text)),
        }
        if draw(st.booleans()):
            statement["Condition"] = draw(_condition)
        if sid is not None:
            seen.add(sid)
            statement = {"Sid": sid, **statement}
        statements.append(statement)
    return statements


@st.composite
def existing_documents(draw: st.DrawFn, ours: list[dict[str, Any]]) -> dict[str, Any] | None:
    """None, or a policy of foreign statements, possibly holding a stale copy of some of ours."""
    if draw(st.integers(0, 9)) == 0:
        return None
    statements = draw(foreign_statements())
    for statement in ours:
        if draw(st.booleans()):  # a previous run, or someone editing ours by hand
            stale = copy.deepcopy(statement)
            stale["Resource"] = draw(_text)
            statements.insert(draw(st.integers(0, len(statements))), stale)
    document: dict[str, Any] = {"Statement": statements}
    if draw(st.booleans()):
        document["Version"] = draw(st.sampled_from(["2012-10-17", "2008-10-17"]))
    if draw(st.booleans()):
        document["Id"] = draw(_text)
    return document


def _foreign(document: dict[str, Any] | None) -> list[Any]:
    statements = (document or {}).get("Statement", [])
    return [s for s in statements if not (isinstance(s, dict) and s.get("Sid") in OUR_SIDS)]


@pytest.mark.parametrize("name", sorted(MERGES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_merge_keeps_foreign_statements_adds_ours_once_and_is_idempotent(name: str,
                                                                        data: st.DataObject) -> None:
    ours, merge = MERGES[name]
    existing = data.draw(existing_documents(ours))
    before = copy.deepcopy(existing)

    merged = merge(existing)

    assert existing == before, "the merge must not modify its input"
    assert _foreign(merged) == _foreign(existing), "foreign statements kept, unchanged and in order"
    for statement in ours:
        found = [s for s in merged["Statement"] if s.get("Sid") == statement["Sid"]]
        assert len(found) == 1 and equivalent(found[0], statement)
    for key in ("Version", "Id"):
        if existing and key in existing:
            assert merged[key] == existing[key]
    assert merge(merged) == merged


@st.composite
def notification_configurations(draw: st.DrawFn) -> dict[str, Any]:
    ids = draw(st.lists(_text.filter(lambda i: i != NOTIFICATION_ID), unique=True, max_size=6))
    configuration: dict[str, Any] = {}
    for index, entry_id in enumerate(ids):
        kind, arn_key = draw(st.sampled_from([("TopicConfigurations", "TopicArn"),
                                              ("QueueConfigurations", "QueueArn"),
                                              ("LambdaFunctionConfigurations", "LambdaFunctionArn")]))
        entry: dict[str, Any] = {"Id": entry_id, arn_key: f"arn:aws:x:::{index}",
                                 "Events": draw(st.lists(_text, min_size=1, max_size=3))}
        if draw(st.booleans()):
            entry["Filter"] = {"Key": {"FilterRules": [{"Name": "Prefix", "Value": draw(_text)}]}}
        configuration.setdefault(kind, []).append(entry)
    if draw(st.booleans()):
        stale = {"Id": NOTIFICATION_ID, "TopicArn": "arn:aws:sns:us-east-1:1:old",
                 "Events": ["s3:ObjectCreated:Put"]}
        topics = configuration.setdefault("TopicConfigurations", [])
        topics.insert(draw(st.integers(0, len(topics))), stale)
    if draw(st.booleans()):
        configuration["EventBridgeConfiguration"] = {}
    if draw(st.booleans()):
        configuration["ResponseMetadata"] = {"HTTPStatusCode": 200}
    return configuration


def _foreign_entries(configuration: dict[str, Any]) -> dict[str, list[Any]]:
    return {name: [e for e in configuration.get(name, []) if e["Id"] != NOTIFICATION_ID]
            for name in ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations")}


@settings(max_examples=200, deadline=None)
@given(existing=notification_configurations())
def test_merge_notification_keeps_other_entries_adds_ours_once_and_is_idempotent(existing: dict) -> None:
    before = copy.deepcopy(existing)

    merged = merge_notification_configuration(existing, TOPIC_ARN, NOTIFICATION_ID)

    assert existing == before
    assert _foreign_entries(merged) == _foreign_entries(existing)
    assert merged.get("EventBridgeConfiguration") == existing.get("EventBridgeConfiguration")
    assert "ResponseMetadata" not in merged
    lists = _foreign_entries(merged)
    ours = [e for name in lists for e in merged.get(name, []) if e["Id"] == NOTIFICATION_ID]
    assert ours == [{"Id": NOTIFICATION_ID, "TopicArn": TOPIC_ARN, "Events": ["s3:ObjectCreated:*"]}]
    assert notification_present(merged, TOPIC_ARN, NOTIFICATION_ID)
    assert merge_notification_configuration(merged, TOPIC_ARN, NOTIFICATION_ID) == merged
    removed = remove_notification(merged, NOTIFICATION_ID)
    assert _foreign_entries(removed) == _foreign_entries(existing)
    assert not notification_present(removed, TOPIC_ARN, NOTIFICATION_ID)


def test_stored_spellings_of_the_same_principal_are_not_rewritten() -> None:
    """S3 hands back {"AWS": "*"} as "*" and an account id as its root ARN: same grant, no write."""
    from expel_onboarding.policies._equivalence import equivalent

    ours = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*",
            "Resource": "arn:aws:s3:::b", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    assert equivalent(ours, {**ours, "Principal": "*"})
    root = {**ours, "Principal": {"AWS": "123456789012"}}
    assert equivalent(root, {**ours, "Principal": {"AWS": "arn:aws:iam::123456789012:root"}})
    assert not equivalent(root, {**ours, "Principal": {"AWS": "arn:aws:iam::210987654321:root"}})


def test_our_statement_written_with_another_equal_condition_is_kept_as_written() -> None:
    """One notion of "the same statement" for our own Sids and for a customer's: the guide's StringLike on a
    literal ARN and a person's ArnEquals grant the same, and condition keys are case-insensitive."""
    [ours] = queue_statements(QUEUE_ARN, TOPIC_ARN)
    operator, block = next(iter(ours["Condition"].items()))
    [(key, value)] = block.items()
    by_hand = {**ours, "Condition": {"ArnEquals" if operator != "ArnEquals" else "StringEquals": {key.lower(): value}}}
    assert equivalent(ours, by_hand)
    assert merge_queue_policy({"Version": "2012-10-17", "Statement": [by_hand]}, [ours])["Statement"] == [by_hand]
    assert not equivalent(ours, {**by_hand, "Sid": "Another"})


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(foreign=foreign_statements(), keep=st.booleans())
def test_add_missing_statements_keeps_every_present_one_as_written(foreign: list[dict[str, Any]], keep: bool) -> None:
    """Step 1 on an existing key: a CloudTrail statement someone edited stays edited; a missing one returns."""
    from expel_onboarding.policies import add_missing_statements
    from expel_onboarding.policies.key_policy import cloudtrail_key_policy

    ours = cloudtrail_key_policy("aws", "us-east-1", "123456789012", "ExpelCloudTrail")["Statement"]
    edited = {**ours[0], "Action": ["kms:Describe*"]}
    existing = {"Version": "2012-10-17", "Statement": [*foreign, *([edited] if keep else [])]}

    merged = add_missing_statements(existing, ours)

    assert merged["Statement"][: len(existing["Statement"])] == existing["Statement"]
    sids = [s.get("Sid") for s in merged["Statement"]]
    assert all(sids.count(s["Sid"]) == 1 for s in ours)
    assert (edited in merged["Statement"]) is keep
    assert add_missing_statements(merged, ours) == merged
