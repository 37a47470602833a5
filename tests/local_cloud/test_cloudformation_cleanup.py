"""A stack update deletes what its new template no longer has last, in its cleanup, as CloudFormation does: what
moves from one resource to another is in place before the old one goes, and an update that fails deletes none
of the old template's resources."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.conftest import boto

STACK, ROLE = "moving-grants", "moving-grants-role"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
GRANT = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}


def _template(role_policies: list[str], policy_resource: str = "", managed: list[str] | None = None) -> str:
    role: dict[str, Any] = {"RoleName": ROLE, "AssumeRolePolicyDocument": TRUST,
                            "Policies": [{"PolicyName": name, "PolicyDocument": GRANT} for name in role_policies]}
    if managed:
        role["ManagedPolicyArns"] = managed
    resources: dict[str, Any] = {"Role": {"Type": "AWS::IAM::Role", "Properties": role}}
    if policy_resource:
        resources["Grant"] = {"Type": "AWS::IAM::Policy", "Properties": {
            "PolicyName": policy_resource, "Roles": [{"Ref": "Role"}], "PolicyDocument": GRANT}}
    return json.dumps({"Resources": resources})


def _deployed() -> Any:
    cfn = boto("cloudformation")
    cfn.create_stack(StackName=STACK, TemplateBody=_template([], policy_resource="old-grant"),
                     Capabilities=["CAPABILITY_NAMED_IAM"])
    assert _policies() == ["old-grant"]
    return cfn


def _policies() -> list[str]:
    return sorted(boto("iam").list_role_policies(RoleName=ROLE)["PolicyNames"])


def _events_since(cfn: Any, count: int) -> list[tuple[str, str]]:
    events = cfn.describe_stack_events(StackName=STACK)["StackEvents"]
    return [(e["LogicalResourceId"], e["ResourceStatus"]) for e in reversed(events[: len(events) - count])]


def test_the_old_resource_is_deleted_after_the_new_one_is_in_place(aws: None, monkeypatch: Any) -> None:
    from moto.iam.models import IAMBackend

    cfn = _deployed()
    before = len(cfn.describe_stack_events(StackName=STACK)["StackEvents"])
    held_while_deleting: list[tuple[str, list[str]]] = []
    delete_role_policy = IAMBackend.delete_role_policy

    def spied(self: Any, role_name: str, policy_name: str) -> None:
        held_while_deleting.append((policy_name, sorted(self.get_role(role_name).policies)))
        delete_role_policy(self, role_name, policy_name)

    monkeypatch.setattr(IAMBackend, "delete_role_policy", spied)

    cfn.update_stack(StackName=STACK, TemplateBody=_template(["new-grant"]), Capabilities=["CAPABILITY_NAMED_IAM"])

    assert _policies() == ["new-grant"]
    # The old grant went while the role already held the new one: never neither.
    assert held_while_deleting == [("old-grant", ["new-grant", "old-grant"])]
    events = _events_since(cfn, before)
    order = [(STACK, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"), ("Grant", "DELETE_IN_PROGRESS"),
             ("Grant", "DELETE_COMPLETE"), (STACK, "UPDATE_COMPLETE")]
    assert [events.index(e) for e in order] == sorted(events.index(e) for e in order), events
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"


def test_moving_a_policy_into_the_role_under_the_same_name_loses_it_as_on_aws(aws: None) -> None:
    """The role puts the policy first; the cleanup's delete of the old AWS::IAM::Policy then removes that name."""
    cfn = _deployed()

    cfn.update_stack(StackName=STACK, TemplateBody=_template(["old-grant"]), Capabilities=["CAPABILITY_NAMED_IAM"])

    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    assert _policies() == []


def test_an_update_that_fails_deletes_nothing_of_the_old_template(aws: None) -> None:
    cfn = _deployed()

    cfn.update_stack(StackName=STACK, TemplateBody=_template(["new-grant"], managed=[
        "arn:aws:iam::123456789012:policy/NoSuchPolicy"]), Capabilities=["CAPABILITY_NAMED_IAM"])

    deadline = time.monotonic() + 30
    while (state := cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"]).endswith("_IN_PROGRESS"):
        assert time.monotonic() < deadline, f"the update's rollback did not end: {state}"
        time.sleep(0.1)
    assert state == "UPDATE_ROLLBACK_COMPLETE"
    assert "old-grant" in _policies()
