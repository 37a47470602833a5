"""Fixtures of the local cloud's own tests: a served local cloud and the fixture app, built once."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.local_cloud.harness import FIXTURE_APP, REPO, ServedCloud, sam_build, serve_child

# The fixture app's build, kept beside the real template's (.aws-sam/build) for the next session.
FIXTURE_APP_BUILD = REPO / ".aws-sam" / "fixture-app"


@pytest.fixture(scope="session")
def served_cloud() -> Iterator[ServedCloud]:
    with serve_child() as cloud:
        yield cloud


def _newest_source(app: Path) -> float:
    return max(path.stat().st_mtime for path in app.rglob("*") if path.is_file() and "__pycache__" not in path.parts)


@pytest.fixture(scope="session")
def fixture_app() -> Iterator[Path]:
    """The fixture SAM app's build output: the last session's when no source changed since, else ``sam build``
    (seconds of CPU) into this session's directory, then copied there for the next session. Both lie beside each
    other: the built template names the state machine's definition by a path relative to its own folder, which a
    build made at another depth (a temporary directory) would not find once copied."""
    built = FIXTURE_APP_BUILD / "template.yaml"
    if built.exists() and built.stat().st_mtime > _newest_source(FIXTURE_APP.parent):
        yield built
        return
    mine = FIXTURE_APP_BUILD.with_name(f"fixture-app.{os.getpid()}")
    shutil.rmtree(mine, ignore_errors=True)
    fresh = sam_build(FIXTURE_APP, mine)
    staged = mine.with_name(f"{mine.name}.next")
    try:
        shutil.copytree(mine, staged)
        shutil.rmtree(FIXTURE_APP_BUILD, ignore_errors=True)
        staged.rename(FIXTURE_APP_BUILD)
    except OSError:  # another session built it at the same time and was first: its copy will do next time
        shutil.rmtree(staged, ignore_errors=True)
    try:
        yield fresh
    finally:
        shutil.rmtree(mine, ignore_errors=True)
