"""``cloudtrail-onboarding doctor`` against the real template on the local cloud, as a person runs it.

One stack: right after the onboarding the check finds nothing and changes nothing; then a person breaks
one thing per guide step by hand, and the check names each (the guide step, the resource and setting,
what it is now and what it should be) and exits non-zero, still writing nothing. ``--repair`` then runs
the onboarding again: ours comes back (the Expel role's trust and inline policy through a drift-aware change
set of its stack), and the customer's own statement and the managed policy they attached to the role stay.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from expel_onboarding.policies.key_policy import SNS_SID
from expel_onboarding.policies.notification import NOTIFICATION_ID
from tests.e2e.test_onboarding_e2e import client, deploy_command, outputs
from tests.local_cloud.harness import ServedCloud, onboarding_parameters, run_cli, serve_child
from tests.support import DATA_PATH_POLICY

pytestmark = pytest.mark.e2e
REGION = "us-east-1"
STACK = "e2e-drift"
SCHEDULE = "rate(15 minutes)"
# A compressed minute: the schedule fires every 15 of them, the alarm is judged once per one.
MINUTE = 0.5
CUSTOMER_ROLE_POLICY = {"Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "ec2:DescribeVpcs", "Resource": "*"}]}
CUSTOMER_STATEMENT = {"Sid": "CustomerAuditReads", "Effect": "Allow",
                      "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sqs:GetQueueAttributes"}


@pytest.fixture(scope="module")
def local_cloud() -> Iterator[ServedCloud]:
    """This module's own local cloud, its minutes shorter than the shared one's: the test waits for the
    schedule three times, and the stack's scheduled check, alarm and trail stop with it."""
    with serve_child(schedule_interval=MINUTE) as cloud:
        yield cloud


def doctor(cloud: ServedCloud, *extra: str) -> Any:
    return run_cli("doctor", "--stack", STACK, "--endpoint-url", cloud.url, "--region", REGION, *extra)


def _without(document: str, sid: str) -> str:
    policy = json.loads(document)
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != sid]
    return json.dumps(policy)


def _configuration(cloud: ServedCloud, values: dict[str, str]) -> dict[str, Any]:
    """What the check reads, as the account holds it: the same before and after a check means no write."""
    kms, sns, sqs = client(cloud, "kms"), client(cloud, "sns"), client(cloud, "sqs")
    return {
        "key policy": kms.get_key_policy(KeyId=values["KmsKeyArn"], PolicyName="default")["Policy"],
        "topic": sns.get_topic_attributes(TopicArn=values["SnsTopicArn"])["Attributes"],
        # Its configuration (LastModifiedTimestamp included), not its message counts: the trail's log files flow.
        "queue": {k: v for k, v in sqs.get_queue_attributes(QueueUrl=values["SqsQueueUrl"], AttributeNames=["All"])
                  ["Attributes"].items() if not k.startswith("ApproximateNumberOf")},
        "subscriptions": sns.list_subscriptions_by_topic(TopicArn=values["SnsTopicArn"])["Subscriptions"],
        "notification": {k: v for k, v in client(cloud, "s3").get_bucket_notification_configuration(
            Bucket=values["S3BucketName"]).items() if k != "ResponseMetadata"},
        "logging": client(cloud, "cloudtrail").get_trail_status(Name=f"{STACK}-trail")["IsLogging"],
        "access logging": client(cloud, "s3").get_bucket_logging(Bucket=values["S3BucketName"]).get("LoggingEnabled"),
        "trust": client(cloud, "iam").get_role(RoleName=f"{STACK}-role")["Role"]["AssumeRolePolicyDocument"],
    }


