"""``local serve --iam-propagation-delay``: a new role, or a change to one, takes effect only after the delay,
with the errors AWS gives meanwhile; CloudFormation waits it out as its handlers do.

The enforcing server runs in this process (as in ``test_iam_bites``). Its delay is a minute, far longer than a
test's calls take even on a loaded machine, and the tests pass it by moving the propagation's clock forward
instead of waiting."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Iterator

import pytest

from local_cloud import iam_propagation
from local_cloud.enforcement import services
from tests.local_cloud.harness import client, enforcing_cloud, reset
from tests.support import ECHO_HANDLER, function_zip, refusal

ACCOUNT, REGION = "123456789012", "us-east-1"
DELAY = 60.0


class _Clock:
    """``local_cloud.iam_propagation``'s clock: the real one, plus the time the tests let pass."""

    def __init__(self) -> None:
        self.passed = 0.0

    def time(self) -> float:
        return time.time() + self.passed

    def let_pass(self, seconds: float) -> None:
        self.passed += seconds


CLOCK = _Clock()
ROOT_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with enforcing_cloud() as url, pytest.MonkeyPatch.context() as patch:
        patch.setattr(iam_propagation, "time", CLOCK)
        services.install_lambda_role_check()
        services.install_cloudformation_role_check()
        services.install_state_machine_role_wait()
        iam_propagation.install()
        iam_propagation.configure(DELAY)
        try:
            yield url
        finally:
            iam_propagation.configure(0)


@pytest.fixture(autouse=True)
def _fresh_cloud(url: str) -> None:
    reset(url)


def _after_the_delay(role_arn: str) -> None:
    """Until the role's last change has propagated (the server runs in this process)."""
    CLOCK.let_pass(max(0.0, iam_propagation.settled_at(role_arn) + 0.05 - CLOCK.time()))


def test_a_new_role_cannot_be_assumed_until_iam_has_propagated_it(url: str) -> None:
    arn = client(url, "iam").create_role(RoleName="fresh", AssumeRolePolicyDocument=json.dumps(ROOT_TRUST)
                                         )["Role"]["Arn"]
    sts = client(url, "sts")
    error = refusal(sts.assume_role, RoleArn=arn, RoleSessionName="early")
    assert error.code == "AccessDenied"
    assert error.message.startswith(f"User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: "
                                    f"sts:AssumeRole on resource: {arn}")
    _after_the_delay(arn)
    assert sts.assume_role(RoleArn=arn, RoleSessionName="later")["AssumedRoleUser"]["Arn"].endswith("/fresh/later")


def test_from_first_use_a_new_role_propagates_only_once_the_delay_has_passed_after_its_first_reader(url: str) -> None:
    iam_propagation.configure(DELAY, first_use=True)
    try:
        arn = client(url, "iam").create_role(RoleName="unread", AssumeRolePolicyDocument=json.dumps(ROOT_TRUST)
                                             )["Role"]["Arn"]
        CLOCK.let_pass(DELAY + 0.2)  # made longer ago than the delay, but read by no service yet
        sts, first_read = client(url, "sts"), CLOCK.time()
        assert refusal(sts.assume_role, RoleArn=arn, RoleSessionName="first").code == "AccessDenied"
        assert refusal(sts.assume_role, RoleArn=arn, RoleSessionName="second").code == "AccessDenied"
        _after_the_delay(arn)
        assert CLOCK.time() - first_read >= DELAY
        assert sts.assume_role(RoleArn=arn, RoleSessionName="later")["AssumedRoleUser"]["Arn"].endswith("/unread/later")
    finally:
        iam_propagation.configure(DELAY)


