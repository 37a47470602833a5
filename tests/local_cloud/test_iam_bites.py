"""Enforcement bites: each kind of rule in the template's grants refuses what IAM refuses.

The local cloud's enforcing server runs in this process (moto's WSGI app behind the IAM middleware, no
Lambda runner), and each case calls it as a Lambda function would: a session of a role holding the
template's own grant for that function (the intrinsics resolved as in ``test_template_policies``),
assumed as ``lambda.amazonaws.com``. Every case runs twice: with the grant as the template writes it the
call succeeds (so the refusal is not the local cloud refusing everything), and with one thing changed (an
action removed, another resource, a resource without our tag, a request without our tag, a direct call
where the grant needs one through a service, a role passed to another service) it fails with the
service's own error code and AWS's message naming the session, the action and the resource.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local_cloud.enforcement import credentials, services
from tests.local_cloud.harness import client, enforcing_cloud, reset
from tests.organization import STACKSETS, member_client
from tests.support import DATA_PATH_POLICY, ECHO_HANDLER, function_zip, refusal
from tests.unit.test_template_policies import ACCOUNT, REGION, RESOLVED, STACK

OWNERSHIP = {"TagKey": "expel-onboarding:stack", "TagValue": STACK}
BUCKET, QUEUE = "expel-logs-sample", "ExpelCloudTrailQueue"  # the resolved grants' BucketName, QueueName
PASSED_ROLE = f"{STACK}-RoleStackExecutionRole-AbCdEf012345"
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def grant(name: str) -> dict[str, Any]:
    """A template grant, resolved for the default deployment given a BucketName: every other condition of the
    template (Organizations mode, an existing trail...) false."""
    found = [p.document for p in RESOLVED if p.name.startswith(name)
             and all(flag == "HasBucketName=T" or (flag.endswith("=F") and flag != "HasBucketName=F")
                     for flag in _flags(p.name))]
    assert len(found) == 1, f"{name}: {len(found)} resolved grants"
    return copy.deepcopy(found[0])


def _flags(name: str) -> list[str]:
    last = name.rsplit("[", 1)[-1].rstrip("]")
    return last.split(",") if "=" in last else []


def without(document: dict[str, Any], action: str) -> dict[str, Any]:
    """The grant minus one action (a statement left with none is dropped)."""
    statements = []
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        kept = [a for a in actions if a != action]
        if kept:
            statements.append({**statement, "Action": kept})
    return {**document, "Statement": statements}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """The enforcing local cloud in this process, on a free port (its Lambda role check on)."""
    with enforcing_cloud() as url:
        services.install_lambda_role_check()
        yield url


@pytest.fixture(autouse=True)
def _fresh_cloud(url: str) -> None:
    """Each case starts from an empty account."""
    reset(url)


def root(url: str, service: str) -> Any:
    """A client with keys IAM never issued: the account's root user."""
    return client(url, service)


@dataclass(frozen=True)
class Function:
    """A Lambda function's execution role session, as the local cloud gives it to the function."""

    url: str
    role: str
    session: credentials.SessionCredentials

    def client(self, service: str) -> Any:
        return client(self.url, service, {"aws_access_key_id": self.session.access_key_id,
                                          "aws_secret_access_key": self.session.secret_access_key,
                                          "aws_session_token": self.session.session_token})

    def refused(self, action: str, resource: str) -> str:
        return (f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{self.role}/{self.role} is not authorized to perform: "
                f"{action} on resource: {resource} because no identity-based policy allows the {action} action")


def function(url: str, document: dict[str, Any]) -> Function:
    name = f"bite-{uuid.uuid4().hex[:12]}"
    iam = root(url, "iam")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    iam.put_role_policy(RoleName=name, PolicyName="grant", PolicyDocument=json.dumps(document))
    session = credentials.assume(f"arn:aws:iam::{ACCOUNT}:role/{name}", "lambda.amazonaws.com", name)
    return Function(url, name, session)


def key(url: str, tags: list[dict[str, str]]) -> str:
    return str(root(url, "kms").create_key(Tags=tags)["KeyMetadata"]["Arn"])


# ---------------------------------------------------------------------------------------------- the bites

