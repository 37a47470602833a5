"""Preflight against moto: each bad input fails naming the parameter, and nothing is created."""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.s3.responses import S3Response

from expel_onboarding.errors import InvalidParameter, OnboardingError
from expel_onboarding.models import Config
from expel_onboarding.naming import OWNER_TAG_KEY
from expel_onboarding.steps import preflight, step01_trail
from tests.conftest import ACCOUNT_ID, REGION
from tests.steps.notification_path import FakeLambdaContext
from tests.support import allow_cloudtrail, count_mutating_calls

EVENTS = Path(__file__).resolve().parents[2] / "events"
OTHER_ACCOUNT = "111111111111"
OURS = [{"Key": OWNER_TAG_KEY, "Value": "expel-onboarding"}]




@pytest.fixture
def s3_honours_expected_owner(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Teach moto what S3 does with ``x-amz-expected-bucket-owner``: 403 when another account owns
    the bucket. moto keeps buckets global across accounts but ignores that header."""
    original = S3Response.head_bucket

    def head_bucket(self: S3Response) -> Any:
        expected = self.headers.get("x-amz-expected-bucket-owner")
        try:
            bucket = self.backend.head_bucket(self.bucket_name)
        except Exception:
            return original(self)
        if expected and bucket.account_id != expected:
            return 403, {}, ""
        return original(self)

    monkeypatch.setattr(S3Response, "head_bucket", head_bucket)
    yield


def _failure(config: Config, parameter: str) -> OnboardingError:
    """Run preflight expecting a failure that names ``parameter``; assert nothing was written."""
    with count_mutating_calls() as calls, pytest.raises(OnboardingError) as raised:
        preflight.check(config)
    assert calls == []
    assert getattr(raised.value, "parameter", None) == parameter
    message = str(raised.value)
    assert message.startswith(f"Parameter {parameter}: ") and "Fix: " in message
    return raised.value


def _fails(config: Config, parameter: str) -> str:
    return str(_failure(config, parameter))


def test_fresh_account_passes_without_writing(aws: None, config: Config) -> None:
    with count_mutating_calls() as calls:
        result = preflight.check(config)
    assert calls == []
    assert result == {"Checked": True, "AccountId": ACCOUNT_ID, "Region": REGION, "OrganizationId": ""}


def test_rerun_after_step_one_passes_because_everything_is_ours(aws: None, config: Config) -> None:
    before = preflight.check(config)
    step01_trail.apply(config)
    with count_mutating_calls() as calls:
        assert preflight.check(config) == before
    assert calls == []


@pytest.mark.parametrize(
    ("field", "value", "parameter"),
    [
        ("bucket_name", "Expel_Logs", "BucketName"),
        ("workbench_guid", "a123b456-7c89-0def-g1hi-2j3k45l6mn7o", "WorkbenchGuid"),
        ("kms_alias", "alias/aws/cloudtrail", "KmsAlias"),
        ("trail_name", "my--trail", "TrailName"),
    ],
)
def test_malformed_parameter_fails_before_any_aws_call(aws: None, config: Config, field: str, value: str,
                                                       parameter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight.sts, "caller_identity", _no_aws_call)
    assert isinstance(_failure(dataclasses.replace(config, **{field: value}), parameter), InvalidParameter)


def _no_aws_call() -> None:
    raise AssertionError("validation must fail before any AWS call")


def test_bucket_owned_by_another_account_fails(aws: None, config: Config, s3_honours_expected_owner: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTO_ACCOUNT_ID", OTHER_ACCOUNT)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=config.bucket_name)
    monkeypatch.delenv("MOTO_ACCOUNT_ID")
    assert boto3.client("sts").get_caller_identity()["Account"] == ACCOUNT_ID

    message = _fails(config, "BucketName")
    assert "belongs to another AWS account" in message and "choose another name" in message


def test_untagged_bucket_of_this_account_fails_and_says_how_to_fix(aws: None, config: Config) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=config.bucket_name)
    message = _fails(config, "BucketName")
    assert "not created by this onboarding" in message
    assert f"{OWNER_TAG_KEY}={config.stack_name}" in message


def test_bucket_of_another_onboarding_stack_fails(aws: None, config: Config) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=config.bucket_name)
    s3.put_bucket_tagging(Bucket=config.bucket_name,
                          Tagging={"TagSet": [{"Key": OWNER_TAG_KEY, "Value": "other-stack"}]})
    assert "other-stack" in _fails(config, "BucketName")


def test_alias_used_by_another_key_fails(aws: None, config: Config) -> None:
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(Description="the customer's own key")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=config.kms_alias, TargetKeyId=key_id)
    message = _fails(config, "KmsAlias")
    assert key_id in message and "choose another KmsAlias" in message


def test_alias_of_our_key_pending_deletion_fails_with_the_cancel_command(aws: None, config: Config) -> None:
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(Tags=[{"TagKey": OWNER_TAG_KEY, "TagValue": config.stack_name}])["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=config.kms_alias, TargetKeyId=key_id)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert "cancel-key-deletion" in _fails(config, "KmsAlias")


def test_trail_name_taken_by_a_foreign_trail_fails(aws: None, config: Config) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="customer-trail-logs")
    allow_cloudtrail(s3, "customer-trail-logs",
                     f"arn:aws:cloudtrail:{REGION}:{config.account_id}:trail/{config.trail_name}")
    boto3.client("cloudtrail", region_name=REGION).create_trail(Name=config.trail_name,
                                                                S3BucketName="customer-trail-logs")
    assert "choose another TrailName" in _fails(config, "TrailName")


def test_topic_name_taken_by_a_foreign_topic_fails(aws: None, config: Config) -> None:
    boto3.client("sns", region_name=REGION).create_topic(Name=config.topic_name)
    _fails(config, "TopicName")


def test_queue_name_taken_by_a_foreign_queue_fails(aws: None, config: Config) -> None:
    boto3.client("sqs", region_name=REGION).create_queue(QueueName=config.queue_name)
    _fails(config, "QueueName")


def test_our_own_topic_and_queue_pass(aws: None, config: Config) -> None:
    boto3.client("sns", region_name=REGION).create_topic(Name=config.topic_name, Tags=OURS)
    boto3.client("sqs", region_name=REGION).create_queue(QueueName=config.queue_name,
                                                         tags={OWNER_TAG_KEY: config.stack_name})
    assert preflight.check(config)["Checked"] is True


TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                             "Principal": {"AWS": "arn:aws:iam::012205512454:root"}}]})


def test_role_made_by_hand_under_role_name_fails_before_anything_is_built(aws: None, config: Config) -> None:
    # What a person who followed Expel's guide by hand has: ExpelAssumeRole, made outside any stack. Without
    # this check steps 1-7 built the trail, key, bucket, topic and queue and step 8's stack then failed on it.
    boto3.client("iam").create_role(RoleName=config.role_name, AssumeRolePolicyDocument=TRUST)
    message = _fails(config, "RoleName")
    assert f"an IAM role named {config.role_name} already exists" in message
    assert "choose another RoleName" in message
    assert [b["Name"] for b in boto3.client("s3", region_name=REGION).list_buckets()["Buckets"]] == []


def test_role_carrying_another_stacks_tag_fails(aws: None, config: Config) -> None:
    boto3.client("iam").create_role(RoleName=config.role_name, AssumeRolePolicyDocument=TRUST,
                                    Tags=[{"Key": OWNER_TAG_KEY, "Value": "other-stack"}])
    _fails(config, "RoleName")


def test_role_made_by_this_onboardings_role_stack_passes(aws: None, config: Config) -> None:
    from expel_onboarding.steps import expel_role_stack
    from tests.steps.shared import queue_output, trail_output
    expel_role_stack.deploy(config, trail_output(config), queue_output(config))
    # CloudFormation copies the role stack's tags to the role, our ownership tag included.
    assert OURS[0] in boto3.client("iam").get_role(RoleName=config.role_name)["Role"].get("Tags", [])
    with count_mutating_calls() as calls:
        assert preflight.check(config)["Checked"] is True
    assert calls == []


def test_role_stack_name_taken_by_a_foreign_stack_fails(aws: None, config: Config) -> None:
    template = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    boto3.client("cloudformation", region_name=REGION).create_stack(StackName=config.role_stack_name,
                                                                    TemplateBody=template)
    message = _fails(config, "RoleStackName")
    assert "deploy the onboarding under another stack name" in message


def test_stack_set_name_taken_by_a_foreign_stack_set_fails_in_organization_mode(aws: None, config: Config) -> None:
    organizations = boto3.client("organizations")
    organizations.create_organization(FeatureSet="ALL")
    for principal in ("member.org.stacksets.cloudformation.amazonaws.com", "cloudtrail.amazonaws.com"):
        organizations.enable_aws_service_access(ServicePrincipal=principal)
    template = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    boto3.client("cloudformation", region_name=REGION).create_stack_set(
        StackSetName=f"{config.stack_name}-expel-role", TemplateBody=template, PermissionModel="SERVICE_MANAGED",
        AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False})
    message = _fails(dataclasses.replace(config, organization_mode=True), "OrganizationMode")
    assert f"a StackSet named {config.stack_name}-expel-role" in message


def test_other_account_in_config_fails(aws: None, config: Config) -> None:
    with count_mutating_calls() as calls, pytest.raises(OnboardingError, match="account 210987654321"):
        preflight.check(dataclasses.replace(config, account_id="210987654321"))
    assert calls == []


def test_other_region_in_config_fails(aws: None, config: Config) -> None:
    with count_mutating_calls() as calls, pytest.raises(OnboardingError, match="home region eu-west-1"):
        preflight.check(dataclasses.replace(config, region="eu-west-1"))
    assert calls == []


def test_organization_mode_outside_an_organization_fails(aws: None, config: Config) -> None:
    with count_mutating_calls() as calls, pytest.raises(OnboardingError, match="OrganizationMode"):
        preflight.check(dataclasses.replace(config, organization_mode=True))
    assert calls == []


def test_organization_mode_in_the_management_account_returns_the_organization(aws: None,
                                                                              config: Config) -> None:
    organizations = boto3.client("organizations")
    org_id = organizations.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    for principal in ("member.org.stacksets.cloudformation.amazonaws.com", "cloudtrail.amazonaws.com"):
        organizations.enable_aws_service_access(ServicePrincipal=principal)
    assert preflight.check(dataclasses.replace(config, organization_mode=True))["OrganizationId"] == org_id


def test_organization_mode_from_a_member_account_fails_naming_the_management_account(
        aws: None, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from expel_onboarding.steps import preflight_organizations
    monkeypatch.setattr(preflight_organizations, "check", lambda _config: {
        "OrganizationId": "o-abc", "ManagementAccountId": "210987654321", "Targets": []})
    with count_mutating_calls() as calls, pytest.raises(OnboardingError,
                                                         match="not the management account \\(210987654321\\)"):
        preflight.check(dataclasses.replace(config, organization_mode=True))
    assert calls == []


def test_handler_runs_the_sample_event(aws: None) -> None:
    event = json.loads((EVENTS / "preflight.json").read_text())
    app = importlib.import_module("functions.preflight.app")
    assert app.lambda_handler(event, FakeLambdaContext("preflight")) == {
        "Checked": True, "AccountId": ACCOUNT_ID, "Region": REGION, "OrganizationId": ""}