def test_from_first_use_a_role_a_stack_makes_for_later_use_is_unread_when_the_stack_completes(url: str) -> None:
    """Making the role (CreateRole, then its inline policy, each authorized as the stack's caller) is no read by
    a service: the role's first user, however late it comes, still meets it unpropagated."""
    iam_propagation.configure(DELAY, first_use=True)
    try:
        cloudformation = client(url, "cloudformation")
        cloudformation.create_stack(StackName="later-use", Capabilities=["CAPABILITY_IAM"], TemplateBody=json.dumps(
            {"Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {
                "AssumeRolePolicyDocument": ROOT_TRUST, "Policies": [{"PolicyName": "list", "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}}]}}}}))
        arn = client(url, "iam").get_role(RoleName=cloudformation.describe_stack_resource(
            StackName="later-use", LogicalResourceId="Role")["StackResourceDetail"]["PhysicalResourceId"]
        )["Role"]["Arn"]
        CLOCK.let_pass(DELAY + 0.2)
        assert refusal(client(url, "sts").assume_role, RoleArn=arn, RoleSessionName="first").code == "AccessDenied"
    finally:
        iam_propagation.configure(DELAY)


def test_lambda_refuses_a_role_it_cannot_assume_yet(url: str) -> None:
    arn = client(url, "iam").create_role(RoleName="runner", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
                                         )["Role"]["Arn"]
    function = {"FunctionName": "fn", "Runtime": "python3.12", "Role": arn, "Handler": "app.handler",
                "Code": {"ZipFile": function_zip({"app.py": ECHO_HANDLER})}}
    error = refusal(client(url, "lambda").create_function, **function)
    assert error == ("InvalidParameterValueException", "The role defined for the function cannot be assumed by Lambda.")
    _after_the_delay(arn)
    assert client(url, "lambda").create_function(**function)["Role"] == arn


def test_a_policy_change_is_not_in_effect_until_it_has_propagated(url: str) -> None:
    iam = client(url, "iam")
    arn = iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps(ROOT_TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName="app", PolicyName="list", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}))
    _after_the_delay(arn)
    found = client(url, "sts").assume_role(RoleArn=arn, RoleSessionName="app-session")["Credentials"]
    session = {"aws_access_key_id": found["AccessKeyId"], "aws_secret_access_key": found["SecretAccessKey"],
               "aws_session_token": found["SessionToken"]}
    client(url, "s3", session).list_buckets()

    iam.put_role_policy(RoleName="app", PolicyName="queues", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:CreateQueue", "Resource": "*"}]}))
    assert refusal(client(url, "sqs", session).create_queue, QueueName="q").code == "AccessDenied"
    client(url, "s3", session).list_buckets()  # what it could do before the change, it still can
    _after_the_delay(arn)
    assert client(url, "sqs", session).create_queue(QueueName="q")["QueueUrl"].endswith("/q")


def test_cloudformation_retries_until_the_role_it_hands_a_function_has_propagated(url: str) -> None:
    template = {"Resources": {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": LAMBDA_TRUST}},
        "Function": {"Type": "AWS::Lambda::Function", "Properties": {
            "Runtime": "python3.12", "Handler": "index.handler", "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Code": {"ZipFile": "def handler(event, context):\n    return event\n"}}}}}
    cloudformation = client(url, "cloudformation")
    cloudformation.create_stack(StackName="fresh-role", TemplateBody=json.dumps(template),
                                Capabilities=["CAPABILITY_IAM"])
    stack = cloudformation.describe_stacks(StackName="fresh-role")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    # The function's role is one Lambda can assume now (what AWS's handler waited for): a session of it works.
    role = client(url, "lambda").get_function(FunctionName=cloudformation.describe_stack_resource(
        StackName="fresh-role", LogicalResourceId="Function")["StackResourceDetail"]["PhysicalResourceId"]
    )["Configuration"]["Role"]
    assert iam_propagation.settled_at(role) == 0.0


def test_cloudformation_refuses_a_service_role_it_cannot_assume_yet(url: str) -> None:
    trust = {"Version": "2012-10-17", "Statement": [  # as the template's RoleStackExecutionRole trusts it
        {"Effect": "Allow", "Principal": {"Service": "cloudformation.amazonaws.com"}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]}
    iam, cloudformation = client(url, "iam"), client(url, "cloudformation")
    arn = iam.create_role(RoleName="deployer", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    untrusting = iam.create_role(RoleName="not-for-cloudformation",
                                 AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"]
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    for role in (arn, untrusting):
        error = refusal(cloudformation.create_stack, StackName="served", TemplateBody=body, RoleARN=role)
        assert error == ("ValidationError", f"Role {role} is invalid or cannot be assumed")
    _after_the_delay(untrusting)
    assert refusal(cloudformation.create_stack, StackName="served", TemplateBody=body,
                   RoleARN=untrusting).code == "ValidationError"  # its trust policy never admits CloudFormation
    cloudformation.create_stack(StackName="served", TemplateBody=body, RoleARN=arn)
    assert cloudformation.describe_stacks(StackName="served")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_the_recorded_iam_methods_keep_their_signatures_so_a_stacks_service_role_is_still_enforced() -> None:
    """IAM enforcement of a stack's service role (``enforcement.cloudformation``) binds each IAM call's arguments by
    name to find the role and its tags; ``local serve`` installs this module's wrappers first, and a bare
    (*args, **kwargs) wrapper hid them, and a call whose resource cannot be named goes unchecked: CloudFormation
    created and changed roles whatever its service role allowed."""
    from moto.iam.models import IAMBackend

    iam_propagation.install()
    for name in ("create_role", "delete_role", "put_role_policy", "delete_role_policy", "attach_role_policy",
                 "detach_role_policy", "update_assume_role_policy", "put_role_permissions_boundary",
                 "delete_role_permissions_boundary"):
        assert "role_name" in inspect.signature(getattr(IAMBackend, name)).parameters, name
