"""The drift check against one moto account: a clean onboarding gives no finding and no write; each thing
a person breaks by hand is named with its guide step, what it is now and what it should be; a rerun of
the onboarding (the repair) puts back exactly ours and keeps what the customer added."""

from __future__ import annotations

import json
from typing import Any

import pytest

from expel_onboarding.drift import DriftStatus, Report, WriteRefused, refusing_writes, render
from expel_onboarding.models import Config
from expel_onboarding.policies.key_policy import SNS_SID
from expel_onboarding.policies.notification import NOTIFICATION_ID
from expel_onboarding.steps import drift_check
from tests.conftest import ACCOUNT_ID, boto
from tests.steps.test_onboarding_rerun import configure
from tests.support import DATA_PATH_POLICY, count_mutating_calls

CUSTOMER_SID = "CustomerAuditReadsMessages"


def _findings(report: Report) -> set[tuple[int, str]]:
    return {(f.step, f.setting) for f in report.findings}


def _customer_statement(resource: str, action: str) -> dict[str, Any]:
    return {"Sid": CUSTOMER_SID, "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
            "Action": action, "Resource": resource}


def _break_things(config: Config, outputs: dict[str, Any]) -> None:
    """What people do by hand, one thing per guide step; customers' own additions stay beside them."""
    key_arn, topic_arn = outputs["Trail"].kms_key_arn, outputs["Topic"].topic_arn
    queue = outputs["Queue"]
    kms = boto("kms")
    policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != SNS_SID]
    kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=json.dumps(policy))          # step 4
    sns = boto("sns")
    sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps(
        {"Version": "2012-10-17", "Statement": [_customer_statement(topic_arn, "SNS:GetTopicAttributes")]}))  # 3
    sqs = boto("sqs")
    sqs.set_queue_attributes(QueueUrl=queue.queue_url, Attributes={"Policy": json.dumps(
        {"Version": "2012-10-17", "Statement": [_customer_statement(queue.queue_arn, "SQS:ReceiveMessage")]})})  # 5
    sns.set_subscription_attributes(SubscriptionArn=outputs["Subscription"].subscription_arn,
                                    AttributeName="RawMessageDelivery", AttributeValue="false")  # step 6
    boto("s3").put_bucket_notification_configuration(Bucket=config.bucket_name,
                                                     NotificationConfiguration={})  # step 7
    boto("cloudtrail").stop_logging(Name=config.trail_name)  # step 1


def test_clean_account_gives_no_finding_and_no_write(aws: None, config: Config) -> None:
    configure(config)
    with count_mutating_calls() as calls:
        report = drift_check.check(config)
    assert calls == []
    assert report.status == DriftStatus.IN_SYNC, render(report)
    assert report.findings == []
    # Step 10 without an API key is Workbench's own form: nothing to read there.
    assert {c.step: c.status for c in report.steps}[10] == DriftStatus.NOT_CHECKED


def test_each_broken_step_is_named_and_nothing_is_written(aws: None, config: Config) -> None:
    outputs = configure(config)
    _break_things(config, outputs)
    with count_mutating_calls() as calls:
        report = drift_check.check(config)
    assert calls == []
    assert report.status == DriftStatus.DRIFTED
    assert _findings(report) >= {
        (1, "logging (IsLogging)"),
        (3, "topic policy statement 'expel-statement-ID'"),
        (4, f"key policy statement {SNS_SID!r}"),
        (5, "queue policy statement 'Sid1572965666162'"),
        (6, "RawMessageDelivery"),
        (7, f"event notification {NOTIFICATION_ID!r}"),
    }, render(report)
    raw = next(f for f in report.findings if f.setting == "RawMessageDelivery")
    assert (raw.resource, raw.actual, raw.expected) == (outputs["Subscription"].subscription_arn, "false", "true")
    assert {c.step for c in report.steps if c.status == DriftStatus.DRIFTED} == {1, 3, 4, 5, 6, 7}
    text = "\n".join(render(report, stack=config.stack_name))
    assert "Guide step 6  Create the SNS subscription: 1 difference" in text
    assert "aws cloudtrail start-logging --name ExpelCloudTrail" in text


