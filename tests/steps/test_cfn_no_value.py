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


CONDITIONAL = {
    "Parameters": {"OuFilter": {"Type": "String", "Default": ""}},
    "Conditions": {"HasOuFilter": {"Fn::Not": [{"Fn::Equals": [{"Ref": "OuFilter"}, ""]}]},
                   "ListsOus": {"Fn::And": [{"Condition": "HasOuFilter"}, {"Fn::Equals": ["a", "a"]}]}},
    "Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": "conditional-role",
        "AssumeRolePolicyDocument": TEMPLATE["Resources"]["Role"]["Properties"]["AssumeRolePolicyDocument"],
        "Policies": [{"PolicyName": "p", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"},
            {"Fn::If": ["ListsOus", {"Effect": "Allow", "Action": "organizations:ListAccountsForParent",
                                     "Resource": "*"}, {"Ref": "AWS::NoValue"}]},
        ]}}]}}},
}


def test_an_update_of_the_parameter_behind_a_condition_updates_the_resource_naming_it_in_fn_if(aws: None) -> None:
    # The role names OuFilter nowhere, only the condition ListsOus (through HasOuFilter): CloudFormation still
    # updates it when OuFilter changes, since its resolved policy changes. moto updated only Ref users.
    cfn = boto3.client("cloudformation")

    def update(value: str) -> list[str]:
        cfn.update_stack(StackName="conditional", TemplateBody=json.dumps(CONDITIONAL),
                         Parameters=[{"ParameterKey": "OuFilter", "ParameterValue": value}],
                         Capabilities=["CAPABILITY_NAMED_IAM"])
        document = boto3.client("iam").get_role_policy(RoleName="conditional-role", PolicyName="p")["PolicyDocument"]
        return [s["Action"] for s in document["Statement"]]

    cfn.create_stack(StackName="conditional", TemplateBody=json.dumps(CONDITIONAL),
                     Capabilities=["CAPABILITY_NAMED_IAM"])

    assert update("ou-ab12-cd34ef56") == ["s3:ListBucket", "organizations:ListAccountsForParent"]
    assert update("") == ["s3:ListBucket"]