def _break_one_thing_per_step(cloud: ServedCloud, values: dict[str, str]) -> None:
    kms, sns, sqs = client(cloud, "kms"), client(cloud, "sns"), client(cloud, "sqs")
    key = values["KmsKeyArn"]
    kms.put_key_policy(KeyId=key, PolicyName="default",                                       # guide step 4
                       Policy=_without(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"], SNS_SID))
    topic = values["SnsTopicArn"]                                                              # guide step 3
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=_without(
        sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"], "expel-statement-ID"))
    queue = values["SqsQueueUrl"]                                                              # guide step 5
    policy = json.loads(_without(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])
                                 ["Attributes"]["Policy"], "Sid1572965666162"))
    policy["Statement"].append(CUSTOMER_STATEMENT | {"Resource": values["SqsQueueArn"]})
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(policy)})
    [subscription] = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]         # guide step 6
    sns.set_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"],
                                    AttributeName="RawMessageDelivery", AttributeValue="false")
    client(cloud, "s3").put_bucket_notification_configuration(                                # guide step 7
        Bucket=values["S3BucketName"], NotificationConfiguration={})
    client(cloud, "cloudtrail").stop_logging(Name=f"{STACK}-trail")                            # guide step 1
    client(cloud, "s3").put_bucket_logging(Bucket=values["S3BucketName"], BucketLoggingStatus={})
    _change_role_trust(cloud, "not-the-workbench-guid")                                       # guide step 8
    iam, role = client(cloud, "iam"), f"{STACK}-role"
    inventory = iam.get_role_policy(RoleName=role, PolicyName="ExpelInventoryReadOnly")["PolicyDocument"]
    inventory["Statement"][0]["Action"].append("s3:GetObject")  # every object of every bucket: not ours
    iam.put_role_policy(RoleName=role, PolicyName="ExpelInventoryReadOnly", PolicyDocument=json.dumps(inventory))
    data_path = iam.get_role_policy(RoleName=role, PolicyName=DATA_PATH_POLICY)["PolicyDocument"]
    data_path["Statement"] = [s for s in data_path["Statement"] if s["Sid"] != "ConsumeNotificationQueue"]
    iam.put_role_policy(RoleName=role, PolicyName=DATA_PATH_POLICY, PolicyDocument=json.dumps(data_path))
    # The customer's own addition to the role, which the template does not set: it stays through a repair.
    customer = iam.create_policy(PolicyName="CustomerExpelExtras", PolicyDocument=json.dumps(CUSTOMER_ROLE_POLICY))
    iam.attach_role_policy(RoleName=role, PolicyArn=customer["Policy"]["Arn"])


def _change_role_trust(cloud: ServedCloud, external_id: str) -> None:
    iam = client(cloud, "iam")
    trust = iam.get_role(RoleName=f"{STACK}-role")["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = external_id
    iam.update_assume_role_policy(RoleName=f"{STACK}-role", PolicyDocument=json.dumps(trust))


def _external_id(cloud: ServedCloud) -> str:
    trust = client(cloud, "iam").get_role(RoleName=f"{STACK}-role")["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    return str(trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"])


