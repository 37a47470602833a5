"""CloudFormation as the SAM CLI meets it, on the local cloud's CloudFormation in this process: TemplateURL in the
forms SAM and the console use, the Serverless transform server-side, capabilities, parameters, change sets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_cloud import cloudformation_changesets, cloudformation_templates
from local_cloud.cloudformation_changesets import EMPTY_CHANGE_SET
from tests.support import ECHO_HANDLER, function_zip, refusal

REGION = "us-east-1"
BUCKET = "templates-bucket"
SAM_TEMPLATE = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Transform": "AWS::Serverless-2016-10-31",
    "Parameters": {
        "Greeting": {"Type": "String", "Default": "hello", "AllowedPattern": "^[a-z ]+$",
                     "ConstraintDescription": "lower-case letters and spaces only"},
        "Secret": {"Type": "String", "NoEcho": True, "Default": "s3cr3t"},
    },
    "Resources": {
        "Work": {"Type": "AWS::Serverless::Function", "Properties": {
            "Runtime": "python3.13", "Handler": "app.handler", "CodeUri": f"s3://{BUCKET}/code.zip",
            "Environment": {"Variables": {"GREETING": {"Ref": "Greeting"}}},
            "Policies": ["AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"]}},
        "Flow": {"Type": "AWS::Serverless::StateMachine", "Properties": {
            "Definition": {"Comment": "${Greeting}", "StartAt": "Do",
                           "States": {"Do": {"Type": "Task", "Resource": "${WorkArn}", "End": True}}},
            "DefinitionSubstitutions": {"WorkArn": {"Fn::GetAtt": ["Work", "Arn"]}, "Greeting": {"Ref": "Greeting"}},
            "Policies": [{"LambdaInvokePolicy": {"FunctionName": {"Ref": "Work"}}}]}},
    },
    "Outputs": {"FlowArn": {"Value": {"Ref": "Flow"}}, "WorkName": {"Value": {"Ref": "Work"}}},
}
PLAIN_TEMPLATE = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "plain"}}},
                  "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}}}}


@pytest.fixture
def cfn() -> Iterator[Any]:
    cloudformation_changesets.install()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="code.zip", Body=function_zip({"app.py": ECHO_HANDLER}))
        s3.put_object(Bucket=BUCKET, Key="sam.json", Body=json.dumps(SAM_TEMPLATE).encode())
        s3.put_object(Bucket=BUCKET, Key="nested/plain.json", Body=json.dumps(PLAIN_TEMPLATE).encode())
        yield boto3.client("cloudformation", region_name=REGION)


def change_set(cfn: Any, stack: str, kind: str, **kwargs: Any) -> dict[str, Any]:
    created = cfn.create_change_set(StackName=stack, ChangeSetName=f"cs-{kind.lower()}", ChangeSetType=kind,
                                    Capabilities=["CAPABILITY_IAM"], **kwargs)
    return dict(cfn.describe_change_set(ChangeSetName=created["Id"], StackName=stack))


@pytest.mark.parametrize("url", [
    f"https://s3.amazonaws.com/{BUCKET}/nested/plain.json",
    f"https://s3.{REGION}.amazonaws.com/{BUCKET}/nested/plain.json",
    f"https://s3-{REGION}.amazonaws.com/{BUCKET}/nested/plain.json",
    f"https://{BUCKET}.s3.amazonaws.com/nested/plain.json",
    f"https://{BUCKET}.s3.{REGION}.amazonaws.com/nested/plain.json",
])
def test_a_template_url_is_read_from_the_local_s3_in_every_form_aws_accepts(cfn: Any, url: str) -> None:
    cfn.create_stack(StackName="from-url", TemplateURL=url)
    assert cfn.describe_stacks(StackName="from-url")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_a_versioned_template_url_reads_that_version(cfn: Any) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=BUCKET, Key="v.json", Body=json.dumps(PLAIN_TEMPLATE).encode())["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="v.json", Body=b"not a template")
    cfn.create_stack(StackName="versioned",
                     TemplateURL=f"https://s3.amazonaws.com/{BUCKET}/v.json?versionId={old}")
    assert cfn.describe_stacks(StackName="versioned")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


@pytest.mark.parametrize(("url", "message"), [
    (f"s3://{BUCKET}/nested/plain.json", f"S3 error: Domain name specified in {BUCKET} is not a valid S3 domain"),
    ("https://example.com/plain.json", "TemplateURL must be a supported URL."),
    (f"https://s3.amazonaws.com/{BUCKET}/missing.json", "S3 error: The specified key does not exist."),
    ("https://s3.amazonaws.com/no-such-bucket/plain.json", "S3 error: The specified bucket does not exist"),
])
def test_template_urls_aws_cannot_read_are_refused_with_its_messages(cfn: Any, url: str, message: str) -> None:
    for call in (cfn.create_stack, cfn.create_change_set):
        extra = {"ChangeSetName": "x", "ChangeSetType": "CREATE"} if call == cfn.create_change_set else {}
        code, text = refusal(call, StackName="refused", TemplateURL=url, **extra)
        assert code == "ValidationError" and text.startswith(message)


def test_create_stack_with_a_transform_needs_auto_expand_and_the_iam_capability(cfn: Any) -> None:
    body = json.dumps(SAM_TEMPLATE)
    without = refusal(cfn.create_stack, StackName="caps", TemplateBody=body)
    only_iam = refusal(cfn.create_stack, StackName="caps", TemplateBody=body, Capabilities=["CAPABILITY_IAM"])

    assert without == ("InsufficientCapabilitiesException",
                       "Requires capabilities : [CAPABILITY_IAM, CAPABILITY_AUTO_EXPAND]")
    assert only_iam == ("InsufficientCapabilitiesException", "Requires capabilities : [CAPABILITY_AUTO_EXPAND]")
    cfn.create_stack(StackName="caps", TemplateBody=body, Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    assert cfn.describe_stacks(StackName="caps")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_a_named_iam_resource_needs_capability_named_iam(cfn: Any) -> None:
    role = {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "named", "AssumeRolePolicyDocument": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}}}
    body = json.dumps({"Resources": {"Role": role}})

    refused = refusal(cfn.create_change_set, StackName="named", ChangeSetName="c", ChangeSetType="CREATE",
                      TemplateBody=body, Capabilities=["CAPABILITY_IAM"])

    assert refused == ("InsufficientCapabilitiesException", "Requires capabilities : [CAPABILITY_NAMED_IAM]")


def test_a_change_set_expands_the_transform_and_executes_as_a_create(cfn: Any) -> None:
    described = change_set(cfn, "sam-app", "CREATE", TemplateURL=f"https://s3.amazonaws.com/{BUCKET}/sam.json",
                           Tags=[{"Key": "team", "Value": "security"}])
    review = cfn.describe_stacks(StackName="sam-app")["Stacks"][0]

    assert review["StackStatus"] == "REVIEW_IN_PROGRESS"
    assert (described["Status"], described["ExecutionStatus"]) == ("CREATE_COMPLETE", "AVAILABLE")
    changes = {c["ResourceChange"]["LogicalResourceId"]: c["ResourceChange"] for c in described["Changes"]}
    assert {c["Action"] for c in changes.values()} == {"Add"}
    assert changes["Work"]["ResourceType"] == "AWS::Lambda::Function"  # the processed template's resources
    assert changes["WorkRole"]["ResourceType"] == "AWS::IAM::Role"
    assert {"Greeting": "hello", "Secret": "****"} == {p["ParameterKey"]: p["ParameterValue"]
                                                        for p in described["Parameters"]}

    cfn.execute_change_set(ChangeSetName=described["ChangeSetId"], StackName="sam-app")
    stack = cfn.describe_stacks(StackName="sam-app")["Stacks"][0]

    assert stack["StackStatus"] == "CREATE_COMPLETE" and stack["StackId"] == review["StackId"]
    assert stack["Tags"] == [{"Key": "team", "Value": "security"}]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["FlowArn"].startswith(f"arn:aws:states:{REGION}:123456789012:stateMachine:")
    assert cfn.describe_change_set(ChangeSetName=described["ChangeSetId"])["ExecutionStatus"] == "EXECUTE_COMPLETE"
    statuses = [e["ResourceStatus"] for e in reversed(cfn.describe_stack_events(StackName="sam-app")["StackEvents"])
                if e["LogicalResourceId"] == "sam-app"]
    assert statuses == ["REVIEW_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_COMPLETE"]


def test_the_transform_resolves_managed_policies_and_definition_substitutions_server_side(cfn: Any) -> None:
    described = change_set(cfn, "resolved", "CREATE", TemplateBody=json.dumps(SAM_TEMPLATE))
    cfn.execute_change_set(ChangeSetName=described["ChangeSetId"])

    # boto3 hands a JSON TemplateBody over parsed
    processed = cfn.get_template(StackName="resolved", TemplateStage="Processed")["TemplateBody"]
    original = cfn.get_template(StackName="resolved")["TemplateBody"]
    assert json.loads(json.dumps(original)) == SAM_TEMPLATE and "Transform" not in processed
    assert processed["Resources"]["WorkRole"]["Properties"]["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName="resolved")["Stacks"][0][
        "Outputs"]}
    sfn = boto3.client("stepfunctions", region_name=REGION)
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=outputs["FlowArn"])["definition"])
    assert definition["States"]["Do"]["Resource"] == (
        f"arn:aws:lambda:{REGION}:123456789012:function:{outputs['WorkName']}")


def test_each_translation_fills_in_policy_templates_with_its_own_values() -> None:
    """The translator's policy templates are read once per process; a translation fills in its own copy."""

    def poller_statements(queue: str, region: str) -> list[Any]:
        template = {"Transform": "AWS::Serverless-2016-10-31", "Resources": {"Work": {
            "Type": "AWS::Serverless::Function", "Properties": {
                "Runtime": "python3.13", "Handler": "app.handler", "CodeUri": f"s3://{BUCKET}/code.zip",
                "Policies": [{"SQSPollerPolicy": {"QueueName": queue}}]}}}}
        processed = cloudformation_templates.expand_serverless(template, {}, "123456789012", region, "aws", "st")
        return [s for p in processed["Resources"]["WorkRole"]["Properties"]["Policies"]
                for s in p["PolicyDocument"]["Statement"]]

    first = poller_statements("alpha", "us-east-1")
    second = poller_statements("beta", "eu-west-1")

    queue_arn = "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${queueName}"
    assert [s["Resource"] for s in first] == [{"Fn::Sub": [queue_arn, {"queueName": "alpha"}]}]
    assert [s["Resource"] for s in second] == [{"Fn::Sub": [queue_arn, {"queueName": "beta"}]}]
    assert "sqs:ReceiveMessage" in first[0]["Action"]
    assert poller_statements("alpha", "us-east-1") == first


