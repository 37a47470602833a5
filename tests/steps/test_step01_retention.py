"""Guide step 1's log retention against moto: the lifecycle rule (Security Hub S3.13) and Object Lock
(S3.15), chosen only for a bucket the onboarding creates; merges, refusals and teardown."""

from __future__ import annotations

import dataclasses
import json

import boto3
import pytest
from botocore.exceptions import ClientError

from expel_onboarding.errors import InvalidParameter
from expel_onboarding.models import Config, Removal
from expel_onboarding.policies.lifecycle import LOG_RETENTION_RULE_ID
from expel_onboarding.steps import preflight, step01_trail, verify_delivery
from tests.conftest import REGION
from tests.support import count_mutating_calls

CUSTOMER_RULE = {"ID": "glacier-after-30-days", "Filter": {"Prefix": "AWSLogs/"}, "Status": "Enabled",
                 "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}


def _rules(bucket: str) -> list[dict[str, object]]:
    return boto3.client("s3", region_name=REGION).get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]


def _ours(bucket: str) -> dict[str, object]:
    return next(r for r in _rules(bucket) if r["ID"] == LOG_RETENTION_RULE_ID)


def test_default_keeps_every_log_and_only_cleans_abandoned_uploads(aws: None, config: Config) -> None:
    step01_trail.apply(config)
    rule = _ours(config.bucket_name)
    assert rule["Status"] == "Enabled"
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert "Expiration" not in rule and "NoncurrentVersionExpiration" not in rule


def test_log_retention_days_expire_logs_and_their_old_versions(aws: None, config: Config) -> None:
    config = dataclasses.replace(config, log_retention_days=400)
    step01_trail.apply(config)
    rule = _ours(config.bucket_name)
    assert rule["Expiration"] == {"Days": 400}
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 400}
    with count_mutating_calls() as calls:
        step01_trail.apply(config)
    assert calls == []


def test_a_customers_rule_is_kept_and_a_changed_retention_replaces_only_ours(aws: None, config: Config) -> None:
    step01_trail.apply(dataclasses.replace(config, log_retention_days=400))
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_bucket_lifecycle_configuration(Bucket=config.bucket_name,
                                          LifecycleConfiguration={"Rules": [CUSTOMER_RULE, _ours(config.bucket_name)]})

    with count_mutating_calls() as calls:
        step01_trail.apply(dataclasses.replace(config, log_retention_days=0))  # a stack update: keep logs again
    assert calls == ["s3.PutBucketLifecycleConfiguration"]
    assert [r["ID"] for r in _rules(config.bucket_name)] == [CUSTOMER_RULE["ID"], LOG_RETENTION_RULE_ID]
    assert "Expiration" not in _ours(config.bucket_name)


def test_object_lock_is_turned_on_when_the_bucket_is_created_in_governance_mode(aws: None, config: Config) -> None:
    config = dataclasses.replace(config, object_lock_retention_days=30)
    step01_trail.apply(config)
    lock = boto3.client("s3", region_name=REGION).get_object_lock_configuration(
        Bucket=config.bucket_name)["ObjectLockConfiguration"]
    assert lock == {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}}
    with count_mutating_calls() as calls:
        step01_trail.apply(config)
    assert calls == []


def test_object_lock_retention_converges_on_a_bucket_created_with_it(aws: None, config: Config) -> None:
    step01_trail.apply(dataclasses.replace(config, object_lock_retention_days=30))
    s3 = boto3.client("s3", region_name=REGION)
    with count_mutating_calls() as calls:
        step01_trail.apply(dataclasses.replace(config, object_lock_retention_days=60))
    assert calls == ["s3.PutObjectLockConfiguration"]
    assert s3.get_object_lock_configuration(Bucket=config.bucket_name)["ObjectLockConfiguration"]["Rule"] == {
        "DefaultRetention": {"Mode": "GOVERNANCE", "Days": 60}}
    step01_trail.apply(config)  # 0: no default retention; Object Lock itself cannot be turned off
    assert s3.get_object_lock_configuration(Bucket=config.bucket_name)["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled"}


def test_object_lock_on_an_existing_bucket_is_refused_naming_the_parameter_and_the_fix(
        aws: None, config: Config) -> None:
    step01_trail.apply(config)  # the bucket exists, without Object Lock
    locked = dataclasses.replace(config, object_lock_retention_days=30)  # a stack update asking for it
    for run in (preflight.check, step01_trail.apply):
        with count_mutating_calls() as calls, pytest.raises(InvalidParameter) as raised:
            run(locked)
        assert calls == []
        assert raised.value.parameter == "ObjectLockRetentionDays"
        assert "without Object Lock" in str(raised.value) and "new BucketName" in str(raised.value)


def test_canary_in_a_locked_bucket_is_removed_by_bypassing_governance(aws: None, config: Config) -> None:
    config = dataclasses.replace(config, object_lock_retention_days=30)
    trail = step01_trail.apply(config)
    s3 = boto3.client("s3", region_name=REGION)
    delivery = verify_delivery.put_canary(config, trail, run_id="locked")
    version = s3.list_object_versions(Bucket=config.bucket_name, Prefix=delivery.canary_key)["Versions"][0]
    with pytest.raises(ClientError):  # the default retention holds it: a plain delete is refused
        s3.delete_object(Bucket=config.bucket_name, Key=delivery.canary_key, VersionId=version["VersionId"])

    verify_delivery._delete_canary_object(config, trail, delivery.canary_key)

    assert "Versions" not in s3.list_object_versions(Bucket=config.bucket_name, Prefix=delivery.canary_key)


def test_teardown_keeps_a_bucket_with_object_lock_even_when_asked_to_delete_it(aws: None, config: Config) -> None:
    trail = step01_trail.apply(dataclasses.replace(config, object_lock_retention_days=1))
    boto3.client("s3", region_name=REGION).put_object(Bucket=config.bucket_name, Key="AWSLogs/x.json", Body=b"{}")
    removal = step01_trail.remove(dataclasses.replace(config, keep_log_bucket=False), trail)
    assert (removal.bucket, removal.access_log_bucket) == (Removal.KEPT, Removal.KEPT)
    assert json.dumps(boto3.client("s3", region_name=REGION).head_bucket(Bucket=config.bucket_name)["ResponseMetadata"]
                      ["HTTPStatusCode"]) == "200"
