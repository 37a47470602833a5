"""End-to-end fixtures: the local cloud (``cloudtrail-onboarding local serve``) as a child process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local_cloud.deploy import build_is_stale
from tests.local_cloud.harness import REPO, ServedCloud, sam_build, serve_child


@pytest.fixture(scope="session")
def local_cloud() -> Iterator[ServedCloud]:
    """``local serve`` on free 127.0.0.1 ports, ready when yielded (``.url``, ``.workbench_url``), always
    stopped afterwards, also when a test fails."""
    with serve_child() as cloud:
        yield cloud


@pytest.fixture(scope="session")
def built_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real template.yaml built: ``make``'s fresh ``.aws-sam/build`` when there is one, else ``sam build``
    into a temporary directory (once per session)."""
    made = REPO / ".aws-sam" / "build" / "template.yaml"
    if not build_is_stale(made, REPO):
        return made
    return sam_build(REPO / "template.yaml", tmp_path_factory.mktemp("sam-build"))