def test_an_update_change_set_without_changes_fails_as_cloudformation_says(cfn: Any) -> None:
    created = change_set(cfn, "same", "CREATE", TemplateBody=json.dumps(SAM_TEMPLATE))
    cfn.execute_change_set(ChangeSetName=created["ChangeSetId"])

    again = change_set(cfn, "same", "UPDATE", TemplateBody=json.dumps(SAM_TEMPLATE),
                       Parameters=[{"ParameterKey": "Greeting", "UsePreviousValue": True}])

    assert (again["Status"], again["ExecutionStatus"]) == ("FAILED", "UNAVAILABLE")
    assert again["StatusReason"] == EMPTY_CHANGE_SET
    code, _ = refusal(cfn.execute_change_set, ChangeSetName=again["ChangeSetId"])
    assert code == "InvalidChangeSetStatus"


def test_an_update_change_set_lists_what_changes_and_executes_as_an_update(cfn: Any) -> None:
    created = change_set(cfn, "upd", "CREATE", TemplateBody=json.dumps(SAM_TEMPLATE))
    cfn.execute_change_set(ChangeSetName=created["ChangeSetId"])

    update = change_set(cfn, "upd", "UPDATE", TemplateBody=json.dumps(SAM_TEMPLATE),
                        Parameters=[{"ParameterKey": "Greeting", "ParameterValue": "good day"},
                                    {"ParameterKey": "Secret", "UsePreviousValue": True}])
    cfn.execute_change_set(ChangeSetName=update["ChangeSetId"])

    modified = [c["ResourceChange"] for c in update["Changes"]]
    assert [(c["Action"], c["LogicalResourceId"], c["Replacement"]) for c in modified] == [
        ("Modify", "Work", "False"), ("Modify", "Flow", "False")]
    # Each through the parameter it references, a property that does not require recreation.
    assert [[(d["Target"]["Name"], d["ChangeSource"], d.get("CausingEntity"), d["Target"]["RequiresRecreation"])
             for d in c["Details"]] for c in modified] == [
        [("Environment", "ParameterReference", "Greeting", "Never")],
        [("DefinitionSubstitutions", "ParameterReference", "Greeting", "Never")]]
    stack = cfn.describe_stacks(StackName="upd")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    function = boto3.client("lambda", region_name=REGION).get_function(FunctionName=outputs["WorkName"])
    assert function["Configuration"]["Environment"]["Variables"]["GREETING"] == "good day"
    # The state machine's DefinitionSubstitutions are resolved again on the update, as on the create.
    sfn = boto3.client("stepfunctions", region_name=REGION)
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=outputs["FlowArn"])["definition"])
    assert definition["Comment"] == "good day"


