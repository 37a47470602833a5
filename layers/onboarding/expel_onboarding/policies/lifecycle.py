"""The S3 lifecycle rules the onboarding adds, and their merge into a bucket's configuration. Pure.

S3 keeps one lifecycle configuration per bucket and PutBucketLifecycleConfiguration replaces it whole, so
our rule is merged by its ID: a rule of the customer's stays as it is, ours replaces only our own, and a
rule already as we would write it leaves the configuration untouched (a rerun writes nothing).
"""

from __future__ import annotations

import copy
from typing import Any

Rule = dict[str, Any]

LOG_RETENTION_RULE_ID = "expel-onboarding-log-retention"
ACCESS_LOG_EXPIRY_RULE_ID = "expel-onboarding-access-log-expiry"
# How long server access logs are kept, and kept after they are overwritten or deleted.
ACCESS_LOG_RETENTION_DAYS = 365
# Parts of an upload that never completed are invisible and billed: S3's own recommended cleanup.
INCOMPLETE_UPLOAD_DAYS = 7
_WHOLE_BUCKET = {"Prefix": ""}


def log_retention_rule(days: int) -> Rule:
    """The log bucket's rule. ``days`` 0 keeps every log (only abandoned uploads are cleaned); otherwise a
    log file expires ``days`` after delivery, and a version that was overwritten or deleted ``days`` after
    that (so tampering leaves the old version readable for as long as a log is kept)."""
    rule: Rule = {"ID": LOG_RETENTION_RULE_ID, "Filter": dict(_WHOLE_BUCKET), "Status": "Enabled",
                  "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": INCOMPLETE_UPLOAD_DAYS}}
    if days:
        rule["Expiration"] = {"Days": days}
        rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    return rule


def access_log_expiry_rule(days: int = ACCESS_LOG_RETENTION_DAYS) -> Rule:
    """The access-log bucket's rule: server access logs expire after ``days`` (and old versions too)."""
    return {"ID": ACCESS_LOG_EXPIRY_RULE_ID, "Filter": dict(_WHOLE_BUCKET), "Status": "Enabled",
            "Expiration": {"Days": days}, "NoncurrentVersionExpiration": {"NoncurrentDays": days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": INCOMPLETE_UPLOAD_DAYS}}


def merge_rule(rules: list[Rule], ours: Rule) -> list[Rule] | None:
    """The bucket's rules with ours in place of the rule with our ID (appended when absent), every other
    rule kept in its place; None when ours is already there as written."""
    merged = [copy.deepcopy(r) for r in rules]
    for index, rule in enumerate(merged):
        if rule.get("ID") == ours["ID"]:
            if _canonical(rule) == _canonical(ours):
                return None
            merged[index] = copy.deepcopy(ours)
            return merged
    return [*merged, copy.deepcopy(ours)]


def _canonical(rule: Rule) -> Rule:
    """S3 hands a rule back in its own spelling: an empty filter, a legacy top-level Prefix and a prefix
    of "" all mean the whole bucket."""
    result = {k: v for k, v in copy.deepcopy(rule).items() if v not in (None, {}, [])}
    prefix = result.pop("Prefix", None)
    flt = result.get("Filter") or ({"Prefix": prefix} if prefix is not None else {})
    result["Filter"] = {k: v for k, v in flt.items() if v not in (None, "")}
    return result
