"""SNS delivers to SQS as SNS does: a queue it cannot deliver to drops the message without telling the
publisher, and the topic's NumberOfNotificationsFailed metric counts it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from local_cloud import sns_delivery
from tests.conftest import REGION


def _metric(name: str, topic_name: str) -> float:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/SNS", MetricName=name, Dimensions=[{"Name": "TopicName", "Value": topic_name}],
        StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=5), Period=600,
        Statistics=["Sum"])["Datapoints"]
    return sum(p["Sum"] for p in points)


def _subscribed(queue_name: str) -> tuple[Any, str, str, str]:
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="delivering")["TopicArn"]
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return sns, topic, url, arn


def test_a_delivered_message_is_counted_as_published_and_delivered(aws: None) -> None:
    sns, topic, url, _ = _subscribed("receiving")
    sns.publish(TopicArn=topic, Message="hello")
    assert boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=url)["Messages"][0]["Body"] == "hello"
    assert _metric(sns_delivery.PUBLISHED, "delivering") == 1
    assert _metric(sns_delivery.DELIVERED, "delivering") == 1
    assert _metric(sns_delivery.FAILED, "delivering") == 0


def test_a_queue_that_is_gone_drops_the_message_silently_and_counts_it_failed(aws: None) -> None:
    sns, topic, url, _ = _subscribed("vanishing")
    boto3.client("sqs", region_name=REGION).delete_queue(QueueUrl=url)
    assert sns.publish(TopicArn=topic, Message="lost")["MessageId"]  # the publisher is told nothing
    assert _metric(sns_delivery.FAILED, "delivering") == 1
    assert _metric(sns_delivery.DELIVERED, "delivering") == 0


def test_a_queue_the_policy_check_refuses_gets_nothing(aws: None, monkeypatch: Any) -> None:
    sns, topic, url, queue_arn = _subscribed("guarded")
    monkeypatch.setattr(sns_delivery.checks, "send",
                        lambda topic_arn, arn: "the queue policy does not allow it" if arn == queue_arn else None)
    sns.publish(TopicArn=topic, Message="refused")
    assert "Messages" not in boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=url)
    assert _metric(sns_delivery.FAILED, "delivering") == 1


def _topic_policy_stack(statement_sid: str, with_policy: bool = True) -> dict[str, Any]:
    resources: dict[str, Any] = {"Alerts": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "alerts"}}}
    if with_policy:
        resources["AlertsPolicy"] = {"Type": "AWS::SNS::TopicPolicy", "Properties": {
            "Topics": [{"Ref": "Alerts"}], "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": statement_sid, "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "sns:Publish", "Resource": {"Ref": "Alerts"}}]}}}
    return {"Resources": resources}


def _topic_sids() -> list[str]:
    sns = boto3.client("sns", region_name=REGION)
    [topic] = sns.list_topics()["Topics"]
    policy = json.loads(sns.get_topic_attributes(TopicArn=topic["TopicArn"])["Attributes"]["Policy"])
    return [s["Sid"] for s in policy["Statement"]]


def test_a_topic_policy_from_cloudformation_reaches_its_topic_and_leaves_with_it(aws: None) -> None:
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(StackName="alerts", TemplateBody=json.dumps(_topic_policy_stack("AlarmPublishes")))
    assert _topic_sids() == ["AlarmPublishes"]
    [policy] = [r for r in cfn.describe_stack_resources(StackName="alerts")["StackResources"]
                if r["ResourceType"] == "AWS::SNS::TopicPolicy"]
    assert policy["PhysicalResourceId"].startswith("alerts-AlertsPolicy-")

    cfn.update_stack(StackName="alerts", TemplateBody=json.dumps(_topic_policy_stack("AlarmPublishesToo")))
    assert _topic_sids() == ["AlarmPublishesToo"]

    cfn.update_stack(StackName="alerts", TemplateBody=json.dumps(_topic_policy_stack("", with_policy=False)))
    assert _topic_sids() == ["__default_statement_ID"]  # SNS's default policy again