def test_a_change_set_says_which_property_changes_and_whether_it_replaces_the_resource(cfn: Any) -> None:
    cfn.create_stack(StackName="plain", TemplateBody=json.dumps(PLAIN_TEMPLATE))
    renamed, labelled = (json.loads(json.dumps(PLAIN_TEMPLATE)) for _ in range(2))
    renamed["Resources"]["Topic"]["Properties"]["TopicName"] = "renamed"  # create-only: a new topic
    labelled["Resources"]["Topic"]["Properties"]["DisplayName"] = "Shown"  # changed in place

    replaced = change_set(cfn, "plain", "UPDATE", TemplateBody=json.dumps(renamed))["Changes"][0]["ResourceChange"]
    in_place = cfn.describe_change_set(ChangeSetName=cfn.create_change_set(
        StackName="plain", ChangeSetName="label", TemplateBody=json.dumps(labelled))["Id"])["Changes"][0][
        "ResourceChange"]

    assert (replaced["Replacement"], replaced["Scope"]) == ("True", ["Properties"])
    assert replaced["Details"] == [{"Target": {
        "Attribute": "Properties", "Name": "TopicName", "Path": "/Properties/TopicName", "RequiresRecreation": "Always",
        "AttributeChangeType": "Modify", "BeforeValue": "plain", "AfterValue": "renamed"},
        "Evaluation": "Static", "ChangeSource": "DirectModification"}]
    assert in_place["Replacement"] == "False"
    assert [(d["Target"]["Name"], d["Target"]["AttributeChangeType"], d["Target"]["RequiresRecreation"])
            for d in in_place["Details"]] == [("DisplayName", "Add", "Never")]


