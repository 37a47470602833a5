"""Whether a customer's bucket policy explicitly denies Expel's role the reading of the trail's log files.

An explicit Deny wins over every Allow (IAM's evaluation logic), so a bucket policy that denies "everyone but
our roles", a VPC endpoint or an IP range would stop Expel's ``s3:GetObject`` although its role's own policy
allows it: the onboarding would complete and Expel would read nothing. Pure: the caller reads the policy.

Each Deny statement is matched as IAM matches it against the request Expel makes (its role's session, over
TLS, from outside the customer's network, for one log file under the trail's log folder):
- Principal / NotPrincipal: ``*``, the role, or the account (a Deny naming the account applies to its roles);
- Action / NotAction and Resource / NotResource with IAM's ``*`` and ``?`` wildcards;
- Condition: keys whose value the request is known to carry (aws:PrincipalArn, aws:PrincipalAccount,
  aws:SecureTransport, aws:PrincipalType) or known to lack (aws:SourceVpce, aws:SourceVpc: Expel calls from
  outside the customer's network) are decided; any other key (aws:SourceIp, aws:PrincipalOrgID, tags...) leaves
  the statement undecided.

``CERTAIN``: the statement denies the read (preflight refuses). ``POSSIBLE``: it may, depending on what only
the request knows (a finding names it and the keys).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from expel_onboarding.policies import PolicyDocument

READ_ACTION = "s3:GetObject"


class Verdict(Enum):
    CERTAIN = "certain"
    POSSIBLE = "possible"


@dataclass(frozen=True)
class Denial:
    sid: str  # the statement's Sid, or "#<index>" for one without
    verdict: Verdict
    undecided_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    """The read Expel's role makes, as the bucket policy's evaluation sees it."""

    role_arn: str  # arn:<partition>:iam::<account>:role/<name>
    account_id: str
    object_arn: str  # one log file under the trail's log folder

    def known(self) -> dict[str, tuple[str, ...]]:
        """Condition keys (lower case) the request carries, with their values; absent keys map to ()."""
        return {"aws:principalarn": (self.role_arn,), "aws:principalaccount": (self.account_id,),
                "aws:securetransport": ("true",), "aws:principaltype": ("AssumedRole",),
                "aws:sourcevpce": (), "aws:sourcevpc": ()}


def expel_read_denials(policy: PolicyDocument | None, request: Request) -> list[Denial]:
    """Every Deny statement of ``policy`` that denies, or may deny, Expel's read of a log file."""
    statements = (policy or {}).get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    denials = []
    for index, statement in enumerate(statements):
        if not isinstance(statement, dict) or statement.get("Effect") != "Deny":
            continue
        if not (_principal_matches(statement, request) and _element_matches(statement, "Action", READ_ACTION, True)
                and _element_matches(statement, "Resource", request.object_arn, False)):
            continue
        decided, undecided = _conditions(statement.get("Condition") or {}, request.known())
        if decided is False:
            continue
        sid = str(statement.get("Sid") or f"#{index}")
        denials.append(Denial(sid, Verdict.CERTAIN) if not undecided else
                       Denial(sid, Verdict.POSSIBLE, tuple(sorted(undecided))))
    return denials


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _wildcard(pattern: str, value: str, ignore_case: bool) -> bool:
    # IAM's * and ? only (no character classes).
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _element_matches(statement: dict[str, Any], element: str, value: str, ignore_case: bool) -> bool:
    if element in statement:
        return any(_wildcard(p, value, ignore_case) for p in _as_list(statement[element]))
    if f"Not{element}" in statement:
        return not any(_wildcard(p, value, ignore_case) for p in _as_list(statement[f"Not{element}"]))
    return False


def _names_expel(principal: Any, request: Request) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    account_root = re.sub(r":role/.*$", ":root", request.role_arn)
    return any(value in ("*", request.role_arn, request.account_id, account_root)
               for value in _as_list(principal.get("AWS", [])))


def _principal_matches(statement: dict[str, Any], request: Request) -> bool:
    if "Principal" in statement:
        return _names_expel(statement["Principal"], request)
    if "NotPrincipal" in statement:
        return not _names_expel(statement["NotPrincipal"], request)
    return False


_STRING = {"stringequals": (False, False, True), "stringnotequals": (True, False, True),
           "stringequalsignorecase": (False, False, False), "stringnotequalsignorecase": (True, False, False),
           "stringlike": (False, True, True), "stringnotlike": (True, True, True),
           "arnequals": (False, True, True), "arnlike": (False, True, True),
           "arnnotequals": (True, True, True), "arnnotlike": (True, True, True),
           "bool": (False, False, False)}  # operator -> (negated, wildcards, case sensitive)


def _conditions(block: dict[str, Any], known: dict[str, tuple[str, ...]]) -> tuple[bool | None, set[str]]:
    """(False when a condition surely does not hold, else None, and the keys left undecided)."""
    undecided: set[str] = set()
    for operator, tests in block.items():
        if not isinstance(tests, dict):
            continue
        for key, values in tests.items():
            result = _condition(str(operator), str(key).lower(), _as_list(values), known)
            if result is False:
                return False, set()
            if result is None:
                undecided.add(str(key))
    return None, undecided


def _condition(operator: str, key: str, values: list[str], known: dict[str, tuple[str, ...]]) -> bool | None:
    name = operator.lower()
    if ":" in name or key not in known:  # ForAnyValue:/ForAllValues: sets, or a key only the request knows
        return None
    if name == "null":
        absent = not known[key]
        return any((v.lower() == "true") == absent for v in values)
    if_exists = name.endswith("ifexists")
    rule = _STRING.get(name.removesuffix("ifexists"))
    if rule is None:
        return None
    negated, wildcards, case_sensitive = rule
    present = known[key]
    if not present:
        return True if (if_exists or negated) else False
    if wildcards:
        hit = any(_wildcard(v, p, not case_sensitive) for v in values for p in present)
    else:
        hit = any((v == p) if case_sensitive else (v.lower() == p.lower()) for v in values for p in present)
    return not hit if negated else hit

