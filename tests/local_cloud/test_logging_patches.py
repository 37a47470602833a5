"""The local cloud's CloudTrail logging settings behave like AWS's (in-process moto, patches applied as in
``local serve``): each rule with the refusal AWS answers."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import REGION
from tests.support import Refusal, allow_cloudtrail, cloudtrail_logs_role, refusal

MANAGEMENT = {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [],
              "ExcludeManagementEventSources": []}
ADVANCED = [{"Name": "writes", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                                  {"Field": "readOnly", "Equals": ["false"]}]}]


@pytest.fixture
def trail(aws: None) -> str:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="trail-logs")
    allow_cloudtrail(s3, "trail-logs", f"arn:aws:cloudtrail:{REGION}:123456789012:trail/trail-one")
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


# --- CloudTrail's delivery to CloudWatch Logs, and CloudWatch Logs' KMS check

ACCOUNT = "123456789012"
GROUP = "trail-one-events"
GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}:*"


def _delivery_role(name: str = "delivery", trail_name: str = "trail-one", group: str = GROUP) -> str:
    return cloudtrail_logs_role(name, trail_name, group)


@pytest.fixture
def log_group(trail: str) -> str:
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName=GROUP)
    return GROUP_ARN


def _refusal(**delivery: str) -> Refusal:
    return refusal(boto3.client("cloudtrail", region_name=REGION).update_trail, Name="trail-one", **delivery)


def test_trail_delivers_to_a_log_group_through_a_role_it_may_use_and_can_stop(log_group: str) -> None:
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    role = _delivery_role()
    cloudtrail.update_trail(Name="trail-one", CloudWatchLogsLogGroupArn=log_group, CloudWatchLogsRoleArn=role)
    assert cloudtrail.get_trail(Name="trail-one")["Trail"]["CloudWatchLogsLogGroupArn"] == log_group
    cloudtrail.update_trail(Name="trail-one", CloudWatchLogsLogGroupArn="", CloudWatchLogsRoleArn="")
    assert not cloudtrail.get_trail(Name="trail-one")["Trail"].get("CloudWatchLogsLogGroupArn")


def test_a_log_group_without_a_role_or_a_role_without_a_log_group_is_refused(log_group: str) -> None:
    assert _refusal(CloudWatchLogsLogGroupArn=log_group).code == "InvalidCloudWatchLogsRoleArnException"
    assert _refusal(CloudWatchLogsRoleArn=_delivery_role()).code == "InvalidCloudWatchLogsLogGroupArnException"


@pytest.mark.parametrize("group_arn", [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:no-such-group:*",
                                       f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}", "not-an-arn"])
def test_a_log_group_arn_naming_no_log_group_is_refused(log_group: str, group_arn: str) -> None:
    assert _refusal(CloudWatchLogsLogGroupArn=group_arn, CloudWatchLogsRoleArn=_delivery_role()) == (
        "InvalidCloudWatchLogsLogGroupArnException", "Check the log group ARN: CloudTrail can't validate it.")


def test_a_role_cloudtrail_may_not_assume_for_this_trail_is_refused(log_group: str) -> None:
    role = _delivery_role(trail_name="another-trail")
    assert _refusal(CloudWatchLogsLogGroupArn=log_group, CloudWatchLogsRoleArn=role) == (
        "InvalidCloudWatchLogsRoleArnException", "Access denied. Check the trust relationships for your role.")
    missing = f"arn:aws:iam::{ACCOUNT}:role/no-such-role"
    assert _refusal(CloudWatchLogsLogGroupArn=log_group, CloudWatchLogsRoleArn=missing).code == (
        "InvalidCloudWatchLogsRoleArnException")


def test_a_role_without_permission_on_the_log_group_is_refused(log_group: str) -> None:
    role = _delivery_role(group="some-other-group")
    assert _refusal(CloudWatchLogsLogGroupArn=log_group, CloudWatchLogsRoleArn=role) == (
        "InvalidCloudWatchLogsLogGroupArnException", "Access denied. Check the permissions for your role.")


def test_create_trail_checks_the_delivery_too(log_group: str) -> None:
    allow_cloudtrail(boto3.client("s3", region_name=REGION), "trail-logs",
                     f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/trail-two")
    with pytest.raises(ClientError) as refused:
        boto3.client("cloudtrail", region_name=REGION).create_trail(
            Name="trail-two", S3BucketName="trail-logs", CloudWatchLogsLogGroupArn=log_group,
            CloudWatchLogsRoleArn=_delivery_role())  # trusted for trail-one only
    assert refused.value.response["Error"]["Code"] == "InvalidCloudWatchLogsRoleArnException"


def _key(logs_statement_for: str | None) -> str:
    kms = boto3.client("kms", region_name=REGION)
    statements: list[dict[str, object]] = [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}]
    if logs_statement_for is not None:
        group_arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{logs_statement_for}"
        statements.append({
            "Effect": "Allow", "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            "Resource": "*", "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": group_arn}}})
    return str(kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))
               ["KeyMetadata"]["Arn"])


def test_a_log_group_is_encrypted_with_a_key_whose_policy_lets_logs_use_it_for_that_group(aws: None) -> None:
    logs = boto3.client("logs", region_name=REGION)
    key = _key(logs_statement_for="encrypted-events")
    logs.create_log_group(logGroupName="encrypted-events", kmsKeyId=key)
    assert logs.describe_log_groups(logGroupNamePrefix="encrypted-events")["logGroups"][0]["kmsKeyId"] == key


@pytest.mark.parametrize("statement_for", [None, "some-other-group"])
def test_a_key_whose_policy_does_not_let_logs_use_it_for_that_group_is_refused(
        aws: None, statement_for: str | None) -> None:
    key = _key(logs_statement_for=statement_for)
    with pytest.raises(ClientError) as refused:
        boto3.client("logs", region_name=REGION).create_log_group(logGroupName="encrypted-events", kmsKeyId=key)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert refused.value.response["Error"]["Message"] == (
        "The specified KMS key does not exist or is not allowed to be used with Arn "
        f"'arn:aws:logs:{REGION}:{ACCOUNT}:log-group:encrypted-events'")


def test_a_disabled_or_missing_key_is_refused(aws: None) -> None:
    key = _key(logs_statement_for="encrypted-events")
    boto3.client("kms", region_name=REGION).disable_key(KeyId=key.rsplit("/", 1)[-1])
    for key_id in (key, f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000"):
        with pytest.raises(ClientError) as refused:
            boto3.client("logs", region_name=REGION).create_log_group(logGroupName="encrypted-events",
                                                                      kmsKeyId=key_id)
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"


def test_associate_kms_key_re_keys_a_group_with_a_key_logs_may_use_and_disassociate_removes_it(aws: None) -> None:
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="encrypted-events", kmsKeyId=_key(logs_statement_for="encrypted-events"))
    other = _key(logs_statement_for="encrypted-events")
    logs.associate_kms_key(logGroupName="encrypted-events", kmsKeyId=other)
    assert logs.describe_log_groups(logGroupNamePrefix="encrypted-events")["logGroups"][0]["kmsKeyId"] == other
    logs.disassociate_kms_key(logGroupName="encrypted-events")
    assert "kmsKeyId" not in logs.describe_log_groups(logGroupNamePrefix="encrypted-events")["logGroups"][0]


def test_associate_kms_key_refuses_a_key_logs_may_not_use_and_a_missing_group(aws: None) -> None:
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="encrypted-events")
    with pytest.raises(ClientError) as refused:
        logs.associate_kms_key(logGroupName="encrypted-events", kmsKeyId=_key(logs_statement_for="other-group"))
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "kmsKeyId" not in logs.describe_log_groups(logGroupNamePrefix="encrypted-events")["logGroups"][0]
    for call in (lambda: logs.associate_kms_key(logGroupName="no-such-group",
                                                kmsKeyId=_key(logs_statement_for="no-such-group")),
                 lambda: logs.disassociate_kms_key(logGroupName="no-such-group")):
        with pytest.raises(ClientError) as missing:
            call()
        assert missing.value.response["Error"] == {"Code": "ResourceNotFoundException",
                                                   "Message": "The specified log group does not exist."}


def test_server_access_logs_need_a_target_whose_policy_admits_s3_log_delivery(aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="source-bucket")
    s3.create_bucket(Bucket="target-without-policy")
    with pytest.raises(ClientError) as refused:
        s3.put_bucket_logging(Bucket="source-bucket", BucketLoggingStatus={"LoggingEnabled": {
            "TargetBucket": "target-without-policy", "TargetPrefix": "source-bucket/"}})
    assert refused.value.response["Error"]["Code"] == "InvalidTargetBucketForLogging"
