"""Compare policy statements by meaning, not by spelling.

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


def canonical_statement(statement: Statement) -> Any:
    """A hashable value equal for two statements that grant the same thing."""
    result = []
    for key, value in statement.items():
        if key in _ACTION_ELEMENTS:
            result.append((key, _actions(value)))
        elif key in ("Principal", "NotPrincipal"):
            result.append((key, _principal(value)))
        else:
            result.append((key, _freeze(value)))
    return tuple(sorted(result, key=lambda item: item[0]))


def equivalent(a: Statement, b: Statement) -> bool:
    return bool(canonical_statement(a) == canonical_statement(b))


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


def _statements(document: PolicyDocument | None) -> list[Any]:
    statements = (document or {}).get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)
