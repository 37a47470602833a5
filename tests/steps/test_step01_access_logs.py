"""Guide step 1's server access logging (CIS 3.6, Security Hub CloudTrail.7) against moto: the access-log
bucket as AWS holds it afterwards, delivery, merges with what a customer added, AccessLogging=false,
refusals, and teardown."""

from __future__ import annotations

import dataclasses
import json

import boto3
import pytest

from expel_onboarding.errors import OnboardingError, ResourceConflict
from expel_onboarding.models import Config, Removal
from expel_onboarding.naming import OWNER_TAG_KEY
from expel_onboarding.policies.bucket_policy import access_log_bucket_statements
from expel_onboarding.policies.lifecycle import ACCESS_LOG_EXPIRY_RULE_ID, access_log_expiry_rule
from expel_onboarding.steps import preflight, step01_trail
from tests.conftest import ACCOUNT_ID, REGION
from tests.support import count_mutating_calls

CUSTOMER_RULE = {"ID": "archive-after-90-days", "Filter": {"Prefix": "old/"}, "Status": "Enabled",
                 "Transitions": [{"Days": 90, "StorageClass": "GLACIER"}]}


def _tags(pairs: list[dict[str, str]]) -> dict[str, str]:
    return {p["Key"]: p["Value"] for p in pairs}


def _rules(bucket: str) -> list[dict[str, object]]:
    return boto3.client("s3", region_name=REGION).get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]


def test_first_run_makes_a_private_sse_s3_access_log_bucket_receiving_the_log_buckets_access_logs(
        aws: None, config: Config) -> None:
    step01_trail.apply(config)
    s3 = boto3.client("s3", region_name=REGION)
    target = config.access_log_bucket_name

    assert _tags(s3.get_bucket_tagging(Bucket=target)["TagSet"]) == {OWNER_TAG_KEY: config.stack_name}
    assert all(s3.get_public_access_block(Bucket=target)["PublicAccessBlockConfiguration"].values())
    assert s3.get_bucket_versioning(Bucket=target)["Status"] == "Enabled"
    assert s3.get_bucket_ownership_controls(Bucket=target)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}]
    encryption = s3.get_bucket_encryption(Bucket=target)["ServerSideEncryptionConfiguration"]["Rules"]
    assert [r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in encryption] == ["AES256"]
    policy = json.loads(s3.get_bucket_policy(Bucket=target)["Policy"])
    assert policy["Statement"] == access_log_bucket_statements("aws", target, config.bucket_name, ACCOUNT_ID,
                                                               f"{config.bucket_name}/")
    delivery = policy["Statement"][0]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Condition"] == {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{config.bucket_name}"},
                                     "StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    assert [r["ID"] for r in _rules(target)] == [ACCESS_LOG_EXPIRY_RULE_ID]
    assert _rules(target)[0]["Expiration"] == {"Days": 365}
    with pytest.raises(s3.exceptions.ClientError, match="ObjectLockConfigurationNotFound"):
        s3.get_object_lock_configuration(Bucket=target)  # S3 refuses Object Lock on a logging target
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=target)  # no logging into itself

    assert s3.get_bucket_logging(Bucket=config.bucket_name)["LoggingEnabled"] == {
        "TargetBucket": target, "TargetPrefix": f"{config.bucket_name}/"}
    s3.put_object(Bucket=config.bucket_name, Key="AWSLogs/probe.json", Body=b"{}")
    delivered = s3.list_objects_v2(Bucket=target, Prefix=f"{config.bucket_name}/").get("KeyCount", 0)
    assert delivered > 0