def test_doctor_finds_nothing_on_a_fresh_onboarding_then_names_each_thing_broken_by_hand(
        local_cloud: ServedCloud, built_template: Path) -> None:
    # With CloudWatch Logs delivery, so the check's read-only role is proven on every part step 1 converges;
    # a scheduled check every 15 compressed minutes (7.5 s here), alerting by email.
    params = onboarding_parameters(local_cloud, STACK, CloudWatchLogsRetentionDays="30",
                                   DriftCheckSchedule=SCHEDULE, DriftAlertEmail="secops@example.com")
    deployed = run_cli(*deploy_command(local_cloud, built_template, STACK, params), timeout=400)
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    values = outputs(local_cloud, STACK)

    before = _configuration(local_cloud, values)
    clean = doctor(local_cloud)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Drift check  IN_SYNC  the account is in the onboarding's end state" in clean.stdout
    assert "Workbench    device status: " in clean.stdout  # the API key lets the check read the device
    assert _configuration(local_cloud, values) == before
    assert _next_scheduled_check(local_cloud)["Status"] == "IN_SYNC"
    _alarm(local_cloud, "OK")  # DriftFindings 0
    assert _configuration(local_cloud, values) == before

    _break_one_thing_per_step(local_cloud, values)
    # The schedule finds the drift by itself (no doctor since the break): the metric raises the alarm, whose
    # topic (DriftAlertEmail) CloudWatch may publish to.
    assert _next_scheduled_check(local_cloud)["Status"] == "DRIFTED"
    alarm = _alarm(local_cloud, "ALARM")
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 datapoint ["), alarm
    [topic] = alarm["AlarmActions"]
    assert client(local_cloud, "sns").get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"]
    broken = _configuration(local_cloud, values)
    drifted = doctor(local_cloud)
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    text = drifted.stdout
    for step, title in [(1, "Create a new trail"), (3, "Create a new SNS topic"), (4, "Edit the AWS KMS key policy"),
                        (5, "Create the SQS queue"), (6, "Create the SNS subscription"),
                        (7, "Enable S3 event notifications"), (8, "Set up CloudFormation (the Expel role)")]:
        # Step 6 may also count deliveries SNS failed while the policies were broken (the trail's log files).
        assert re.search(rf"^Guide step {step}  {re.escape(title)}: \d+ differences?( \(.*\))?$", text, re.M), text
    for named in ["  - logging (IsLogging) of arn:aws:cloudtrail:",
                  f"  - server access logging of bucket {values['S3BucketName']}",
                  f"  - topic policy statement 'expel-statement-ID' of {values['SnsTopicArn']}",
                  f"  - key policy statement {SNS_SID!r} of {values['KmsKeyArn']}",
                  f"  - queue policy statement 'Sid1572965666162' of {values['SqsQueueArn']}",
                  f"  - event notification {NOTIFICATION_ID!r} of bucket {values['S3BucketName']}",
                  f"  - trust policy statement 'ExpelAssumesWithWorkbenchGuid' of role {STACK}-role",
                  f"  - inline policy ExpelInventoryReadOnly statement 'ReadOnlyInventory' of role {STACK}-role",
                  f"  - inline policy {DATA_PATH_POLICY} statement 'ConsumeNotificationQueue' of role {STACK}-role"]:
        assert named in text, text
    assert "      is now     false\n      should be  true" in text  # raw message delivery
    assert "Guide step 2  Edit the S3 bucket encryption settings: in sync" in text
    assert "NumberOfNotificationsFailed not read" not in text  # the check's role may read the topic's metrics
    assert _configuration(local_cloud, values) == broken  # the check wrote nothing
    shown = run_cli("status", "--stack", STACK, "--endpoint-url", local_cloud.url, "--region", REGION)
    assert re.search(r"^Drift check  DRIFTED  \d+ differences, (doctor check-|scheduled )", shown.stdout,
                     re.M), shown.stdout

    repaired = doctor(local_cloud, "--repair")
    after = repaired.stdout.split("checking again ...", 1)[1]
    left = {line.split(" of ")[0].strip() for line in after.splitlines() if line.startswith("  - ")}
    # Failed deliveries stay in the metric's last hour, as on AWS; nothing else of ours is left, the Expel role
    # included (a drift-aware change set of its stack put it back).
    assert left <= {"- NumberOfNotificationsFailed (last hour)"}, repaired.stdout
    assert repaired.returncode == (1 if left else 0), repaired.stdout + repaired.stderr
    assert "By hand only" not in after, after
    assert "Guide step 8  Set up CloudFormation (the Expel role): in sync" in after, after
    iam = client(local_cloud, "iam")
    assert _external_id(local_cloud) == values["WorkbenchGuid"]
    inventory = iam.get_role_policy(RoleName=f"{STACK}-role", PolicyName="ExpelInventoryReadOnly")["PolicyDocument"]
    assert "s3:GetObject" not in inventory["Statement"][0]["Action"]
    data_path = iam.get_role_policy(RoleName=f"{STACK}-role", PolicyName=DATA_PATH_POLICY)["PolicyDocument"]
    assert "ConsumeNotificationQueue" in {s["Sid"] for s in data_path["Statement"]}
    assert [p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=f"{STACK}-role")[
        "AttachedPolicies"]] == ["CustomerExpelExtras"]  # the customer's own addition stays
    queue_policy = json.loads(client(local_cloud, "sqs").get_queue_attributes(
        QueueUrl=values["SqsQueueUrl"], AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert {"Sid1572965666162", "CustomerAuditReads"} <= {s["Sid"] for s in queue_policy["Statement"]}
    assert client(local_cloud, "cloudtrail").get_trail_status(Name=f"{STACK}-trail")["IsLogging"] is True
    assert client(local_cloud, "s3").get_bucket_logging(Bucket=values["S3BucketName"])["LoggingEnabled"][
        "TargetBucket"] == f"{STACK}-access-logs"

    # The alarm told DriftAlertEmail's topic (encrypted with a key CloudWatch may use) when it went to ALARM.
    published = [json.loads(i["HistoryData"]) for i in client(local_cloud, "cloudwatch").describe_alarm_history(
        AlarmName=alarm["AlarmName"], HistoryItemType="Action")["AlarmHistoryItems"]]
    assert any(p["actionState"] == "Succeeded" and p["notificationResource"] == topic
               and p["publishedMessage"]["message"]["NewStateValue"] == "ALARM" for p in published), published
    [email] = client(local_cloud, "sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert (email["Protocol"], email["Endpoint"]) == ("email", "secops@example.com")

    # DriftRepair=true, as a person turns it on: a stack update.
    updated = run_cli(*deploy_command(local_cloud, built_template, STACK, [*params, "DriftRepair=true"]), timeout=400)
    assert updated.returncode == 0, updated.stdout[-3000:] + updated.stderr[-3000:]
    [target] = client(local_cloud, "events").list_targets_by_rule(Rule=_rule_name(local_cloud))["Targets"]
    assert json.loads(target["Input"]) == {"Mode": "ScheduledCheck", "Repair": True}
    [subscription] = client(local_cloud, "sns").list_subscriptions_by_topic(
        TopicArn=values["SnsTopicArn"])["Subscriptions"]
    since = time.time()
    client(local_cloud, "sns").set_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"],
                                                           AttributeName="RawMessageDelivery", AttributeValue="false")
    _change_role_trust(local_cloud, "not-the-workbench-guid")

    # The schedule found each and ran the onboarding, by itself (a check may start between the two changes and
    # repair the first alone).
    repairs = _scheduled_repairs(local_cloud, since, {"RawMessageDelivery",
                                                      "trust policy statement 'ExpelAssumesWithWorkbenchGuid'"})

    assert {r["Status"] for r in repairs} == {"DRIFTED"}, repairs
    assert _external_id(local_cloud) == values["WorkbenchGuid"]
    assert client(local_cloud, "sns").get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])[
        "Attributes"]["RawMessageDelivery"] == "true"
    queue_policy = json.loads(client(local_cloud, "sqs").get_queue_attributes(
        QueueUrl=values["SqsQueueUrl"], AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert "CustomerAuditReads" in {s["Sid"] for s in queue_policy["Statement"]}  # the customer's stays


def _scheduled_repairs(cloud: ServedCloud, since: float, settings: set[str],
                       timeout: float = 180.0) -> list[dict[str, Any]]:
    """The check reports of the scheduled checks started since ``since`` that repaired (DriftRepair), once those
    repairs (the onboarding, in the same execution) have found and repaired each of ``settings``."""
    sfn, machine = client(cloud, "stepfunctions"), outputs(cloud, STACK)["StateMachineArn"]
    deadline = time.monotonic() + timeout
    while True:
        reports = [report for output in _scheduled_outputs(sfn, machine, since)
                   if (report := output.get("CloudFormation", {}).get("Repairs"))]
        if settings <= {f["Setting"] for r in reports for s in r["Steps"] for f in s["Findings"]}:
            return reports
        assert time.monotonic() < deadline, f"no scheduled check repaired {settings} within {timeout:g} s: {reports}"
        time.sleep(MINUTE)


def _rule_name(cloud: ServedCloud) -> str:
    resources = client(cloud, "cloudformation").describe_stack_resources(StackName=STACK)["StackResources"]
    return next(r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "DriftCheckRule")



def _next_scheduled_check(cloud: ServedCloud, timeout: float = 120.0) -> dict[str, Any]:
    """The report of the first check the rule (EventBridge, so an execution named with a UUID) starts from
    now on, once it has finished."""
    return _next_scheduled(cloud, lambda output: output["Drift"], timeout, f"the rule ({SCHEDULE}) started no check")


def _next_scheduled(cloud: ServedCloud, read: Callable[[dict[str, Any]], Any], timeout: float,
                    failure: str) -> dict[str, Any]:
    """What ``read`` finds in the output of the first scheduled check that succeeded from now on (skipping
    those where it finds nothing)."""
    sfn, machine = client(cloud, "stepfunctions"), outputs(cloud, STACK)["StateMachineArn"]
    since, deadline = time.time(), time.monotonic() + timeout
    while True:
        for output in _scheduled_outputs(sfn, machine, since):
            if found := read(output):
                return dict(found)
        assert time.monotonic() < deadline, f"{failure} within {timeout:g} s"
        time.sleep(MINUTE)


def _scheduled_outputs(sfn: Any, machine: str, since: float) -> list[dict[str, Any]]:
    """The outputs of the scheduled checks (EventBridge's executions) that started since ``since`` and succeeded."""
    found = []
    for execution in sfn.list_executions(stateMachineArn=machine, statusFilter="SUCCEEDED")["executions"]:
        if execution["startDate"].timestamp() < since:
            continue
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if json.loads(described["input"]).get("Mode") == "ScheduledCheck":
            found.append(json.loads(described["output"]))
    return found


def _alarm(cloud: ServedCloud, state: str, timeout: float = 30.0) -> dict[str, Any]:
    """The stack's DriftAlarm once it is in ``state`` (alarms are judged once per compressed minute)."""
    deadline = time.monotonic() + timeout
    while True:
        [alarm] = [a for a in client(cloud, "cloudwatch").describe_alarms()["MetricAlarms"]
                   if {"Name": "StackName", "Value": STACK} in a.get("Dimensions", [])]
        if alarm["StateValue"] == state:
            return dict(alarm)
        assert time.monotonic() < deadline, f"DriftAlarm is not {state}: {alarm}"
        time.sleep(MINUTE)
