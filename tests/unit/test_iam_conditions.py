"""Condition operators and keys as IAM evaluates them, including missing keys and set operators."""

from __future__ import annotations

import pytest

from local_cloud.iam.conditions import Unsupported, Values, evaluate


def holds(condition: dict, **values: object) -> bool:
    ctx = {
        k.replace("__", ":").replace("_S_", "/"): (v if isinstance(v, tuple) else (str(v),)) for k, v in values.items()
    }
    parsed = {
        op: {key: tuple(v if isinstance(v, list) else [v]) for key, v in tests.items()}
        for op, tests in condition.items()
    }
    return evaluate(parsed, Values(ctx))


def test_string_equals_is_case_sensitive_on_values_and_not_on_keys() -> None:
    assert holds({"StringEquals": {"KMS:KeySpec": "SYMMETRIC_DEFAULT"}}, kms__keyspec="SYMMETRIC_DEFAULT")
    assert not holds({"StringEquals": {"kms:KeySpec": "symmetric_default"}}, kms__keyspec="SYMMETRIC_DEFAULT")
    assert holds({"StringEqualsIgnoreCase": {"kms:KeySpec": "symmetric_default"}}, kms__keyspec="SYMMETRIC_DEFAULT")


def test_several_values_for_one_key_are_or_and_several_keys_are_and() -> None:
    condition = {"StringEquals": {"kms:KeySpec": ["A", "B"], "kms:KeyUsage": "ENCRYPT_DECRYPT"}}
    assert holds(condition, kms__keyspec="B", kms__keyusage="ENCRYPT_DECRYPT")
    assert not holds(condition, kms__keyspec="B", kms__keyusage="SIGN_VERIFY")


def test_missing_key_fails_positive_operators_and_satisfies_negated_ones() -> None:
    assert not holds({"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}})
    assert holds({"StringNotEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}})
    assert holds({"StringNotLike": {"aws:SourceArn": "arn:*"}})


def test_if_exists_holds_when_the_key_is_absent_and_tests_it_when_present() -> None:
    condition = {"BoolIfExists": {"kms:BypassPolicyLockoutSafetyCheck": "false"}}
    assert holds(condition)
    assert holds(condition, kms__bypasspolicylockoutsafetycheck="false")
    assert not holds(condition, kms__bypasspolicylockoutsafetycheck="true")


def test_string_like_wildcards() -> None:
    condition = {"StringLike": {"kms:ViaService": ["s3.*.amazonaws.com", "sqs.*.amazonaws.com"]}}
    assert holds(condition, kms__viaservice="sqs.eu-west-1.amazonaws.com")
    assert not holds(condition, kms__viaservice="sns.eu-west-1.amazonaws.com")
    assert holds({"StringLike": {"s3:prefix": "canary/?"}}, s3__prefix="canary/x")


def test_for_all_values_holds_on_empty_and_needs_every_value_listed() -> None:
    condition = {"ForAllValues:StringEquals": {"aws:TagKeys": ["expel-onboarding:stack"]}}
    assert holds(condition)
    assert holds(condition, aws__tagkeys=("expel-onboarding:stack",))
    assert not holds(condition, aws__tagkeys=("expel-onboarding:stack", "other"))


def test_for_any_value_fails_on_empty_and_needs_one_value_listed() -> None:
    condition = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}
    assert not holds(condition)
    assert holds(condition, aws__tagkeys=("b", "a"))
    assert holds({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["a"]}}, aws__tagkeys=("a", "b"))
    assert not holds({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["a"]}}, aws__tagkeys=("a",))


def test_null_tests_presence() -> None:
    assert holds({"Null": {"aws:RequestTag/team": "true"}})
    assert not holds({"Null": {"aws:RequestTag/team": "false"}})
    assert holds({"Null": {"aws:RequestTag/team": "false"}}, aws__requesttag_S_team="x")


def test_arn_operators_match_segment_by_segment() -> None:
    condition = {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::bucket"}}
    assert holds(condition, aws__sourcearn="arn:aws:s3:::bucket")
    assert not holds(condition, aws__sourcearn="arn:aws:s3:::bucket2")
    assert holds(
        {"ArnEquals": {"iam:PermissionsBoundary": "arn:aws:iam::1:policy/*"}},
        iam__permissionsboundary="arn:aws:iam::1:policy/b",
    )
    assert holds({"ArnNotEquals": {"iam:PermissionsBoundary": "arn:aws:iam::1:policy/b"}})


def test_numeric_date_bool_and_ip_operators() -> None:
    assert holds({"NumericLessThanEquals": {"s3:max-keys": "10"}}, s3__max_keys=5) is False  # key spelled badly
    assert holds({"NumericLessThanEquals": {"s3:max-keys": "10"}}, **{"s3:max-keys": "5"})
    assert not holds({"NumericGreaterThan": {"s3:max-keys": "10"}}, **{"s3:max-keys": "not a number"})
    assert holds({"DateLessThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"}}, aws__currenttime="2026-01-01T00:00:00Z")
    assert holds({"Bool": {"aws:SecureTransport": "true"}}, aws__securetransport="TRUE")
    assert holds({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, aws__sourceip="127.0.0.1")
    assert holds({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, aws__sourceip="127.0.0.1")


def test_unknown_key_fails_closed_naming_the_key() -> None:
    with pytest.raises(Unsupported, match="condition key ec2:Vpc"):
        holds({"StringEquals": {"ec2:Vpc": "vpc-1"}})


def test_unknown_operator_fails_closed_naming_the_operator() -> None:
    with pytest.raises(Unsupported, match="condition operator StringSortOf"):
        holds({"StringSortOf": {"kms:KeySpec": "x"}})
    with pytest.raises(Unsupported, match="NullIfExists"):
        holds({"NullIfExists": {"kms:KeySpec": "true"}})


def test_tag_and_encryption_context_families_are_supported() -> None:
    ctx = Values(families={"aws:resourcetag/": lambda key: ("s1",) if key == "expel-onboarding:stack" else None})
    assert evaluate({"StringEquals": {"aws:ResourceTag/expel-onboarding:stack": ("s1",)}}, ctx)
    assert not evaluate({"StringEquals": {"aws:ResourceTag/other": ("s1",)}}, ctx)
    assert evaluate(
        {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": ("arn:aws:cloudtrail:*",)}},
        Values({"kms:encryptioncontext:aws:cloudtrail:arn": ("arn:aws:cloudtrail:us-east-1:1:trail/t",)}),
    )
