"""Compare policy statements by meaning, not by spelling: ``meaning`` is the one canonical form.

AWS may hand a policy back re-serialized, and a person who followed the guide by hand wrote our
statements with the actions in the guide's order. Treating those as equal keeps a second run from
rewriting a policy that already says the right thing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from expel_onboarding.policies import PolicyDocument, Statement, merge_statements

# Action names are case-insensitive in IAM ("SNS:Publish" == "sns:Publish"); ARNs are not.
_ACTION_ELEMENTS = ("Action", "NotAction")


def _actions(value: Any) -> Any:
    if isinstance(value, str):
        return frozenset([value.lower()])
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(v.lower() for v in value)
    return _freeze(value)


def _freeze(value: Any) -> Any:
    """Hashable form: dicts by sorted items; a string and a list of strings both become a set,
    as IAM reads them (Resource, principals, condition values)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return frozenset(value)
        return tuple(_freeze(v) for v in value)
    if isinstance(value, str):
        return frozenset([value])  # "x" and ["x"] mean the same in principals and conditions
    return value


def _principal(value: Any) -> Any:
    """S3 and SNS store ``{"AWS": "*"}`` as ``"*"`` and a bare account id as ``arn:...:root``:
    both spellings mean the same principal."""
    if value == "*" or value == {"AWS": "*"} or value == {"AWS": ["*"]}:
        return "*"
    if isinstance(value, dict) and "AWS" in value:
        accounts = value["AWS"] if isinstance(value["AWS"], list) else [value["AWS"]]
        value = {**value, "AWS": [f"root-of:{a}" if a.isdigit() and len(a) == 12 else
                                  (f"root-of:{a.split(':')[4]}" if a.endswith(":root") else a)
                                  for a in accounts]}
    return _freeze(value)


def equivalent(a: Statement, b: Statement) -> bool:
    """The same statement: the same Sid, granting the same (``meaning``)."""
    return a.get("Sid") == b.get("Sid") and same_meaning(a, b)


def merge_keeping_equivalent(document: PolicyDocument | None, ours: Iterable[Statement],
                             version: str = "2012-10-17") -> PolicyDocument:
    """``merge_statements``, but a statement already under our Sid that means the same as ours is
    kept as written, so merging into an already-correct policy returns it unchanged."""
    existing = _statements(document)
    by_sid = {s.get("Sid"): s for s in existing if isinstance(s, dict) and s.get("Sid")}
    wanted = []
    for statement in ours:
        current = by_sid.get(statement["Sid"])
        wanted.append(copy.deepcopy(current) if current and equivalent(current, statement) else statement)
    return merge_statements(document, wanted, version=version)


def statement_differences(document: PolicyDocument | None, ours: Iterable[Statement]
                          ) -> list[tuple[str, Statement | None, Statement]]:
    """(Sid, the statement under that Sid or None, ours) for each of ours that ``merge_keeping_equivalent``
    would write: missing, or saying something else. Empty when the merge leaves the statements as they are."""
    by_sid = {s.get("Sid"): s for s in _statements(document) if isinstance(s, dict) and s.get("Sid")}
    return [(statement["Sid"], by_sid.get(statement["Sid"]), statement) for statement in ours
            if not (by_sid.get(statement["Sid"]) and equivalent(by_sid[statement["Sid"]], statement))]


def _statements(document: PolicyDocument | None) -> list[Any]:
    statements = (document or {}).get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


# Condition operators that mean "equals" for a value without wildcards: the guide writes StringLike with
# an ARN, a person may write ArnEquals, StringEquals or ArnLike for the same grant.
_EXACT_WHEN_LITERAL = frozenset({"stringequals", "stringlike", "arnequals", "arnlike"})


def _condition(value: Any) -> Any:
    """Condition keys are case-insensitive; the four operators above are one when no value has a wildcard."""
    if not isinstance(value, dict):
        return _freeze(value)
    blocks: dict[str, dict[str, Any]] = {}
    for operator, block in value.items():
        if not isinstance(block, dict):
            blocks.setdefault(str(operator), {})[""] = _freeze(block)
            continue
        for key, values in block.items():
            listed = values if isinstance(values, list) else [values]
            literal = all(isinstance(v, str) and "*" not in v and "?" not in v for v in listed)
            name = "equals" if str(operator).lower() in _EXACT_WHEN_LITERAL and literal else str(operator)
            blocks.setdefault(name, {})[str(key).lower()] = _freeze(listed)
    return tuple(sorted((name, tuple(sorted(block.items()))) for name, block in blocks.items()))


def meaning(statement: Statement) -> Any:
    """What a statement grants, whatever its Sid and however it is spelled."""
    result = []
    for key, value in statement.items():
        if key == "Sid":
            continue
        if key == "Condition":
            result.append((key, _condition(value)))
        elif key in _ACTION_ELEMENTS:
            result.append((key, _actions(value)))
        elif key in ("Principal", "NotPrincipal"):
            result.append((key, _principal(value)))
        else:
            result.append((key, _freeze(value)))
    return tuple(sorted(result, key=lambda item: item[0]))


def same_meaning(a: Statement, b: Statement) -> bool:
    return bool(meaning(a) == meaning(b))


def add_by_meaning(document: PolicyDocument | None, ours: Iterable[Statement],
                   version: str = "2012-10-17") -> PolicyDocument:
    """Our statements into a policy someone else owns (a customer's key, topic).

    Each of ours carries a Sid only this onboarding writes. It is added unless a statement with
    another Sid already grants the same (the guide's statement pasted by hand, under the guide's Sid
    or any other): then the customer's stays the only one and ours is not added, so a stack delete,
    which removes our Sids only, leaves the grant they made. A statement under our Sid that no longer
    says the same is replaced; one that does is left as written. Nothing else changes.
    """
    existing = _statements(document)
    wanted = []
    for statement in ours:
        sid = statement["Sid"]
        current = next((s for s in existing if isinstance(s, dict) and s.get("Sid") == sid), None)
        theirs = [s for s in existing if isinstance(s, dict) and s.get("Sid") != sid and same_meaning(s, statement)]
        if current is not None:
            wanted.append(copy.deepcopy(current) if same_meaning(current, statement) else statement)
        elif not theirs:
            wanted.append(statement)
    if not wanted and document:
        return copy.deepcopy(document)
    return merge_statements(document, wanted, version=version)
