"""API calls to IAM authorizations: the reference's actions and ARN formats, and the documented exceptions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from local_cloud.iam import ResourcePolicyKind, sar
from local_cloud.iam.requests import ApiCall, Check, RoleInfo, Unresolvable, checks

ACCOUNT, REGION = "123456789012", "us-east-1"
# The organization FakeCloud knows is managed by ACCOUNT; DELEGATED_ADMIN is a member administering it.
MANAGEMENT, DELEGATED_ADMIN = ACCOUNT, "210987654321"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"
KEY_POLICY = json.dumps(
    {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ]
    }
)


# The Expel role StackSet's template, in YAML with short-form tags as roles/expel-role.yaml is.
EXPEL_ROLE_TEMPLATE = """
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties: {RoleName: !Ref RoleName}
  ReadOnly:
    Type: AWS::IAM::Policy
    Properties: {Roles: [!Ref Role]}
  Extra:
    Type: AWS::IAM::Policy
    Properties: {Roles: [!Ref Role]}
"""
STACK_SET = "arn:aws:cloudformation:us-east-1:123456789012:stackset/s1-expel-role:1111-2222"
PUBLIC_TYPE = "arn:aws:cloudformation:us-east-1::type/resource/"


class FakeCloud:
    """What a local cloud would hold: one key (alias alias/ours), one role, one stack, an SSE-KMS bucket."""

    def kms_key_id(self, ref: str, region: str) -> str | None:
        return KEY_ID if ref in (KEY_ID, KEY_ARN, "alias/ours", f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/ours") else None

    def kms_key_metadata(self, key_arn: str) -> Mapping[str, str] | None:
        return {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "Origin": "AWS_KMS"}

    def tags(self, arn: str) -> Mapping[str, str] | None:
        return {"expel-onboarding:stack": "s1"} if arn in (KEY_ARN, "arn:aws:iam::123456789012:role/r") else {}

    def resource_policy(self, arn: str) -> str | None:
        return KEY_POLICY if arn == KEY_ARN else None

    def role(self, name_or_arn: str, assuming: bool = False) -> RoleInfo | None:
        if name_or_arn.rsplit("/", 1)[-1] != "r":
            return None
        return RoleInfo(
            f"arn:aws:iam::{ACCOUNT}:role/r",
            "/",
            "arn:aws:iam::123456789012:policy/b",
            '{"Statement": []}',
            {"expel-onboarding:stack": "s1"},
        )

    def stack_id(self, name_or_arn: str, region: str) -> str | None:
        return (
            f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/s1-expel-role/abc"
            if "s1-expel-role" in name_or_arn
            else None
        )

    def stack_set_id(self, name: str, region: str) -> str | None:
        return f"{name}:1111-2222" if name == "s1-expel-role" else None

    def stack_set_template(self, name: str, region: str) -> str | None:
        return EXPEL_ROLE_TEMPLATE if name == "s1-expel-role" else None

    def secret_id(self, ref: str, region: str) -> str | None:
        return "key-AbCdEf"

    def organization(self) -> tuple[str, str] | None:
        return "o-abc", MANAGEMENT

    def bucket_kms_key(self, bucket: str) -> str | None:
        return KEY_ARN if bucket == "logs" else None

    def bucket_account(self, bucket: str) -> str | None:
        return {"logs": ACCOUNT, "someone-elses": "999999999999"}.get(bucket)

    def object_kms_key(self, bucket: str, key: str, version_id: str | None) -> str | None:
        return KEY_ARN if bucket == "logs" else None

    def queue_kms_key(self, queue_arn: str) -> str | None:
        return KEY_ARN if queue_arn.endswith(":q") else None


def run(service: str, operation: str, **params: Any) -> list[Check]:
    return checks(ApiCall(service, operation, params, REGION, ACCOUNT), FakeCloud())


def pairs(found: list[Check]) -> list[tuple[str, str]]:
    return [(c.action, c.resource) for c in found]


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        ("s3", "PutBucketNotificationConfiguration", {"Bucket": "b"}, [("s3:PutBucketNotification", "arn:aws:s3:::b")]),
        ("s3", "GetBucketNotificationConfiguration", {"Bucket": "b"}, [("s3:GetBucketNotification", "arn:aws:s3:::b")]),
        ("s3", "ListObjectVersions", {"Bucket": "b"}, [("s3:ListBucketVersions", "arn:aws:s3:::b")]),
        ("s3", "HeadBucket", {"Bucket": "b"}, [("s3:ListBucket", "arn:aws:s3:::b")]),
        ("s3", "PutBucketEncryption", {"Bucket": "b"}, [("s3:PutEncryptionConfiguration", "arn:aws:s3:::b")]),
        ("s3", "GetPublicAccessBlock", {"Bucket": "b"}, [("s3:GetBucketPublicAccessBlock", "arn:aws:s3:::b")]),
        ("s3", "PutPublicAccessBlock", {"Bucket": "b"}, [("s3:PutBucketPublicAccessBlock", "arn:aws:s3:::b")]),
        ("s3", "GetObjectLockConfiguration", {"Bucket": "b"},
         [("s3:GetBucketObjectLockConfiguration", "arn:aws:s3:::b")]),
        ("s3", "PutObjectLockConfiguration", {"Bucket": "b"},
         [("s3:PutBucketObjectLockConfiguration", "arn:aws:s3:::b")]),
        (
            "s3",
            "DeleteObject",
            {"Bucket": "b", "Key": "k", "VersionId": "v"},
            [("s3:DeleteObjectVersion", "arn:aws:s3:::b/k")],
        ),
        ("s3", "ListBuckets", {}, [("s3:ListAllMyBuckets", "*")]),
        (
            "lambda",
            "Invoke",
            {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:f"},
            [("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:123456789012:function:f")],
        ),
        (
            "kms",
            "CreateAlias",
            {"AliasName": "alias/ours", "TargetKeyId": KEY_ID},
            [("kms:CreateAlias", "arn:aws:kms:us-east-1:123456789012:alias/ours"), ("kms:CreateAlias", KEY_ARN)],
        ),
        (
            "sns",
            "Unsubscribe",
            {"SubscriptionArn": "arn:aws:sns:us-east-1:123456789012:t:1111"},
            [("sns:Unsubscribe", "arn:aws:sns:us-east-1:123456789012:t")],
        ),
        (
            "sqs",
            "GetQueueAttributes",
            {"QueueUrl": "http://localhost/123456789012/q2"},
            [("sqs:GetQueueAttributes", "arn:aws:sqs:us-east-1:123456789012:q2")],
        ),
        (
            "cloudformation",
            "DescribeStacks",
            {"StackName": "s1-expel-role"},
            [
                (
                    "cloudformation:DescribeStacks",
                    "arn:aws:cloudformation:us-east-1:123456789012:stack/s1-expel-role/abc",
                )
            ],
        ),
        (
            "states",
            "GetExecutionHistory",
            {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:sm:e1"},
            [("states:GetExecutionHistory", "arn:aws:states:us-east-1:123456789012:execution:sm:e1")],
        ),
        ("sts", "GetCallerIdentity", {}, []),
        ("sqs", "ChangeMessageVisibilityBatch", {"QueueUrl": "http://localhost/123456789012/q2"},
         [("sqs:ChangeMessageVisibility", "arn:aws:sqs:us-east-1:123456789012:q2")]),
        ("sqs", "DeleteMessageBatch", {"QueueUrl": "http://localhost/123456789012/q2"},
         [("sqs:DeleteMessage", "arn:aws:sqs:us-east-1:123456789012:q2")]),
        ("sqs", "SendMessageBatch", {"QueueUrl": "http://localhost/123456789012/q2"},
         [("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q2")]),
        ("sns", "PublishBatch", {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t"},
         [("sns:Publish", "arn:aws:sns:us-east-1:123456789012:t")]),
        (
            "logs",
            "ListTagsForResource",
            {"resourceArn": "arn:aws:logs:us-east-1:123456789012:log-group:trail-events:*"},
            [("logs:ListTagsForResource", "arn:aws:logs:us-east-1:123456789012:log-group:trail-events")],
        ),
        (
            "logs",
            "CreateLogGroup",
            {"logGroupName": "trail-events", "tags": {"k": "v"}},
            [
                ("logs:CreateLogGroup", "arn:aws:logs:us-east-1:123456789012:log-group:trail-events"),
                ("logs:TagResource", "arn:aws:logs:us-east-1:123456789012:log-group:trail-events"),
            ],
        ),
        ("logs", "DescribeLogGroups", {"logGroupNamePrefix": "trail-events"}, [("logs:DescribeLogGroups", "*")]),
        ("organizations", "ListChildren", {"ParentId": "r-ab12", "ChildType": "ORGANIZATIONAL_UNIT"},
         [("organizations:ListChildren", "arn:aws:organizations::123456789012:root/o-abc/r-ab12")]),
        ("organizations", "ListAccountsForParent", {"ParentId": "ou-ab12-cdef3456"},
         [("organizations:ListAccountsForParent", "arn:aws:organizations::123456789012:ou/o-abc/ou-ab12-cdef3456")]),
        ("cloudformation", "DetectStackSetDrift", {"StackSetName": "s1-expel-role"},
         [("cloudformation:DetectStackSetDrift",
           "arn:aws:cloudformation:us-east-1:123456789012:stackset/s1-expel-role:1111-2222")]),
    ],
)
def test_operation_maps_to_the_documented_action_and_resource(
    service: str, operation: str, params: dict, expected: list
) -> None:
    assert pairs(run(service, operation, **params)) == expected


def test_every_exception_names_an_action_the_reference_has() -> None:
    for (service, operation), actions in sar.OPERATION_ACTIONS.items():
        for action in actions:
            assert sar.action(action) is not None, (service, operation, action)


def test_unknown_operation_is_refused_not_guessed() -> None:
    with pytest.raises(sar.UnknownAction):
        run("kms", "MakeCoffee")


def test_create_key_carries_key_spec_usage_origin_and_needs_tag_resource_for_its_tags() -> None:
    found = run("kms", "CreateKey", Tags=[{"TagKey": "expel-onboarding:stack", "TagValue": "s1"}])
    assert pairs(found) == [("kms:CreateKey", "*"), ("kms:TagResource", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*")]
    create = found[0].context
    assert create.get("kms:KeySpec") == ("SYMMETRIC_DEFAULT",)
    assert create.get("kms:keyusage") == ("ENCRYPT_DECRYPT",)
    assert create.get("kms:keyorigin") == ("AWS_KMS",)
    assert create.get("aws:RequestTag/expel-onboarding:stack") == ("s1",)
    assert create.get("aws:TagKeys") == ("expel-onboarding:stack",)
    assert create.get("kms:bypasspolicylockoutsafetycheck") is None


def test_key_actions_see_the_keys_tags_and_key_policy_required() -> None:
    (found,) = run("kms", "EnableKeyRotation", KeyId="alias/ours")
    assert found.resource == KEY_ARN
    assert found.context.get("aws:ResourceTag/expel-onboarding:stack") == ("s1",)
    assert found.resource_policy is not None and found.resource_policy.kind == ResourcePolicyKind.REQUIRED


def test_missing_key_is_unresolvable() -> None:
    with pytest.raises(Unresolvable, match="KMS key alias/other"):
        run("kms", "DescribeKey", KeyId="alias/other")


def test_create_stack_with_a_role_needs_pass_role_to_cloudformation_and_tag_resource_for_tags() -> None:
    found = run(
        "cloudformation",
        "CreateStack",
        StackName="other",
        RoleARN="arn:aws:iam::123456789012:role/r",
        Tags=[{"Key": "expel-onboarding:stack", "Value": "s1"}],
    )
    assert pairs(found) == [
        ("cloudformation:CreateStack", "arn:aws:cloudformation:us-east-1:123456789012:stack/other/*"),
        ("iam:PassRole", "arn:aws:iam::123456789012:role/r"),
        ("cloudformation:TagResource", "arn:aws:cloudformation:us-east-1:123456789012:stack/other/*"),
    ]
    assert found[0].context.get("cloudformation:rolearn") == ("arn:aws:iam::123456789012:role/r",)
    assert found[1].context.get("iam:PassedToService") == ("cloudformation.amazonaws.com",)


@pytest.mark.parametrize(
    ("service", "operation", "params", "to"),
    [
        (
            "lambda",
            "CreateFunction",
            {"FunctionName": "f", "Role": "arn:aws:iam::123456789012:role/r"},
            "lambda.amazonaws.com",
        ),
        (
            "states",
            "CreateStateMachine",
            {"name": "m", "roleArn": "arn:aws:iam::123456789012:role/r"},
            "states.amazonaws.com",
        ),
    ],
)
def test_services_given_a_role_need_pass_role(service: str, operation: str, params: dict, to: str) -> None:
    pass_role = [c for c in run(service, operation, **params) if c.action == "iam:PassRole"]
    assert [c.context.get("iam:passedtoservice") for c in pass_role] == [(to,)]


def test_create_role_carries_the_boundary_and_put_role_policy_the_roles_boundary() -> None:
    create = run("iam", "CreateRole", RoleName="new", PermissionsBoundary="arn:aws:iam::123456789012:policy/b")
    assert create[0].context.get("iam:permissionsboundary") == ("arn:aws:iam::123456789012:policy/b",)
    put = run("iam", "PutRolePolicy", RoleName="r", PolicyName="p", PolicyDocument="{}")
    assert pairs(put) == [("iam:PutRolePolicy", "arn:aws:iam::123456789012:role/r")]
    assert put[0].context.get("iam:PermissionsBoundary") == ("arn:aws:iam::123456789012:policy/b",)


def test_s3_canary_write_to_an_sse_kms_bucket_needs_generate_data_key_via_s3() -> None:
    found = run("s3", "PutObject", Bucket="logs", Key="canary/x")
    assert pairs(found) == [("s3:PutObject", "arn:aws:s3:::logs/canary/x"), ("kms:GenerateDataKey", KEY_ARN)]
    assert found[1].context.get("kms:ViaService") == ("s3.us-east-1.amazonaws.com",)
    assert found[1].context.get("kms:EncryptionContext:aws:s3:arn") == ("arn:aws:s3:::logs",)


def test_sqs_receive_from_an_encrypted_queue_needs_decrypt_via_sqs() -> None:
    found = run("sqs", "ReceiveMessage", QueueUrl="http://localhost/123456789012/q")
    assert pairs(found) == [("sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:123456789012:q"), ("kms:Decrypt", KEY_ARN)]
    assert found[1].context.get("kms:viaservice") == ("sqs.us-east-1.amazonaws.com",)


def test_bucket_requests_carry_the_bucket_owners_account_as_s3_does() -> None:
    # S3 ARNs name no account: a grant on arn:aws:s3:::* can be held to one account's buckets only through
    # s3:ResourceAccount / aws:ResourceAccount, which S3 fills with the bucket owner's account.
    (ours,) = run("s3", "GetBucketNotificationConfiguration", Bucket="logs")
    assert ours.context.get("s3:ResourceAccount") == (ACCOUNT,)
    assert ours.context.get("aws:ResourceAccount") == (ACCOUNT,)
    (theirs,) = run("s3", "PutBucketNotificationConfiguration", Bucket="someone-elses", NotificationConfiguration={})
    assert theirs.context.get("s3:ResourceAccount") == ("999999999999",)


def test_list_bucket_versions_carries_the_prefix() -> None:
    (found,) = run("s3", "ListObjectVersions", Bucket="b", Prefix="expel-onboarding-canary/")
    assert found.context.get("s3:prefix") == ("expel-onboarding-canary/",)


def test_enable_service_access_carries_the_service_principal() -> None:
    (found,) = run("organizations", "EnableAWSServiceAccess", ServicePrincipal="cloudtrail.amazonaws.com")
    assert found.context.get("organizations:ServicePrincipal") == ("cloudtrail.amazonaws.com",)


def test_create_service_linked_role_names_the_service() -> None:
    (found,) = run("iam", "CreateServiceLinkedRole", AWSServiceName="cloudtrail.amazonaws.com")
    assert found.context.get("iam:AWSServiceName") == ("cloudtrail.amazonaws.com",)
    assert found.resource == "arn:aws:iam::123456789012:role/aws-service-role/cloudtrail.amazonaws.com/*"


def test_assume_role_is_checked_against_the_trust_policy_with_the_external_id() -> None:
    (found,) = run(
        "sts", "AssumeRole", RoleArn="arn:aws:iam::123456789012:role/r", RoleSessionName="s", ExternalId="guid"
    )
    assert found.resource_policy is not None and found.resource_policy.kind == ResourcePolicyKind.REQUIRED
    assert found.context.get("sts:ExternalId") == ("guid",)


@pytest.mark.parametrize("operation", ["CreateStackInstances", "UpdateStackInstances", "DeleteStackInstances"])
def test_stack_instance_operations_are_authorized_on_the_stack_set_and_each_resource_type_of_its_template(
        operation: str) -> None:
    found = run("cloudformation", operation, StackSetName="s1-expel-role", Regions=[REGION],
                DeploymentTargets={"OrganizationalUnitIds": ["r-abcd"]})
    assert pairs(found) == [
        (f"cloudformation:{operation}", STACK_SET),
        (f"cloudformation:{operation}",
         "arn:aws:cloudformation:us-east-1:123456789012:stackset-target/s1-expel-role:*"),
        (f"cloudformation:{operation}", f"{PUBLIC_TYPE}AWS-IAM-Role"),
        (f"cloudformation:{operation}", f"{PUBLIC_TYPE}AWS-IAM-Policy"),
    ]


def test_update_stack_set_is_authorized_on_the_types_of_the_template_it_gives() -> None:
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}, "Mine": {"Type": "Acme::Thing::Widget"}}})
    found = run("cloudformation", "UpdateStackSet", StackSetName="s1-expel-role", TemplateBody=body)
    assert [r for a, r in pairs(found) if ":type/" in r] == [
        f"{PUBLIC_TYPE}AWS-SNS-Topic",
        "arn:aws:cloudformation:us-east-1:123456789012:type/resource/Acme-Thing-Widget",  # a private type's account
    ]


def test_describe_stack_set_is_not_authorized_on_resource_types() -> None:
    found = run("cloudformation", "DescribeStackSet", StackSetName="s1-expel-role")
    assert pairs(found) == [("cloudformation:DescribeStackSet", STACK_SET)]


def test_a_grant_on_the_stack_set_alone_is_refused_on_its_templates_resource_types() -> None:
    from local_cloud.iam import Identity, NamedPolicy, Principal, Request, evaluate

    def decisions(resources: list[str]) -> list[tuple[str, bool]]:
        grant = NamedPolicy.of("role/r inline policy p", {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "cloudformation:CreateStackInstances", "Resource": resources}]})
        who = Identity(Principal.session(f"arn:aws:iam::{ACCOUNT}:role/r", "s"), (grant,), None)
        found = run("cloudformation", "CreateStackInstances", StackSetName="s1-expel-role", Regions=[REGION])
        return [(c.resource, evaluate(who, Request(c.action, c.resource, c.context)).allowed) for c in found]

    stack_set_only = [STACK_SET, "arn:aws:cloudformation:us-east-1:123456789012:stackset-target/s1-expel-role:*"]
    assert [allowed for _, allowed in decisions(stack_set_only)] == [True, True, False, False]
    # The template's grant: its "*" account matches a public type's empty one.
    with_types = [*stack_set_only, "arn:aws:cloudformation:us-east-1:*:type/resource/AWS-IAM-*"]
    assert all(allowed for _, allowed in decisions(with_types))


def test_listing_a_parent_is_authorized_on_that_ou_or_root_not_on_every_resource() -> None:
    # The Service Authorization Reference scopes ListAccountsForParent/ListOrganizationalUnitsForParent to the
    # parent's ARN: a grant on one OU must not let a caller list another OU or the root.
    (ou,) = run("organizations", "ListAccountsForParent", ParentId="ou-ab12-cd34ef56")
    (root,) = run("organizations", "ListOrganizationalUnitsForParent", ParentId="r-ab12")
    assert ou.resource == f"arn:aws:organizations::{ACCOUNT}:ou/o-abc/ou-ab12-cd34ef56"
    assert root.resource == f"arn:aws:organizations::{ACCOUNT}:root/o-abc/r-ab12"


def test_an_organizations_resources_carry_the_management_accounts_id_whoever_calls() -> None:
    # An OU's ARN is arn:aws:organizations::<management account id>:ou/o-.../ou-... (Organizations API reference,
    # OrganizationalUnit.Arn); a delegated administrator lists it under that ARN, not one of its own account.
    call = ApiCall("organizations", "ListAccountsForParent", {"ParentId": "ou-ab12-cd34ef56"}, REGION, DELEGATED_ADMIN)
    (ou,) = checks(call, FakeCloud())
    assert ou.resource == f"arn:aws:organizations::{MANAGEMENT}:ou/o-abc/ou-ab12-cd34ef56"
    assert ou.context.get("aws:ResourceAccount") == (MANAGEMENT,)
