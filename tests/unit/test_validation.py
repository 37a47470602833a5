"""validate_config: every value AWS or Workbench would reject fails first, naming the parameter."""

from __future__ import annotations

import dataclasses

import pytest

from expel_onboarding.errors import InvalidParameter
from expel_onboarding.models import Config
from expel_onboarding.validation import validate_config


def test_valid_config_passes(config: Config) -> None:
    validate_config(config)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kms_alias", "expel-cloudtrail"),  # the guide asks for the bare name
        ("kms_alias", "alias/team/expel_cloudtrail-1"),
        ("kms_alias", "alias/awsome"),
        ("bucket_name", "abc"),
        ("bucket_name", "a" * 63),
        ("bucket_name", "logs.example.com"),
        ("trail_name", "Expel.Cloud_Trail-1"),
        ("topic_name", "a" * 256),
        ("queue_name", "a" * 80),
        ("role_name", "Expel+Role=,.@_-"),
        ("workbench_guid", "4F9C2A1E-7B3D-4E5F-9A8B-1C2D3E4F5A6B"),
        ("workbench_base_url", "http://127.0.0.1:5005"),
        ("workbench_api_key_secret_arn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:expel-AbCdEf"),
        ("workbench_device_overrides", '{"plugin_slug": "aws-cloudtrail"}'),
        ("organization_target_ou_ids", ["ou-ab12-cd34ef56", "r-ab12"]),
        ("region", "us-gov-west-1"),
        ("partition", "aws-cn"),
        ("access_log_bucket_name", "acme-s3-access-logs"),
        ("log_retention_days", 36500),
        ("object_lock_retention_days", 3650),
    ],
)
def test_valid_value_passes(config: Config, field: str, value: object) -> None:
    validate_config(dataclasses.replace(config, **{field: value}))


@pytest.mark.parametrize(
    ("field", "value", "parameter"),
    [
        ("workbench_guid", "", "WorkbenchGuid"),
        ("workbench_guid", "a123b456-7c89-0def-g1hi-2j3k45l6mn7o", "WorkbenchGuid"),  # guide placeholder
        ("workbench_guid", "4f9c2a1e7b3d4e5f9a8b1c2d3e4f5a6b", "WorkbenchGuid"),
        ("workbench_guid", "4f9c2a1e-7b3d-4e5f-9a8b-1c2d3e4f5a6b ", "WorkbenchGuid"),
        ("bucket_name", "ab", "BucketName"),
        ("bucket_name", "a" * 64, "BucketName"),
        ("bucket_name", "Expel-Logs", "BucketName"),
        ("bucket_name", "expel_logs", "BucketName"),
        ("bucket_name", "-expel-logs", "BucketName"),
        ("bucket_name", "expel-logs.", "BucketName"),
        ("bucket_name", "expel..logs", "BucketName"),
        ("bucket_name", "expel.-logs", "BucketName"),
        ("bucket_name", "expel-.logs", "BucketName"),
        ("bucket_name", "192.168.5.4", "BucketName"),
        ("bucket_name", "xn--expel-logs", "BucketName"),
        ("bucket_name", "sthree-expel-logs", "BucketName"),
        ("bucket_name", "expel-logs-s3alias", "BucketName"),
        ("bucket_name", "expel-logs--ol-s3", "BucketName"),
        ("bucket_name", "expel-logs--x-s3", "BucketName"),
        ("kms_alias", "", "KmsAlias"),
        ("kms_alias", "alias/", "KmsAlias"),
        ("kms_alias", "alias/aws/cloudtrail", "KmsAlias"),
        ("kms_alias", "aws/cloudtrail", "KmsAlias"),
        ("kms_alias", "expel cloudtrail", "KmsAlias"),
        ("kms_alias", "expel.cloudtrail", "KmsAlias"),
        ("kms_alias", "a" * 251, "KmsAlias"),
        ("trail_name", "ab", "TrailName"),
        ("trail_name", "a" * 129, "TrailName"),
        ("trail_name", "Expel Trail", "TrailName"),
        ("trail_name", "_ExpelTrail", "TrailName"),
        ("trail_name", "ExpelTrail-", "TrailName"),
        ("trail_name", "my-_trail", "TrailName"),
        ("trail_name", "my--trail", "TrailName"),
        ("trail_name", "10.0.0.1", "TrailName"),
        ("topic_name", "", "TopicName"),
        ("topic_name", "a" * 257, "TopicName"),
        ("topic_name", "expel.topic", "TopicName"),
        ("topic_name", "expel-topic.fifo", "TopicName"),
        ("queue_name", "a" * 81, "QueueName"),
        ("queue_name", "expel queue", "QueueName"),
        ("queue_name", "expel-queue.fifo", "QueueName"),
        ("role_name", "", "RoleName"),
        ("role_name", "a" * 65, "RoleName"),
        ("role_name", "Expel/Role", "RoleName"),
        ("role_stack_name", "1-role-stack", "RoleStackName"),
        ("role_stack_name", "role_stack", "RoleStackName"),
        ("stack_name", "", "StackName"),
        ("role_session_name", "a", "RoleSessionName"),
        ("role_session_name", "expel session", "RoleSessionName"),
        ("account_id", "12345678901", "AccountId"),
        ("region", "US-EAST-1", "Region"),
        ("partition", "azure", "Partition"),
        ("workbench_api_key_secret_arn", "expel-api-key", "WorkbenchApiKeySecretArn"),
        ("workbench_base_url", "http://workbench.expel.io", "WorkbenchBaseUrl"),
        ("workbench_location", " ", "WorkbenchLocation"),
        ("workbench_device_name", "x" * 256, "WorkbenchDeviceName"),
        ("workbench_device_overrides", "[1, 2]", "WorkbenchDeviceOverrides"),
        ("workbench_device_overrides", "{not json", "WorkbenchDeviceOverrides"),
        ("organization_target_ou_ids", ["ou-ab12-cd34ef56", "123"], "OrganizationTargetOuIds"),
        ("access_log_bucket_name", "", "AccessLogBucketName"),
        ("access_log_bucket_name", "Access_Logs", "AccessLogBucketName"),
        ("access_log_bucket_name", "a" * 64, "AccessLogBucketName"),
        ("access_log_bucket_name", "expel-cloudtrail-123456789012-us-east-1", "AccessLogBucketName"),  # the log bucket
        ("log_retention_days", -1, "LogRetentionDays"),
        ("log_retention_days", 36501, "LogRetentionDays"),
        ("log_retention_days", "90d", "LogRetentionDays"),  # a property CloudFormation passed that is not digits
        ("object_lock_retention_days", -5, "ObjectLockRetentionDays"),
        ("object_lock_retention_days", True, "ObjectLockRetentionDays"),
    ],
)
def test_invalid_value_fails_naming_parameter_and_fix(
    config: Config, field: str, value: object, parameter: str
) -> None:
    with pytest.raises(InvalidParameter) as raised:
        validate_config(dataclasses.replace(config, **{field: value}))
    assert raised.value.parameter == parameter
    message = str(raised.value)
    assert message.startswith(f"Parameter {parameter}: ")
    assert "Fix: " in message and message.split("Fix: ", 1)[1].strip()


