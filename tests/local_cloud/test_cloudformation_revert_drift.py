"""Drift-aware change sets (``DeploymentMode: REVERT_DRIFT``) on the local cloud's CloudFormation, with the Expel
role's own template: what they show, what executing them puts back, what they leave, and what AWS refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_cloud.cloudformation_changesets import EMPTY_CHANGE_SET
from tests.conftest import ACCOUNT_ID, WORKBENCH_GUID, boto
from tests.steps.shared import ROOT
from tests.support import DATA_PATH_POLICY as DATA_PATH

STACK, ROLE = "expel-role", "ExpelAssumeRole"
BODY = (ROOT / "roles" / "expel-role.yaml").read_text()
PARAMETERS = [{"ParameterKey": "ExpelWorkbenchGuid", "ParameterValue": WORKBENCH_GUID},
              {"ParameterKey": "BucketArn", "ParameterValue": "arn:aws:s3:::expel-cloudtrail-logs"},
              {"ParameterKey": "QueueArn", "ParameterValue": f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:ExpelQueue"},
              {"ParameterKey": "KmsKeyArn", "ParameterValue": f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/k-1"}]
CUSTOMER_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:DescribeVpcs",
                                                           "Resource": "*"}]}


@pytest.fixture
def cfn(aws: None) -> Any:
    client = boto("cloudformation")
    client.create_stack(StackName=STACK, TemplateBody=BODY, Parameters=PARAMETERS,
                        Capabilities=["CAPABILITY_NAMED_IAM"])
    assert client.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    return client


def _revert_drift(cfn: Any, name: str = "revert", **kwargs: Any) -> dict[str, Any]:
    created = cfn.create_change_set(StackName=STACK, ChangeSetName=name, TemplateBody=BODY, Parameters=PARAMETERS,
                                    Capabilities=["CAPABILITY_NAMED_IAM"], ChangeSetType="UPDATE",
                                    DeploymentMode="REVERT_DRIFT", **kwargs)
    return dict(cfn.describe_change_set(ChangeSetName=created["Id"], StackName=STACK))


def _trust() -> dict[str, Any]:
    return dict(boto("iam").get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"])


def _external_id(trust: dict[str, Any]) -> str:
    return str(trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"])


def _policy(name: str) -> dict[str, Any]:
    document = boto("iam").get_role_policy(RoleName=ROLE, PolicyName=name)["PolicyDocument"]
    return json.loads(document) if isinstance(document, str) else dict(document)


def _inventory() -> dict[str, Any]:
    return _policy("ExpelInventoryReadOnly")


def _break_trust_and_inventory() -> None:
    iam = boto("iam")
    trust = _trust()
    trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = "someone-elses-guid"
    iam.update_assume_role_policy(RoleName=ROLE, PolicyDocument=json.dumps(trust))
    inventory = _inventory()
    inventory["Statement"][0]["Action"] = [*inventory["Statement"][0]["Action"], "s3:GetObject"]
    iam.put_role_policy(RoleName=ROLE, PolicyName="ExpelInventoryReadOnly", PolicyDocument=json.dumps(inventory))


def test_a_drift_aware_change_set_shows_each_drifted_property_three_ways(cfn: Any) -> None:
    _break_trust_and_inventory()

    change_set = _revert_drift(cfn)

    assert (change_set["Status"], change_set["ExecutionStatus"]) == ("CREATE_COMPLETE", "AVAILABLE")
    assert (change_set["DeploymentMode"], change_set["StackDriftStatus"]) == ("REVERT_DRIFT", "DRIFTED")
    [change] = [c["ResourceChange"] for c in change_set["Changes"]]
    assert (change["Action"], change["LogicalResourceId"], change["ResourceDriftStatus"], change["Replacement"]) == (
        "Modify", "ExpelRole", "MODIFIED", "False")
    targets = {d["Target"]["Path"]: d["Target"] for d in change["Details"]}
    external = targets["/Properties/AssumeRolePolicyDocument/Statement/0/Condition/StringEquals/sts:ExternalId"]
    assert (external["BeforeValue"], external["AfterValue"]) == ("someone-elses-guid", WORKBENCH_GUID)
    assert (external["BeforeValueFrom"], external["AfterValueFrom"], external["AttributeChangeType"]) == (
        "ACTUAL_STATE", "TEMPLATE", "Modify")
    assert external["Drift"] == {"PreviousValue": WORKBENCH_GUID, "ActualValue": "someone-elses-guid"}
    added = [t for path, t in targets.items() if path.startswith("/Properties/Policies/0/PolicyDocument/Statement/0/")]
    assert [(t["BeforeValue"], t["AttributeChangeType"]) for t in added] == [("s3:GetObject", "Remove")], targets


def test_executing_it_puts_the_templates_values_back_and_leaves_what_the_template_does_not_set(cfn: Any) -> None:
    iam = boto("iam")
    _break_trust_and_inventory()
    iam.put_role_policy(RoleName=ROLE, PolicyName="AddedByHand", PolicyDocument=json.dumps(CUSTOMER_POLICY))
    managed = iam.create_policy(PolicyName="CustomerReads", PolicyDocument=json.dumps(CUSTOMER_POLICY))["Policy"]
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=managed["Arn"])
    iam.tag_role(RoleName=ROLE, Tags=[{"Key": "team", "Value": "secops"}])
    events_before = len(cfn.describe_stack_events(StackName=STACK)["StackEvents"])

    cfn.execute_change_set(ChangeSetName=_revert_drift(cfn)["ChangeSetId"], StackName=STACK)

    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    assert _external_id(_trust()) == WORKBENCH_GUID
    assert "s3:GetObject" not in _inventory()["Statement"][0]["Action"]
    # The role's inline policies are its Policies property: one added by hand goes; the template's stay.
    assert sorted(iam.list_role_policies(RoleName=ROLE)["PolicyNames"]) == [DATA_PATH, "ExpelInventoryReadOnly"]
    # ManagedPolicyArns and the customer's tag are not set by the template: not compared, not touched.
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"]] == [
        managed["Arn"]]
    assert {"Key": "team", "Value": "secops"} in iam.list_role_tags(RoleName=ROLE)["Tags"]
    events = cfn.describe_stack_events(StackName=STACK)["StackEvents"][: -events_before or None]
    assert any(e["LogicalResourceId"] == STACK and e["ResourceStatus"] == "UPDATE_COMPLETE" for e in events)
    assert _revert_drift(cfn, "again")["StatusReason"] == EMPTY_CHANGE_SET  # nothing is left to put back


def test_a_role_deleted_by_hand_is_created_again(cfn: Any) -> None:
    iam = boto("iam")
    for name in iam.list_role_policies(RoleName=ROLE)["PolicyNames"]:
        iam.delete_role_policy(RoleName=ROLE, PolicyName=name)
    iam.delete_role(RoleName=ROLE)

    change_set = _revert_drift(cfn)
    [change] = [c["ResourceChange"] for c in change_set["Changes"] if c["ResourceChange"]["LogicalResourceId"] ==
                "ExpelRole"]
    assert (change["Action"], change["ResourceDriftStatus"]) == ("Add", "DELETED")
    cfn.execute_change_set(ChangeSetName=change_set["ChangeSetId"], StackName=STACK)

    assert _external_id(_trust()) == WORKBENCH_GUID
    assert "ExpelInventoryReadOnly" in iam.list_role_policies(RoleName=ROLE)["PolicyNames"]


def test_a_data_path_statement_removed_by_hand_is_shown_and_put_back(cfn: Any) -> None:
    """The data path's policy is one of the role's own Policies: drift detection reads it, a revert restores it."""
    iam = boto("iam")
    document = _policy(DATA_PATH)
    queue_statement = next(s for s in document["Statement"] if s["Sid"] == "ConsumeNotificationQueue")
    document["Statement"].remove(queue_statement)
    iam.put_role_policy(RoleName=ROLE, PolicyName=DATA_PATH, PolicyDocument=json.dumps(document))

    change_set = _revert_drift(cfn)

    assert (change_set["Status"], change_set["StackDriftStatus"]) == ("CREATE_COMPLETE", "DRIFTED")
    [change] = [c["ResourceChange"] for c in change_set["Changes"]]
    assert (change["LogicalResourceId"], change["ResourceDriftStatus"]) == ("ExpelRole", "MODIFIED")
    [target] = [d["Target"] for d in change["Details"]]
    assert target["Path"].startswith("/Properties/Policies/") and target["Path"].endswith("/PolicyDocument/Statement/1")
    assert (target["AttributeChangeType"], json.loads(target["AfterValue"])["Sid"]) == ("Add",
                                                                                       "ConsumeNotificationQueue")

    cfn.execute_change_set(ChangeSetName=change_set["ChangeSetId"], StackName=STACK)

    assert queue_statement in _policy(DATA_PATH)["Statement"]
    assert _revert_drift(cfn, "again")["StatusReason"] == EMPTY_CHANGE_SET


def test_an_aws_iam_policy_has_no_drift_detection_so_a_change_to_it_is_neither_shown_nor_reverted(aws: None) -> None:
    """CloudFormation has no read handler for AWS::IAM::Policy: its drift is NOT_CHECKED, never reverted."""
    cfn, iam = boto("cloudformation"), boto("iam")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    body = json.dumps({"Resources": {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "with-policy",
                                                          "AssumeRolePolicyDocument": trust}},
        "Grant": {"Type": "AWS::IAM::Policy", "Properties": {
            "PolicyName": "grant", "Roles": [{"Ref": "Role"}], "PolicyDocument": CUSTOMER_POLICY}}}})
    cfn.create_stack(StackName="with-policy", TemplateBody=body, Capabilities=["CAPABILITY_NAMED_IAM"])
    iam.put_role_policy(RoleName="with-policy", PolicyName="grant", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))

    created = cfn.create_change_set(StackName="with-policy", ChangeSetName="revert", TemplateBody=body,
                                    Capabilities=["CAPABILITY_NAMED_IAM"], ChangeSetType="UPDATE",
                                    DeploymentMode="REVERT_DRIFT")
    change_set = cfn.describe_change_set(ChangeSetName=created["Id"], StackName="with-policy")

    assert (change_set["Status"], change_set["StatusReason"], change_set["StackDriftStatus"]) == (
        "FAILED", EMPTY_CHANGE_SET, "IN_SYNC")
    assert "s3:GetObject" in json.dumps(iam.get_role_policy(RoleName="with-policy", PolicyName="grant"))


def test_an_unchanged_stack_in_sync_gives_the_empty_change_set(cfn: Any) -> None:
    change_set = _revert_drift(cfn)

    assert (change_set["Status"], change_set["ExecutionStatus"], change_set["StatusReason"]) == (
        "FAILED", "UNAVAILABLE", EMPTY_CHANGE_SET)
    assert change_set["StackDriftStatus"] == "IN_SYNC"
    assert _external_id(_trust()) == WORKBENCH_GUID


def test_a_normal_change_set_of_the_same_template_leaves_drift_alone(cfn: Any) -> None:
    _break_trust_and_inventory()

    created = cfn.create_change_set(StackName=STACK, ChangeSetName="normal", TemplateBody=BODY, Parameters=PARAMETERS,
                                    Capabilities=["CAPABILITY_NAMED_IAM"], ChangeSetType="UPDATE")
    change_set = cfn.describe_change_set(ChangeSetName=created["Id"], StackName=STACK)

    assert (change_set["Status"], change_set["StatusReason"]) == ("FAILED", EMPTY_CHANGE_SET)
    assert "DeploymentMode" not in change_set and "StackDriftStatus" not in change_set
    assert _external_id(_trust()) == "someone-elses-guid"


@pytest.mark.parametrize(("kind", "mode", "message"), [
    ("CREATE", "REVERT_DRIFT", "DeploymentMode REVERT_DRIFT is supported only for change sets of type UPDATE"),
    ("UPDATE", "REVERT", "Value 'REVERT' at 'deploymentMode' failed to satisfy constraint: Member must satisfy enum "
                         "value set: [REVERT_DRIFT]"),
])
def test_what_cloudformation_refuses_is_refused_before_anything_is_made(aws: None, kind: str, mode: str,
                                                                        message: str) -> None:
    cfn = boto("cloudformation")
    with pytest.raises(ClientError) as refused:
        cfn.create_change_set(StackName="new-stack", ChangeSetName="cs", TemplateBody=BODY, Parameters=PARAMETERS,
                              Capabilities=["CAPABILITY_NAMED_IAM"], ChangeSetType=kind, DeploymentMode=mode)
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert message in refused.value.response["Error"]["Message"]
    assert cfn.list_stacks()["StackSummaries"] == []  # not even a stack in REVIEW_IN_PROGRESS
