"""CloudFormation lists only the resources it created: a resource whose Condition is false is not one of
them (local cloud fix 14, applied in-process by tests/conftest.py as in ``local serve``), and ``status``
reads a stack whatever records it gets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_cloud import status
from tests.conftest import REGION, boto

TEMPLATE = json.dumps({
    "Parameters": {"WithSecret": {"Type": "String", "Default": "false"}},
    "Conditions": {"HasSecret": {"Fn::Equals": [{"Ref": "WithSecret"}, "true"]}},
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "listed-queue"}},
        "Topic": {"Type": "AWS::SNS::Topic", "Condition": "HasSecret", "Properties": {"TopicName": "skipped"}},
    },
})


def test_a_resource_whose_condition_is_false_is_not_listed(aws: None) -> None:
    cfn = boto("cloudformation")
    cfn.create_stack(StackName="conditional", TemplateBody=TEMPLATE)

    described = cfn.describe_stack_resources(StackName="conditional")["StackResources"]
    listed = cfn.list_stack_resources(StackName="conditional")["StackResourceSummaries"]

    assert [(r["LogicalResourceId"], r["ResourceType"]) for r in described] == [("Queue", "AWS::SQS::Queue")]
    assert [(r["LogicalResourceId"], r["ResourceType"]) for r in listed] == [("Queue", "AWS::SQS::Queue")]
    with pytest.raises(ClientError, match="Resource Topic does not exist for stack conditional"):
        cfn.describe_stack_resource(StackName="conditional", LogicalResourceId="Topic")
    assert boto("sns").list_topics()["Topics"] == []


def test_the_same_resource_is_listed_when_its_condition_holds(aws: None) -> None:
    cfn = boto("cloudformation")
    cfn.create_stack(StackName="conditional", TemplateBody=TEMPLATE,
                     Parameters=[{"ParameterKey": "WithSecret", "ParameterValue": "true"}])

    described = cfn.describe_stack_resources(StackName="conditional")["StackResources"]

    assert sorted(r["LogicalResourceId"] for r in described) == ["Queue", "Topic"]


class _PartialCloudFormation:
    """Answers as the local cloud did before fix 14: a record without type or logical id."""

    class exceptions:  # noqa: N801 - mirrors boto3's client.exceptions
        ClientError = ClientError

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 - boto3's argument names
        return {"Stacks": [{"StackName": "partial", "StackId": STACK_ID, "StackStatus": "CREATE_IN_PROGRESS"}]}

    def describe_stack_resources(self, StackName: str) -> dict[str, Any]:  # noqa: N803
        return {"StackResources": [
            {"StackName": "partial", "PhysicalResourceId": None, "ResourceStatus": "CREATE_COMPLETE"},
            {"LogicalResourceId": "OnboardingStateMachine", "ResourceType": "AWS::StepFunctions::StateMachine",
             "ResourceStatus": "CREATE_COMPLETE"},  # no physical id yet
            {"LogicalResourceId": "Onboarding", "ResourceType": "Custom::CloudTrailOnboarding",
             "ResourceStatus": "CREATE_IN_PROGRESS"},
        ]}

    def describe_stack_events(self, StackName: str) -> dict[str, Any]:  # noqa: N803
        return {"StackEvents": []}


STACK_ID = f"arn:aws:cloudformation:{REGION}:123456789012:stack/partial/1"


def test_status_reads_a_stack_whose_resource_records_are_partial() -> None:
    view = status.collect(_PartialCloudFormation(), None, REGION, stack_name="partial")

    assert view.stack is not None
    assert (view.stack.resource_id, view.stack.resource_status) == ("Onboarding", "CREATE_IN_PROGRESS")
    assert view.execution is None
    assert status.render(view)[0].split() == ["Stack", "CREATE_IN_PROGRESS", "partial"]
