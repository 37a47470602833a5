"""CloudFormation's ``AWS::IAM::Role`` keeps the role as the template and the stack say, on updates too: the stack's
tags are re-synced onto the role (also when only the stack's tags change), and ``ManagedPolicyArns`` are attached
and detached as they change (moto ignored them, so a SAM function's role lacked AWSLambdaBasicExecutionRole).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT_ID, boto

STACK, ROLE = "role-stack", "the-role"
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def template(managed: list[Any] | None = None, tags: list[dict[str, str]] | None = None,
             description: str = "") -> str:
    properties: dict[str, Any] = {"RoleName": ROLE, "AssumeRolePolicyDocument": TRUST, "Description": description}
    if managed is not None:
        properties["ManagedPolicyArns"] = managed
    if tags is not None:
        properties["Tags"] = tags
    return json.dumps({"Resources": {
        "Role": {"Type": "AWS::IAM::Role", "Properties": properties},
        "Own": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets",
                                                    "Resource": "*"}]}}}}})


def _settled(name: str) -> dict[str, Any]:
    cfn = boto("cloudformation")
    deadline = time.monotonic() + 30
    while True:
        stack = dict(cfn.describe_stacks(StackName=name)["Stacks"][0])  # type: ignore[attr-defined]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        assert time.monotonic() < deadline, f"{name} still {stack['StackStatus']}"
        time.sleep(0.1)


def create(body: str, tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    boto("cloudformation").create_stack(  # type: ignore[attr-defined]
        StackName=STACK, TemplateBody=body, Tags=tags or [], Capabilities=["CAPABILITY_NAMED_IAM"],
        DisableRollback=True)
    return _settled(STACK)


def update(body: str, tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    boto("cloudformation").update_stack(  # type: ignore[attr-defined]
        StackName=STACK, TemplateBody=body, Tags=tags or [], Capabilities=["CAPABILITY_NAMED_IAM"])
    return _settled(STACK)


def attached() -> list[str]:
    return sorted(p["PolicyArn"] for p in boto("iam").list_attached_role_policies(  # type: ignore[attr-defined]
        RoleName=ROLE)["AttachedPolicies"])


def role_tags() -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in boto("iam").list_role_tags(RoleName=ROLE)["Tags"]}  # type: ignore[attr-defined]


def failure(name: str) -> str:
    events = boto("cloudformation").describe_stack_events(StackName=name)["StackEvents"]  # type: ignore[attr-defined]
    return " ".join(e.get("ResourceStatusReason", "") for e in events if e["ResourceStatus"].endswith("_FAILED"))


def test_managed_policy_arns_are_attached_then_detached_and_attached_as_the_template_changes(aws: None) -> None:
    stack = create(template([BASIC, {"Ref": "Own"}]))
    assert stack["StackStatus"] == "CREATE_COMPLETE", failure(STACK)
    own = next(p["Arn"] for p in boto("iam").list_policies(Scope="Local")["Policies"])  # type: ignore[attr-defined]
    assert attached() == sorted([BASIC, own])
    # The AWS managed policy is AWS's own document.
    version = boto("iam").get_policy(PolicyArn=BASIC)["Policy"]["DefaultVersionId"]  # type: ignore[attr-defined]
    document = boto("iam").get_policy_version(  # type: ignore[attr-defined]
        PolicyArn=BASIC, VersionId=version)["PolicyVersion"]["Document"]
    assert "logs:PutLogEvents" in json.dumps(document)

    assert update(template([READ_ONLY]))["StackStatus"] == "UPDATE_COMPLETE", failure(STACK)
    assert attached() == [READ_ONLY]

    boto("cloudformation").delete_stack(StackName=STACK)  # type: ignore[attr-defined]
    with pytest.raises(ClientError, match="NoSuchEntity"):
        boto("iam").get_role(RoleName=ROLE)  # type: ignore[attr-defined]


def test_a_managed_policy_arn_that_is_no_policy_fails_the_role_with_iams_message(aws: None) -> None:
    missing = f"arn:aws:iam::{ACCOUNT_ID}:policy/NoSuchPolicy"
    stack = create(template([missing]))

    assert stack["StackStatus"] == "CREATE_FAILED"
    assert f"Policy {missing} does not exist or is not attachable." in failure(STACK), failure(STACK)


def test_the_stacks_tags_are_resynced_onto_the_role_on_updates_and_a_tag_put_by_hand_stays(aws: None) -> None:
    create(template(tags=[{"Key": "own", "Value": "1"}]), tags=[{"Key": "team", "Value": "a"},
                                                               {"Key": "cost", "Value": "x"}])
    assert role_tags() == {"team": "a", "cost": "x", "own": "1"}
    boto("iam").tag_role(RoleName=ROLE, Tags=[{"Key": "by-hand", "Value": "kept"}])  # type: ignore[attr-defined]

    # Only the stack's tags change: the role is updated all the same, as CloudFormation propagates them.
    assert update(template(tags=[{"Key": "own", "Value": "1"}]), tags=[{"Key": "team", "Value": "b"}])[
        "StackStatus"] == "UPDATE_COMPLETE", failure(STACK)
    assert role_tags() == {"team": "b", "own": "1", "by-hand": "kept"}

    # The resource's own tags change with another property; its own tag wins over the stack's of the same key.
    assert update(template(tags=[{"Key": "team", "Value": "own-wins"}], description="changed"),
                  tags=[{"Key": "team", "Value": "b"}])["StackStatus"] == "UPDATE_COMPLETE", failure(STACK)
    assert role_tags() == {"team": "own-wins", "by-hand": "kept"}


def test_deleting_a_role_detaches_its_own_managed_policies_and_a_policy_attached_by_hand_fails_the_delete(
        aws: None) -> None:
    """CloudFormation detaches the ManagedPolicyArns it attached; one attached by hand stays, and IAM's DeleteRole
    then refuses (DeleteConflict): the stack is DELETE_FAILED, the role stays, and a delete after detaching it
    completes."""
    create(template(managed=[BASIC]))
    iam, cfn = boto("iam"), boto("cloudformation")
    theirs = iam.create_policy(PolicyName="Theirs", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=theirs)

    cfn.delete_stack(StackName=STACK)

    stack = _settled(STACK)
    assert stack["StackStatus"] == "DELETE_FAILED"
    events = cfn.describe_stack_events(StackName=STACK)["StackEvents"]
    stack_events = {(e["ResourceStatus"], e.get("ResourceStatusReason")) for e in events
                    if e["LogicalResourceId"] == STACK}
    assert ("DELETE_FAILED", "The following resource(s) failed to delete: [Role]. ") in stack_events
    [event] = [e for e in events if e["LogicalResourceId"] == "Role" and e["ResourceStatus"] == "DELETE_FAILED"]
    assert event["ResourceStatusReason"] == (
        'Resource handler returned message: "Cannot delete entity, must detach all policies first. (Service: Iam, '
        'Status Code: 409)" (HandlerErrorCode: GeneralServiceException)')
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"]] == [theirs]

    iam.detach_role_policy(RoleName=ROLE, PolicyArn=theirs)
    cfn.delete_stack(StackName=STACK)

    assert [s["StackStatus"] for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == STACK] == [
        "DELETE_COMPLETE"]
    with pytest.raises(ClientError, match="NoSuchEntity"):
        iam.get_role(RoleName=ROLE)
