"""Every IAM action the templates name exists in parliament's copy of AWS's IAM reference.

IAM accepts a policy naming an action that does not exist and simply never matches it, so a typo
(s3:PutBucketNotificationConfiguration for s3:PutBucketNotification) surfaces only as AccessDenied on
real AWS; moto and the local cloud do not evaluate IAM at all.
"""

from __future__ import annotations

import fnmatch
import warnings
from pathlib import Path
from typing import Any

import pytest

from local_cloud.cloudformation_templates import read_template

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # parliament imports the deprecated pkg_resources
    import parliament

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = (ROOT / "template.yaml", ROOT / "roles" / "expel-role.yaml")
KNOWN = {
    f"{service['prefix']}:{privilege['privilege']}".lower()
    for service in parliament.iam_definition  # its iam_definition.json, as parliament loaded it
    for privilege in service["privileges"]
}
ALL = sorted(KNOWN)
BY_SERVICE: dict[str, list[str]] = {}
for _known in ALL:
    BY_SERVICE.setdefault(_known.split(":", 1)[0], []).append(_known)
WILDCARDS = ("*", "?", "[")  # what fnmatch reads as a pattern


def _matching(action: str) -> list[str]:
    """Every known action ``action`` names (fnmatch's reading), looked for among only the actions it can name: a
    name without wildcards names itself; a pattern whose service has none, only that service's actions."""
    pattern = action.lower()
    if not any(wildcard in pattern for wildcard in WILDCARDS):
        return [pattern] if pattern in KNOWN else []
    service = pattern.split(":", 1)[0]
    candidates = ALL if ":" not in pattern or any(w in service for w in WILDCARDS) else BY_SERVICE.get(service, [])
    return [known for known in candidates if fnmatch.fnmatchcase(known, pattern)]


def _actions(node: Any) -> set[str]:
    """Every string under an ``Action`` or ``NotAction`` key, in either branch of any ``Fn::If``."""
    if isinstance(node, list):
        return set().union(*(_actions(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found: set[str] = set()
    for key, value in node.items():
        if key in ("Action", "NotAction"):
            found |= {value} if isinstance(value, str) else {v for v in value if isinstance(v, str)}
        else:
            found |= _actions(value)
    return found


ACTIONS = sorted(set().union(*(_actions(read_template(path.read_text())["Resources"]) for path in TEMPLATES)))


def test_the_templates_name_actions() -> None:
    assert len(ACTIONS) > 50
    assert "kms:CreateKey" in ACTIONS and "iam:Get*" in ACTIONS and "sts:AssumeRole" in ACTIONS


@pytest.mark.parametrize("action", ACTIONS)
def test_action_exists_in_the_iam_reference(action: str) -> None:
    assert ":" in action, f"{action}: not service:Action"
    assert _matching(action), f"{action} is no IAM action (typo?)"


@pytest.mark.parametrize("typo", ["s3:PutBucketNotificationConfiguration", "kms:Decryptt", "sqs:Receive*Messages"])
def test_a_typo_is_caught(typo: str) -> None:
    assert not _matching(typo)


@pytest.mark.parametrize("action", [*ACTIONS[::10], "s3:PutBucketNotificationConfiguration", "sqs:Receive*Messages",
                                    "S3:Get*", "*:GetObject", "s3:Get?bject", "s3:[gp]utobject", "nope:*", "s3"])
def test_the_narrowed_search_finds_what_a_scan_of_every_action_finds(action: str) -> None:
    assert _matching(action) == sorted(known for known in KNOWN if fnmatch.fnmatchcase(known, action.lower()))
