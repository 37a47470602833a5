"""Condition operators and the condition keys the local cloud can evaluate.

Semantics follow the IAM reference: keys are case-insensitive, values case-sensitive (except the
IgnoreCase operators); several values for one key are OR-ed, several keys and operators AND-ed; a key
missing from the request makes positive operators false and negated ones (``StringNotEquals``...)
true; ``...IfExists`` is true when the key is missing; ``ForAllValues`` is true on an empty set and
``ForAnyValue`` false. A key or operator this module does not know raises ``Unsupported``: the
request is then refused with a message naming it (fail closed), never silently allowed.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from local_cloud.iam.arn import arn_matches, glob_match


class Unsupported(Exception):
    """A condition key or operator the local cloud cannot evaluate; the request is refused."""


# Every key the request context can supply (present or absent). Lower case; "/*" and ":*" families.
SUPPORTED_KEYS = frozenset(
    {
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principaltype",
        "aws:userid",
        "aws:username",
        "aws:principalisawsservice",
        "aws:principalservicename",
        "aws:securetransport",
        "aws:currenttime",
        "aws:epochtime",
        "aws:requestedregion",
        "aws:sourceip",
        "aws:tagkeys",
        "aws:sourcearn",
        "aws:sourceaccount",
        "aws:sourceowner",
        "aws:calledvia",
        "aws:calledviafirst",
        "aws:calledvialast",
        "aws:viaawsservice",
        "aws:resourceaccount",
        "aws:multifactorauthpresent",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:principalorgid",
        "kms:viaservice",
        "kms:calleraccount",
        "kms:keyspec",
        "kms:keyusage",
        "kms:keyorigin",
        "kms:bypasspolicylockoutsafetycheck",
        "kms:encryptioncontextkeys",
        "kms:multiregion",
        "iam:passedtoservice",
        "iam:permissionsboundary",
        "iam:awsservicename",
        "iam:policyarn",
        "iam:associatedresourcearn",
        "organizations:serviceprincipal",
        "s3:prefix",
        "s3:delimiter",
        "s3:max-keys",
        "s3:x-amz-acl",
        "s3:x-amz-server-side-encryption",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
        "s3:versionid",
        "s3:resourceaccount",
        "s3:authtype",
        "s3:signatureversion",
        "s3:tlsversion",
        "sts:externalid",
        "sts:rolesessionname",
        "sts:sourceidentity",
        "cloudformation:rolearn",
        "sns:protocol",
        "sns:endpoint",
    }
)
SUPPORTED_FAMILIES = (
    "aws:requesttag/",
    "aws:resourcetag/",
    "aws:principaltag/",
    "kms:encryptioncontext:",
    "iam:resourcetag/",
)


def supported_key(key: str) -> bool:
    key = key.lower()
    return key in SUPPORTED_KEYS or key.startswith(SUPPORTED_FAMILIES)


class Context(Protocol):
    """The request's condition values: a tuple of strings for a present key, None for an absent one."""

    def get(self, key: str) -> tuple[str, ...] | None: ...


class Values:
    """A plain context: a mapping of lower-case keys to values, and optional lazy families
    (``aws:resourcetag/`` -> a function of the tag key, called only when a condition asks)."""

    def __init__(
        self,
        values: Mapping[str, tuple[str, ...]] | None = None,
        families: Mapping[str, Callable[[str], tuple[str, ...] | None]] | None = None,
    ) -> None:
        self._values = {k.lower(): v for k, v in (values or {}).items()}
        self._families = dict(families or {})

    def get(self, key: str) -> tuple[str, ...] | None:
        key = key.lower()
        if key in self._values:
            return self._values[key]
        for prefix, lookup in self._families.items():
            if key.startswith(prefix):
                return lookup(key[len(prefix) :])
        return None

    def merged(self, extra: Mapping[str, tuple[str, ...]]) -> Values:
        """These values plus ``extra`` (ours win: a request's own value beats a default)."""
        return Values({**{k.lower(): v for k, v in extra.items()}, **self._values}, self._families)

    @property
    def values(self) -> Mapping[str, tuple[str, ...]]:
        return self._values

    @property
    def families(self) -> Mapping[str, Callable[[str], tuple[str, ...] | None]]:
        return self._families


# ------------------------------------------------------------------------------------------- operators
def _string_eq(actual: str, wanted: str) -> bool:
    return actual == wanted


def _string_eq_ci(actual: str, wanted: str) -> bool:
    return actual.casefold() == wanted.casefold()


def _string_like(actual: str, wanted: str) -> bool:
    return glob_match(wanted, actual)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a number") from exc


