"""The guard every patch module's install shares: moto is patched once per process, whoever asks first."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from local_cloud.once import once

LOCAL_CLOUD = Path(__file__).resolve().parents[2] / "local_cloud"


def test_install_runs_on_the_first_call_only() -> None:
    calls: list[str] = []
    install = once(lambda: calls.append("patched"))

    install()
    install()

    assert calls == ["patched"]


def test_install_that_raised_is_tried_again() -> None:
    calls: list[int] = []

    def flaky() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("moto not importable yet")

    install = once(flaky)
    with pytest.raises(RuntimeError):
        install()
    install()
    install()

    assert calls == [0, 1]


def test_install_may_call_itself_through_another_install_without_blocking() -> None:
    calls: list[str] = []

    @once
    def outer() -> None:
        calls.append("outer")
        if len(calls) == 1:
            outer()  # as when a patch module's install reaches moto_patches.apply, which installs it

    outer()

    assert calls == ["outer", "outer"]


def test_threads_racing_to_install_patch_once() -> None:
    calls: list[str] = []
    started = threading.Barrier(8)

    @once
    def install() -> None:
        calls.append("patched")

    def race() -> None:
        started.wait()
        install()

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert calls == ["patched"]


def test_no_patch_module_keeps_a_guard_of_its_own() -> None:
    """One guard, in local_cloud/once.py: a module-level installed flag elsewhere is the pattern it replaced."""
    own_guards = sorted(str(path.relative_to(LOCAL_CLOUD)) for path in LOCAL_CLOUD.rglob("*.py")
                        if any(line.startswith(("_installed = ", "_applied = "))
                               for line in path.read_text().splitlines()))

    assert own_guards == []
