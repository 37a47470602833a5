"""Fixtures of the local cloud's own tests: a served local cloud and the fixture app, built once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.local_cloud.harness import FIXTURE_APP, ServedCloud, sam_build, serve_child


@pytest.fixture(scope="session")
def served_cloud() -> Iterator[ServedCloud]:
    with serve_child() as cloud:
        yield cloud


@pytest.fixture(scope="session")
def fixture_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture SAM app's build output (sam build takes a few seconds: once per session)."""
    return sam_build(FIXTURE_APP, tmp_path_factory.mktemp("fixture-app-build"))