def test_rerun_keeps_a_customers_statement_and_rule_and_restores_ours(aws: None, config: Config) -> None:
    step01_trail.apply(config)
    s3 = boto3.client("s3", region_name=REGION)
    target = config.access_log_bucket_name
    policy = json.loads(s3.get_bucket_policy(Bucket=target)["Policy"])
    auditor = {"Sid": "AuditorReads", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:role/Audit"},
               "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{target}/*"}
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "S3ServerAccessLogsPolicy"] + [auditor]
    s3.put_bucket_policy(Bucket=target, Policy=json.dumps(policy))
    shortened = {**access_log_expiry_rule(), "Expiration": {"Days": 1}}
    s3.put_bucket_lifecycle_configuration(Bucket=target, LifecycleConfiguration={"Rules": [CUSTOMER_RULE, shortened]})
    s3.put_bucket_encryption(Bucket=target, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})

    with count_mutating_calls() as calls:
        step01_trail.apply(config)
    assert sorted(calls) == ["s3.PutBucketEncryption", "s3.PutBucketLifecycleConfiguration", "s3.PutBucketPolicy"]

    statements = json.loads(s3.get_bucket_policy(Bucket=target)["Policy"])["Statement"]
    assert auditor in statements and "S3ServerAccessLogsPolicy" in [s["Sid"] for s in statements]
    assert [r["ID"] for r in _rules(target)] == ["archive-after-90-days", ACCESS_LOG_EXPIRY_RULE_ID]
    assert _rules(target)[1]["Expiration"] == {"Days": 365}
    encryption = s3.get_bucket_encryption(Bucket=target)["ServerSideEncryptionConfiguration"]["Rules"]
    assert encryption[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    with count_mutating_calls() as calls:
        step01_trail.apply(config)
    assert calls == []


def test_access_logging_a_person_pointed_at_their_own_bucket_is_kept(aws: None, config: Config) -> None:
    step01_trail.apply(config)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="central-log-archive")
    s3.put_bucket_policy(Bucket="central-log-archive", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::central-log-archive/*"}]}))
    central = {"TargetBucket": "central-log-archive", "TargetPrefix": ""}
    s3.put_bucket_logging(Bucket=config.bucket_name, BucketLoggingStatus={"LoggingEnabled": central})

    with count_mutating_calls() as calls:
        step01_trail.apply(config)
    assert calls == []
    assert s3.get_bucket_logging(Bucket=config.bucket_name)["LoggingEnabled"] == central


def test_access_logging_false_creates_nothing(aws: None, config: Config) -> None:
    step01_trail.apply(dataclasses.replace(config, access_logging=False))
    s3 = boto3.client("s3", region_name=REGION)
    assert config.access_log_bucket_name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=config.bucket_name)


def test_turning_access_logging_off_stops_delivery_and_keeps_the_logs(aws: None, config: Config) -> None:
    step01_trail.apply(config)
    with count_mutating_calls() as calls:
        step01_trail.apply(dataclasses.replace(config, access_logging=False))
    assert calls == ["s3.PutBucketLogging"]
    s3 = boto3.client("s3", region_name=REGION)
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=config.bucket_name)
    assert s3.head_bucket(Bucket=config.access_log_bucket_name)


def test_untagged_access_log_bucket_is_refused_before_anything_is_written(aws: None, config: Config) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=config.access_log_bucket_name)
    for run in (preflight.check, step01_trail.apply):
        with count_mutating_calls() as calls, pytest.raises(ResourceConflict) as raised:
            run(config)
        assert calls == []
        assert str(raised.value).startswith("Parameter AccessLogBucketName: ")
        assert f"{OWNER_TAG_KEY}={config.stack_name}" in str(raised.value)


def test_access_log_bucket_of_another_account_is_refused_naming_the_parameter(
        aws: None, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(step01_trail.existing.s3, "head_bucket", lambda bucket, owner: (
        step01_trail.s3.BucketHead(exists=True, owned=False) if bucket == config.access_log_bucket_name
        else step01_trail.s3.BucketHead(exists=False)))
    with pytest.raises(OnboardingError, match="Parameter AccessLogBucketName: .* another AWS account"):
        preflight.check(config)


def test_teardown_keeps_the_access_log_bucket_with_the_log_bucket(aws: None, config: Config) -> None:
    trail = step01_trail.apply(config)
    removal = step01_trail.remove(config, trail)
    assert (removal.bucket, removal.access_log_bucket) == (Removal.KEPT, Removal.KEPT)
    assert boto3.client("s3", region_name=REGION).head_bucket(Bucket=config.access_log_bucket_name)


def test_teardown_without_keep_log_bucket_empties_and_deletes_both_buckets(aws: None, config: Config) -> None:
    config = dataclasses.replace(config, keep_log_bucket=False)
    trail = step01_trail.apply(config)
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=config.bucket_name, Key="AWSLogs/probe.json", Body=b"{}")  # an access log follows

    removal = step01_trail.remove(config, trail)

    assert (removal.bucket, removal.access_log_bucket) == (Removal.DELETED, Removal.DELETED)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert config.bucket_name not in names and config.access_log_bucket_name not in names


def test_teardown_leaves_an_access_log_bucket_this_stack_did_not_create(aws: None, config: Config) -> None:
    config = dataclasses.replace(config, keep_log_bucket=False, access_logging=False)
    trail = step01_trail.apply(config)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=config.access_log_bucket_name)

    removal = step01_trail.remove(config, trail)

    assert (removal.bucket, removal.access_log_bucket) == (Removal.DELETED, Removal.NOT_OURS)
    assert boto3.client("s3", region_name=REGION).head_bucket(Bucket=config.access_log_bucket_name)
