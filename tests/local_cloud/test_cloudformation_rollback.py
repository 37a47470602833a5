"""CloudFormation's rollback on the local cloud, in this process: a create that fails rolls back (or is deleted, or
stays, as OnFailure / OnStackFailure / DisableRollback say), an update that fails goes back to the previous
template, and a stack in ROLLBACK_COMPLETE can only be deleted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_cloud import cloudformation_changesets
from tests.support import refusal

REGION = "us-east-1"
TAKEN_ROLE = "TakenRole"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                  "Principal": {"Service": "lambda.amazonaws.com"}}]}
TOPIC_ONLY = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "made-first"}}}}
# The role is made after the topic (it refers to it) and fails: a role of that name exists already.
FAILING = {"Resources": {
    **TOPIC_ONLY["Resources"],
    "Role": {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": TAKEN_ROLE, "AssumeRolePolicyDocument": TRUST, "Description": {"Ref": "Topic"}}},
}}
NAMED_IAM = ["CAPABILITY_NAMED_IAM"]
ROLLED_BACK = "The following resource(s) failed to create: [Role]. Rollback requested by user."


@pytest.fixture
def cfn() -> Iterator[Any]:
    cloudformation_changesets.install()
    with mock_aws():
        boto3.client("iam", region_name=REGION).create_role(RoleName=TAKEN_ROLE,
                                                            AssumeRolePolicyDocument=json.dumps(TRUST))
        yield boto3.client("cloudformation", region_name=REGION)


def settled(cfn: Any, stack: str) -> dict[str, Any]:
    """The stack once CloudFormation has finished with it (the rollback runs in the background)."""
    deadline = time.monotonic() + 30
    while True:
        found = dict(cfn.describe_stacks(StackName=stack)["Stacks"][0])
        if not found["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def events(cfn: Any, stack: str) -> list[tuple[str, str, str]]:
    listed = cfn.describe_stack_events(StackName=stack)["StackEvents"][::-1]
    return [(e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason", "")) for e in listed]


def topics() -> list[str]:
    return [t["TopicArn"].rsplit(":", 1)[-1] for t in boto3.client("sns", region_name=REGION).list_topics()["Topics"]]


def test_a_create_that_fails_rolls_back_and_deletes_what_it_made(cfn: Any) -> None:
    cfn.create_stack(StackName="s", TemplateBody=json.dumps(FAILING), Capabilities=NAMED_IAM)

    stack = settled(cfn, "s")

    assert stack["StackStatus"] == "ROLLBACK_COMPLETE" and stack["DisableRollback"] is False
    written = events(cfn, "s")
    role_failed = next(e for e in written if e[:2] == ("Role", "CREATE_FAILED"))
    assert TAKEN_ROLE in role_failed[2]  # the resource's own reason
    after = written[written.index(role_failed) + 1:]
    assert after == [("s", "ROLLBACK_IN_PROGRESS", ROLLED_BACK), ("Topic", "DELETE_IN_PROGRESS", ""),
                     ("Topic", "DELETE_COMPLETE", ""), ("s", "ROLLBACK_COMPLETE", "")]
    assert "made-first" not in topics()
    assert boto3.client("iam").get_role(RoleName=TAKEN_ROLE)["Role"]  # not ours: never touched
    # Reading the rolled-back stack makes nothing again.
    cfn.list_stack_resources(StackName="s")
    cfn.describe_stack_resources(StackName="s")
    assert "made-first" not in topics() and events(cfn, "s")[-1] == ("s", "ROLLBACK_COMPLETE", "")


def test_a_stack_in_rollback_complete_can_only_be_deleted(cfn: Any) -> None:
    stack_id = cfn.create_stack(StackName="s", TemplateBody=json.dumps(FAILING), Capabilities=NAMED_IAM)["StackId"]
    settled(cfn, "s")
    not_updatable = ("ValidationError", f"Stack:{stack_id} is in ROLLBACK_COMPLETE state and can not be updated.")

    assert refusal(cfn.update_stack, StackName="s", TemplateBody=json.dumps(TOPIC_ONLY)) == not_updatable
    assert refusal(cfn.create_change_set, StackName="s", ChangeSetName="again", ChangeSetType="UPDATE",
                   TemplateBody=json.dumps(TOPIC_ONLY)) == not_updatable

    cfn.delete_stack(StackName="s")
    assert refusal(cfn.describe_stacks, StackName="s").message == "Stack with id s does not exist"


@pytest.mark.parametrize("request_args", [{"OnFailure": "DO_NOTHING"}, {"DisableRollback": True}])
def test_do_nothing_or_disable_rollback_keeps_what_was_made(cfn: Any, request_args: dict[str, Any]) -> None:
    cfn.create_stack(StackName="s", TemplateBody=json.dumps(FAILING), Capabilities=NAMED_IAM, **request_args)

    stack = settled(cfn, "s")

    assert stack["StackStatus"] == "CREATE_FAILED" and stack["DisableRollback"] is True
    assert events(cfn, "s")[-1] == ("s", "CREATE_FAILED", "The following resource(s) failed to create: [Role]. ")
    assert "made-first" in topics()


def test_on_failure_delete_deletes_the_stack(cfn: Any) -> None:
    stack_id = cfn.create_stack(StackName="s", TemplateBody=json.dumps(FAILING), Capabilities=NAMED_IAM,
                                OnFailure="DELETE")["StackId"]

    assert settled(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    assert events(cfn, stack_id)[-4:] == [
        ("s", "DELETE_IN_PROGRESS", "The following resource(s) failed to create: [Role]. Delete requested by user."),
        ("Topic", "DELETE_IN_PROGRESS", ""), ("Topic", "DELETE_COMPLETE", ""), ("s", "DELETE_COMPLETE", "")]
    assert refusal(cfn.describe_stacks, StackName="s").message == "Stack with id s does not exist"
    assert "made-first" not in topics()


def test_failure_settings_cloudformation_refuses(cfn: Any) -> None:
    body = json.dumps(TOPIC_ONLY)
    assert refusal(cfn.create_stack, StackName="s", TemplateBody=body, OnFailure="DELETE", DisableRollback=True) == (
        "ValidationError", "You can specify either DisableRollback or OnFailure, but not both.")
    code, message = refusal(cfn.create_stack, StackName="s", TemplateBody=body, OnFailure="KEEP")
    assert code == "ValidationError" and "Member must satisfy enum value set: [DELETE, DO_NOTHING, ROLLBACK]" in message
    cfn.create_stack(StackName="s", TemplateBody=body)
    assert refusal(cfn.create_change_set, StackName="s", ChangeSetName="c", ChangeSetType="UPDATE",
                   TemplateBody=json.dumps(FAILING), Capabilities=NAMED_IAM, OnStackFailure="DELETE") == (
        "ValidationError", "OnStackFailure DELETE is only valid when ChangeSetType is CREATE.")
    created = cfn.create_change_set(StackName="n", ChangeSetName="c", ChangeSetType="CREATE", TemplateBody=body,
                                    OnStackFailure="DO_NOTHING")
    assert cfn.describe_change_set(ChangeSetName=created["Id"])["OnStackFailure"] == "DO_NOTHING"
    assert refusal(cfn.execute_change_set, ChangeSetName=created["Id"], DisableRollback=False).code == "ValidationError"


@pytest.mark.parametrize(("change_set_args", "execute_args", "status"), [
    ({}, {}, "ROLLBACK_COMPLETE"),
    ({"OnStackFailure": "ROLLBACK"}, {}, "ROLLBACK_COMPLETE"),
    ({}, {"DisableRollback": True}, "CREATE_FAILED"),  # sam deploy --disable-rollback
    ({"OnStackFailure": "DO_NOTHING"}, {}, "CREATE_FAILED"),
    ({"OnStackFailure": "DELETE"}, {}, "DELETE_COMPLETE"),
])
def test_a_create_change_set_fails_as_its_settings_say(cfn: Any, change_set_args: dict[str, Any],
                                                       execute_args: dict[str, Any], status: str) -> None:
    created = cfn.create_change_set(StackName="s", ChangeSetName="c", ChangeSetType="CREATE",
                                    TemplateBody=json.dumps(FAILING), Capabilities=NAMED_IAM,
                                    **change_set_args)

    cfn.execute_change_set(ChangeSetName=created["Id"], **execute_args)

    assert settled(cfn, created["StackId"])["StackStatus"] == status
    assert ("made-first" in topics()) == (status == "CREATE_FAILED")


def test_an_update_that_fails_rolls_back_to_the_previous_template(cfn: Any) -> None:
    cfn.create_stack(StackName="s", TemplateBody=json.dumps(TOPIC_ONLY))

    cfn.update_stack(StackName="s", TemplateBody=json.dumps(FAILING), Capabilities=NAMED_IAM)

    stack = settled(cfn, "s")
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    statuses = [e[1] for e in events(cfn, "s") if e[0] == "s"]
    assert statuses[-4:] == ["UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS",
                             "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE"]
    assert ("s", "UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [Role]. ") in events(
        cfn, "s")
    assert cfn.get_template(StackName="s")["TemplateBody"] == TOPIC_ONLY  # boto3 parses a JSON body
    assert [r["LogicalResourceId"] for r in cfn.list_stack_resources(StackName="s")["StackResourceSummaries"]] == [
        "Topic"]
    # After a rolled-back update the stack can be updated again.
    cfn.update_stack(StackName="s", TemplateBody=json.dumps({"Resources": {"Topic": {
        "Type": "AWS::SNS::Topic", "Properties": {"TopicName": "made-first"}}, "Other": {
        "Type": "AWS::SNS::Topic", "Properties": {"TopicName": "other"}}}}))
    assert settled(cfn, "s")["StackStatus"] == "UPDATE_COMPLETE"


def test_an_update_with_disable_rollback_stays_update_failed(cfn: Any) -> None:
    cfn.create_stack(StackName="s", TemplateBody=json.dumps(TOPIC_ONLY))

    cfn.update_stack(StackName="s", TemplateBody=json.dumps(FAILING), Capabilities=NAMED_IAM,
                     DisableRollback=True)

    assert settled(cfn, "s")["StackStatus"] == "UPDATE_FAILED"
    assert events(cfn, "s")[-1] == ("s", "UPDATE_FAILED", "The following resource(s) failed to create: [Role]. ")