def _ous(count: int) -> list[str]:
    return [f"ou-ab12-{n:08d}" for n in range(count)]


def test_fifty_target_ous_pass_and_fifty_one_are_refused_before_anything_is_written(config: Config) -> None:
    """One StackSet operation takes at most 50 OUs (CloudFormation API reference); step 8 deploys every target in
    one CreateStackInstances, so more would fail only after the trail and the data path were written."""
    validate_config(dataclasses.replace(config, organization_mode=True, organization_target_ou_ids=_ous(50)))

    with pytest.raises(InvalidParameter) as raised:
        validate_config(dataclasses.replace(config, organization_mode=True, organization_target_ou_ids=_ous(51)))
    assert str(raised.value) == (
        "Parameter OrganizationTargetOuIds: it lists 51 OUs, but one StackSet operation takes at most 50. Fix: list "
        "the parent OUs instead (the StackSet deploys to the accounts of nested OUs too), or leave it empty to deploy "
        "the role to every account of the organization")


def test_access_log_bucket_name_is_not_checked_when_access_logging_is_off(config: Config) -> None:
    validate_config(dataclasses.replace(config, access_logging=False, access_log_bucket_name=""))


@pytest.mark.parametrize(("changes", "parameter", "words"), [
    ({"log_retention_days": 30, "object_lock_retention_days": 90}, "LogRetentionDays", "Object Lock still protects"),
    ({"object_lock_retention_days": 30, "keep_log_bucket": False}, "KeepLogBucket", "could not remove"),
])
def test_contradicting_retention_choices_fail_naming_the_parameter(config: Config, changes: dict[str, object],
                                                                    parameter: str, words: str) -> None:
    with pytest.raises(InvalidParameter) as raised:
        validate_config(dataclasses.replace(config, **changes))
    assert raised.value.parameter == parameter and words in str(raised.value)


def test_retention_strings_from_cloudformation_become_days() -> None:
    config = Config.from_dict({"StackName": "s", "Region": "us-east-1", "AccountId": "123456789012",
                               "Partition": "aws", "WorkbenchGuid": "g", "TrailName": "t", "BucketName": "b",
                               "KmsAlias": "k", "TopicName": "t", "QueueName": "q", "RoleName": "r",
                               "RoleStackName": "rs", "AccessLogging": "false", "LogRetentionDays": "365",
                               "ObjectLockRetentionDays": "0"})
    assert (config.access_logging, config.log_retention_days, config.object_lock_retention_days) == (False, 365, 0)
