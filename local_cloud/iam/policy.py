"""IAM policy documents parsed once into statements the evaluator can match quickly.

``parse_policy`` caches by document text: the same role policy is read on every request, so each
distinct document is parsed (and its patterns compiled) once per process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


class PolicyError(ValueError):
    """The document is not a policy IAM would accept (the evaluator then refuses, never guesses)."""


@dataclass(frozen=True)
class Principals:
    """A statement's Principal / NotPrincipal: ``everyone`` for ``"*"``, else values by type."""

    everyone: bool = False
    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical_user: tuple[str, ...] = ()


@dataclass(frozen=True)
class Statement:
    """One statement; ``None`` for an element the statement does not have."""

    index: int
    sid: str | None
    effect: str  # "Allow" or "Deny"
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    principal: Principals | None
    not_principal: Principals | None
    condition: Mapping[str, Mapping[str, tuple[str, ...]]]
    raw: Mapping[str, Any] = field(compare=False, repr=False)

    @property
    def label(self) -> str:
        return self.sid if self.sid else f"statement {self.index + 1}"


@dataclass(frozen=True)
class Policy:
    version: str | None
    statements: tuple[Statement, ...]


def _strings(value: Any, element: str) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) for v in values):
        raise PolicyError(f"{element} must be a string or a non-empty list of strings")
    return tuple(values)


def _condition_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise PolicyError(f"condition value {value!r} is not a string, number or boolean")


def _principals(value: Any, element: str) -> Principals:
    if value == "*":
        return Principals(everyone=True)
    if not isinstance(value, dict) or not value:
        raise PolicyError(f'{element} must be "*" or an object of principal types')
    found: dict[str, tuple[str, ...]] = {}
    for kind, names in value.items():
        key = {"AWS": "aws", "Service": "service", "Federated": "federated", "CanonicalUser": "canonical_user"}.get(
            kind
        )
        if key is None:
            raise PolicyError(f"{element} type {kind} is not one IAM knows")
        found[key] = _strings(names, f"{element}.{kind}")
    everyone = "*" in found.get("aws", ())
    return Principals(everyone=everyone, **found)


def _statement(index: int, raw: Any) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError(f"statement {index + 1} is not an object")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"statement {index + 1}: Effect must be Allow or Deny, not {effect!r}")
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyError(f"statement {index + 1}: exactly one of Action and NotAction is required")
    if "Resource" in raw and "NotResource" in raw:
        raise PolicyError(f"statement {index + 1}: Resource and NotResource cannot both be given")
    condition: dict[str, dict[str, tuple[str, ...]]] = {}
    for operator, tests in (raw.get("Condition") or {}).items():
        if not isinstance(tests, dict):
            raise PolicyError(f"statement {index + 1}: condition {operator} must map keys to values")
        condition[operator] = {
            key: tuple(_condition_value(v) for v in (values if isinstance(values, list) else [values]))
            for key, values in tests.items()
        }

    def optional(element: str) -> tuple[str, ...] | None:
        return _strings(raw[element], element) if element in raw else None

    return Statement(
        index=index,
        sid=raw.get("Sid"),
        effect=effect,
        actions=optional("Action"),
        not_actions=optional("NotAction"),
        resources=optional("Resource"),
        not_resources=optional("NotResource"),
        principal=_principals(raw["Principal"], "Principal") if "Principal" in raw else None,
        not_principal=_principals(raw["NotPrincipal"], "NotPrincipal") if "NotPrincipal" in raw else None,
        condition=condition,
        raw=raw,
    )


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> Policy:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise PolicyError(f"the policy is not valid JSON: {exc}") from exc
    return _parse_document(document)


def _parse_document(document: Any) -> Policy:
    if not isinstance(document, dict) or "Statement" not in document:
        raise PolicyError("a policy is an object with a Statement")
    raw = document["Statement"]
    statements = raw if isinstance(raw, list) else [raw]
    return Policy(version=document.get("Version"), statements=tuple(_statement(i, s) for i, s in enumerate(statements)))


def parse_policy(document: str | Mapping[str, Any]) -> Policy:
    """A policy from its JSON text (cached) or an already decoded document."""
    if isinstance(document, str):
        return _parse_text(document)
    return _parse_text(json.dumps(document, sort_keys=True))


@dataclass(frozen=True)
class NamedPolicy:
    """A policy and where it comes from, as the report and messages name it
    (``role/X inline policy Y``, a managed policy ARN, ``key policy of arn:...``)."""

    source: str
    policy: Policy

    @classmethod
    def of(cls, source: str, document: str | Mapping[str, Any]) -> NamedPolicy:
        return cls(source, parse_policy(document))
