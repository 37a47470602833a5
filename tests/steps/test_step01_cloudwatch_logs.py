"""Guide step 1's CloudWatch Logs delivery (CIS 3.4, Security Hub CloudTrail.5) against moto: the trail, its
log group and the key policy as AWS holds them afterwards, reruns, turning it off, what a customer set up,
refusals, and teardown."""

from __future__ import annotations

import dataclasses
import json

import boto3
import pytest

from expel_onboarding.errors import InvalidParameter, ResourceConflict, TransientError
from expel_onboarding.models import Config, Removal
from expel_onboarding.naming import OWNER_TAG_KEY
from expel_onboarding.policies.key_policy import CLOUDWATCH_LOGS_SID
from expel_onboarding.steps import preflight, step01_trail
from expel_onboarding.validation import validate_config
from tests.conftest import ACCOUNT_ID, REGION
from tests.support import cloudtrail_logs_role, count_mutating_calls, key_policy

GROUP = f"aws-cloudtrail-logs-{ACCOUNT_ID}-ExpelCloudTrail"
GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{GROUP}:*"


def _role(trail_name: str = "ExpelCloudTrail", group: str = GROUP, name: str = "CloudTrailLogsRole") -> str:
    return cloudtrail_logs_role(name, trail_name, group)


@pytest.fixture
def delivering(aws: None, config: Config) -> Config:
    return dataclasses.replace(config, cloud_watch_logs_retention_days=365, cloud_watch_logs_role_arn=_role())


def _group() -> dict[str, object]:
    groups = boto3.client("logs", region_name=REGION).describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]
    return next(g for g in groups if g["logGroupName"] == GROUP)


def test_trail_delivers_to_an_encrypted_log_group_of_ours_through_the_template_role(delivering: Config) -> None:
    trail = step01_trail.apply(delivering)

    described = boto3.client("cloudtrail", region_name=REGION).get_trail(Name="ExpelCloudTrail")["Trail"]
    assert described["CloudWatchLogsLogGroupArn"] == GROUP_ARN
    assert described["CloudWatchLogsRoleArn"] == delivering.cloud_watch_logs_role_arn
    group = _group()
    assert group["kmsKeyId"] == trail.kms_key_arn
    assert group["retentionInDays"] == 365
    tags = boto3.client("logs", region_name=REGION).list_tags_for_resource(
        resourceArn=f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{GROUP}")["tags"]
    assert tags == {OWNER_TAG_KEY: delivering.stack_name}
    statement = next(s for s in key_policy(trail.kms_key_arn)["Statement"] if s["Sid"] == CLOUDWATCH_LOGS_SID)
    assert statement["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {
        "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{GROUP}"}}
    with count_mutating_calls() as calls:
        step01_trail.apply(delivering)
    assert calls == []


def test_off_by_default_no_log_group_and_no_logs_statement(aws: None, config: Config) -> None:
    trail = step01_trail.apply(config)
    described = boto3.client("cloudtrail", region_name=REGION).get_trail(Name="ExpelCloudTrail")["Trail"]
    assert not described.get("CloudWatchLogsLogGroupArn")
    assert boto3.client("logs", region_name=REGION).describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"] == []
    assert CLOUDWATCH_LOGS_SID not in [s["Sid"] for s in key_policy(trail.kms_key_arn)["Statement"]]


def test_turning_it_on_later_merges_the_logs_statement_and_points_the_trail(aws: None, config: Config) -> None:
    step01_trail.apply(config)
    on = dataclasses.replace(config, cloud_watch_logs_retention_days=30, cloud_watch_logs_role_arn=_role())
    with count_mutating_calls() as calls:
        trail = step01_trail.apply(on)
    assert sorted(calls) == ["cloudtrail.UpdateTrail", "kms.PutKeyPolicy", "logs.CreateLogGroup",
                             "logs.PutRetentionPolicy"]
    assert CLOUDWATCH_LOGS_SID in [s["Sid"] for s in key_policy(trail.kms_key_arn)["Statement"]]
    assert _group()["retentionInDays"] == 30


def test_a_changed_retention_is_converged(delivering: Config) -> None:
    step01_trail.apply(delivering)
    with count_mutating_calls() as calls:
        step01_trail.apply(dataclasses.replace(delivering, cloud_watch_logs_retention_days=731))
    assert calls == ["logs.PutRetentionPolicy"]
    assert _group()["retentionInDays"] == 731


def test_turning_it_off_stops_delivery_and_keeps_the_log_group(delivering: Config, config: Config) -> None:
    step01_trail.apply(delivering)
    with count_mutating_calls() as calls:
        step01_trail.apply(config)
    assert calls == ["cloudtrail.UpdateTrail"]
    described = boto3.client("cloudtrail", region_name=REGION).get_trail(Name="ExpelCloudTrail")["Trail"]
    assert not described.get("CloudWatchLogsLogGroupArn") and not described.get("CloudWatchLogsRoleArn")
    assert _group()  # the events it holds stay


