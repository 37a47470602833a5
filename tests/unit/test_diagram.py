"""The architecture diagram is generated from the template and the ASL and must match them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]


def test_committed_diagram_matches_template_and_state_machine() -> None:
    result = subprocess.run([sys.executable, "scripts/diagram.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_diagram_shows_every_lambda_and_every_state() -> None:
    dot = (ROOT / "docs" / "architecture.dot").read_text()
    template = yaml_parse((ROOT / "template.yaml").read_text())
    functions = [n for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]
    definition = json.loads((ROOT / "statemachine" / "onboarding.asl.json").read_text())
    states = list(definition["States"])
    for state in definition["States"].values():
        for branch in state.get("Branches", []):
            states.extend(branch["States"])
    for name in functions:
        assert name in dot, f"{name} missing from the diagram"
    for name in states:
        assert f'"state:{name}"' in dot, f"state {name} missing from the diagram"
