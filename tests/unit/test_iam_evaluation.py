"""IAM's evaluation logic in one account: identity policies, boundaries, resource policies, messages."""

from __future__ import annotations

from local_cloud.iam import (
    Identity,
    Kind,
    NamedPolicy,
    Principal,
    Reason,
    Request,
    ResourcePolicy,
    ResourcePolicyKind,
    Values,
    evaluate,
    resource_policy_allows,
)

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/stack-Step01TrailFunctionRole-ABC"
SESSION = Principal.session(ROLE_ARN, "stack-Step01TrailFunction-XYZ")
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234"
BUCKET = "arn:aws:s3:::logs"


def policy(*statements: dict, source: str = "role/x inline policy p") -> NamedPolicy:
    return NamedPolicy.of(source, {"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: object, resource: object = "*", **extra: object) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: object, resource: object = "*", **extra: object) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def role(*statements: dict, boundary: NamedPolicy | None = None) -> Identity:
    return Identity(SESSION, (policy(*statements),), boundary)


def test_session_arn_names_role_and_session() -> None:
    assert (
        SESSION.arn
        == f"arn:aws:sts::{ACCOUNT}:assumed-role/stack-Step01TrailFunctionRole-ABC/stack-Step01TrailFunction-XYZ"
    )
    assert SESSION.name == "stack-Step01TrailFunctionRole-ABC"


def test_allow_matches_action_wildcards_case_insensitively() -> None:
    decision = evaluate(role(allow("S3:get*", BUCKET)), Request("s3:GetBucketPolicy", BUCKET))
    assert decision.allowed and decision.reason == Reason.ALLOWED_BY_IDENTITY
    assert decision.matched is not None and decision.matched.statement.index == 0


def test_nothing_allows_is_an_implicit_deny_with_awss_message() -> None:
    decision = evaluate(role(allow("s3:GetBucketPolicy", BUCKET)), Request("s3:PutBucketPolicy", BUCKET))
    assert not decision.allowed
    assert decision.message() == (
        f"User: {SESSION.arn} is not authorized to perform: s3:PutBucketPolicy on resource: {BUCKET} "
        "because no identity-based policy allows the s3:PutBucketPolicy action"
    )


def test_resource_must_match_the_statements_resource() -> None:
    identity = role(allow("s3:PutObject", f"{BUCKET}/canary/*"))
    assert evaluate(identity, Request("s3:PutObject", f"{BUCKET}/canary/x.json")).allowed
    assert not evaluate(identity, Request("s3:PutObject", f"{BUCKET}/AWSLogs/x.json")).allowed
    assert not evaluate(identity, Request("s3:PutObject", "*")).allowed


def test_explicit_deny_wins_and_says_so() -> None:
    identity = role(allow("secretsmanager:*"), deny("secretsmanager:GetSecretValue"))
    decision = evaluate(
        identity, Request("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:1:secret:x")
    )
    assert not decision.allowed and decision.reason == Reason.EXPLICIT_DENY_IDENTITY
    assert decision.message().endswith("with an explicit deny in an identity-based policy")


def test_not_action_and_not_resource() -> None:
    identity = role({"Effect": "Allow", "NotAction": "iam:*", "NotResource": BUCKET})
    assert evaluate(identity, Request("s3:PutObject", f"{BUCKET}/k")).allowed
    assert not evaluate(identity, Request("s3:PutObject", BUCKET)).allowed
    assert not evaluate(identity, Request("iam:CreateRole", "*")).allowed


def test_conditions_are_evaluated_from_the_request() -> None:
    identity = role(
        allow(
            "kms:EnableKeyRotation",
            "arn:aws:kms:us-east-1:*:key/*",
            Condition={"StringEquals": {"aws:ResourceTag/expel-onboarding:stack": "s1"}},
        )
    )
    ours = Values(families={"aws:resourcetag/": lambda k: ("s1",) if k == "expel-onboarding:stack" else None})
    assert evaluate(identity, Request("kms:EnableKeyRotation", KEY, ours)).allowed
    assert not evaluate(identity, Request("kms:EnableKeyRotation", KEY, Values())).allowed


def test_a_wildcard_bucket_grant_held_to_this_accounts_buckets() -> None:
    identity = role(allow("s3:PutBucketNotification", "arn:aws:s3:::*",
                          Condition={"StringEquals": {"s3:ResourceAccount": ACCOUNT}}))
    mine = Values({"s3:resourceaccount": (ACCOUNT,)})
    theirs = Values({"s3:resourceaccount": ("999999999999",)})
    assert evaluate(identity, Request("s3:PutBucketNotification", BUCKET, mine)).allowed
    assert not evaluate(identity, Request("s3:PutBucketNotification", BUCKET, theirs)).allowed
    assert not evaluate(identity, Request("s3:PutBucketNotification", BUCKET, Values())).allowed


def test_unknown_condition_key_refuses_the_request_naming_it() -> None:
    identity = role(allow("s3:*", Condition={"StringEquals": {"s3:DataAccessPointArn": "x"}}))
    decision = evaluate(identity, Request("s3:ListBucket", BUCKET))
    assert not decision.allowed and decision.reason == Reason.UNSUPPORTED
    assert "s3:DataAccessPointArn" in decision.message()


def test_permissions_boundary_caps_identity_policies() -> None:
    boundary = policy(allow("s3:GetObject"), source="arn:aws:iam::1:policy/boundary")
    identity = role(allow(["s3:GetObject", "s3:PutObject"]), boundary=boundary)
    assert evaluate(identity, Request("s3:GetObject", f"{BUCKET}/k")).allowed
    decision = evaluate(identity, Request("s3:PutObject", f"{BUCKET}/k"))
    assert not decision.allowed and decision.reason == Reason.NO_BOUNDARY_ALLOW
    assert decision.message().endswith("because no permissions boundary allows the s3:PutObject action")


def test_root_may_do_anything_its_identity_allows_but_not_past_an_explicit_resource_deny() -> None:
    root = Identity(Principal.root(ACCOUNT))
    assert evaluate(root, Request("iam:CreateRole", "*")).allowed
    tls_only = ResourcePolicy(
        policy(
            deny("s3:*", BUCKET, Principal="*", Condition={"Bool": {"aws:SecureTransport": "false"}}), source="bucket"
        )
    )
    plain = Values({"aws:securetransport": ("false",)})
    assert not evaluate(root, Request("s3:GetObject", BUCKET, plain), tls_only).allowed


def test_kms_key_policy_must_allow_and_delegates_to_iam_through_the_account() -> None:
    default = ResourcePolicy(
        policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            source="key policy",
        ),
        ResourcePolicyKind.REQUIRED,
    )
    granted = role(allow("kms:Decrypt", KEY))
    assert evaluate(granted, Request("kms:Decrypt", KEY), default).allowed
    decision = evaluate(role(), Request("kms:Decrypt", KEY), default)
    assert not decision.allowed and decision.reason == Reason.NO_IDENTITY_ALLOW

    lockout = ResourcePolicy(
        policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            source="key policy",
        ),
        ResourcePolicyKind.REQUIRED,
    )
    decision = evaluate(granted, Request("kms:Decrypt", KEY), lockout)
    assert not decision.allowed and decision.reason == Reason.NO_RESOURCE_ALLOW
    assert decision.message().endswith("because no resource-based policy allows the kms:Decrypt action")
    assert not evaluate(Identity(Principal.root(ACCOUNT)), Request("kms:Decrypt", KEY), lockout).allowed


