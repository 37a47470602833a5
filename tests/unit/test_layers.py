"""The shared package's layers, read from its imports: AWS is called only from ``aws/``, pure modules stay
pure, and a guide step does not use preflight as a library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "onboarding" / "expel_onboarding"
MODULES = {
    ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts): path
    for path in sorted(PACKAGE.rglob("*.py"))
}
PURE = ("expel_onboarding.models", "expel_onboarding.naming", "expel_onboarding.ownership",
        "expel_onboarding.errors", "expel_onboarding.validation", "expel_onboarding.workbench_payload",
        "expel_onboarding.custom_resource", "expel_onboarding.policies")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _touches_aws(imports: set[str]) -> set[str]:
    return {name for name in imports
            if name.split(".")[0] in ("boto3", "botocore") or name == "expel_onboarding.aws.clients"}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith("expel_onboarding.aws")))
def test_only_the_aws_wrappers_reach_boto3(module: str) -> None:
    """Outside ``aws/`` nothing makes a client: every AWS call goes through a typed wrapper."""
    assert _touches_aws(_imports(MODULES[module])) == set()


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(PURE)))
def test_pure_modules_take_no_aws_and_no_environment(module: str) -> None:
    imports = _imports(MODULES[module])
    assert {name for name in imports if name.startswith("expel_onboarding.aws")} == set()
    assert "os" not in imports and "os.environ" not in imports


def test_no_step_uses_preflight_as_a_library() -> None:
    """Preflight is a state of its own; what it shares with step 1 (the look-ups) lives in ``steps.existing``."""
    users = [m for m, path in MODULES.items()
             if m != "expel_onboarding.steps.preflight"
             and any(i.startswith("expel_onboarding.steps.preflight") and "organizations" not in i
                     for i in _imports(path))]
    assert users == []
