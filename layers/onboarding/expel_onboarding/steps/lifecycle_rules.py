"""Guide step 1's lifecycle rules (log retention, access-log expiry): merged into a bucket's configuration.

S3 holds one lifecycle configuration per bucket and replaces it whole on every write: our rule goes in by
its ID next to every rule of the customer's (``policies.lifecycle``), and the configuration is written only
when our rule is missing or differs.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from expel_onboarding.aws import s3
from expel_onboarding.drift import Converge
from expel_onboarding.policies.lifecycle import Rule, merge_rule

logger = Logger(child=True)


def ensure_rule(run: Converge, bucket: str, owner: str, rule: Rule) -> None:
    current = s3.lifecycle_configuration(bucket, owner)
    merged = merge_rule(current.rules, rule)
    if merged is not None:
        there = next((r for r in current.rules if r.get("ID") == rule["ID"]), None)
        run.change(run.finding(f"bucket {bucket}", f"lifecycle rule {rule['ID']!r}", there, rule,
                               f"in the S3 console, bucket {bucket} > Management > Lifecycle rules: put back the "
                               f"rule {rule['ID']!r} (the bucket's other rules stay)"),
                   lambda: _put(bucket, owner, s3.Lifecycle(merged, current.transition_default), rule))


def _put(bucket: str, owner: str, lifecycle: s3.Lifecycle, rule: Rule) -> None:
    s3.put_lifecycle_configuration(bucket, lifecycle, owner)
    logger.info("Set the lifecycle rule", extra={"bucket": bucket, "rule_id": rule["ID"]})
