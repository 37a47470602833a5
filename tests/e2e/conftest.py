"""End-to-end fixtures: the local cloud (``cloudtrail-onboarding local serve``) as a child process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.local_cloud.harness import ServedCloud, serve_child


@pytest.fixture(scope="session")
def local_cloud() -> Iterator[ServedCloud]:
    """``local serve`` on free 127.0.0.1 ports, ready when yielded (``.url``, ``.workbench_url``), always
    stopped afterwards, also when a test fails."""
    with serve_child() as cloud:
        yield cloud
