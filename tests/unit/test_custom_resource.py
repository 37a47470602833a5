"""The custom resource's pure parts: execution naming, input, settings, outputs, failure reasons, the answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from expel_onboarding import custom_resource, naming
from expel_onboarding.errors import InvalidParameter
from expel_onboarding.execution_history import Failure, failed_step
from local_cloud.cloudformation_templates import read_template
from tests.conftest import WORKBENCH_GUID

ROOT = Path(__file__).resolve().parents[2]


def cfn_event(request_type: str = "Create", **properties: str) -> dict:
    props = {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:trigger",
        "ServiceTimeout": "2700",
        "StackName": "expel", "Region": "us-east-1", "AccountId": "123456789012", "Partition": "aws",
        "WorkbenchGuid": WORKBENCH_GUID, "TrailName": "ExpelCloudTrail", "BucketName": "b-123",
        "KmsAlias": "alias/expel-cloudtrail", "TopicName": "T", "QueueName": "Q", "RoleName": "ExpelAssumeRole",
        "RoleStackName": "expel-expel-role", "OrganizationMode": "false",
        "WorkbenchApiKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:wb-AbCdEf",
        "RetryWindowSeconds": "0", "DeadlineSeconds": "900", "PollSeconds": "2",
    }
    props.update(properties)
    return {"RequestType": request_type, "RequestId": "5a3c/2b1e-0001", "ResponseURL": "http://127.0.0.1/r",
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/expel/1",
            "LogicalResourceId": "Onboarding", "ResourceProperties": props}


def test_execution_name_is_derived_from_the_request_id_so_redelivery_maps_to_one_execution() -> None:
    first = custom_resource.execution_name("Create", "5a3c/2b1e-0001")
    assert first == custom_resource.execution_name("Create", "5a3c/2b1e-0001")
    assert first == "create-5a3c-2b1e-0001"
    assert custom_resource.execution_name("Update", "x" * 200).__len__() == 80


def test_execution_input_carries_config_settings_and_the_request_but_never_where_to_answer() -> None:
    event = cfn_event()
    execution_input = custom_resource.execution_input(event)
    assert execution_input["Config"]["BucketName"] == "b-123"
    assert execution_input["Config"]["OrganizationMode"] is False
    assert execution_input["Settings"] == {"RetryWindowSeconds": 0, "DeadlineSeconds": 900, "PollSeconds": 2}
    assert execution_input["CloudFormation"] == {
        "RequestType": "Create", "RequestId": "5a3c/2b1e-0001", "LogicalResourceId": "Onboarding",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/expel/1"}
    # Whoever reads an execution's input or history must not be able to answer for the stack.
    assert event["ResponseURL"] not in json.dumps(execution_input)
    assert "ServiceToken" not in json.dumps(execution_input)


def test_default_settings_are_the_templates_parameter_defaults() -> None:
    parameters = read_template((ROOT / "template.yaml").read_text())["Parameters"]
    assert custom_resource.DEFAULT_SETTINGS == {
        "RetryWindowSeconds": parameters["RetryWindowSeconds"]["Default"],
        "DeadlineSeconds": parameters["OnboardingDeadlineSeconds"]["Default"],
        "PollSeconds": parameters["StatusPollSeconds"]["Default"]}
    properties = {k: v for k, v in cfn_event()["ResourceProperties"].items()
                  if k not in custom_resource.SETTINGS_KEYS}
    assert custom_resource.settings(properties)["RetryWindowSeconds"] == 900


def test_outputs_map_the_final_state_to_the_guide_values_and_blank_what_is_missing() -> None:
    state = {"Config": {"WorkbenchGuid": WORKBENCH_GUID, "Region": "us-east-1", "AccountId": "123456789012"},
             "Trail": {"BucketName": "b", "BucketArn": "arn:aws:s3:::b", "KmsAlias": "alias/k",
                       "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1", "TrailArn": "t"},
             "Topic": {"TopicArn": "topic"}, "Queue": {"QueueArn": "qa", "QueueUrl": "qu"},
             "Role": {"RoleArn": "role"}, "ExecutionId": "exec"}
    outputs = custom_resource.outputs(state)
    assert outputs["SqsQueueUrl"] == "qu"
    assert outputs["IamRoleArn"] == "role"
    assert outputs["ExecutionArn"] == "exec"
    assert outputs["WorkbenchDeviceId"] == ""
    assert set(outputs) == set(custom_resource.OUTPUT_PATHS)


def test_failure_reason_names_the_state_the_handlers_message_and_the_execution() -> None:
    history = [
        {"id": 1, "type": "ExecutionStarted"},
        {"id": 2, "previousEventId": 1, "type": "TaskStateEntered",
         "stateEnteredEventDetails": {"name": "Step 3 Create SNS Topic"}},
        {"id": 3, "previousEventId": 2, "type": "LambdaFunctionScheduled"},
        {"id": 4, "previousEventId": 3, "type": "LambdaFunctionStarted"},
        {"id": 5, "previousEventId": 4, "type": "LambdaFunctionFailed",
         "lambdaFunctionFailedEventDetails": {"error": "OnboardingError",
                                              "cause": json.dumps({"errorMessage": "TopicName: taken",
                                                                   "errorType": "OnboardingError"})}},
        {"id": 6, "previousEventId": 5, "type": "ExecutionFailed",
         "executionFailedEventDetails": {"error": "OnboardingError",
                                         "cause": json.dumps({"errorMessage": "TopicName: taken",
                                                              "errorType": "OnboardingError"})}},
    ]
    failure = failed_step(history)
    assert failure == Failure("Step 3 Create SNS Topic", "OnboardingError", "TopicName: taken")
    reason = custom_resource.failure_reason(failure, "us-east-1", "arn:aws:states:us-east-1:1:execution:m:e")
    assert reason.startswith("Step 3 Create SNS Topic failed: OnboardingError: TopicName: taken | Execution: https://")
    assert "console.aws.amazon.com/states" in reason


@pytest.mark.parametrize("reason_length", [10, 5000])
def test_response_body_stays_under_cloudformations_4kb(reason_length: int) -> None:
    request = {"StackId": "s", "RequestId": "r", "LogicalResourceId": "l"}
    data = {f"Key{i}": "v" * 200 for i in range(40)}
    body = custom_resource.response_body(request, "FAILED", "p", "x" * reason_length, data)
    assert len(json.dumps(body).encode()) <= custom_resource.MAX_BODY_BYTES
    assert body["Reason"]
    assert set(body["Data"]) == set(data), "every Output's GetAtt must still find its key"


def test_physical_id_stays_while_the_names_stay_and_changes_with_them() -> None:
    properties = cfn_event()["ResourceProperties"]
    same = custom_resource.physical_id({**properties, "WorkbenchLocation": "elsewhere", "RetryWindowSeconds": "60"})
    assert same == custom_resource.physical_id(properties)
    assert custom_resource.physical_id({**properties, "TrailName": "Other"}) != same


def test_update_renaming_the_trail_is_refused_naming_the_parameter() -> None:
    old = cfn_event()["ResourceProperties"]
    event = {**cfn_event("Update", TrailName="RenamedTrail"), "OldResourceProperties": old,
             "PhysicalResourceId": custom_resource.physical_id(old)}
    with pytest.raises(InvalidParameter, match="Parameter TrailName: cannot change on a stack update"):
        custom_resource.check_update(event)


def test_update_renaming_the_access_log_bucket_is_refused_naming_the_parameter() -> None:
    old = {**cfn_event()["ResourceProperties"], "AccessLogBucketName": "acme-access-logs"}
    event = {**cfn_event("Update", AccessLogBucketName="acme-access-logs-2"), "OldResourceProperties": old,
             "PhysicalResourceId": custom_resource.physical_id(old)}
    with pytest.raises(InvalidParameter, match="Parameter AccessLogBucketName: cannot change on a stack update"):
        custom_resource.check_update(event)


def test_update_keeping_the_names_and_its_rollback_go_through() -> None:
    old = cfn_event()["ResourceProperties"]
    custom_resource.check_update({**cfn_event("Update", WorkbenchLocation="on prem"), "OldResourceProperties": old,
                                  "PhysicalResourceId": custom_resource.physical_id(old)})
    # A rollback brings the deployed names back: the physical id still names them.
    renamed = cfn_event("Update", TrailName="RenamedTrail")["ResourceProperties"]
    custom_resource.check_update({**cfn_event("Update"), "OldResourceProperties": renamed,
                                  "PhysicalResourceId": custom_resource.physical_id(old)})


# Parameters added after the first release: a stack created before them has none in its old properties, and
# its first update hands the template's defaults (the access-log bucket's name derived, as the template does).
ADDED_PARAMETERS = ("ExistingTrailName", "ExistingTopicArn", "LogPrefixOrganizationId",
                    "LogFilterOrganizationalUnitId", "AccessLogging",
                    "AccessLogBucketName", "LogRetentionDays", "ObjectLockRetentionDays", "CloudWatchLogsRetentionDays")


def template_defaults(properties: dict) -> dict:
    parameters = read_template((ROOT / "template.yaml").read_text())["Parameters"]
    defaults = {name: str(parameters[name]["Default"]) for name in ADDED_PARAMETERS}
    defaults["AccessLogBucketName"] = (f"expel-cloudtrail-access-logs-{properties['AccountId']}-"
                                       f"{properties['Region']}")
    return {**defaults, "CloudWatchLogsRoleArn": ""}


def test_the_access_log_buckets_default_name_is_the_one_the_template_derives() -> None:
    template = read_template((ROOT / "template.yaml").read_text())
    derived = template["Resources"]["Onboarding"]["Properties"]["AccessLogBucketName"]["Fn::If"][2]["Fn::Sub"]
    assert derived.replace("${AWS::AccountId}", "1").replace("${AWS::Region}", "r") == \
        "expel-cloudtrail-access-logs-1-r" == naming.access_log_bucket_name("1", "r")


def test_update_of_a_stack_created_before_the_added_parameters_goes_through_and_keeps_its_id() -> None:
    old = cfn_event()["ResourceProperties"]
    assert not set(ADDED_PARAMETERS) & set(old)
    event = {**cfn_event("Update", **template_defaults(old)), "OldResourceProperties": old,
             "PhysicalResourceId": custom_resource.physical_id(old)}
    custom_resource.check_update(event)
    # Any other id is a replacement: CloudFormation would delete the onboarding (its teardown) afterwards.
    assert custom_resource.answer_id(event) == custom_resource.physical_id(old)


@pytest.mark.parametrize("parameter", ADDED_PARAMETERS)
def test_update_adding_one_parameter_at_its_default_goes_through(parameter: str) -> None:
    old = cfn_event()["ResourceProperties"]
    event = {**cfn_event("Update", **{parameter: template_defaults(old)[parameter]}),
             "OldResourceProperties": old, "PhysicalResourceId": custom_resource.physical_id(old)}
    custom_resource.check_update(event)
    assert custom_resource.answer_id(event) == custom_resource.physical_id(old)


@pytest.mark.parametrize(("parameter", "value"), [
    ("AccessLogBucketName", "acme-access-logs"), ("ExistingTrailName", "OrgTrail"),
    ("ExistingTopicArn", "arn:aws:sns:us-east-1:123456789012:acme")])
def test_update_of_an_older_stack_naming_another_resource_is_refused(parameter: str, value: str) -> None:
    old = cfn_event()["ResourceProperties"]
    event = {**cfn_event("Update", **{**template_defaults(old), parameter: value}), "OldResourceProperties": old,
             "PhysicalResourceId": custom_resource.physical_id(old)}
    with pytest.raises(InvalidParameter, match=f"Parameter {parameter}: cannot change on a stack update"):
        custom_resource.check_update(event)


def test_a_stack_created_with_the_access_log_bucket_named_keeps_its_id() -> None:
    created = {**cfn_event()["ResourceProperties"], **template_defaults(cfn_event()["ResourceProperties"])}
    event = {**cfn_event("Update", **{**template_defaults(created), "LogRetentionDays": "365"}),
             "OldResourceProperties": created, "PhysicalResourceId": custom_resource.physical_id(created)}
    custom_resource.check_update(event)
    assert custom_resource.answer_id(event) == custom_resource.physical_id(created)


def test_retry_window_that_outlasts_the_deadline_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="RetryWindowSeconds"):
        custom_resource.check_settings({"RetryWindowSeconds": "800", "DeadlineSeconds": "900"})
    custom_resource.check_settings({"RetryWindowSeconds": "720", "DeadlineSeconds": "900"})


def test_every_property_the_template_hands_the_onboarding_is_read() -> None:
    """A property no model reads is a parameter silently ignored (its Config field spelled otherwise)."""
    from dataclasses import fields

    from expel_onboarding.models import Config, _pascal

    template = read_template((Path(__file__).resolve().parents[2] / "template.yaml").read_text())
    given = set(template["Resources"]["Onboarding"]["Properties"])
    read = {_pascal(f.name) for f in fields(Config)} | set(custom_resource.DEFAULT_SETTINGS)
    assert given - read == {"ServiceToken", "ServiceTimeout"}
