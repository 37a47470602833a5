"""Policy documents, built and merged by pure functions (no boto3, no environment).

Builders return deterministic documents (sorted actions, stable statement order) so tests can
compare them exactly. Mergers keep every statement they did not write, replace their own by
``Sid`` and never duplicate: running them twice gives the same document.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

Statement = dict[str, Any]
PolicyDocument = dict[str, Any]


def policy_attribute(attributes: Mapping[str, str]) -> PolicyDocument | None:
    """The access policy among a topic's or queue's attributes (SNS and SQS both return it as the JSON
    string ``Policy``), parsed; None when it has none."""
    policy = attributes.get("Policy")
    return dict(json.loads(policy)) if policy else None


def merge_statements(document: PolicyDocument | None, ours: Iterable[Statement],
                     version: str = "2012-10-17") -> PolicyDocument:
    """Put ``ours`` into ``document`` by Sid: same Sid is replaced in place, new ones appended.

    Every other statement (and every other top-level key, such as ``Id``) is kept as it was.
    A foreign statement that happens to be identical to one of ours without a Sid is left alone,
    so the merge never removes anything a customer wrote.
    """
    merged: PolicyDocument = copy.deepcopy(document) if document else {"Version": version}
    merged.setdefault("Version", version)
    statements = merged.get("Statement", [])
    if isinstance(statements, dict):  # IAM allows a single statement object
        statements = [statements]
    statements = list(statements)
    for statement in ours:
        sid = statement["Sid"]
        for index, existing in enumerate(statements):
            if isinstance(existing, dict) and existing.get("Sid") == sid:
                statements[index] = copy.deepcopy(statement)
                break
        else:
            statements.append(copy.deepcopy(statement))
    merged["Statement"] = statements
    return merged


def add_missing_statements(document: PolicyDocument, ours: Iterable[Statement]) -> PolicyDocument:
    """Append only the statements whose Sid the document lacks; one that is there stays as written.

    For a key's own policy after creation: a person who hardened, say, the root statement keeps it.
    """
    return merge_statements(document, missing_statements(document, ours))


def missing_statements(document: PolicyDocument, ours: Iterable[Statement]) -> list[Statement]:
    """Those of ``ours`` whose Sid the document lacks: what ``add_missing_statements`` appends."""
    present = {s.get("Sid") for s in merge_statements(document, [])["Statement"] if isinstance(s, dict)}
    return [s for s in ours if s["Sid"] not in present]


def remove_statements(document: PolicyDocument, sids: Iterable[str]) -> PolicyDocument:
    """Teardown: drop only our statements (by Sid), keep the rest."""
    drop = set(sids)
    result = copy.deepcopy(document)
    statements = result.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = [s for s in statements if not (isinstance(s, dict) and s.get("Sid") in drop)]
    if len(kept) < len(statements):  # else unchanged, even a single statement not in a list
        result["Statement"] = kept
    return result
