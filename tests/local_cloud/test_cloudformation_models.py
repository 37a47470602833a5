"""The resource types the local cloud adds to moto's CloudFormation (local_cloud/cloudformation_models.py):
``Fn::GetAtt`` answers the attributes CloudFormation's registry schema gives for the type and refuses any other, as AWS
refuses a template that asks a resource for an attribute it does not have."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.conftest import REGION
from tests.support import refusal

ALARM = {"Type": "AWS::CloudWatch::Alarm", "Properties": {
    "Namespace": "N", "MetricName": "M", "Statistic": "Maximum", "Period": 300, "EvaluationPeriods": 1,
    "Threshold": 0, "ComparisonOperator": "GreaterThanThreshold"}}
SECRET = {"Type": "AWS::SecretsManager::Secret", "Properties": {"SecretString": "s"}}


def _stack(resources: dict[str, Any], outputs: dict[str, Any]) -> dict[str, str]:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName="models", TemplateBody=json.dumps(
        {"Resources": resources, "Outputs": {k: {"Value": v} for k, v in outputs.items()}}))
    [stack] = cloudformation.describe_stacks(StackName="models")["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def test_getatt_answers_an_alarms_arn_a_topic_policys_id_and_a_secrets_id_and_delete_removes_them(aws: None) -> None:
    outputs = _stack({
        "Alarm": ALARM,
        "Secret": SECRET,
        "Topic": {"Type": "AWS::SNS::Topic"},
        "TopicPolicy": {"Type": "AWS::SNS::TopicPolicy", "Properties": {"Topics": [{"Ref": "Topic"}],
                                                                       "PolicyDocument": {"Statement": []}}},
    }, {"AlarmArn": {"Fn::GetAtt": ["Alarm", "Arn"]}, "PolicyId": {"Fn::GetAtt": ["TopicPolicy", "Id"]},
        "PolicyRef": {"Ref": "TopicPolicy"}, "SecretId": {"Fn::GetAtt": ["Secret", "Id"]},
        "SecretRef": {"Ref": "Secret"}})
    [alarm] = boto3.client("cloudwatch", region_name=REGION).describe_alarms()["MetricAlarms"]
    assert outputs["AlarmArn"] == alarm["AlarmArn"]
    assert outputs["PolicyId"] == outputs["PolicyRef"]
    assert outputs["PolicyId"].startswith("models-TopicPolicy-")
    [secret] = boto3.client("secretsmanager", region_name=REGION).list_secrets()["SecretList"]
    assert outputs["SecretId"] == outputs["SecretRef"] == secret["ARN"]
    boto3.client("cloudformation", region_name=REGION).delete_stack(StackName="models")
    assert boto3.client("cloudwatch", region_name=REGION).describe_alarms()["MetricAlarms"] == []
    assert boto3.client("secretsmanager", region_name=REGION).list_secrets()["SecretList"] == []


@pytest.mark.parametrize(("name", "resource", "attribute"), [
    ("Alarm", ALARM, "Name"), ("Alarm", ALARM, "StateValue"), ("Secret", SECRET, "Arn")])
def test_getatt_refuses_an_attribute_the_type_does_not_have(aws: None, name: str, resource: dict[str, Any],
                                                            attribute: str) -> None:
    assert refusal(_stack, {name: resource}, {"Out": {"Fn::GetAtt": [name, attribute]}}) == (
        "ValidationError", f"Template error: resource {name} does not support attribute type {attribute} in Fn::GetAtt")


def test_a_stack_update_changes_an_alarm_and_a_bucket_policy_in_place(aws: None) -> None:
    def template(threshold: int, action: str) -> str:
        return json.dumps({"Resources": {
            "Alarm": {**ALARM, "Properties": {**ALARM["Properties"], "Threshold": threshold}},
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "models-bucket"}},
            "BucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": {"Ref": "Bucket"},
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                    "Action": action, "Resource": "arn:aws:s3:::models-bucket/*"}]}}}}})

    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName="models", TemplateBody=template(0, "s3:GetObject"))
    [before] = boto3.client("cloudwatch", region_name=REGION).describe_alarms()["MetricAlarms"]
    cloudformation.update_stack(StackName="models", TemplateBody=template(5, "s3:PutObject"))

    [after] = boto3.client("cloudwatch", region_name=REGION).describe_alarms()["MetricAlarms"]
    assert (after["AlarmName"], after["Threshold"]) == (before["AlarmName"], 5)
    policy = json.loads(boto3.client("s3", region_name=REGION).get_bucket_policy(Bucket="models-bucket")["Policy"])
    assert [s["Action"] for s in policy["Statement"]] == ["s3:PutObject"]