def test_delivery_a_person_set_up_to_their_own_group_is_kept(aws: None, config: Config) -> None:
    step01_trail.apply(config)
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="central-trail-events")
    theirs = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:central-trail-events:*"
    role = _role(group="central-trail-events", name="TheirRole")
    boto3.client("cloudtrail", region_name=REGION).update_trail(
        Name="ExpelCloudTrail", CloudWatchLogsLogGroupArn=theirs, CloudWatchLogsRoleArn=role)

    with count_mutating_calls() as calls:
        step01_trail.apply(config)
    assert calls == []
    assert boto3.client("cloudtrail", region_name=REGION).get_trail(
        Name="ExpelCloudTrail")["Trail"]["CloudWatchLogsLogGroupArn"] == theirs


def test_a_log_group_of_that_name_not_made_by_the_stack_is_refused_before_anything_is_written(
        delivering: Config) -> None:
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName=GROUP)
    for run in (preflight.check, step01_trail.apply):
        with count_mutating_calls() as calls, pytest.raises(ResourceConflict) as raised:
            run(delivering)
        assert calls == []
        assert str(raised.value).startswith("Parameter CloudWatchLogsRetentionDays: ")
        assert f"{OWNER_TAG_KEY}={delivering.stack_name}" in str(raised.value)


@pytest.mark.parametrize("rekey", ["another key", "no key"])
def test_our_log_group_re_keyed_by_someone_is_encrypted_with_our_key_again(delivering: Config, rekey: str) -> None:
    trail = step01_trail.apply(delivering)
    logs = boto3.client("logs", region_name=REGION)
    if rekey == "no key":
        logs.disassociate_kms_key(logGroupName=GROUP)
    else:
        other = boto3.client("kms", region_name=REGION).create_key(Policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"}]}))["KeyMetadata"]["Arn"]
        logs.associate_kms_key(logGroupName=GROUP, kmsKeyId=other)
    with count_mutating_calls() as calls:
        checked = step01_trail.check(delivering)
    assert calls == []
    assert [(f.resource, f.setting) for f in checked.findings] == [(f"log group {GROUP}", "KMS key")]

    with count_mutating_calls() as calls:
        step01_trail.apply(delivering)
    assert calls == ["logs.AssociateKmsKey"]
    assert _group()["kmsKeyId"] == trail.kms_key_arn


def test_a_role_cloudtrail_may_not_assume_for_this_trail_is_retried_then_named(aws: None, config: Config) -> None:
    other_trail = dataclasses.replace(config, cloud_watch_logs_retention_days=30,
                                      cloud_watch_logs_role_arn=_role(trail_name="SomeOtherTrail"))
    with pytest.raises(TransientError, match="CloudTrailLogsRole"):
        step01_trail.apply(other_trail)


@pytest.mark.parametrize(("days", "role", "parameter"), [
    (2, "arn:aws:iam::123456789012:role/r", "CloudWatchLogsRetentionDays"),
    (30, "", "CloudWatchLogsRoleArn"),
])
def test_bad_cloudwatch_logs_settings_are_refused_naming_the_parameter(config: Config, days: int, role: str,
                                                                       parameter: str) -> None:
    with pytest.raises(InvalidParameter) as raised:
        validate_config(dataclasses.replace(config, cloud_watch_logs_retention_days=days,
                                            cloud_watch_logs_role_arn=role))
    assert raised.value.parameter == parameter


def test_teardown_keeps_the_log_group_with_the_log_bucket(delivering: Config) -> None:
    trail = step01_trail.apply(delivering)
    assert step01_trail.remove(delivering, trail).log_group is Removal.KEPT
    assert _group()


def test_teardown_without_keep_log_bucket_deletes_our_log_group(delivering: Config) -> None:
    config = dataclasses.replace(delivering, keep_log_bucket=False)
    trail = step01_trail.apply(config)
    before = key_policy(trail.kms_key_arn)["Statement"]
    removed = step01_trail.remove(config, trail)
    assert (removed.log_group, removed.key) == (Removal.DELETED, Removal.KEPT)
    assert boto3.client("logs", region_name=REGION).describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"] == []
    # The kept key (ScheduleKeyDeletion false) loses only the statement added for the group.
    after = key_policy(trail.kms_key_arn)["Statement"]
    assert CLOUDWATCH_LOGS_SID not in [s["Sid"] for s in after]
    assert [s for s in before if s["Sid"] != CLOUDWATCH_LOGS_SID] == after


def test_teardown_keeping_the_log_group_keeps_the_statement_it_needs(delivering: Config) -> None:
    trail = step01_trail.apply(delivering)
    removed = step01_trail.remove(delivering, trail)
    assert (removed.log_group, removed.key) == (Removal.KEPT, Removal.KEPT)
    assert CLOUDWATCH_LOGS_SID in [s["Sid"] for s in key_policy(trail.kms_key_arn)["Statement"]]