def test_rerun_repairs_exactly_ours_and_keeps_the_customers_statements(aws: None, config: Config) -> None:
    outputs = configure(config)
    _break_things(config, outputs)
    configure(config)  # what DriftRepair and `doctor --repair` run: the onboarding itself
    assert drift_check.check(config).status == DriftStatus.IN_SYNC
    topic_policy = json.loads(boto("sns").get_topic_attributes(TopicArn=outputs["Topic"].topic_arn)
                              ["Attributes"]["Policy"])
    queue_policy = json.loads(boto("sqs").get_queue_attributes(QueueUrl=outputs["Queue"].queue_url,
                                                               AttributeNames=["Policy"])["Attributes"]["Policy"])
    for policy in (topic_policy, queue_policy):
        assert CUSTOMER_SID in {s["Sid"] for s in policy["Statement"]}


def test_changed_role_is_named_and_a_rerun_puts_back_ours_and_keeps_the_customers(aws: None, config: Config) -> None:
    configure(config)
    iam = boto("iam")
    trust = iam.get_role(RoleName=config.role_name)["Role"]["AssumeRolePolicyDocument"]
    trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = "someone-else"
    iam.update_assume_role_policy(RoleName=config.role_name, PolicyDocument=json.dumps(trust))
    iam.delete_role_policy(RoleName=config.role_name, PolicyName="ExpelInventoryReadOnly")
    data_path = iam.get_role_policy(RoleName=config.role_name, PolicyName=DATA_PATH_POLICY)["PolicyDocument"]
    data_path["Statement"] = [s for s in data_path["Statement"] if s["Sid"] != "ConsumeNotificationQueue"]
    iam.put_role_policy(RoleName=config.role_name, PolicyName=DATA_PATH_POLICY, PolicyDocument=json.dumps(data_path))
    customer = iam.create_policy(PolicyName="CustomerExtraReads", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:DescribeVpcs", "Resource": "*"}]}))
    iam.attach_role_policy(RoleName=config.role_name, PolicyArn=customer["Policy"]["Arn"])
    with count_mutating_calls() as calls:
        report = drift_check.check(config)
    assert calls == []
    found = {f.setting: f for f in report.findings if f.step == 8}
    assert set(found) == {"trust policy statement 'ExpelAssumesWithWorkbenchGuid'",
                          "inline policy ExpelInventoryReadOnly",
                          f"inline policy {DATA_PATH_POLICY} statement 'ConsumeNotificationQueue'"}
    trust_finding = found["trust policy statement 'ExpelAssumesWithWorkbenchGuid'"]
    assert "someone-else" in trust_finding.actual and config.workbench_guid in trust_finding.expected
    # Each is the role's own Policies or trust: a drift-aware change set puts it back.
    assert all(f.repairable for f in found.values())
    queue_finding = found[f"inline policy {DATA_PATH_POLICY} statement 'ConsumeNotificationQueue'"]
    assert (queue_finding.actual, "sqs:ReceiveMessage" in queue_finding.expected) == ("(absent)", True)
    assert "drift-aware change set" in queue_finding.fix
    assert "By hand only" not in "\n".join(render(report))

    configure(config)  # the repair: the onboarding again

    assert [f for f in drift_check.check(config).findings if f.step == 8] == []
    trust = iam.get_role(RoleName=config.role_name)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] == config.workbench_guid
    assert sorted(iam.list_role_policies(RoleName=config.role_name)["PolicyNames"]) == [
        DATA_PATH_POLICY, "ExpelInventoryReadOnly"]
    restored = iam.get_role_policy(RoleName=config.role_name, PolicyName=DATA_PATH_POLICY)["PolicyDocument"]
    assert "ConsumeNotificationQueue" in {s["Sid"] for s in restored["Statement"]}
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=config.role_name)[
        "AttachedPolicies"]] == [customer["Policy"]["Arn"]]  # the customer's own attachment stays


