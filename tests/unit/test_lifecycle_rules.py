"""Our lifecycle rules and their merge into a bucket's configuration: by ID, everything else kept."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from expel_onboarding.policies.lifecycle import (
    ACCESS_LOG_EXPIRY_RULE_ID,
    LOG_RETENTION_RULE_ID,
    access_log_expiry_rule,
    log_retention_rule,
    merge_rule,
)

CUSTOMER = {"ID": "glacier", "Filter": {"Prefix": "AWSLogs/"}, "Status": "Enabled",
            "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}


def test_keeping_every_log_only_cleans_abandoned_uploads() -> None:
    assert log_retention_rule(0) == {"ID": LOG_RETENTION_RULE_ID, "Filter": {"Prefix": ""}, "Status": "Enabled",
                                     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}


def test_retention_expires_current_and_noncurrent_versions_after_the_days() -> None:
    rule = log_retention_rule(90)
    assert rule["Expiration"] == {"Days": 90} and rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}


def test_access_logs_expire_after_a_year() -> None:
    rule = access_log_expiry_rule()
    assert rule["ID"] == ACCESS_LOG_EXPIRY_RULE_ID and rule["Expiration"] == {"Days": 365}


def test_ours_is_appended_after_the_customers_rules() -> None:
    assert merge_rule([CUSTOMER], log_retention_rule(0)) == [CUSTOMER, log_retention_rule(0)]


def test_ours_replaces_only_the_rule_with_our_id_in_place() -> None:
    old = log_retention_rule(30)
    assert merge_rule([old, CUSTOMER], log_retention_rule(90)) == [log_retention_rule(90), CUSTOMER]


@pytest.mark.parametrize("spelling", [
    {"Filter": {"Prefix": ""}},
    {"Filter": {}},
    {"Prefix": ""},  # the legacy top-level prefix
], ids=["prefix", "empty-filter", "legacy-prefix"])
def test_ours_as_s3_spells_it_back_needs_no_write(spelling: dict[str, Any]) -> None:
    stored = {k: v for k, v in log_retention_rule(90).items() if k != "Filter"} | spelling
    assert merge_rule([CUSTOMER, stored], log_retention_rule(90)) is None


def test_a_changed_rule_under_our_id_is_rewritten() -> None:
    changed = {**log_retention_rule(90), "Status": "Disabled"}
    assert merge_rule([changed], log_retention_rule(90)) == [log_retention_rule(90)]


_rules = st.lists(st.builds(lambda i, days: {"ID": f"rule-{i}", "Filter": {"Prefix": f"p{i}/"}, "Status": "Enabled",
                                             "Expiration": {"Days": days}},
                            st.integers(0, 20), st.integers(1, 999)), unique_by=lambda r: r["ID"], max_size=6)


@given(_rules, st.integers(0, 3650))
def test_merge_keeps_every_foreign_rule_and_is_idempotent(rules: list[dict[str, Any]], days: int) -> None:
    before = copy.deepcopy(rules)
    merged = merge_rule(rules, log_retention_rule(days))
    assert rules == before
    assert merged is not None
    assert [r for r in merged if r["ID"] != LOG_RETENTION_RULE_ID] == rules
    assert merge_rule(merged, log_retention_rule(days)) is None
