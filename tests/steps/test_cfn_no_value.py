"""CloudFormation removes ``!Ref AWS::NoValue`` list items (a statement under a false ``!If``); so does the
local cloud, or a role's policy would hold ``null`` and grant nothing under IAM enforcement."""

from __future__ import annotations

import json

import boto3

TEMPLATE = {
    "Conditions": {"Never": {"Fn::Equals": ["a", "b"]}},
    "Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": "no-value-role",
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
        "Policies": [{"PolicyName": "p", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"},
            {"Fn::If": ["Never", {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, {"Ref": "AWS::NoValue"}]},
        ]}}]}}},
}


def test_no_value_list_items_are_removed(aws: None) -> None:
    boto3.client("cloudformation").create_stack(StackName="no-value", TemplateBody=json.dumps(TEMPLATE),
                                                Capabilities=["CAPABILITY_NAMED_IAM"])
    document = boto3.client("iam").get_role_policy(RoleName="no-value-role", PolicyName="p")["PolicyDocument"]
    assert document["Statement"] == [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}]