def test_resource_policy_naming_the_role_allows_without_an_identity_grant() -> None:
    queue = "arn:aws:sqs:us-east-1:123456789012:q"
    queue_policy = ResourcePolicy(
        policy(
            {"Effect": "Allow", "Principal": {"AWS": ROLE_ARN}, "Action": "sqs:SendMessage", "Resource": queue},
            source="queue policy",
        )
    )
    decision = evaluate(role(), Request("sqs:SendMessage", queue), queue_policy)
    assert decision.allowed and decision.reason == Reason.ALLOWED_BY_RESOURCE


def test_trust_policy_with_external_id() -> None:
    trust = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::012205512454:user/ExpelCloudService"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "guid"}},
        },
        source="trust policy",
    )
    expel = Principal("arn:aws:iam::012205512454:user/ExpelCloudService", "012205512454", Kind.USER)
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/ExpelAssumeRole"
    assert resource_policy_allows(
        trust, expel, "sts:AssumeRole", role_arn, Values({"sts:externalid": ("guid",)})
    ).allowed
    assert not resource_policy_allows(
        trust, expel, "sts:AssumeRole", role_arn, Values({"sts:externalid": ("other",)})
    ).allowed
    assert not resource_policy_allows(trust, expel, "sts:AssumeRole", role_arn).allowed


def test_service_principal_against_a_resource_policy() -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:t"
    topic_policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "SNS:Publish",
                "Resource": topic,
                "Condition": {"ArnLike": {"aws:SourceArn": BUCKET}},
            }
        ]
    }
    s3 = Principal.of_service("s3.amazonaws.com")
    assert resource_policy_allows(topic_policy, s3, "sns:Publish", topic, Values({"aws:sourcearn": (BUCKET,)})).allowed
    assert not resource_policy_allows(
        topic_policy, s3, "sns:Publish", topic, Values({"aws:sourcearn": ("arn:aws:s3:::other",)})
    ).allowed
    assert not resource_policy_allows(
        topic_policy,
        Principal.of_service("sqs.amazonaws.com"),
        "sns:Publish",
        topic,
        Values({"aws:sourcearn": (BUCKET,)}),
    ).allowed


def test_policy_variables_in_resources() -> None:
    identity = role(allow("s3:GetObject", "arn:aws:s3:::logs/${aws:PrincipalAccount}/*"))
    ctx = Values({"aws:principalaccount": (ACCOUNT,)})
    assert evaluate(identity, Request("s3:GetObject", f"arn:aws:s3:::logs/{ACCOUNT}/x", ctx)).allowed
    assert not evaluate(identity, Request("s3:GetObject", "arn:aws:s3:::logs/999/x", ctx)).allowed


def test_across_accounts_both_the_trust_policy_and_the_callers_own_policies_must_allow() -> None:
    """Expel's service user (account 012205512454) assuming a customer's role: the trust policy names it, and
    Expel's account must also let it call sts:AssumeRole."""
    expel = Principal("arn:aws:iam::012205512454:user/ExpelCloudService", "012205512454", Kind.USER)
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/ExpelAssumeRole"
    trust = ResourcePolicy(policy({"Effect": "Allow", "Principal": {"AWS": expel.arn}, "Action": "sts:AssumeRole"},
                                  source="trust policy"), ResourcePolicyKind.REQUIRED, ACCOUNT)
    request = Request("sts:AssumeRole", role_arn)
    alone = evaluate(Identity(expel), request, trust)
    assert not alone.allowed and alone.reason == Reason.NO_IDENTITY_ALLOW
    granted = Identity(expel, (policy(allow("sts:AssumeRole", "arn:aws:iam::*:role/*")),))
    assert evaluate(granted, request, trust).allowed
    untrusted = ResourcePolicy(policy({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                                       "Action": "sts:AssumeRole"}), ResourcePolicyKind.REQUIRED, ACCOUNT)
    assert evaluate(granted, request, untrusted).reason == Reason.NO_RESOURCE_ALLOW