def test_a_transform_that_fails_leaves_the_change_set_failed_with_the_reason(cfn: Any) -> None:
    broken = json.loads(json.dumps(SAM_TEMPLATE))
    del broken["Resources"]["Work"]["Properties"]["CodeUri"]
    broken["Resources"]["Work"]["Properties"]["Runtime"] = "python3.13"

    described = change_set(cfn, "broken", "CREATE", TemplateBody=json.dumps(broken))

    assert (described["Status"], described["ExecutionStatus"]) == ("FAILED", "UNAVAILABLE")
    assert described["StatusReason"].startswith(
        "Transform AWS::Serverless-2016-10-31 failed with: Invalid Serverless Application Specification document.")
    assert "Resource with id [Work] is invalid." in described["StatusReason"]


@pytest.mark.parametrize(("parameters", "message"), [
    ([{"ParameterKey": "Greeting", "ParameterValue": "Hello!"}],
     "Parameter Greeting failed to satisfy constraint: lower-case letters and spaces only"),
    ([{"ParameterKey": "Unknown", "ParameterValue": "x"}], "Parameters: [Unknown] do not exist in the template"),
])
def test_parameters_cloudformation_refuses_are_refused_before_anything_is_created(
        cfn: Any, parameters: list[dict[str, str]], message: str) -> None:
    code, text = refusal(cfn.create_change_set, StackName="params", ChangeSetName="c", ChangeSetType="CREATE",
                         TemplateBody=json.dumps(SAM_TEMPLATE), Parameters=parameters, Capabilities=["CAPABILITY_IAM"])
    assert (code, text) == ("ValidationError", message)
    assert refusal(cfn.describe_stacks, StackName="params").code == "ValidationError"  # no stack was made