def test_missing_trail_is_a_finding_and_the_steps_after_it_still_compare(aws: None, config: Config) -> None:
    configure(config)
    boto("cloudtrail").delete_trail(Name=config.trail_name)
    report = drift_check.check(config)
    assert (1, "trail") in _findings(report)
    trail = next(f for f in report.findings if f.setting == "trail")
    assert trail.actual == "(absent)"
    assert {c.step: c.status for c in report.steps}[6] == DriftStatus.IN_SYNC


def test_a_write_while_checking_is_refused_before_it_is_sent(aws: None, config: Config) -> None:
    from expel_onboarding.aws import clients

    with refusing_writes():
        clients.sns().list_topics()  # a read goes through
        with pytest.raises(WriteRefused, match="sns:CreateTopic"):
            clients.sns().create_topic(Name="not-while-checking")
    assert boto("sns").list_topics()["Topics"] == []
    clients.sns().create_topic(Name="after-the-check")  # outside a check, writes work again


def test_a_role_made_by_cloudformation_answers_its_inline_policy_as_json(aws: None) -> None:
    """IAM holds policy documents as JSON text; moto kept CloudFormation's dicts and answered their repr
    (local_cloud/moto_patches.py), which the check could not read."""
    document = {"Version": "2012-10-17", "Statement": [{"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject",
                                                         "Resource": "*"}]}
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    template = {"Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": "made-by-a-stack", "AssumeRolePolicyDocument": trust,
        "Policies": [{"PolicyName": "inline", "PolicyDocument": document}]}}}}
    boto("cloudformation").create_stack(StackName="role", TemplateBody=json.dumps(template),
                                        Capabilities=["CAPABILITY_NAMED_IAM"])
    from expel_onboarding.aws import iam

    assert iam.role_policy("made-by-a-stack", "inline") == document
    assert iam.role_policy("made-by-a-stack", "absent") is None


