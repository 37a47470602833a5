"""CloudWatch and EventBridge as the scheduled drift check relies on them (local_cloud/cloudwatch_alarms.py,
local_cloud/server.py's Scheduler), in-process against moto: embedded metrics become metric data, alarms are
created by CloudFormation, judged and notify an SNS topic only when CloudWatch may publish to it, and a
scheduled rule starts a state machine only as a role EventBridge may assume. Each rule next to its refusal."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_cloud import cloudwatch_alarms
from local_cloud.server import Scheduler, cron_matches, rate_minutes
from tests.conftest import ACCOUNT_ID, REGION, boto

NAMESPACE = "ExpelCloudTrailOnboarding"
DIMENSIONS = [{"Name": "StackName", "Value": "s"}]


def _emf(value: Any, namespace: str = NAMESPACE, **root: Any) -> str:
    """What powertools Metrics prints for one metric."""
    return json.dumps({"_aws": {"Timestamp": int(datetime.now(UTC).timestamp() * 1000), "CloudWatchMetrics": [
        {"Namespace": namespace, "Dimensions": [["StackName"]],
         "Metrics": [{"Name": "DriftFindings", "Unit": "Count"}]}]},
        "StackName": "s", "DriftFindings": value, **root})


def _log(*messages: str) -> None:
    logs = boto("logs")
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    now = int(datetime.now(UTC).timestamp() * 1000)
    logs.put_log_events(logGroupName="g", logStreamName="s",
                        logEvents=[{"timestamp": now, "message": m} for m in messages])


def _maximum() -> list[float]:
    now = datetime.now(UTC)
    points = boto("cloudwatch").get_metric_statistics(
        Namespace=NAMESPACE, MetricName="DriftFindings", Dimensions=DIMENSIONS, StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=1), Period=3600, Statistics=["Maximum"])["Datapoints"]
    return [p["Maximum"] for p in points]


def test_an_embedded_metric_log_event_becomes_metric_data(aws: None) -> None:
    _log(_emf(3), json.dumps({"level": "INFO", "message": "not a metric"}))
    assert _maximum() == [3.0]


@pytest.mark.parametrize("message", [
    _emf("3"),                       # not a number
    _emf(3, namespace=""),           # no namespace
    _emf(None),                      # no value in the root
    "DriftFindings 3",               # not JSON
])
def test_a_document_that_is_not_valid_emf_gives_no_metric(aws: None, message: str) -> None:
    _log(message)
    assert _maximum() == []


def _topic(policy_principal: str = "cloudwatch.amazonaws.com",
           key_admits_cloudwatch: bool | None = None) -> tuple[str, str]:
    """A topic (optionally KMS-encrypted) with a queue subscribed, as the alarm's action."""
    sns, sqs = boto("sns"), boto("sqs")
    attributes = {}
    if key_admits_cloudwatch is not None:
        statements = [{"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
                       "Action": "kms:*", "Resource": "*"}]
        if key_admits_cloudwatch:
            statements.append({"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
                               "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"})
        key = boto("kms").create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))
        attributes["KmsMasterKeyId"] = key["KeyMetadata"]["Arn"]
    topic = sns.create_topic(Name="alerts", Attributes=attributes)["TopicArn"]
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": policy_principal},
                                                "Action": "sns:Publish", "Resource": topic}]}))
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    return topic, queue


def _alarm_stack(topic: str) -> str:
    template = {"Resources": {"DriftAlarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "Namespace": NAMESPACE, "MetricName": "DriftFindings", "Dimensions": DIMENSIONS, "Statistic": "Maximum",
        "Period": 300, "EvaluationPeriods": 1, "DatapointsToAlarm": 1, "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "ignore",
        "AlarmActions": [topic], "OKActions": [topic]}}}}
    boto("cloudformation").create_stack(StackName="alarm", TemplateBody=json.dumps(template))
    [resource] = boto("cloudformation").describe_stack_resources(StackName="alarm")["StackResources"]
    assert resource["ResourceType"] == "AWS::CloudWatch::Alarm"
    return str(resource["PhysicalResourceId"])


