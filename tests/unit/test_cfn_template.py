"""Evaluating roles/expel-role.yaml as CloudFormation would, for the drift check of guide steps 8 and 9."""

from __future__ import annotations

import pytest

from expel_onboarding import cfn_template
from expel_onboarding.steps.expel_role_stack import expected_role
from tests.support import DATA_PATH_POLICY, INVENTORY_POLICY, LOG_KEY_POLICY

TEMPLATE = """
Parameters:
  Name: {Type: String}
  Boundary: {Type: String, Default: ""}
Conditions:
  HasBoundary: !Not [!Equals [!Ref Boundary, ""]]
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !Sub "${Name}-role"
      PermissionsBoundary: !If [HasBoundary, !Ref Boundary, !Ref AWS::NoValue]
      Tags: [{Key: arn, Value: !Sub "arn:${AWS::Partition}:iam::x:role/${!Literal}"}]
  OnlyWithBoundary:
    Type: AWS::IAM::Policy
    Condition: HasBoundary
    Properties: {PolicyName: p, Roles: [!Ref Role]}
"""


def test_parameters_conditions_sub_and_no_value_resolve_as_cloudformation_does() -> None:
    plain = cfn_template.resources(cfn_template.load(TEMPLATE), {"Name": "expel"}, {"AWS::Partition": "aws"})
    assert plain == {"Role": {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": "expel-role", "Tags": [{"Key": "arn", "Value": "arn:aws:iam::x:role/${Literal}"}]}}}
    bounded = cfn_template.resources(cfn_template.load(TEMPLATE), {"Name": "expel", "Boundary": "arn:b"},
                                     {"AWS::Partition": "aws"})
    assert bounded["Role"]["Properties"]["PermissionsBoundary"] == "arn:b"
    assert bounded["OnlyWithBoundary"]["Properties"]["Roles"] == ["Role"]


@pytest.mark.parametrize("body, named", [
    ("Resources: {R: {Type: T, Properties: {P: !GetAtt X.Arn}}}", "Fn::GetAtt"),
    ("Resources: {R: {Type: T, Properties: {P: !Ref Unknown}}}", "Unknown"),
    ("Resources: {R: {Type: T, Condition: Nowhere}}", "Nowhere"),
])
def test_what_is_not_evaluated_is_refused_by_name(body: str, named: str) -> None:
    with pytest.raises(cfn_template.UnsupportedTemplate, match=named):
        cfn_template.resources(cfn_template.load(body), {})


DATA_PATH = {"BucketArn": "arn:aws:s3:::b", "QueueArn": "arn:aws:sqs:us-east-1:1:q",
             "KmsKeyArn": "arn:aws:kms:us-east-1:1:key/k"}


def test_expected_expel_role_holds_the_guid_as_external_id_and_its_policies() -> None:
    role = expected_role({"RoleName": "ExpelAssumeRole", "ExpelWorkbenchGuid": "guid-1", **DATA_PATH})
    assert role.name == "ExpelAssumeRole"
    statement = role.trust["Statement"][0]
    assert statement["Condition"]["StringEquals"]["sts:ExternalId"] == "guid-1"
    assert sorted(role.policies) == sorted([DATA_PATH_POLICY, INVENTORY_POLICY])


@pytest.mark.parametrize("parameters, policies", [
    # A StackSet member account: no data path, the read-only inventory only.
    ({}, [INVENTORY_POLICY]),
    # An existing trail whose log files use another key than the queue.
    ({**DATA_PATH, "LogKmsKeyArn": "arn:aws:kms:us-east-1:1:key/logs"},
     [DATA_PATH_POLICY, LOG_KEY_POLICY, INVENTORY_POLICY]),
])
def test_the_data_path_policies_are_the_roles_own_only_where_the_data_path_is(parameters: dict[str, str],
                                                                               policies: list[str]) -> None:
    role = expected_role({"ExpelWorkbenchGuid": "guid-1", **parameters})
    assert sorted(role.policies) == sorted(policies)
