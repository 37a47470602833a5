"""Least privilege, proven both ways: every action a function's grant allows is used by some e2e call.

The enforcement refuses what a grant lacks (``test_iam_bite.py``); this shows the other side, that no grant
holds more than the onboarding calls. The local cloud records every call a role's grant allowed
(``local serve --iam-report``); after every other e2e scenario ran (create, rerun, update, delete, a failed
step, a retry and a redrive, Organizations), each action in a function's (or the state machine's) grant must
have been used, or be listed in ``iam_grants_unused_locally.yaml`` with the reason no local scenario reaches it;
and a listed one must not have been used, so the list says what the e2e scenarios really leave out.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from local_cloud.enforcement.report import read
from local_cloud.iam.arn import action_matches
from tests.unit.test_template_policies import RESOLVED

pytestmark = pytest.mark.e2e

EXCEPTIONS = Path(__file__).with_name("iam_grants_unused_locally.yaml")
E2E = Path(__file__).parent
# CloudFormation names a role it creates <stack>-<logical id>-<suffix>.
_GENERATED = re.compile(r"^.+-(?P<logical>[A-Za-z0-9]+)-[A-Za-z0-9]{8,}$")


def _granted() -> dict[str, set[str]]:
    """Per role logical id (each function's and the state machine's), every action its grant in the template
    allows, in any combination of the template's conditions (Organizations mode, a given bucket name...)."""
    granted: dict[str, set[str]] = defaultdict(set)
    for policy in RESOLVED:
        source, _, rest = policy.name.partition(":")
        logical = re.split(r"[.\[ ]", rest, maxsplit=1)[0]
        if source != "template.yaml" or ".Policies[" not in rest:
            continue  # not a SAM function's or state machine's grant
        for statement in policy.document["Statement"]:
            if statement["Effect"] == "Allow":
                actions = statement["Action"]
                granted[f"{logical}Role"].update(actions if isinstance(actions, list) else [actions])
    return granted


def test_every_granted_action_is_used_by_some_e2e_call_or_listed_with_its_reason(
        request: pytest.FixtureRequest, iam_reports: Path) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("reads what every e2e scenario did, so it runs after the parallel run (make test does)")
    if not os.environ.get("IAM_REPORTS_DIR"):  # else the reports are those of the run before this one
        ran = {item.path.name for item in request.session.items}
        everything = {path.name for path in E2E.glob("test_*.py")}
        if not everything <= ran:
            pytest.skip(f"needs every e2e scenario in this session (missing: {sorted(everything - ran)})")
    granted = _granted()
    used: dict[str, set[str]] = defaultdict(set)
    stacks: dict[tuple[str, str], str] = {}  # (role, action) -> the stack whose role made the call (one of them)
    entries = [entry for report in sorted(iam_reports.glob("*.jsonl")) for entry in read(report)]
    assert entries, f"no local cloud recorded a call in {iam_reports}: run the e2e scenarios first"
    for entry in entries:
        found = _GENERATED.match(entry["role"])
        if found and found["logical"] in granted:
            used[found["logical"]].add(entry["action"])
            stacks[found["logical"], entry["action"]] = entry["role"][:found.start("logical") - 1]
    excepted: dict[str, dict[str, str]] = yaml.safe_load(EXCEPTIONS.read_text(encoding="utf-8")) or {}

    unused = {(role, action) for role, actions in granted.items() for action in actions
              if not any(action_matches(action, call) for call in used[role])}
    listed = {(role, action) for role, actions in excepted.items() for action in actions}
    assert sorted(unused - listed) == [], "granted, never used by an e2e call: use it in a scenario, take it out " \
        f"of the grant, or list it in {EXCEPTIONS.name} with the reason"
    granted_pairs = {(role, action) for role, actions in granted.items() for action in actions}
    assert sorted(listed - granted_pairs) == [], f"listed in {EXCEPTIONS.name} but no longer granted: unlist it"
    # Each run reads every e2e local cloud's report (also the drift doctor's --repair, a rerun of what it drifted),
    # so an entry some call used is stale: it is not a grant "no e2e scenario reaches" any more.
    reached = {(role, action): sorted(stacks[role, call] for call in used[role] if action_matches(action, call))
               for role, action in sorted(listed & granted_pairs)}
    assert {pair: by for pair, by in reached.items() if by} == {}, \
        f"listed in {EXCEPTIONS.name} but used by an e2e call (of the stacks named): unlist it"
    assert all(str(reason).strip() for actions in excepted.values() for reason in actions.values())