def _state(name: str) -> dict[str, Any]:
    [alarm] = boto("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return alarm


def _received(queue: str) -> list[dict[str, Any]]:
    messages = boto("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_cloudformation_alarm_starts_without_data_then_alarms_and_recovers_notifying_its_topic(aws: None) -> None:
    topic, queue = _topic(key_admits_cloudwatch=True)
    name = _alarm_stack(topic)
    assert name.startswith("alarm-DriftAlarm-")
    assert _state(name)["StateValue"] == "INSUFFICIENT_DATA"
    assert cloudwatch_alarms.evaluate() == []  # no data, TreatMissingData ignore: the state stays
    _log(_emf(2))
    assert [state for _, state in cloudwatch_alarms.evaluate()] == ["ALARM"]
    assert _state(name)["StateReason"].startswith("Threshold Crossed: 1 datapoint [2 (")
    [message] = _received(queue)
    assert (message["AlarmName"], message["OldStateValue"], message["NewStateValue"]) == (
        name, "INSUFFICIENT_DATA", "ALARM")
    assert cloudwatch_alarms.evaluate() == []  # judged again, unchanged: no second message
    later = datetime.now(UTC) + timedelta(minutes=6)  # the next check, in sync, in a later period
    boto("cloudwatch").put_metric_data(Namespace=NAMESPACE, MetricData=[
        {"MetricName": "DriftFindings", "Dimensions": DIMENSIONS, "Value": 0, "Timestamp": later}])
    assert [state for _, state in cloudwatch_alarms.evaluate(later + timedelta(seconds=1))] == ["OK"]
    assert [m["NewStateValue"] for m in _received(queue)] == ["OK"]


def test_a_metric_with_other_dimensions_is_not_the_alarms(aws: None) -> None:
    topic, _ = _topic()
    name = _alarm_stack(topic)
    boto("cloudwatch").put_metric_data(Namespace=NAMESPACE, MetricData=[
        {"MetricName": "DriftFindings", "Dimensions": [*DIMENSIONS, {"Name": "service", "Value": "x"}], "Value": 5}])
    cloudwatch_alarms.evaluate()
    assert _state(name)["StateValue"] == "INSUFFICIENT_DATA"


@pytest.mark.parametrize(("principal", "key_admits_cloudwatch", "refusal"), [
    ("sns.amazonaws.com", None, "CloudWatch Alarms is not authorized to perform: SNS:Publish"),
    ("cloudwatch.amazonaws.com", False, "does not have authorization to access the SNS topic encryption key"),
])
def test_an_alarm_cannot_notify_a_topic_cloudwatch_may_not_publish_to(
        aws: None, principal: str, key_admits_cloudwatch: bool | None, refusal: str) -> None:
    topic, queue = _topic(principal, key_admits_cloudwatch)
    assert refusal in str(cloudwatch_alarms.publish_refusal(topic, f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:a"))
    _alarm_stack(topic)
    _log(_emf(1))
    assert [state for _, state in cloudwatch_alarms.evaluate()] == ["ALARM"]  # the alarm still changes state
    assert _received(queue) == []
    [failed] = boto("cloudwatch").describe_alarm_history(HistoryItemType="Action")["AlarmHistoryItems"]
    assert failed["HistorySummary"].startswith(f"Failed to execute action {topic}. Received error: ")
    assert refusal in json.loads(failed["HistoryData"])["error"]
    assert json.loads(failed["HistoryData"])["actionState"] == "Failed"


def test_alarm_history_shows_creation_each_state_change_and_each_action_newest_first(aws: None) -> None:
    topic, queue = _topic(key_admits_cloudwatch=True)
    name = _alarm_stack(topic)
    _log(_emf(2))
    cloudwatch_alarms.evaluate()
    [message] = _received(queue)

    items = boto("cloudwatch").describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]

    assert [(i["HistoryItemType"], i["HistorySummary"]) for i in items] == [
        ("Action", f"Successfully executed action {topic}"),
        ("StateUpdate", "Alarm updated from INSUFFICIENT_DATA to ALARM"),
        ("ConfigurationUpdate", f'Alarm "{name}" created')]
    action = json.loads(items[0]["HistoryData"])
    assert (action["actionState"], action["notificationResource"]) == ("Succeeded", topic)
    assert action["publishedMessage"]["message"]["NewStateValue"] == message["NewStateValue"] == "ALARM"
    change = json.loads(items[1]["HistoryData"])
    assert (change["oldState"]["stateValue"], change["newState"]["stateValue"]) == ("INSUFFICIENT_DATA", "ALARM")
    assert all(i["AlarmName"] == name and i["AlarmType"] == "MetricAlarm" for i in items)
    cloudwatch = boto("cloudwatch")
    assert [i["HistoryItemType"] for i in cloudwatch.describe_alarm_history(
        AlarmName=name, ScanBy="TimestampAscending", HistoryItemType="StateUpdate")["AlarmHistoryItems"]] == [
        "StateUpdate"]
    page = cloudwatch.describe_alarm_history(AlarmName=name, MaxRecords=2)
    assert len(page["AlarmHistoryItems"]) == 2 and page["NextToken"]
    assert cloudwatch.describe_alarm_history(AlarmName="no-such-alarm")["AlarmHistoryItems"] == []
    assert cloudwatch.describe_alarm_history(AlarmName=name, EndDate=datetime(2000, 1, 1, tzinfo=UTC))[
        "AlarmHistoryItems"] == []


@pytest.mark.parametrize(("arguments", "message"), [
    ({"HistoryItemType": "Everything"}, "at 'historyItemType' failed to satisfy constraint"),
    ({"MaxRecords": 101}, "at 'maxRecords' failed to satisfy constraint"),
])
def test_alarm_history_refuses_what_cloudwatch_refuses(aws: None, arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ClientError) as raised:
        boto("cloudwatch").describe_alarm_history(**arguments)
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert message in raised.value.response["Error"]["Message"]


# ------------------------------------------------------------------------------ EventBridge schedules
def test_schedule_expressions_in_compressed_minutes() -> None:
    assert rate_minutes("rate(1 minute)") == 1
    assert rate_minutes("rate(15 minutes)") == 15
    assert rate_minutes("rate(2 hours)") == 120
    assert rate_minutes("rate(1 day)") == 1440
    assert rate_minutes("cron(0 6 * * ? *)") is None
    monday_six = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    assert cron_matches("cron(0 6 * * ? *)", monday_six)
    assert not cron_matches("cron(0 6 * * ? *)", monday_six + timedelta(minutes=1))
    assert cron_matches("cron(0/15 * ? * MON-FRI *)", monday_six + timedelta(minutes=45))
    assert not cron_matches("cron(0 6 ? * SUN *)", monday_six)
    assert not cron_matches("cron(0 6 L * ? *)", monday_six)  # L is not emulated: never fires


class _Rule:
    def __init__(self, expression: str) -> None:
        self.scheduled_expression, self.arn = expression, f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{expression}"


def test_a_rate_rule_fires_once_per_its_number_of_compressed_minutes() -> None:
    scheduler, rule, every_minute = Scheduler(interval=1), _Rule("rate(15 minutes)"), _Rule("rate(1 minute)")
    fired, polled = [], []
    for _ in range(45):
        fired.append(scheduler.due(rule))
        polled.append(scheduler.due(every_minute))
        scheduler._tick += 1
    assert sum(fired) == 3 and fired.index(True) == 14
    assert all(polled)  # crhelper's poll, as before


def _machine_and_rule(trust_service: str) -> tuple[str, str]:
    iam, sfn, events = boto("iam"), boto("stepfunctions"), boto("events")
    machine = sfn.create_state_machine(name="m", roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/sfn", definition=json.dumps(
        {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}))["stateMachineArn"]
    name = f"starts-checks-{trust_service.split('.')[0]}"  # credentials are cached per role, as services keep them
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": trust_service},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    events.put_rule(Name="drift", ScheduleExpression="rate(1 minute)", State="ENABLED")
    events.put_targets(Rule="drift", Targets=[{"Id": "DriftCheck", "Arn": machine, "RoleArn": role,
                                               "Input": json.dumps({"Mode": "ScheduledCheck", "Repair": False})}])
    return machine, role


def _invocations(metric: str) -> float:
    now = datetime.now(UTC)
    points = boto("cloudwatch").get_metric_statistics(
        Namespace="AWS/Events", MetricName=metric, Dimensions=[{"Name": "RuleName", "Value": "drift"}],
        StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=1), Period=3600,
        Statistics=["Sum"])["Datapoints"]
    return sum(p["Sum"] for p in points)


def test_a_scheduled_rule_starts_its_state_machine_as_the_targets_role(aws: None) -> None:
    machine, _ = _machine_and_rule("events.amazonaws.com")
    assert Scheduler(interval=1).fire_due_rules() == 1
    [execution] = boto("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    given = boto("stepfunctions").describe_execution(executionArn=execution["executionArn"])["input"]
    assert json.loads(given) == {"Mode": "ScheduledCheck", "Repair": False}
    assert (_invocations("Invocations"), _invocations("FailedInvocations")) == (1.0, 0.0)


def test_a_role_eventbridge_may_not_assume_starts_nothing_and_counts_a_failed_invocation(aws: None) -> None:
    machine, _ = _machine_and_rule("lambda.amazonaws.com")
    assert Scheduler(interval=1).fire_due_rules() == 0
    assert boto("stepfunctions").list_executions(stateMachineArn=machine)["executions"] == []
    assert (_invocations("Invocations"), _invocations("FailedInvocations")) == (0.0, 1.0)
