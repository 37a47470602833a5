"""An existing trail (ExistingTrailName) onboarded against moto, from a customer's starting state
(tests/customer_trail.py): every merge, every refusal, the rerun, and the delete.

What a person checks: the trail, its bucket policy, key policy and their notification and subscription
are exactly as before, plus only the statements and entry this stack added (under Sids and an Id naming
the stack), and after a delete exactly as before.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

import boto3
import pytest

from expel_onboarding.errors import InvalidParameter, OnboardingError
from expel_onboarding.models import Config
from expel_onboarding.policies.key_policy import BUCKET_SID, SNS_SID, stack_sid
from expel_onboarding.policies.notification import notification_id
from expel_onboarding.policies.topic_policy import stack_sid as topic_stack_sid
from expel_onboarding.steps import preflight, step01_existing_trail
from tests import customer_trail
from tests.conftest import ACCOUNT_ID, REGION, boto
from tests.steps.test_onboarding_rerun import assert_a_second_run_writes_nothing, configure, verify
from tests.steps.test_preflight import s3_honours_expected_owner  # noqa: F401  (a fixture)
from tests.steps.test_teardown import run_teardown
from tests.support import allow_cloudtrail, count_mutating_calls, key_policy, preflight_refusal

TRAIL = "CustomersTrail"


@pytest.fixture
def existing(config: Config) -> Config:
    return dataclasses.replace(config, existing_trail_name=TRAIL)


@pytest.fixture
def customer(aws: None) -> customer_trail.CustomerTrail:
    return customer_trail.build(boto, ACCOUNT_ID, REGION, name=TRAIL)


@pytest.fixture
def with_topic(aws: None) -> customer_trail.CustomerTrail:
    return customer_trail.build(boto, ACCOUNT_ID, REGION, name=TRAIL, topic_entry=True)


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document["Statement"])


# ------------------------------------------------------------------------------------ preflight

def test_preflight_reads_the_trail_writes_nothing_and_reports_best_practice_differences(
        existing: Config, customer: customer_trail.CustomerTrail) -> None:
    boto("s3").delete_public_access_block(Bucket=customer.bucket)
    with count_mutating_calls() as calls:
        result = preflight.check(existing)
    assert calls == []
    assert result["Checked"] is True
    assert any("rotation off" in f for f in result["Findings"])
    assert not any("versioning" in f for f in result["Findings"])


def test_adopted_trail_names_its_bucket_log_folder_and_key(existing: Config,
                                                           customer: customer_trail.CustomerTrail) -> None:
    adopted = step01_existing_trail.read(existing)
    assert (adopted.trail_arn, adopted.bucket_name, adopted.log_prefix) == (
        customer.trail_arn, customer.bucket, f"org/AWSLogs/{ACCOUNT_ID}/")
    assert adopted.kms_key_arn == adopted.log_kms_key_arn == customer.key_arn


@pytest.mark.parametrize(("breakage", "expected"), [
    (lambda ct: ct.stop_logging(Name=TRAIL), "logging is off"),
    (lambda ct: ct.update_trail(Name=TRAIL, IsMultiRegionTrail=False), "us-east-1 only"),
    (lambda ct: ct.update_trail(Name=TRAIL, EnableLogFileValidation=False), "log file validation is off"),
    (lambda ct: ct.put_event_selectors(TrailName=TRAIL, EventSelectors=[
        {"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}]), "no write management events"),
    (lambda ct: ct.put_event_selectors(TrailName=TRAIL, AdvancedEventSelectors=[
        {"Name": "data only", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                                  {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}]),
     "no write management events"),
])
def test_a_trail_that_cannot_serve_expel_is_refused_naming_the_setting_and_the_fix(
        existing: Config, customer: customer_trail.CustomerTrail, breakage: Any, expected: str) -> None:
    breakage(boto("cloudtrail"))
    message = preflight_refusal(existing, "ExistingTrailName")
    assert expected in message
    assert [b["Name"] for b in boto("s3").list_buckets()["Buckets"]] == [customer.bucket]


def test_write_only_management_events_serve_but_are_a_finding(existing: Config,
                                                               customer: customer_trail.CustomerTrail) -> None:
    boto("cloudtrail").put_event_selectors(TrailName=TRAIL, EventSelectors=[
        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True, "ExcludeManagementEventSources":
            ["kms.amazonaws.com"]}])
    findings = preflight.check(existing)["Findings"]
    assert any("write management events only" in f for f in findings)
    assert any("kms.amazonaws.com" in f for f in findings)


def test_an_unknown_trail_ispreflight_refusal(existing: Config, customer: customer_trail.CustomerTrail) -> None:
    assert "no trail named Nope" in preflight_refusal(dataclasses.replace(existing, existing_trail_name="Nope"),
                                             "ExistingTrailName")


def test_a_disabled_trail_key_ispreflight_refusal(existing: Config, customer: customer_trail.CustomerTrail) -> None:
    boto("kms").disable_key(KeyId=customer.key_arn.rsplit("/", 1)[-1])
    assert "aws kms enable-key" in preflight_refusal(existing, "ExistingTrailName")


def test_organization_mode_with_a_trail_of_this_account_only_ispreflight_refusal(
        existing: Config, customer: customer_trail.CustomerTrail) -> None:
    organizations = boto("organizations")
    organizations.create_organization(FeatureSet="ALL")
    for principal in ("member.org.stacksets.cloudformation.amazonaws.com", "cloudtrail.amazonaws.com"):
        organizations.enable_aws_service_access(ServicePrincipal=principal)
    message = preflight_refusal(dataclasses.replace(existing, organization_mode=True), "OrganizationMode")
    assert "logs only this account" in message


def test_an_object_created_entry_to_a_queue_over_the_log_folder_is_refused_naming_it(
        existing: Config, customer: customer_trail.CustomerTrail) -> None:
    configuration = customer.notification(boto)
    configuration["QueueConfigurations"].append({"Id": "their-indexer", "QueueArn": customer.deletes_queue_arn,
                                                 "Events": ["s3:ObjectCreated:Put"]})
    boto("s3").put_bucket_notification_configuration(Bucket=customer.bucket, NotificationConfiguration=configuration)
    message = preflight_refusal(existing, "ExistingTrailName")
    assert "notification their-indexer" in message and "an SQS queue" in message
    assert "send that notification to an SNS topic instead" in message


def test_an_entry_sending_only_part_of_the_log_files_is_refused_naming_it(
        existing: Config, customer: customer_trail.CustomerTrail) -> None:
    topic = boto("sns").create_topic(Name="digests-only")["TopicArn"]
    configuration = customer.notification(boto)
    configuration["TopicConfigurations"] = [{
        "Id": "their-digests", "TopicArn": topic, "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": f"{customer.log_prefix}CloudTrail-Digest/"}]}}}]
    boto("s3").put_bucket_notification_configuration(Bucket=customer.bucket, NotificationConfiguration=configuration)
    message = preflight_refusal(existing, "ExistingTrailName")
    assert "notification their-digests" in message and "does not send all of them" in message


def test_existing_topic_arn_conflicting_with_their_feed_ispreflight_refusal(
        existing: Config, with_topic: customer_trail.CustomerTrail) -> None:
    other = boto("sns").create_topic(Name="another-topic")["TopicArn"]
    message = preflight_refusal(dataclasses.replace(existing, existing_topic_arn=other), "ExistingTopicArn")
    assert with_topic.topic_arn in message


def test_their_topic_encrypted_with_the_aws_managed_key_ispreflight_refusal(
        existing: Config, customer: customer_trail.CustomerTrail) -> None:
    topic = boto("sns").create_topic(Name="managed-key", Attributes={"KmsMasterKeyId": "alias/aws/sns"})["TopicArn"]
    message = preflight_refusal(dataclasses.replace(existing, existing_topic_arn=topic), "ExistingTopicArn")
    assert "AWS managed key" in message


# ------------------------------------------------------------------------- the onboarding itself

def test_onboarding_adds_only_its_own_statements_and_entry_and_leaves_the_trail_alone(
        existing: Config, customer: customer_trail.CustomerTrail) -> None:
    before = customer.snapshot(boto)
    notification_before = customer.notification(boto)

    outputs = configure(existing)

    after = customer.snapshot(boto)
    # The trail, its logging, selectors, bucket policy and encryption: untouched.
    for part in ("trail", "logging", "selectors", "bucket_policy", "encryption", "versioning", "key_state"):
        assert after[part] == before[part], part
    # The key policy: theirs, plus the guide's two statements under Sids naming the stack.
    added = [s for s in _statements(after["key_policy"]) if s not in _statements(before["key_policy"])]
    assert _statements(after["key_policy"])[:len(_statements(before["key_policy"]))] == _statements(
        before["key_policy"])
    assert sorted(s["Sid"] for s in added) == sorted([stack_sid(BUCKET_SID, existing.stack_name),
                                                      stack_sid(SNS_SID, existing.stack_name)])
    # The bucket's notifications: theirs, plus our entry for the trail's log folder only.
    notification = customer.notification(boto)
    assert notification["QueueConfigurations"] == notification_before["QueueConfigurations"]
    [ours] = notification["TopicConfigurations"]
    assert ours["Id"] == notification_id(existing.stack_name)
    assert ours["Filter"]["Key"]["FilterRules"][0]["Value"] == customer.log_prefix
    # Topic and queue are ours, encrypted with the trail's key; the outputs say so.
    trail = outputs["Trail"]
    assert (trail.existing_trail, trail.trail_arn, trail.kms_key_arn, trail.kms_alias) == (
        True, customer.trail_arn, customer.key_arn, "")
    topic_attributes = boto("sns").get_topic_attributes(TopicArn=outputs["Topic"].topic_arn)["Attributes"]
    assert topic_attributes["KmsMasterKeyId"] == customer.key_arn and not outputs["Topic"].customers
    # Expel's role reads the log folder only and decrypts with the trail's key.
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in boto("cloudformation").describe_stacks(
        StackName=existing.role_stack_name)["Stacks"][0]["Parameters"]}
    assert parameters["LogObjectPrefix"] == customer.log_prefix
    assert parameters["KmsKeyArn"] == customer.key_arn and parameters["LogKmsKeyArn"] == ""
    # The canary travelled through the trail's log folder, and left nothing behind.
    delivery = verify(existing, outputs, "existing-trail")
    assert delivery.confirmed and delivery.canary_key.startswith(customer.log_prefix)
    versions = boto("s3").list_object_versions(Bucket=customer.bucket, Prefix=delivery.canary_key)
    assert versions.get("Versions", []) == [] and versions.get("DeleteMarkers", []) == []


def test_second_onboarding_of_an_existing_trail_writes_nothing(existing: Config,
                                                               customer: customer_trail.CustomerTrail) -> None:
    assert_a_second_run_writes_nothing(existing, configure(existing))


def test_guide_statements_pasted_by_hand_under_other_sids_are_not_added_again_nor_removed(
        existing: Config, customer: customer_trail.CustomerTrail) -> None:
    # A person followed the guide by hand on this key earlier, with Sids of their own and ArnLike/StringEquals
    # where the guide writes StringLike: the same grants.
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{existing.topic_name}"
    policy = key_policy(customer.key_arn)
    by_hand = [
        {"Sid": "s3-uses-key", "Effect": "Allow", "Principal": {"Service": ["s3.amazonaws.com"]},
         "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
         "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{customer.bucket}"}}},
        {"Sid": "sns-uses-key", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
         "Action": ["KMS:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:sourcearn": topic_arn}}}]
    policy["Statement"] += by_hand
    boto("kms").put_key_policy(KeyId=customer.key_arn, PolicyName="default", Policy=json.dumps(policy))

    configure(existing)
    assert key_policy(customer.key_arn) == policy  # nothing added: theirs already grants it

    run_teardown(existing)
    assert key_policy(customer.key_arn) == policy  # and theirs stays after the delete


def test_a_trail_without_a_key_gets_the_onboardings_own_key_for_topic_and_queue(existing: Config,
                                                                                aws: None) -> None:
    customer = customer_trail.build(boto, ACCOUNT_ID, REGION, name=TRAIL, encrypted=False)
    outputs = configure(existing)
    trail = outputs["Trail"]
    key = boto("kms").describe_key(KeyId=existing.kms_alias)["KeyMetadata"]
    assert trail.kms_key_arn == key["Arn"] and trail.kms_alias == existing.kms_alias
    assert trail.log_kms_key_arn == ""  # SSE-S3 log files: nothing to decrypt
    assert any("not encrypted with a customer managed KMS key" in f for f in trail.findings.split("; "))
    assert boto("kms").get_key_rotation_status(KeyId=key["Arn"])["KeyRotationEnabled"] is True
    assert {s["Sid"] for s in key_policy(key["Arn"])["Statement"]} == {
        "Enable IAM User Permissions", BUCKET_SID, SNS_SID}  # our key: the guide's own Sids
    assert verify(existing, outputs, "no-key").confirmed
    assert customer.trail_name == boto("cloudtrail").get_trail(Name=TRAIL)["Trail"]["Name"]


def test_their_topic_that_already_gets_the_log_files_is_used_with_a_second_subscription(
        existing: Config, with_topic: customer_trail.CustomerTrail) -> None:
    before = with_topic.snapshot(boto)
    notification_before = with_topic.notification(boto)

    outputs = configure(existing)

    assert outputs["Topic"].topic_arn == with_topic.topic_arn and outputs["Topic"].customers
    assert outputs["BucketNotification"].configuration_id == "their-siem-feed"
    assert with_topic.notification(boto) == notification_before  # no entry of ours: theirs covers it
    after = with_topic.snapshot(boto)
    assert after["topic_subscriptions"] == sorted(before["topic_subscriptions"] + [
        (outputs["Queue"].queue_arn, "sqs")])
    ours = [s for s in _statements(after["topic_policy"]) if s not in _statements(before["topic_policy"])]
    assert [s["Sid"] for s in ours] == [topic_stack_sid(existing.stack_name)]
    assert after["topic_key"] == before["topic_key"]
    # Their SIEM would receive a canary: the delivery check says why it did not send one.
    delivery = verify(existing, outputs, "their-topic")
    assert delivery.confirmed and "customer's topic" in delivery.skipped
    # A log file CloudTrail delivers reaches Expel's queue (raw) and their SIEM alike.
    key = f"{with_topic.log_prefix}CloudTrail/{REGION}/2026/12/01/file.json.gz"
    boto("s3").put_object(Bucket=with_topic.bucket, Key=key, Body=b"{}")
    for queue in (outputs["Queue"].queue_url, boto("sqs").get_queue_url(QueueName=f"{TRAIL}-siem")["QueueUrl"]):
        messages = boto("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
        assert any(key in unquote_plus(m["Body"]) for m in messages)  # S3 URL-encodes keys in its events


def test_existing_topic_arn_without_an_entry_gets_our_entry_pointing_at_it(
        existing: Config, customer: customer_trail.CustomerTrail) -> None:
    topic = boto("sns").create_topic(Name="chosen-feed")["TopicArn"]
    outputs = configure(dataclasses.replace(existing, existing_topic_arn=topic))
    [ours] = customer.notification(boto)["TopicConfigurations"]
    assert ours["TopicArn"] == topic and outputs["Topic"].customers


def test_organization_trail_is_read_under_the_organizations_folder_or_the_one_named(
        existing: Config, aws: None) -> None:
    organization = boto("organizations").create_organization(FeatureSet="ALL")["Organization"]["Id"]
    customer_trail.build(boto, ACCOUNT_ID, REGION, name=TRAIL, key_prefix="", organization_id=organization)
    boto("cloudtrail").update_trail(Name=TRAIL, IsOrganizationTrail=True)
    assert step01_existing_trail.read(existing).log_prefix == f"AWSLogs/{organization}/"
    filtered = dataclasses.replace(existing, log_prefix_organization_id="o-subsidiary01")
    assert step01_existing_trail.read(filtered).log_prefix == "AWSLogs/o-subsidiary01/"


def test_workbench_is_told_the_trail_exists_in_the_device_and_the_manual_link(
        existing: Config, customer: customer_trail.CustomerTrail) -> None:
    outputs = configure(existing)
    query = parse_qs(urlsplit(outputs["Device"].registration_url).query)
    assert query["existingTrail"] == ["yes"]


# ------------------------------------------------------------------------------------ the delete

def test_delete_removes_exactly_what_the_stack_added(existing: Config,
                                                     with_topic: customer_trail.CustomerTrail) -> None:
    before = with_topic.snapshot(boto)
    notification_before = with_topic.notification(boto)
    outputs = configure(existing)

    state = run_teardown(existing)

    assert with_topic.snapshot(boto) == before
    assert with_topic.notification(boto) == notification_before
    # An adopted trail gets no access-log bucket or log group of ours: nothing of that kind to remove.
    assert state["Teardown"]["Trail"] == {"Trail": "KEPT_NOT_CREATED_BY_THIS_STACK",
                                          "Bucket": "KEPT_NOT_CREATED_BY_THIS_STACK", "Key": "ABSENT",
                                          "AccessLogBucket": "ABSENT", "LogGroup": "ABSENT"}
    assert outputs["Queue"].queue_url not in json.dumps(boto("sqs").list_queues())
    with count_mutating_calls() as calls:
        run_teardown(existing)
    assert calls == []


def test_delete_takes_our_entry_out_and_schedules_our_own_key(existing: Config, aws: None) -> None:
    customer = customer_trail.build(boto, ACCOUNT_ID, REGION, name=TRAIL, encrypted=False)
    notification_before = customer.notification(boto)
    configure(existing)

    state = run_teardown(existing)

    assert customer.notification(boto) == notification_before
    assert state["Teardown"]["Trail"]["Key"] == "SCHEDULED_FOR_DELETION"
    assert boto("cloudtrail").get_trail_status(Name=TRAIL)["IsLogging"] is True


def test_a_failing_step_names_itself_when_their_entry_changes_between_steps_3_and_7(
        existing: Config, with_topic: customer_trail.CustomerTrail) -> None:
    from expel_onboarding.steps import step01_trail, step03_sns_topic, step07_bucket_notification
    trail = step01_trail.apply(existing)
    topic = step03_sns_topic.apply(existing, trail)
    other = boto("sns").create_topic(Name="moved-feed")["TopicArn"]
    configuration = with_topic.notification(boto)
    configuration["TopicConfigurations"][0]["TopicArn"] = other
    boto("s3").put_bucket_notification_configuration(Bucket=with_topic.bucket, NotificationConfiguration=configuration)
    with pytest.raises(OnboardingError, match="changed during the onboarding"):
        step07_bucket_notification.apply(existing, trail, topic)


@pytest.mark.usefixtures("s3_honours_expected_owner")
def test_a_bucket_in_another_account_is_refused_as_not_supported_yet(
        existing: Config, aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # A Control Tower log archive: the trail is this account's, its bucket another account's.
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "111111111111")
    boto("s3").create_bucket(Bucket="aws-controltower-logs-111111111111-us-east-1")
    allow_cloudtrail(boto("s3"), "aws-controltower-logs-111111111111-us-east-1",
                     f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/{TRAIL}")
    monkeypatch.delenv("MOTO_ACCOUNT_ID")
    boto("cloudtrail").create_trail(Name=TRAIL, S3BucketName="aws-controltower-logs-111111111111-us-east-1",
                                    IsMultiRegionTrail=True, EnableLogFileValidation=True)
    boto("cloudtrail").start_logging(Name=TRAIL)
    message = preflight_refusal(existing, "ExistingTrailName")
    assert "of another AWS account (a Control Tower log archive" in message and "not supported yet" in message


def test_a_bucket_in_another_region_ispreflight_refusal(existing: Config, aws: None) -> None:
    ireland = boto3.client("s3", region_name="eu-west-1")
    ireland.create_bucket(Bucket="logs-in-ireland", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    allow_cloudtrail(ireland, "logs-in-ireland", f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/{TRAIL}")
    boto("cloudtrail").create_trail(Name=TRAIL, S3BucketName="logs-in-ireland", IsMultiRegionTrail=True,
                                    EnableLogFileValidation=True)
    boto("cloudtrail").start_logging(Name=TRAIL)
    assert "is in eu-west-1" in preflight_refusal(existing, "ExistingTrailName")


def test_a_topic_name_taken_by_a_foreign_topic_is_refused_when_the_onboarding_would_create_one(
        existing: Config, customer: customer_trail.CustomerTrail) -> None:
    boto("sns").create_topic(Name=existing.topic_name)
    with count_mutating_calls() as calls, pytest.raises(OnboardingError, match="Parameter TopicName"):
        preflight.check(existing)
    assert calls == []


# ------------------------------------------------------------ the CIS parameters on an existing trail
@pytest.mark.parametrize(("parameter", "field", "value"), [
    ("CloudWatchLogsRetentionDays", "cloud_watch_logs_retention_days", 30),
    ("LogRetentionDays", "log_retention_days", 365),
    ("ObjectLockRetentionDays", "object_lock_retention_days", 30),
])
def test_a_cis_parameter_that_would_change_their_trail_or_bucket_is_refused_before_any_write(
        existing: Config, customer: customer_trail.CustomerTrail, parameter: str, field: str, value: int) -> None:
    changes = {field: value, **({"cloud_watch_logs_role_arn": "arn:aws:iam::123456789012:role/r"}
                                if field == "cloud_watch_logs_retention_days" else {})}
    message = preflight_refusal(dataclasses.replace(existing, **changes), parameter)
    assert "never changes your trail or its bucket" in message and f"set {parameter} to 0" in message


def test_access_logging_is_a_check_on_their_bucket_never_a_change(existing: Config,
                                                                   customer: customer_trail.CustomerTrail) -> None:
    before = customer.snapshot(boto)
    findings = preflight.check(existing)["Findings"]
    assert any(f"bucket {customer.bucket} has server access logging off (CIS 3.6" in f for f in findings)
    trail = step01_existing_trail.adopt(existing)
    assert "server access logging off" in trail.findings
    assert "LoggingEnabled" not in boto("s3").get_bucket_logging(Bucket=customer.bucket)
    assert [b["Name"] for b in boto("s3").list_buckets()["Buckets"]] == [customer.bucket]
    assert customer.snapshot(boto) == before

    # Their own access logging: no finding; AccessLogging false: not looked at.
    boto("s3").create_bucket(Bucket="their-access-logs")
    boto("s3").put_bucket_policy(Bucket="their-access-logs", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::their-access-logs/*",
         "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}}]}))
    boto("s3").put_bucket_logging(Bucket=customer.bucket, BucketLoggingStatus={"LoggingEnabled": {
        "TargetBucket": "their-access-logs", "TargetPrefix": "trail/"}})
    assert not any("server access logging" in f for f in preflight.check(existing)["Findings"])
    boto("s3").put_bucket_logging(Bucket=customer.bucket, BucketLoggingStatus={})
    off = dataclasses.replace(existing, access_logging=False)
    assert not any("server access logging" in f for f in preflight.check(off)["Findings"])


# ------------------------------------------------------------ their bucket policy denying Expel's role
def _add_to_their_bucket_policy(customer: customer_trail.CustomerTrail, statement: dict[str, Any]) -> None:
    policy = json.loads(boto("s3").get_bucket_policy(Bucket=customer.bucket)["Policy"])
    policy["Statement"].append(statement)
    boto("s3").put_bucket_policy(Bucket=customer.bucket, Policy=json.dumps(policy))


def test_a_bucket_policy_denying_everyone_but_their_roles_is_refused_naming_the_statement_and_the_role(
        existing: Config, customer: customer_trail.CustomerTrail) -> None:
    _add_to_their_bucket_policy(customer, {
        "Sid": "OnlyOurAuditors", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{customer.bucket}/*",
        "Condition": {"StringNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT_ID}:role/{TRAIL}-Audit"}}})
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/{existing.role_name}"
    message = preflight_refusal(existing, "ExistingTrailName")
    assert "'OnlyOurAuditors' denies s3:GetObject" in message and f"exempt {role}" in message
    with pytest.raises(InvalidParameter, match="OnlyOurAuditors"):
        step01_existing_trail.adopt(existing)

    # Exempting the role (as the fix says) lets the onboarding go on.
    policy = json.loads(boto("s3").get_bucket_policy(Bucket=customer.bucket)["Policy"])
    policy["Statement"][-1]["Condition"]["StringNotLike"]["aws:PrincipalArn"] = [
        f"arn:aws:iam::{ACCOUNT_ID}:role/{TRAIL}-Audit", role]
    boto("s3").put_bucket_policy(Bucket=customer.bucket, Policy=json.dumps(policy))
    assert preflight.check(existing)["Checked"] is True


def test_a_deny_depending_on_where_the_request_comes_from_is_a_finding(
        existing: Config, customer: customer_trail.CustomerTrail) -> None:
    _add_to_their_bucket_policy(customer, {
        "Sid": "OfficeOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{customer.bucket}", f"arn:aws:s3:::{customer.bucket}/*"],
        "Condition": {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}})
    findings = preflight.check(existing)["Findings"]
    assert any("'OfficeOnly' denies reading log files depending on aws:SourceIp" in f for f in findings)


def test_the_public_access_finding_counts_the_accounts_s3_block_public_access(
        existing: Config, customer: customer_trail.CustomerTrail) -> None:
    boto("s3").delete_public_access_block(Bucket=customer.bucket)
    assert any("does not block all public access" in f for f in preflight.check(existing)["Findings"])
    control = boto("s3control")
    control.put_public_access_block(AccountId=ACCOUNT_ID, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": False})
    assert any("does not block all public access" in f for f in preflight.check(existing)["Findings"])
    # The account's block and the bucket's together, or the account's alone, block every kind of public access.
    boto("s3").put_public_access_block(Bucket=customer.bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False, "RestrictPublicBuckets": True})
    assert not any("public access" in f for f in preflight.check(existing)["Findings"])
    boto("s3").delete_public_access_block(Bucket=customer.bucket)
    control.put_public_access_block(AccountId=ACCOUNT_ID, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    assert not any("public access" in f for f in preflight.check(existing)["Findings"])