def test_a_parameter_without_default_or_value_is_refused(cfn: Any) -> None:
    template = {"Parameters": {"Guid": {"Type": "String"}}, **PLAIN_TEMPLATE}
    assert refusal(cfn.create_stack, StackName="p", TemplateBody=json.dumps(template)) == (
        "ValidationError", "Parameters: [Guid] must have values")


def test_the_sam_cli_managed_bucket_stack_is_healthy_as_sam_expects(cfn: Any) -> None:
    from samcli.lib.bootstrap.bootstrap import SAM_CLI_STACK_NAME, manage_stack

    bucket = manage_stack(profile=None, region=REGION)  # the SAM CLI's own code path for --resolve-s3

    stack = cfn.describe_stacks(StackName=SAM_CLI_STACK_NAME)["Stacks"][0]
    assert {"Key": "ManagedStackSource", "Value": "AwsSamCli"} in stack["Tags"]
    assert [o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "SourceBucket"] == [bucket]
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert {"Service": "serverlessrepo.amazonaws.com"} in [st.get("Principal") for st in policy["Statement"]]
    assert manage_stack(profile=None, region=REGION) == bucket  # found again, not created twice


def test_list_change_sets_shows_one_stacks_change_sets(cfn: Any) -> None:
    first = change_set(cfn, "one", "CREATE", TemplateBody=json.dumps(PLAIN_TEMPLATE))
    change_set(cfn, "two", "CREATE", TemplateBody=json.dumps(PLAIN_TEMPLATE))

    listed = cfn.list_change_sets(StackName="one")["Summaries"]

    assert [(s["ChangeSetId"], s["Status"]) for s in listed] == [(first["ChangeSetId"], "CREATE_COMPLETE")]


def test_change_sets_cloudformation_cannot_make_or_run_are_refused_with_its_messages(cfn: Any) -> None:
    created = change_set(cfn, "live", "CREATE", TemplateBody=json.dumps(PLAIN_TEMPLATE))
    cfn.execute_change_set(ChangeSetName=created["ChangeSetId"])
    broken = change_set(cfn, "never", "CREATE", TemplateBody=json.dumps({**SAM_TEMPLATE, "Resources": {
        "Work": {"Type": "AWS::Serverless::Function", "Properties": {"Runtime": "python3.13"}}}}))

    again = refusal(cfn.create_change_set, StackName="live", ChangeSetName="again", ChangeSetType="CREATE",
                    TemplateBody=json.dumps(PLAIN_TEMPLATE))
    missing = refusal(cfn.create_change_set, StackName="nobody", ChangeSetName="upd", ChangeSetType="UPDATE",
                      TemplateBody=json.dumps(PLAIN_TEMPLATE))
    executed_twice = refusal(cfn.execute_change_set, ChangeSetName=created["ChangeSetId"])
    failed = refusal(cfn.execute_change_set, ChangeSetName=broken["ChangeSetId"])

    assert again == ("ValidationError",
                     "Stack [live] already exists and cannot be created again with the changeSet [again].")
    assert missing == ("ValidationError", "Stack [nobody] does not exist")
    assert executed_twice == ("InvalidChangeSetStatus", f"ChangeSet [{created['ChangeSetId']}] cannot be executed in "
                              "its current execution status of [EXECUTE_COMPLETE]")
    assert broken["Status"] == "FAILED"
    assert failed == ("InvalidChangeSetStatus", f"ChangeSet [{broken['ChangeSetId']}] cannot be executed in its "
                      "current execution status of [UNAVAILABLE]")
    # The failed CREATE change set leaves its stack waiting for review, never created.
    assert cfn.describe_stacks(StackName="never")["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"