def test_handler_returns_the_report_the_state_machine_keeps_under_drift(aws: None, config: Config,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from local_cloud.cloudwatch_alarms import emf_metrics
    from tests.steps.shared import CONTEXT, handler

    configure(config)
    capsys.readouterr()
    event = {"Config": config.to_dict(), "ExecutionId": "arn:aws:states:us-east-1:123456789012:execution:m:check-1"}
    result = handler("drift_check")(event, CONTEXT)
    assert (result["Status"], result["FindingCount"]) == ("IN_SYNC", 0)
    assert result["ExecutionArn"] == event["ExecutionId"]
    assert Report.from_dict(result).steps[0].step == 1
    # The finding count, as the metric the template's DriftAlarm watches (same namespace, name, dimensions).
    published = [m for line in capsys.readouterr().out.splitlines() for m in emf_metrics(line)]
    assert published == [("ExpelCloudTrailOnboarding", [{
        "MetricName": "DriftFindings", "Value": 0.0, "Unit": "Count", "Timestamp": published[0][1][0]["Timestamp"],
        "Dimensions": [{"Name": "StackName", "Value": config.stack_name}]}])]


def _count(config: Config, metric: str, when: Any, value: float) -> None:
    boto("cloudwatch").put_metric_data(Namespace="AWS/SNS", MetricData=[{
        "MetricName": metric, "Dimensions": [{"Name": "TopicName", "Value": config.topic_name}],
        "Timestamp": when, "Value": value, "Unit": "Count"}])


def test_failed_deliveries_are_a_finding_until_a_delivery_succeeds_again(aws: None, config: Config) -> None:
    """No canary through Expel's queue: the check reads what SNS counted (AWS/SNS, per topic)."""
    from datetime import UTC, datetime, timedelta

    configure(config)
    # Mid-minute (datapoints fall inside CloudWatch's one-minute periods) and never in the future: a "now"
    # ahead of the clock lost the last datapoints in the first half of every minute.
    now = (datetime.now(UTC) - timedelta(minutes=1)).replace(second=30, microsecond=0)
    _count(config, "NumberOfNotificationsDelivered", now - timedelta(minutes=20), 5)
    _count(config, "NumberOfNotificationsFailed", now - timedelta(minutes=10), 3)
    report = drift_check.check(config, now=now)
    [finding] = [f for f in report.findings if f.step == 6]
    assert (finding.setting, finding.actual, finding.expected) == (
        "NumberOfNotificationsFailed (last hour)", "3, none delivered since", "0")

    _count(config, "NumberOfNotificationsDelivered", now - timedelta(minutes=2), 1)
    check = {c.step: c for c in drift_check.check(config, now=now).steps}[6]
    assert check.status == DriftStatus.IN_SYNC
    assert check.note.startswith("NumberOfNotificationsFailed: 3 in the last hour, deliveries succeed since")


def test_step1_hardening_drift_is_named_and_a_rerun_restores_only_ours(aws: None, config: Config) -> None:
    """Access logging, the lifecycle rules, the access-log bucket's encryption, Object Lock's default retention
    and the CloudWatch Logs group's retention compare like the rest of step 1: named, written nowhere, and
    put back by a rerun that keeps the customer's own lifecycle rule."""
    import dataclasses

    from expel_onboarding.policies.lifecycle import LOG_RETENTION_RULE_ID
    from expel_onboarding.steps import step01_trail
    from tests.steps.test_step01_cloudwatch_logs import GROUP, _role
    from tests.steps.test_step01_retention import CUSTOMER_RULE

    config = dataclasses.replace(config, log_retention_days=400, object_lock_retention_days=30,
                                 cloud_watch_logs_retention_days=365, cloud_watch_logs_role_arn=_role())
    step01_trail.apply(config)
    s3, bucket, access_logs = boto("s3"), config.bucket_name, config.access_log_bucket_name
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [CUSTOMER_RULE]})
    s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={})
    s3.put_bucket_encryption(Bucket=access_logs, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    boto("logs").put_retention_policy(logGroupName=GROUP, retentionInDays=1)

    with count_mutating_calls() as calls:
        check = step01_trail.check(config)
    assert calls == []
    found = {(f.resource, f.setting): f for f in check.findings}
    assert set(found) == {
        (f"bucket {bucket}", f"lifecycle rule {LOG_RETENTION_RULE_ID!r}"),
        (f"bucket {bucket}", "server access logging"),
        (f"bucket {access_logs}", "default encryption"),
        (f"bucket {bucket}", "default Object Lock retention"),
        (f"log group {GROUP}", "retention (days)"),
    }, check
    assert found[(f"bucket {bucket}", "server access logging")].expected == f"s3://{access_logs}/{bucket}/"
    assert (found[(f"log group {GROUP}", "retention (days)")].actual,
            found[(f"log group {GROUP}", "retention (days)")].expected) == ("1", "365")
    assert found[(f"bucket {bucket}", "default Object Lock retention")].actual == "GOVERNANCE 1 days"

    step01_trail.apply(config)  # the repair
    assert step01_trail.check(config).findings == []
    rules = {r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert rules == {CUSTOMER_RULE["ID"], LOG_RETENTION_RULE_ID}


def test_an_existing_trail_that_stops_serving_expel_is_a_finding_and_nothing_is_written(aws: None,
                                                                                        config: Config) -> None:
    """The customer's trail is never changed; the check says when it can no longer serve Expel, and how to fix
    it, the way the onboarding would have refused it."""
    import dataclasses

    import boto3

    from expel_onboarding.steps import step01_trail
    from tests import customer_trail
    from tests.conftest import REGION

    customer = customer_trail.build(lambda s: boto3.client(s, region_name=REGION), ACCOUNT_ID, REGION,
                                    name="CustomersTrail")
    existing = dataclasses.replace(config, existing_trail_name=customer.trail_name)
    check = step01_trail.check(existing)
    assert (check.status, check.findings) == (DriftStatus.IN_SYNC, [])
    assert check.note.startswith("an existing trail")
    boto("cloudtrail").stop_logging(Name=customer.trail_name)
    with count_mutating_calls() as calls:
        check = step01_trail.check(existing)
    assert calls == []
    [finding] = check.findings
    assert "logging is off" in finding.actual
    assert finding.fix.startswith("start it: aws cloudtrail start-logging --name ")
