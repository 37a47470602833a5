"""The pictures in docs/ are generated from template.yaml, the ASL and roles/expel-role.yaml, and match them.

None of this needs the Graphviz binary: the DOT sources are compared, and each PNG carries the digest of the
DOT it was rendered from.
"""

from __future__ import annotations

import copy
import json
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from scripts import diagram

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def sources() -> diagram.Sources:
    return diagram.load()


@pytest.fixture(scope="module")
def fresh() -> dict[str, str]:
    return diagram.generate()


def _png(width: int = 1, height: int = 1) -> bytes:
    """A valid, tiny PNG (white pixels), made by hand."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\0" + b"\xff\xff\xff" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _edges_into(dot: str, node: str) -> list[str]:
    return re.findall(rf"^\s*(\S+) -> {node}\b", dot, re.M)


# --- staleness ------------------------------------------------------------------------------------

def test_committed_pictures_match_template_state_machine_and_role(fresh: dict[str, str]) -> None:
    stale = diagram.stale(fresh)
    assert not stale, diagram.stale_message(stale)


def test_check_command_passes_on_the_committed_tree() -> None:
    result = subprocess.run([sys.executable, "scripts/diagram.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_a_changed_state_machine_makes_both_pictures_stale_and_says_how_to_regenerate(
        sources: diagram.Sources, tmp_path: Path) -> None:
    changed = copy.deepcopy(sources.definition)
    changed["States"]["Step 1 Create Trail"]["Comment"] = "unchanged flow"
    changed["States"]["Preflight Checks"]["Next"] = "Steps 2, 3 and 5"  # step 1 skipped
    edited = diagram.Sources(sources.template, changed, sources.state_machine, sources.role_template)
    fresh = {"overview": diagram.overview(edited), "state-machine": diagram.state_machine(edited)}
    for picture in diagram.PICTURES:
        (tmp_path / f"{picture}.dot").write_text((DOCS / f"{picture}.dot").read_text())
        (tmp_path / f"{picture}.png").write_bytes((DOCS / f"{picture}.png").read_bytes())

    stale = diagram.stale(fresh, tmp_path)

    assert stale == ["docs/overview.dot", "docs/overview.png", "docs/state-machine.dot", "docs/state-machine.png"]
    message = diagram.stale_message(stale)
    assert "`make diagram`" in message and "apt-get install graphviz" in message and "commit docs/" in message


def test_a_png_not_rendered_from_the_committed_dot_is_stale(fresh: dict[str, str], tmp_path: Path) -> None:
    for picture, source in fresh.items():
        (tmp_path / f"{picture}.dot").write_text(source)
    (tmp_path / "overview.png").write_bytes(diagram.stamp(_png(), diagram.digest(fresh["overview"])))
    (tmp_path / "state-machine.png").write_bytes(_png())  # rendered by hand, never stamped

    assert diagram.stale(fresh, tmp_path) == ["docs/state-machine.png"]


def test_stamp_adds_one_text_chunk_before_iend_and_replaces_an_older_one() -> None:
    png = diagram.stamp(diagram.stamp(_png(), "old"), "new")

    assert diagram.png_stamp(png) == "new"
    assert diagram.png_stamp(_png()) is None
    kinds = [kind for kind, _, _ in diagram._chunks(png)]
    assert kinds == [b"IHDR", b"IDAT", b"tEXt", b"IEND"]
    for kind, data, whole in diagram._chunks(png):
        assert struct.unpack(">I", whole[-4:])[0] == zlib.crc32(kind + data)


def test_committed_pngs_are_pngs_stamped_with_their_dot() -> None:
    for picture in diagram.PICTURES:
        png = (DOCS / f"{picture}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert diagram.png_stamp(png) == diagram.digest((DOCS / f"{picture}.dot").read_text())


def test_committed_dot_sources_hold_no_path_of_this_machine_and_every_icon_exists() -> None:
    for picture in diagram.PICTURES:
        dot = (DOCS / f"{picture}.dot").read_text()
        for local in (str(ROOT), str(diagram.ICONS), "site-packages", "/work/", "/home/", "/root/", "/tmp/"):
            assert local not in dot, f"docs/{picture}.dot names {local}"
        icons = re.findall(r'(?:image|SRC)="([^"]+)"', dot)
        for name in icons:
            assert not name.startswith("/"), name
            assert (diagram.ICONS / name).is_file(), f"docs/{picture}.dot: no icon {name} in the diagrams package"
    assert re.findall(r'SRC="aws/[^"]+\.png"', (DOCS / "overview.dot").read_text()), "the overview has AWS icons"


# --- reading the ASL --------------------------------------------------------------------------------

def _task(next_state: str | None = None, catch: str | None = "Handle Failure") -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": "${SomeFunctionArn}", "Retry": [{"ErrorEquals": ["X"]}]}
    state.update({"Next": next_state} if next_state else {"End": True})
    if catch:
        state["Catch"] = [{"ErrorEquals": ["States.ALL"], "Next": catch}]
    return state


SMALL_MACHINE: dict[str, Any] = {
    "StartAt": "Start",
    "States": {
        "Start": {"Type": "Pass", "Next": "Create Or Delete?"},
        "Create Or Delete?": {"Type": "Choice", "Default": "Step 1 First",
                              "Choices": [{"Variable": "$.CloudFormation.RequestType", "StringEquals": "Delete",
                                           "Next": "Teardown"}]},
        "Step 1 First": _task("Steps 2 and 3"),
        "Steps 2 and 3": {"Type": "Parallel", "Next": "Step 4 Slow", "Catch": [
            {"ErrorEquals": ["States.ALL"], "Next": "Handle Failure"}], "Branches": [
            {"StartAt": "Step 2 Left", "States": {"Step 2 Left": _task(catch=None)}},
            {"StartAt": "Step 3 Right", "States": {"Step 3 Right": _task("Step 3 Again", catch=None),
                                                   "Step 3 Again": _task(catch=None)}}]},
        "Step 4 Slow": _task("Done?"),
        "Done?": {"Type": "Choice", "Default": "Wait A Bit",
                  "Choices": [{"Variable": "$.Slow.Done", "BooleanEquals": True, "Next": "Skip?"}]},
        "Wait A Bit": {"Type": "Wait", "Seconds": 5, "Next": "Step 4 Check"},
        "Step 4 Check": _task("Done?"),
        "Skip?": {"Type": "Choice", "Default": "Step 5 Optional",
                  "Choices": [{"Variable": "$.CloudFormation.RequestType", "StringEquals": "Update",
                               "Next": "Step 6 Last"}]},
        "Step 5 Optional": _task("Step 6 Last"),
        "Step 6 Last": _task(),
        "Teardown": _task("Step 6 Last"),
        "Handle Failure": _task("Failed", catch="Failed"),
        "Failed": {"Type": "Fail"},
    },
}


def test_create_path_folds_catches_the_delete_route_and_poll_loops() -> None:
    path = diagram.create_path(SMALL_MACHINE)

    assert path.stages == [
        diagram.Stage("Step 1 First"),
        diagram.Stage("Steps 2 and 3", (("Step 2 Left",), ("Step 3 Right", "Step 3 Again"))),
        diagram.Stage("Step 4 Slow", polls="Wait A Bit"),
        diagram.Stage("Step 5 Optional"),
        diagram.Stage("Step 6 Last"),
    ]
    assert path.hops == [
        diagram.Hop("Step 1 First", "Steps 2 and 3"),
        diagram.Hop("Steps 2 and 3", "Step 4 Slow"),
        diagram.Hop("Step 4 Slow", "Step 6 Last", "RequestType is Update"),
        diagram.Hop("Step 4 Slow", "Step 5 Optional"),
        diagram.Hop("Step 5 Optional", "Step 6 Last"),
    ]


def test_reachable_splits_create_and_delete_at_the_request_type() -> None:
    create = diagram.reachable(SMALL_MACHINE)
    delete = diagram.reachable(SMALL_MACHINE, delete=True)

    assert "Teardown" not in create and "Handle Failure" not in create
    assert delete == ["Start", "Create Or Delete?", "Teardown", "Step 6 Last"]


@pytest.mark.parametrize(("rule", "words"), [
    ({"Variable": "$.CloudFormation.RequestType", "StringEquals": "Update"}, "RequestType is Update"),
    ({"Variable": "$.DeviceChecks.Count", "NumericGreaterThanEquals": 6}, "Count >= 6"),
    ({"Variable": "$.Delivery.Confirmed", "BooleanEquals": True}, "Confirmed is true"),
    ({"Variable": "$.Config.OrganizationMode", "StringEqualsPath": "$.x"}, "OrganizationMode is $.x"),
    ({"Or": [{"Variable": "$.a.S", "StringEquals": "A"}, {"Variable": "$.a.S", "StringEquals": "B"}]},
     "S is A or S is B"),
    ({"Not": {"Variable": "$.a.Done", "IsPresent": True}}, "not (Done present: true)"),
    ({"Condition": "{% $states.input.Mode = 'org' %}"}, "$states.input.Mode = 'org'"),
])
def test_describe_rule_says_a_choice_in_words(rule: dict[str, Any], words: str) -> None:
    assert diagram.describe_rule(rule) == words


def test_failure_handler_is_where_most_catches_lead_if_at_least_three_do() -> None:
    assert diagram.failure_handler(SMALL_MACHINE) == "Handle Failure"
    assert diagram.failure_handler({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}) == ""
    two = {"StartAt": "A", "States": {"A": _task("B", catch="C"), "B": _task(catch="C"), "C": _task()}}
    assert diagram.failure_handler(two) == ""  # a Catch that leads on, not a shared handler


# --- what the overview says -------------------------------------------------------------------------

def test_overview_shows_the_create_path_and_no_teardown(sources: diagram.Sources, fresh: dict[str, str]) -> None:
    overview = fresh["overview"]
    for stage in diagram.create_path(sources.definition).stages:
        assert f"<B>{stage.name}</B>" in overview
    teardown = set(diagram.reachable(sources.definition, delete=True)) - set(diagram.reachable(sources.definition))
    assert teardown
    for name in teardown:
        assert name not in overview, f"the overview shows the teardown state {name}"


def test_overview_shows_every_resource_of_the_stack(sources: diagram.Sources, fresh: dict[str, str]) -> None:
    resources = sources.template["Resources"]
    functions = [n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            assert name in fresh["overview"], f"{name} missing from the overview"
    named = [n for n in functions if f"<B>{n}</B>" in fresh["overview"]]  # the custom resource's handler
    assert len(named) == 1
    assert f"{len(functions) - len(named)} Lambda functions" in fresh["overview"]  # the steps', counted


def test_overview_shows_how_expel_gets_in_and_everything_the_role_may_do(
        sources: diagram.Sources, fresh: dict[str, str]) -> None:
    overview = fresh["overview"]
    resources = sources.role_template["Resources"].values()
    data_path = [s for p in diagram.role_policies(sources.role_template) for s in p["PolicyDocument"]["Statement"]
                 if s["Resource"] != "*"]
    assert data_path
    for statement in data_path:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            assert action in overview, f"{action} of the Expel role missing from the overview"
    assert "sts:AssumeRole\nsts:ExternalId = Workbench GUID" in overview
    assert sources.role_template["Parameters"]["ExpelPrincipalArn"]["Default"].split(":")[4] in overview
    role = next(r for r in resources if r["Type"] == "AWS::IAM::Role")
    everywhere = [a for p in role["Properties"]["Policies"] if "PolicyName" in p
                  for s in p["PolicyDocument"]["Statement"] if s["Resource"] == "*" for a in s["Action"]]
    assert f"+ {len(everywhere)} read-only inventory" in overview


def test_overview_refuses_a_guide_step_it_cannot_place(sources: diagram.Sources) -> None:
    changed = json.loads(json.dumps(sources.definition).replace("Step 8 Deploy Expel Role", "Step 11 Something New"))
    edited = diagram.Sources(sources.template, changed, sources.state_machine, sources.role_template)

    with pytest.raises(SystemExit, match=r"guide step\(s\) \[11\].*LEFT_IN_ACCOUNT"):
        diagram.overview(edited)


def test_overview_refuses_a_role_template_without_the_data_path(sources: diagram.Sources) -> None:
    role = copy.deepcopy(sources.role_template)
    properties = role["Resources"]["ExpelRole"]["Properties"]
    properties["Policies"] = [p for p in properties["Policies"] if "Fn::If" not in p]  # only the inventory
    edited = diagram.Sources(sources.template, sources.definition, sources.state_machine, role)

    with pytest.raises(SystemExit, match=r"grants nothing on \['bucket', 'kms', 'queue'\]"):
        diagram.overview(edited)


# --- what the state machine picture says ---------------------------------------------------------------

def test_state_machine_shows_every_state_and_every_lambda(sources: diagram.Sources, fresh: dict[str, str]) -> None:
    dot = fresh["state-machine"]
    states = dict(sources.definition["States"])
    for state in sources.definition["States"].values():
        for branch in state.get("Branches", []):
            states.update(branch["States"])
    for name, state in states.items():
        if state["Type"] != "Parallel":
            assert re.search(rf"^\s*{diagram._id('state ' + name)} \[", dot, re.M), f"state {name} missing"
        assert f"<B>{name}</B>" in dot or f"label=\"{name} (Parallel" in dot
        if diagram.lambda_of(state):
            assert f"λ {diagram.lambda_of(state)}" in dot


def test_state_machine_folds_catches_into_a_shared_failure_handler_into_a_red_border(
        sources: diagram.Sources) -> None:
    small = diagram.Sources(sources.template, SMALL_MACHINE, "Small", sources.role_template)
    dot = diagram.state_machine(small)
    catching = [n for n, s in SMALL_MACHINE["States"].items()
                if any(c["Next"] == "Handle Failure" for c in s.get("Catch", [])) and n != "Handle Failure"]
    assert len(catching) == 7

    assert _edges_into(dot, "state_Handle_Failure") == []
    for name in catching:
        if SMALL_MACHINE["States"][name]["Type"] == "Parallel":
            assert re.search(rf'label="{name} \(Parallel[^\]]*penwidth=2', dot), f"{name} not marked as caught"
        else:
            node = re.search(rf"^\s*{diagram._id('state ' + name)} \[([^\]]*)\]", dot, re.M)
            assert node and "penwidth=2" in node.group(1), f"{name} not marked as caught"
    assert "(7 states: those edges are not drawn)" in dot
    # The handler's own way to the Fail state is drawn, Catch included.
    assert _edges_into(dot, "state_Failed") == ["state_Handle_Failure", "state_Handle_Failure"]


def test_state_machine_draws_every_catch_it_does_not_fold(sources: diagram.Sources, fresh: dict[str, str]) -> None:
    handler = diagram.failure_handler(sources.definition)
    for name, state in diagram.all_states(sources.definition):
        for catch in state.get("Catch", []):
            if catch["Next"] == handler:
                continue
            targets = [catch["Next"]]
            if sources.definition["States"].get(catch["Next"], {}).get("Type") == "Parallel":
                targets = [b["StartAt"] for b in sources.definition["States"][catch["Next"]]["Branches"]]
            for target in targets:
                edge = re.search(rf"^\s*{diagram._id('state ' + name)} -> {diagram._id('state ' + target)} "
                                 r"\[([^\]]*)\]", fresh["state-machine"], re.M)
                assert edge and 'label="on error"' in edge.group(1), f"the Catch of {name} is not drawn"


def test_state_machine_says_what_happens_on_error(sources: diagram.Sources, fresh: dict[str, str]) -> None:
    handler = diagram.failure_handler(sources.definition)
    expected = f"the state goes to {handler}" if handler else "any other error fails the execution at that state"
    assert expected in fresh["state-machine"]
