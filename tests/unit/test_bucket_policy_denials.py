"""Whether a customer's bucket policy explicitly denies Expel's role the reading of the trail's log files
(``policies.denials``): the Deny statements security teams write, decided as IAM decides them."""

from __future__ import annotations

from typing import Any

import pytest

from expel_onboarding.policies.denials import Denial, Request, Verdict, expel_read_denials

ROLE = "arn:aws:iam::123456789012:role/ExpelAssumeRole"
BUCKET = "arn:aws:s3:::customer-trail-logs"
REQUEST = Request(role_arn=ROLE, account_id="123456789012",
                  object_arn=f"{BUCKET}/AWSLogs/123456789012/CloudTrail/us-east-1/2026/12/01/f.json.gz")


def deny(**fields: Any) -> dict[str, Any]:
    statement = {"Sid": "TheirDeny", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": f"{BUCKET}/*", **fields}
    for element in ("Principal", "Action", "Resource"):
        if f"Not{element}" in fields:
            del statement[element]
    return statement


def denials(*statements: dict[str, Any]) -> list[Denial]:
    return expel_read_denials({"Version": "2012-10-17", "Statement": list(statements)}, REQUEST)


@pytest.mark.parametrize("statement", [
    deny(),
    deny(Principal={"AWS": ROLE}),
    deny(Principal={"AWS": "arn:aws:iam::123456789012:root"}, Action="s3:Get*"),
    deny(Principal={"AWS": ["123456789012"]}, Action="s3:*", Resource=f"{BUCKET}/AWSLogs/*"),
    deny(NotPrincipal={"AWS": "arn:aws:iam::123456789012:role/TheirAuditRole"}),
    deny(NotAction="s3:PutObject"),
    # "Everyone but our roles": the role is not on their list.
    deny(Condition={"StringNotLike": {"aws:PrincipalArn": ["arn:aws:iam::123456789012:role/Audit*"]}}),
    # Only through their VPC endpoint: Expel reads from outside their network.
    deny(Condition={"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}),
    deny(Condition={"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1a2b3c4d"}}),
])
def test_a_deny_that_applies_to_expels_read_is_certain(statement: dict[str, Any]) -> None:
    assert denials(statement) == [Denial("TheirDeny", Verdict.CERTAIN)]


@pytest.mark.parametrize("statement", [
    deny(Effect="Allow"),
    deny(Condition={"Bool": {"aws:SecureTransport": "false"}}),  # the usual TLS-only statement
    deny(Principal={"AWS": "arn:aws:iam::123456789012:role/Intern"}),
    deny(Principal={"Service": "cloudtrail.amazonaws.com"}),
    deny(NotPrincipal={"AWS": ROLE}),
    deny(Action="s3:DeleteObject"),
    deny(NotAction="s3:GetObject"),
    deny(Resource=f"{BUCKET}/secrets/*"),
    deny(NotResource=f"{BUCKET}/AWSLogs/*"),
    deny(Condition={"StringNotLike": {"aws:PrincipalArn": ["arn:aws:iam::123456789012:role/Expel*"]}}),
    deny(Condition={"StringNotEquals": {"aws:PrincipalAccount": "123456789012"}}),
    deny(Condition={"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}),
    deny(Condition={"Null": {"aws:SourceVpce": "false"}}),
])
def test_a_deny_that_does_not_apply_to_expels_read_is_no_denial(statement: dict[str, Any]) -> None:
    assert denials(statement) == []


def test_a_deny_that_depends_on_what_only_the_request_knows_is_possible_naming_the_keys() -> None:
    found = denials(deny(Sid="", Condition={"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"},
                                            "StringNotEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}))
    assert found == [Denial("#0", Verdict.POSSIBLE, ("aws:PrincipalOrgID", "aws:SourceIp"))]
    # A decided condition that does not hold rules the statement out, whatever else it says.
    assert denials(deny(Condition={"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"},
                                   "Bool": {"aws:SecureTransport": "false"}})) == []


def test_no_policy_or_a_single_statement_object_is_read_as_iam_reads_it() -> None:
    assert expel_read_denials(None, REQUEST) == []
    assert expel_read_denials({"Statement": deny()}, REQUEST) == [Denial("TheirDeny", Verdict.CERTAIN)]