def _date(text: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _bool(actual: str, wanted: str) -> bool:
    return actual.lower() == wanted.lower()


def _binary(actual: str, wanted: str) -> bool:
    return base64.b64decode(actual) == base64.b64decode(wanted)


def _ip(actual: str, wanted: str) -> bool:
    return ipaddress.ip_address(actual) in ipaddress.ip_network(wanted, strict=False)


def _compare(test: Callable[[float, float], bool], parse: Callable[[str], object]) -> Callable[[str, str], bool]:
    def run(actual: str, wanted: str) -> bool:
        return test(parse(actual), parse(wanted))  # type: ignore[arg-type]

    return run


# base operator -> (value test, negated)
OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (_string_eq, False),
    "StringNotEquals": (_string_eq, True),
    "StringEqualsIgnoreCase": (_string_eq_ci, False),
    "StringNotEqualsIgnoreCase": (_string_eq_ci, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "NumericEquals": (_compare(lambda a, b: a == b, _number), False),
    "NumericNotEquals": (_compare(lambda a, b: a == b, _number), True),
    "NumericLessThan": (_compare(lambda a, b: a < b, _number), False),
    "NumericLessThanEquals": (_compare(lambda a, b: a <= b, _number), False),
    "NumericGreaterThan": (_compare(lambda a, b: a > b, _number), False),
    "NumericGreaterThanEquals": (_compare(lambda a, b: a >= b, _number), False),
    "DateEquals": (_compare(lambda a, b: a == b, _date), False),
    "DateNotEquals": (_compare(lambda a, b: a == b, _date), True),
    "DateLessThan": (_compare(lambda a, b: a < b, _date), False),
    "DateLessThanEquals": (_compare(lambda a, b: a <= b, _date), False),
    "DateGreaterThan": (_compare(lambda a, b: a > b, _date), False),
    "DateGreaterThanEquals": (_compare(lambda a, b: a >= b, _date), False),
    "Bool": (_bool, False),
    "BinaryEquals": (_binary, False),
    "IpAddress": (_ip, False),
    "NotIpAddress": (_ip, True),
    "ArnEquals": (lambda actual, wanted: arn_matches(wanted, actual), False),
    "ArnLike": (lambda actual, wanted: arn_matches(wanted, actual), False),
    "ArnNotEquals": (lambda actual, wanted: arn_matches(wanted, actual), True),
    "ArnNotLike": (lambda actual, wanted: arn_matches(wanted, actual), True),
}


def _split_operator(operator: str) -> tuple[str | None, str, bool]:
    qualifier: str | None = None
    name = operator
    for prefix in ("ForAllValues:", "ForAnyValue:"):
        if name.startswith(prefix):
            qualifier, name = prefix[:-1], name[len(prefix) :]
    if_exists = name.endswith("IfExists") and name != "IfExists"
    base = name.removesuffix("IfExists") if if_exists else name
    if base != "Null" and base not in OPERATORS:
        raise Unsupported(f"condition operator {operator} is not supported by the local cloud's IAM evaluator")
    if base == "Null" and (qualifier or if_exists):
        raise Unsupported(f"condition operator {operator} is not valid")
    return qualifier, base, if_exists


def check_supported(condition: Mapping[str, Mapping[str, tuple[str, ...]]]) -> None:
    """Raise Unsupported for the first unknown operator or key (before anything is evaluated)."""
    for operator, tests in condition.items():
        _split_operator(operator)
        for key in tests:
            if not supported_key(key):
                raise Unsupported(f"condition key {key} is not supported by the local cloud's IAM evaluator")


def _test(
    base: str, qualifier: str | None, if_exists: bool, actual: tuple[str, ...] | None, wanted: tuple[str, ...]
) -> bool:
    if base == "Null":
        absent = not actual
        return any(absent == (w.lower() == "true") for w in wanted)
    test, negated = OPERATORS[base]

    def matches(value: str) -> bool:
        try:
            return any(test(value, w) for w in wanted)
        except ValueError:
            return False  # a value that is not a number/date/address never matches

    if qualifier == "ForAllValues":
        if not actual:
            return True
        return all((not matches(v)) if negated else matches(v) for v in actual)
    if qualifier == "ForAnyValue":
        if not actual:
            return False
        return any((not matches(v)) if negated else matches(v) for v in actual)
    if actual is None:
        return if_exists or negated
    hit = any(matches(v) for v in actual)
    return not hit if negated else hit


def evaluate(
    condition: Mapping[str, Mapping[str, tuple[str, ...]]],
    context: Context,
    substitute: Callable[[str], str | None] | None = None,
) -> bool:
    """True when every operator's every key holds. ``substitute`` resolves policy variables
    (``${aws:username}``) in values; a variable whose key is absent makes that value unusable."""
    check_supported(condition)
    for operator, tests in condition.items():
        qualifier, base, if_exists = _split_operator(operator)
        for key, wanted in tests.items():
            values = wanted
            if substitute is not None and any("${" in w for w in wanted):
                values = tuple(v for v in (substitute(w) for w in wanted) if v is not None)
            if not _test(base, qualifier, if_exists, context.get(key.lower()), values):
                return False
    return True
