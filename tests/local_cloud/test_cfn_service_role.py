"""CloudFormation creates a stack's resources as its service role (``RoleARN``), as for the Expel role stack in
guide step 8: the role's grant (the template's RoleStackExecutionRole, resolved) decides each IAM call the
resource handlers make, the stack's tags reach the role it creates, and a role CloudFormation cannot assume is
refused when the stack is asked for. Each rule next to the same stack created with the grant as written.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_cloud.enforcement import authorization, cloudformation
from local_cloud.enforcement.authorization import Enforcer
from tests.conftest import boto
from tests.local_cloud.test_iam_bites import root, url, without  # noqa: F401 - url is a fixture
from tests.unit.test_template_policies import ACCOUNT, RESOLVED, STACK

ROLE = "ExpelAssumeRole"  # the resolved grant's RoleName
BOUNDARY = "expel-onboarding-ExpelRoleBoundary-AbCdEf012345"
OWNERSHIP = [{"Key": "expel-onboarding:stack", "Value": STACK}]
SERVICE_ROLE = "expel-onboarding-RoleStackExecutionRole-AbCdEf012345"
EXPEL_ROLE_TEMPLATE = json.dumps({"Resources": {
    "ExpelRole": {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": ROLE,
        "PermissionsBoundary": f"arn:aws:iam::{ACCOUNT}:policy/{BOUNDARY}",
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::012205512454:root"}, "Action": "sts:AssumeRole"}]},
        "Policies": [{"PolicyName": "ExpelInventoryReadOnly", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "cloudtrail:DescribeTrails", "Resource": "*"}]}}]}},
    "ExpelDataPathPolicy": {"Type": "AWS::IAM::Policy", "Properties": {
        "PolicyName": "ExpelCloudTrailDataPath", "Roles": [{"Ref": "ExpelRole"}],
        "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "*"}]}}},
}})

# The same role once its data path is one of its own Policies (roles/expel-role.yaml now), under a new name.
MOVED_TEMPLATE = json.loads(EXPEL_ROLE_TEMPLATE)
MOVED_TEMPLATE["Resources"]["ExpelRole"]["Properties"]["Policies"].append({
    "PolicyName": "ExpelCloudTrailDataAccess",
    "PolicyDocument": MOVED_TEMPLATE["Resources"].pop("ExpelDataPathPolicy")["Properties"]["PolicyDocument"]})


def document(name: str) -> dict[str, Any]:
    [found] = [p.document for p in RESOLVED if p.name == f"template.yaml:RoleStackExecutionRole{name}"]
    return copy.deepcopy(found)


@pytest.fixture
def enforced(aws: None) -> Iterator[None]:
    """IAM enforced in this process (moto's backends, no HTTP): what CloudFormation's handlers call is checked."""
    previous = authorization.run(Enforcer())
    cloudformation.install()
    boto("iam").create_policy(PolicyName=BOUNDARY, PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    try:
        yield
    finally:
        authorization.run(previous)


def service_role(grant: dict[str, Any], trust: dict[str, Any] | None = None, client: Any = None) -> str:
    iam = client or boto("iam")
    arn = iam.create_role(RoleName=SERVICE_ROLE, AssumeRolePolicyDocument=json.dumps(trust or document(" trust")))
    iam.put_role_policy(RoleName=SERVICE_ROLE, PolicyName="deploy-expel-role", PolicyDocument=json.dumps(grant))
    return str(arn["Role"]["Arn"])


def create(role_arn: str, tags: list[dict[str, str]]) -> dict[str, Any]:
    cfn = boto("cloudformation")
    cfn.create_stack(StackName=f"{STACK}-expel-role", TemplateBody=EXPEL_ROLE_TEMPLATE, RoleARN=role_arn, Tags=tags,
                     Capabilities=["CAPABILITY_NAMED_IAM"])
    deadline = time.monotonic() + 30
    while True:  # a failed create rolls back after CreateStack answers, as on AWS
        stack = dict(cfn.describe_stacks(StackName=f"{STACK}-expel-role")["Stacks"][0])
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        if time.monotonic() > deadline:
            raise AssertionError(f"{STACK}-expel-role still {stack['StackStatus']} after 30 s")
        time.sleep(0.1)


def failure(stack: str) -> str:
    events = boto("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    return " ".join(e.get("ResourceStatusReason", "") for e in events if e["ResourceStatus"].endswith("_FAILED"))


def test_the_service_role_creates_and_deletes_the_expel_role_which_carries_the_stacks_tags(enforced: None) -> None:
    stack = create(service_role(document(".deploy-expel-role")), OWNERSHIP)
    assert stack["StackStatus"] == "CREATE_COMPLETE", failure(stack["StackName"])
    iam = boto("iam")
    assert {"Key": "expel-onboarding:stack", "Value": STACK} in iam.list_role_tags(RoleName=ROLE)["Tags"]
    assert sorted(iam.list_role_policies(RoleName=ROLE)["PolicyNames"]) == [
        "ExpelCloudTrailDataPath", "ExpelInventoryReadOnly"]

    boto("cloudformation").delete_stack(StackName=stack["StackName"])
    with pytest.raises(ClientError, match="NoSuchEntity"):
        iam.get_role(RoleName=ROLE)


def test_a_grant_without_put_role_policy_fails_the_role_naming_the_service_role_and_the_action(
        enforced: None) -> None:
    stack = create(service_role(without(document(".deploy-expel-role"), "iam:PutRolePolicy")), OWNERSHIP)

    assert stack["StackStatus"] in ("CREATE_FAILED", "ROLLBACK_COMPLETE")
    reason = failure(stack["StackName"])
    assert (f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{SERVICE_ROLE}/AWSCloudFormation is not authorized to "
            f"perform: iam:PutRolePolicy on resource: arn:aws:iam::{ACCOUNT}:role/{ROLE}") in reason, reason
    assert "HandlerErrorCode: AccessDenied" in reason, reason


def test_a_stack_tagged_for_another_onboarding_cannot_tag_the_role(enforced: None) -> None:
    # The service role tags only with its own stack's ownership tag, which CloudFormation copies from the stack.
    stack = create(service_role(document(".deploy-expel-role")), [{"Key": "expel-onboarding:stack", "Value": "other"}])

    assert stack["StackStatus"] in ("CREATE_FAILED", "ROLLBACK_COMPLETE")
    assert f"is not authorized to perform: iam:TagRole on resource: arn:aws:iam::{ACCOUNT}:role/{ROLE}" in failure(
        stack["StackName"])


def test_the_stacks_tags_reach_a_role_it_creates_also_without_a_service_role(aws: None) -> None:
    boto("cloudformation").create_stack(StackName="plain", TemplateBody=json.dumps({"Resources": {"R": {
        "Type": "AWS::IAM::Role", "Properties": {"RoleName": "plain-role", "AssumeRolePolicyDocument": json.dumps(
            {"Version": "2012-10-17", "Statement": []})}}}}), Tags=OWNERSHIP, Capabilities=["CAPABILITY_NAMED_IAM"])
    assert boto("iam").list_role_tags(RoleName="plain-role")["Tags"] == OWNERSHIP


def test_a_role_cloudformation_cannot_assume_is_refused_when_the_stack_is_asked_for(url: str) -> None:  # noqa: F811
    lambda_only = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    arn = service_role(document(".deploy-expel-role"), lambda_only, root(url, "iam"))
    cfn = root(url, "cloudformation")
    with pytest.raises(ClientError) as caught:
        cfn.create_stack(StackName="refused", TemplateBody=EXPEL_ROLE_TEMPLATE, RoleARN=arn)
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert caught.value.response["Error"]["Message"] == f"Role {arn} is invalid or cannot be assumed"


def _update_to_moved(role_arn: str) -> dict[str, Any]:
    cfn = boto("cloudformation")
    cfn.update_stack(StackName=f"{STACK}-expel-role", TemplateBody=json.dumps(MOVED_TEMPLATE), RoleARN=role_arn,
                     Tags=OWNERSHIP, Capabilities=["CAPABILITY_NAMED_IAM"])
    return dict(cfn.describe_stacks(StackName=f"{STACK}-expel-role")["Stacks"][0])


def test_the_service_role_moves_the_data_path_into_the_roles_own_policies(enforced: None) -> None:
    """A role stack made from the earlier template (an AWS::IAM::Policy) updating to the current one."""
    role_arn = service_role(document(".deploy-expel-role"))
    assert create(role_arn, OWNERSHIP)["StackStatus"] == "CREATE_COMPLETE"

    stack = _update_to_moved(role_arn)

    assert stack["StackStatus"] == "UPDATE_COMPLETE", failure(stack["StackName"])
    assert sorted(boto("iam").list_role_policies(RoleName=ROLE)["PolicyNames"]) == [
        "ExpelCloudTrailDataAccess", "ExpelInventoryReadOnly"]


def test_a_cleanup_the_grant_refuses_skips_the_old_policy_and_the_update_still_completes(enforced: None) -> None:
    role_arn = service_role(without(document(".deploy-expel-role"), "iam:DeleteRolePolicy"))
    assert create(role_arn, OWNERSHIP)["StackStatus"] == "CREATE_COMPLETE"

    stack = _update_to_moved(role_arn)

    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert (f"is not authorized to perform: iam:DeleteRolePolicy on resource: arn:aws:iam::{ACCOUNT}:role/{ROLE}"
            in failure(stack["StackName"]))
    # Left in the account, no longer the stack's: the new one is in place beside it.
    assert sorted(boto("iam").list_role_policies(RoleName=ROLE)["PolicyNames"]) == [
        "ExpelCloudTrailDataAccess", "ExpelCloudTrailDataPath", "ExpelInventoryReadOnly"]