def test_a_missing_action_is_refused(url: str) -> None:
    """Step 2 without s3:PutEncryptionConfiguration cannot set the bucket's default encryption."""
    root(url, "s3").create_bucket(Bucket=BUCKET)
    rule = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
    full = function(url, grant("template.yaml:Step02BucketEncryptionFunction"))
    full.client("s3").put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration=rule)

    cut = function(url, without(grant("template.yaml:Step02BucketEncryptionFunction"), "s3:PutEncryptionConfiguration"))
    s3 = cut.client("s3")
    error = refusal(lambda: s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration=rule))
    assert error.code == "AccessDenied"
    assert error.message == cut.refused("s3:PutEncryptionConfiguration", f"arn:aws:s3:::{BUCKET}")


def test_a_resource_the_grant_does_not_name_is_refused(url: str) -> None:
    """Step 5 may create the onboarding's queue, not a queue of another name."""
    step5 = function(url, grant("template.yaml:Step05SqsQueueFunction"))
    step5.client("sqs").create_queue(QueueName=QUEUE)

    error = refusal(lambda: step5.client("sqs").create_queue(QueueName="SomeoneElsesQueue"))
    assert error.code == "AccessDenied"
    assert error.message == step5.refused("sqs:CreateQueue", f"arn:aws:sqs:{REGION}:{ACCOUNT}:SomeoneElsesQueue")


def test_a_key_without_our_ownership_tag_is_refused(url: str) -> None:
    """Step 4 reads and writes only key policies of keys carrying this stack's tag (aws:ResourceTag)."""
    ours, customers = key(url, [OWNERSHIP]), key(url, [{"TagKey": "team", "TagValue": "security"}])
    step4 = function(url, grant("template.yaml:Step04KeyPolicyFunction"))
    step4.client("kms").get_key_policy(KeyId=ours, PolicyName="default")

    error = refusal(lambda: step4.client("kms").get_key_policy(KeyId=customers, PolicyName="default"))
    assert error.code == "AccessDeniedException"
    assert error.message == step4.refused("kms:GetKeyPolicy", customers)


@pytest.mark.parametrize(("tags", "bypass"), [
    pytest.param([], False, id="no-tag"),
    pytest.param([{**OWNERSHIP, "TagValue": "another-stack"}], False, id="another-stacks-tag"),
    pytest.param([OWNERSHIP], True, id="lockout-bypass"),
])
def test_create_key_without_our_request_tag_or_with_the_lockout_bypass_is_refused(
        url: str, tags: list[dict[str, str]], bypass: bool) -> None:
    """Step 1 may create a key only carrying our tag (aws:RequestTag), never bypassing the lockout check."""
    step1 = function(url, grant("template.yaml:Step01TrailFunction"))
    step1.client("kms").create_key(Tags=[OWNERSHIP])

    arguments: dict[str, Any] = {"Tags": tags} if tags else {}
    if bypass:
        arguments["BypassPolicyLockoutSafetyCheck"] = True
    error = refusal(lambda: step1.client("kms").create_key(**arguments))
    assert error.code == "AccessDeniedException"
    assert error.message == step1.refused("kms:CreateKey", "*")


