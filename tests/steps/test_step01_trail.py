"""Guide step 1 against moto: what AWS holds afterwards, idempotency, and merged bucket policy."""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from expel_onboarding.aws import clients as aws_clients
from expel_onboarding.errors import OnboardingError, ResourceConflict, TransientError
from expel_onboarding.models import Config, TrailOutput
from expel_onboarding.naming import OWNER_TAG_KEY
from expel_onboarding.policies.bucket_policy import cloudtrail_bucket_statements
from expel_onboarding.policies.key_policy import CLOUDTRAIL_KEY_SIDS
from expel_onboarding.steps import step01_trail
from tests.conftest import ACCOUNT_ID, REGION
from tests.steps.notification_path import FakeLambdaContext
from tests.support import count_mutating_calls

EVENTS = Path(__file__).resolve().parents[2] / "events"

FOREIGN_STATEMENT = {
    "Sid": "CustomerAuditRead",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:role/Auditor"},
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::expel-cloudtrail-123456789012-us-east-1/*",
}




def _tags(pairs: list[dict[str, str]], key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {p[key]: p[value] for p in pairs}


def test_first_run_creates_key_bucket_and_trail_with_the_guide_settings(aws: None, config: Config) -> None:
    out = step01_trail.apply(config)

    kms = boto3.client("kms", region_name=REGION)
    key = kms.describe_key(KeyId="alias/expel-cloudtrail")["KeyMetadata"]
    assert out.kms_key_arn == key["Arn"] and out.kms_alias == "alias/expel-cloudtrail"
    assert key["KeySpec"] == "SYMMETRIC_DEFAULT" and key["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert key["KeyState"] == "Enabled"
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    assert _tags(kms.list_resource_tags(KeyId=key["KeyId"])["Tags"], "TagKey", "TagValue") == {
        OWNER_TAG_KEY: config.stack_name}
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == list(CLOUDTRAIL_KEY_SIDS)

    s3 = boto3.client("s3", region_name=REGION)
    bucket = config.bucket_name
    assert out.bucket_name == bucket and out.bucket_arn == f"arn:aws:s3:::{bucket}"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}]
    assert _tags(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == {OWNER_TAG_KEY: config.stack_name}
    bucket_policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    expected = cloudtrail_bucket_statements("aws", bucket, ACCOUNT_ID, out.trail_arn)
    assert bucket_policy["Statement"] == expected
    write = next(s for s in bucket_policy["Statement"] if s["Sid"] == "AWSCloudTrailWrite")
    assert write["Condition"]["StringEquals"]["aws:SourceArn"] == out.trail_arn

    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    trail = cloudtrail.get_trail(Name=config.trail_name)["Trail"]
    assert out.trail_arn == trail["TrailARN"] == f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/ExpelCloudTrail"
    assert trail["S3BucketName"] == bucket
    assert trail["IsMultiRegionTrail"] is True
    assert trail["LogFileValidationEnabled"] is True
    assert trail["IncludeGlobalServiceEvents"] is True
    assert trail["KmsKeyId"] == key["Arn"]
    assert trail["IsOrganizationTrail"] is False
    assert cloudtrail.get_trail_status(Name=config.trail_name)["IsLogging"] is True
    tag_list = cloudtrail.list_tags(ResourceIdList=[trail["TrailARN"]])["ResourceTagList"][0]["TagsList"]
    assert _tags(tag_list) == {OWNER_TAG_KEY: config.stack_name}


def test_second_run_makes_no_mutating_call_and_returns_the_same_output(aws: None, config: Config) -> None:
    first = step01_trail.apply(config)
    with count_mutating_calls() as calls:
        second = step01_trail.apply(config)
    assert calls == []
    assert second == first


def test_bucket_in_eu_west_1_is_created_there(aws: None, config: Config,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    config = dataclasses.replace(config, region="eu-west-1", bucket_name="expel-cloudtrail-123456789012-eu-west-1")
    out = step01_trail.apply(config)
    s3 = boto3.client("s3", region_name="eu-west-1")
    assert s3.get_bucket_location(Bucket=out.bucket_name)["LocationConstraint"] == "eu-west-1"
    assert out.trail_arn.startswith("arn:aws:cloudtrail:eu-west-1:")


def test_existing_bucket_policy_statements_are_kept(aws: None, config: Config) -> None:
    """A re-run after the customer added a statement to our bucket: theirs stays, ours is not duplicated."""
    first = step01_trail.apply(config)
    s3 = boto3.client("s3", region_name=REGION)
    policy = json.loads(s3.get_bucket_policy(Bucket=config.bucket_name)["Policy"])
    policy["Statement"].append(FOREIGN_STATEMENT)
    s3.put_bucket_policy(Bucket=config.bucket_name, Policy=json.dumps(policy))
    s3.put_bucket_tagging(Bucket=config.bucket_name, Tagging={"TagSet": [
        {"Key": OWNER_TAG_KEY, "Value": config.stack_name}, {"Key": "cost-center", "Value": "sec"}]})

    with count_mutating_calls() as calls:
        assert step01_trail.apply(config) == first
    assert calls == []
    after = json.loads(s3.get_bucket_policy(Bucket=config.bucket_name)["Policy"])
    assert after == policy
    assert _tags(s3.get_bucket_tagging(Bucket=config.bucket_name)["TagSet"])["cost-center"] == "sec"


def test_removed_cloudtrail_statement_is_merged_back_keeping_the_rest(aws: None, config: Config) -> None:
    step01_trail.apply(config)
    s3 = boto3.client("s3", region_name=REGION)
    policy = json.loads(s3.get_bucket_policy(Bucket=config.bucket_name)["Policy"])
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "AWSCloudTrailWrite"]
    policy["Statement"].append(FOREIGN_STATEMENT)
    s3.put_bucket_policy(Bucket=config.bucket_name, Policy=json.dumps(policy))

    with count_mutating_calls() as calls:
        step01_trail.apply(config)
    assert calls == ["s3.PutBucketPolicy"]
    sids = [s["Sid"] for s in json.loads(s3.get_bucket_policy(Bucket=config.bucket_name)["Policy"])["Statement"]]
    assert sorted(sids) == sorted(["AWSCloudTrailAclCheck", "DenyInsecureTransport", "CustomerAuditRead",
                                   "AWSCloudTrailWrite"])


def test_drifted_trail_settings_rotation_and_logging_are_restored(aws: None, config: Config) -> None:
    out = step01_trail.apply(config)
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    cloudtrail.update_trail(Name=config.trail_name, EnableLogFileValidation=False, IsMultiRegionTrail=False)
    cloudtrail.stop_logging(Name=config.trail_name)
    kms = boto3.client("kms", region_name=REGION)
    kms.disable_key_rotation(KeyId=out.kms_key_arn)

    with count_mutating_calls() as calls:
        assert step01_trail.apply(config) == out
    assert sorted(calls) == ["cloudtrail.StartLogging", "cloudtrail.UpdateTrail", "kms.EnableKeyRotation"]
    trail = cloudtrail.get_trail(Name=config.trail_name)["Trail"]
    assert trail["LogFileValidationEnabled"] is True and trail["IsMultiRegionTrail"] is True
    assert cloudtrail.get_trail_status(Name=config.trail_name)["IsLogging"] is True
    assert kms.get_key_rotation_status(KeyId=out.kms_key_arn)["KeyRotationEnabled"] is True


MANAGEMENT_EVENTS = {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [],
                     "ExcludeManagementEventSources": []}
PAYROLL_OBJECTS = {"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::payroll/"]}


def test_first_run_sets_read_and_write_management_events_without_exclusions(aws: None, config: Config) -> None:
    with count_mutating_calls() as calls:
        step01_trail.apply(config)
    assert "cloudtrail.PutEventSelectors" in calls  # set explicitly, not left to the API's default
    selectors = boto3.client("cloudtrail", region_name=REGION).get_event_selectors(TrailName=config.trail_name)
    assert selectors["EventSelectors"] == [MANAGEMENT_EVENTS]
    assert selectors.get("AdvancedEventSelectors", []) == []


def test_rerun_restores_management_events_and_keeps_a_data_event_selector(aws: None, config: Config) -> None:
    out = step01_trail.apply(config)
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    cloudtrail.put_event_selectors(TrailName=config.trail_name, EventSelectors=[
        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True, "DataResources": [PAYROLL_OBJECTS],
         "ExcludeManagementEventSources": ["kms.amazonaws.com"]}])

    with count_mutating_calls() as calls:
        assert step01_trail.apply(config) == out
    assert calls == ["cloudtrail.PutEventSelectors"]
    assert cloudtrail.get_event_selectors(TrailName=config.trail_name)["EventSelectors"] == [
        MANAGEMENT_EVENTS,
        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": False, "DataResources": [PAYROLL_OBJECTS],
         "ExcludeManagementEventSources": []}]
    with count_mutating_calls() as calls:
        step01_trail.apply(config)
    assert calls == []


def test_rerun_keeps_advanced_selectors_a_person_chose_and_adds_management_events_in_that_form(
        aws: None, config: Config) -> None:
    step01_trail.apply(config)
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    data = {"Name": "payroll objects", "FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Data"]}, {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}
    writes_only = {"Name": "writes", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                                        {"Field": "readOnly", "Equals": ["false"]}]}
    cloudtrail.put_event_selectors(TrailName=config.trail_name, AdvancedEventSelectors=[writes_only, data])

    with count_mutating_calls() as calls:
        step01_trail.apply(config)
    assert calls == ["cloudtrail.PutEventSelectors"]
    assert cloudtrail.get_event_selectors(TrailName=config.trail_name)["AdvancedEventSelectors"] == [
        {"Name": "Management events selector", "FieldSelectors": [{"Field": "eventCategory",
                                                                   "Equals": ["Management"]}]},
        data]


def test_key_policy_keeps_statements_appended_later(aws: None, config: Config) -> None:
    """Step 4 appends to the key policy; re-running step 1 must neither remove nor rewrite them."""
    out = step01_trail.apply(config)
    kms = boto3.client("kms", region_name=REGION)
    policy = json.loads(kms.get_key_policy(KeyId=out.kms_key_arn, PolicyName="default")["Policy"])
    policy["Statement"].append({"Sid": "Allow SNS to encrypt/decrypt", "Effect": "Allow",
                                "Principal": {"Service": "sns.amazonaws.com"},
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*"})
    kms.put_key_policy(KeyId=out.kms_key_arn, PolicyName="default", Policy=json.dumps(policy))

    with count_mutating_calls() as calls:
        step01_trail.apply(config)
    assert calls == []
    assert json.loads(kms.get_key_policy(KeyId=out.kms_key_arn, PolicyName="default")["Policy"]) == policy


def test_untagged_bucket_of_this_account_is_not_taken_over(aws: None, config: Config) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=config.bucket_name)
    with count_mutating_calls() as calls, pytest.raises(ResourceConflict, match="Parameter BucketName"):
        step01_trail.apply(config)
    assert calls == []  # nothing created: no key, no trail, no change to the customer's bucket


def test_organization_mode_writes_organization_prefix_and_organization_trail(aws: None, config: Config) -> None:
    org = boto3.client("organizations", region_name=REGION)
    org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    config = dataclasses.replace(config, organization_mode=True)
    out = step01_trail.apply(config)
    s3 = boto3.client("s3", region_name=REGION)
    statements = json.loads(s3.get_bucket_policy(Bucket=config.bucket_name)["Policy"])["Statement"]
    write = next(s for s in statements if s["Sid"] == "AWSCloudTrailWrite")
    assert f"arn:aws:s3:::{config.bucket_name}/AWSLogs/{org_id}/*" in write["Resource"]
    trail = boto3.client("cloudtrail", region_name=REGION).get_trail(Name=config.trail_name)["Trail"]
    assert trail["IsOrganizationTrail"] is True and trail["TrailARN"] == out.trail_arn
    with count_mutating_calls() as calls:
        assert step01_trail.apply(config) == out
    assert calls == []


def test_handler_runs_the_sample_event(aws: None) -> None:
    event = json.loads((EVENTS / "step01_trail.json").read_text())
    app = importlib.import_module("functions.step01_trail.app")
    result = app.lambda_handler(event, FakeLambdaContext("step01_trail"))
    out = TrailOutput.from_dict(result)
    assert out.bucket_name == event["Config"]["BucketName"]
    assert out.kms_alias == event["Config"]["KmsAlias"]


def test_bucket_name_taken_between_lookup_and_create_fails_naming_bucket(
        aws: None, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "111111111111")
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=config.bucket_name)
    monkeypatch.delenv("MOTO_ACCOUNT_ID")
    # Lost the race: HeadBucket said free, CreateBucket says someone else got the name.
    monkeypatch.setattr(step01_trail.existing, "bucket", lambda _config: False)
    with pytest.raises(ResourceConflict, match="Parameter BucketName: .* another AWS account"):
        step01_trail.apply(config)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("InsufficientS3BucketPolicyException", TransientError),
        ("InsufficientEncryptionPolicyException", TransientError),
        ("ThrottlingException", TransientError),
        ("CloudTrailAccessNotEnabledException", OnboardingError),
        ("MaximumNumberOfTrailsExceededException", OnboardingError),
        ("TrailAlreadyExistsException", ResourceConflict),
    ],
)
def test_create_trail_errors_map_to_retry_or_a_fix(aws: None, config: Config, monkeypatch: pytest.MonkeyPatch,
                                                    code: str, error: type[Exception]) -> None:
    real = aws_clients.client

    class Refusing:
        def __init__(self, inner: object) -> None:
            self._inner = inner

        def create_trail(self, **_: object) -> None:
            raise ClientError({"Error": {"Code": code, "Message": "refused"}}, "CreateTrail")

        def __getattr__(self, name: str) -> object:
            return getattr(self._inner, name)

    monkeypatch.setattr(aws_clients, "client",
                        lambda service, region=None: Refusing(real(service, region)))
    with pytest.raises(error) as raised:
        step01_trail.apply(config)
    assert type(raised.value) is error and config.trail_name in str(raised.value)


def test_rerun_keeps_a_hardened_statement_on_our_key_and_restores_only_a_missing_one(aws: None,
                                                                                   config: Config) -> None:
    """People harden keys: a rerun (retry, stack update) must not widen the root statement back."""
    out = step01_trail.apply(config)
    kms = boto3.client("kms", region_name=REGION)
    policy = json.loads(kms.get_key_policy(KeyId=out.kms_key_arn, PolicyName="default")["Policy"])
    root = next(s for s in policy["Statement"] if s["Sid"] == "Enable IAM User Permissions")
    root["Action"] = ["kms:Describe*", "kms:Get*", "kms:List*", "kms:PutKeyPolicy"]  # hardened by a person
    describe = next(s for s in policy["Statement"] if s["Sid"] == "Allow CloudTrail to describe key")
    policy["Statement"].remove(describe)  # and one of CloudTrail's statements lost
    kms.put_key_policy(KeyId=out.kms_key_arn, PolicyName="default", Policy=json.dumps(policy))

    step01_trail.apply(config)

    after = json.loads(kms.get_key_policy(KeyId=out.kms_key_arn, PolicyName="default")["Policy"])["Statement"]
    assert root in after
    assert describe in after


def test_alias_refused_past_the_sdks_retries_leaves_no_enabled_key_behind_the_retry(
        aws: None, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the alias finds our key: a step that failed between CreateKey and CreateAlias and ran again
    would otherwise leave its first key enabled (and billed) with nothing pointing at it."""
    real_create_alias = step01_trail.kms.create_alias

    def throttled(alias: str, key_id: str, region: str) -> bool:
        raise TransientError("KMS is busy (ThrottlingException) on creating the alias; retrying")

    monkeypatch.setattr(step01_trail.kms, "create_alias", throttled)
    with pytest.raises(TransientError):
        step01_trail.apply(config)
    monkeypatch.setattr(step01_trail.kms, "create_alias", real_create_alias)
    out = step01_trail.apply(config)  # the state machine's retry

    kms = boto3.client("kms", region_name=REGION)
    states = {k["KeyId"]: kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"]
              for k in kms.list_keys()["Keys"]}
    assert sorted(states.values()) == ["Enabled", "PendingDeletion"]
    assert states[out.kms_key_arn.rsplit("/", 1)[1]] == "Enabled"
