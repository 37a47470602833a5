"""How the suite runs: with pytest-xdist as ``make test`` runs it, and with plain pytest."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.local_cloud.harness import REPO, child_env
from tests.xdist_scheduling import SHARED_STACK_FILES


def test_plain_pytest_without_xdist_collects_the_suite() -> None:
    """The scheduling hook is pytest-xdist's: without it loaded, pytest would refuse tests/conftest.py."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider",
                             "--collect-only", "-q", "tests/unit/test_ownership.py"],
                            cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "tests collected" in result.stdout


def test_make_tests_workers_take_the_shared_stack_files_as_one(pytestconfig: pytest.Config) -> None:
    if not pytestconfig.pluginmanager.hasplugin("xdist"):
        pytest.skip("pytest-xdist is not loaded")
    plugin = pytestconfig.pluginmanager.get_plugin("shared-stack-scheduling")
    assert plugin is not None
    assert all((REPO / path).is_file() for path in SHARED_STACK_FILES)