def test_decrypt_outside_s3_and_sqs_is_refused(url: str) -> None:
    """The Expel role's kms:Decrypt holds only through S3 and SQS (kms:ViaService), never called directly."""
    key_arn = key(url, [OWNERSHIP])
    queue = root(url, "sqs").create_queue(QueueName=QUEUE, Attributes={"KmsMasterKeyId": key_arn})["QueueUrl"]
    ciphertext = root(url, "kms").encrypt(KeyId=key_arn, Plaintext=b"log")["CiphertextBlob"]
    data_path = next(p.document for p in RESOLVED
                     if p.name.startswith(f"roles/expel-role.yaml:ExpelRole.{DATA_PATH_POLICY}"))
    expel = function(url, json.loads(json.dumps(data_path).replace(
        f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab", key_arn)))
    expel.client("sqs").receive_message(QueueUrl=queue, WaitTimeSeconds=0)  # kms:Decrypt via sqs

    error = refusal(lambda: expel.client("kms").decrypt(KeyId=key_arn, CiphertextBlob=ciphertext))
    assert error.code == "AccessDeniedException"
    assert error.message == expel.refused("kms:Decrypt", key_arn)


def test_passing_the_role_to_another_service_is_refused(url: str) -> None:
    """Step 8 may pass the role stack's service role to CloudFormation only (iam:PassedToService)."""
    # The role stack's service role, trusting CloudFormation (a role it cannot assume is refused at CreateStack).
    [trust] = [p.document for p in RESOLVED if p.name == "template.yaml:RoleStackExecutionRole trust"]
    role_arn = root(url, "iam").create_role(
        RoleName=PASSED_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    document = grant("template.yaml:Step08ExpelRoleFunction")
    # Even given lambda:CreateFunction, the role cannot go to Lambda: PassRole is what refuses.
    document["Statement"].append({"Effect": "Allow", "Action": "lambda:CreateFunction", "Resource": "*"})
    step8 = function(url, document)
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    step8.client("cloudformation").create_stack(StackName=f"{STACK}-expel-role", RoleARN=role_arn,
                                                TemplateBody=json.dumps(template))

    error = refusal(lambda: step8.client("lambda").create_function(
        FunctionName="borrowed-role", Runtime="python3.13", Role=role_arn, Handler="app.handler",
        Code={"ZipFile": function_zip({"app.py": ECHO_HANDLER})}))
    assert error.code == "AccessDeniedException"
    assert error.message == step8.refused("iam:PassRole", role_arn)


def test_a_role_whose_trust_policy_does_not_admit_lambda_cannot_be_a_functions_role(url: str) -> None:
    """Lambda assumes a function's execution role: CreateFunction refuses one whose trust policy does not let
    lambda.amazonaws.com assume it, with Lambda's message."""
    iam, lam = root(url, "iam"), root(url, "lambda")
    states_only = json.loads(json.dumps(LAMBDA_TRUST).replace("lambda.amazonaws.com", "states.amazonaws.com"))
    good = iam.create_role(RoleName="bite-lambda-role", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    bad = iam.create_role(RoleName="bite-states-role", AssumeRolePolicyDocument=json.dumps(states_only))
    code = {"Runtime": "python3.13", "Handler": "app.handler",
            "Code": {"ZipFile": function_zip({"app.py": ECHO_HANDLER})}}
    lam.create_function(FunctionName="bite-good", Role=good["Role"]["Arn"], **code)

    error = refusal(lambda: lam.create_function(FunctionName="bite-bad", Role=bad["Role"]["Arn"], **code))
    assert error.code == "InvalidParameterValueException"
    assert error.message == "The role defined for the function cannot be assumed by Lambda."
    with pytest.raises(credentials.RoleNotAssumable):
        credentials.assume(bad["Role"]["Arn"], "lambda.amazonaws.com", "bite-bad")




def test_the_accounts_block_public_access_is_read_through_s3_control_with_its_own_action(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 Control signs as s3 and names the account in the host (``<account>.<endpoint>``, which the Lambda
    runtime resolves as the endpoint); IAM authorizes it as s3:GetAccountPublicAccessBlock."""
    import socket

    from local_cloud import _lambda_bootstrap

    monkeypatch.setattr(socket, "getaddrinfo", socket.getaddrinfo)  # undone after the test
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    _lambda_bootstrap.resolve_account_hosts()
    allowed = function(url, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetAccountPublicAccessBlock", "Resource": "*"}]})
    error = refusal(lambda: allowed.client("s3control").get_public_access_block(AccountId=ACCOUNT))
    assert error.code == "NoSuchPublicAccessBlockConfiguration"  # authorized: S3 answers there is none

    other = function(url, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetBucketPublicAccessBlock", "Resource": "*"}]})
    error = refusal(lambda: other.client("s3control").get_public_access_block(AccountId=ACCOUNT))
    assert error.code == "AccessDenied"
    assert "s3:GetAccountPublicAccessBlock" in error.message


# ------------------------------------------------------------------ a delegated administrator's Organizations grants
# What a grant lists the organization with: (the template's function, the conditions it is resolved for, the
# Organizations read its code makes on an OU).
ORGANIZATION_READS = [
    pytest.param("PreflightFunction", {"IsOrganizationMode": "T"}, "describe_organizational_unit",
                 id="preflight-OrganizationTargetOuIds"),
    pytest.param("PreflightFunction", {"HasLogFilterOu": "T"}, "list_accounts_for_parent",
                 id="preflight-LogFilterOrganizationalUnitId"),
    pytest.param("Step07BucketNotificationFunction", {"HasLogFilterOu": "T"}, "describe_organizational_unit",
                 id="step07-LogFilterOrganizationalUnitId"),
    pytest.param("DriftCheckFunction", {"HasLogFilterOu": "T", "IsOrganizationMode": "F"},
                 "list_organizational_units_for_parent", id="drift-check-LogFilterOrganizationalUnitId"),
    pytest.param("Step08ExpelRoleFunction", {"IsOrganizationMode": "T"}, "list_accounts_for_parent",
                 id="step08-targets"),
    pytest.param("Step08ExpelRoleStatusFunction", {"IsOrganizationMode": "T"}, "list_accounts_for_parent",
                 id="step08-status-targets"),
]
SAMPLE_FILTER_OU = "ou-ab12-cd34ef56"  # test_template_policies' LogFilterOrganizationalUnitId


def org_grant(name: str, flags: dict[str, str]) -> dict[str, Any]:
    """A template grant resolved with these conditions (the others do not change its Organizations statements)."""
    for resolved in RESOLVED:
        if resolved.name.startswith(f"template.yaml:{name}.Policies"):
            held = dict(flag.split("=") for flag in _flags(resolved.name))
            if all(held.get(k) == v for k, v in flags.items()):
                return copy.deepcopy(resolved.document)
    raise AssertionError(f"{name}: no grant resolved for {flags}")


def delegated_administrator(url: str) -> str:
    """A member account of ``url``'s organization (ACCOUNT manages it), registered as StackSets delegated
    administrator."""
    org = root(url, "organizations")
    admin = org.create_account(AccountName="admin", Email="admin@example.com")["CreateAccountStatus"]["AccountId"]
    org.register_delegated_administrator(AccountId=admin, ServicePrincipal=STACKSETS)
    return str(admin)


def function_in(url: str, account: str, document: dict[str, Any]) -> Function:
    """A function in a member account whose role holds ``document``, resolved for that account (the stack's)."""
    iam = member_client(root(url, "sts"), account, "iam", endpoint_url=url, region_name=REGION)
    name = f"bite-{uuid.uuid4().hex[:12]}"
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    iam.put_role_policy(RoleName=name, PolicyName="grant",
                        PolicyDocument=json.dumps(document).replace(f":{ACCOUNT}:", f":{account}:"))
    session = credentials.assume(f"arn:aws:iam::{account}:role/{name}", "lambda.amazonaws.com", name)
    return Function(url, name, session)


@pytest.mark.parametrize(("name", "flags", "read"), ORGANIZATION_READS)
def test_a_delegated_administrator_reads_ous_whose_arns_name_the_management_account(
        url: str, name: str, flags: dict[str, str], read: str) -> None:
    """An OU's ARN carries the management account's id (arn:aws:organizations::<management>:ou/o-.../ou-...),
    whichever account asks. The template's grants name any account's OUs, so a stack in a delegated administrator
    account may read them; a grant naming the stack's own account (`organizations::${AWS::AccountId}:ou/...`, as
    they once did) matches no OU there and is refused."""
    org = root(url, "organizations")
    organization_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    root_id = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root_id, Name="Workloads")["OrganizationalUnit"]["Id"]
    document = json.loads(json.dumps(org_grant(name, flags)).replace(SAMPLE_FILTER_OU, ou))
    arguments = {"OrganizationalUnitId": ou} if read == "describe_organizational_unit" else {"ParentId": ou}

    admin = delegated_administrator(url)
    getattr(function_in(url, admin, document).client("organizations"), read)(**arguments)

    # The stack's own account in the OU's ARN (ACCOUNT becomes the administrator's in ``function_in``).
    own_account = json.loads(json.dumps(document).replace("organizations::*:", f"organizations::{ACCOUNT}:"))
    assert own_account != document
    cut = function_in(url, admin, own_account)
    error = refusal(lambda: getattr(cut.client("organizations"), read)(**arguments))
    assert error.code == "AccessDeniedException"
    action = "organizations:" + "".join(part.title() for part in read.split("_"))
    ou_arn = f"arn:aws:organizations::{ACCOUNT}:ou/{organization_id}/{ou}"
    assert error.message == (
        f"User: arn:aws:sts::{admin}:assumed-role/{cut.role}/{cut.role} is not authorized to perform: {action} on "
        f"resource: {ou_arn} because no identity-based policy allows the {action} action")
