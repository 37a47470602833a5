"""How the suite runs: with pytest-xdist as ``make test`` runs it, and with plain pytest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_a_test_process_leaves_no_request_recording_behind(tmp_path: Path) -> None:
    """The local clouds' request recording (moto's recorder, for the tests that read it) goes with the test process
    that started them: a run leaves nothing in the temporary directory."""
    env = {k: v for k, v in child_env().items() if k != "MOTO_RECORDER_FILEPATH"} | {"TMPDIR": str(tmp_path)}
    record = ("from pathlib import Path; from tests.local_cloud.harness import child_env; "
              "path = Path(child_env()['MOTO_RECORDER_FILEPATH']); path.write_text('{}'); print(path)")
    wrote = subprocess.run([sys.executable, "-c", record], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=120, check=True)
    assert Path(wrote.stdout.strip()).parent == tmp_path  # it wrote into this directory, which is empty now
    assert list(tmp_path.iterdir()) == []


def test_make_tests_workers_take_the_shared_stack_files_as_one(pytestconfig: pytest.Config) -> None:
    if not pytestconfig.pluginmanager.hasplugin("xdist"):
        pytest.skip("pytest-xdist is not loaded")
    plugin = pytestconfig.pluginmanager.get_plugin("shared-stack-scheduling")
    assert plugin is not None
    assert all((REPO / path).is_file() for path in SHARED_STACK_FILES)


def test_the_files_make_test_starts_first_exist() -> None:
    from tests.xdist_scheduling import LONGEST_FIRST

    assert [path for path in LONGEST_FIRST if not (REPO / path).is_file()] == []


class _Config:
    """What pytest-xdist's file scheduler reads of the configuration: ``make test``'s three workers."""

    class option:  # noqa: N801 - pytest's attribute
        loadscopereorder = False

    def getvalue(self, name: str) -> object:
        return {"dist": "loadfile", "tx": ["3*popen"]}[name]


class _Worker:
    def __init__(self, name: str) -> None:
        self.gateway = type("Gateway", (), {"id": name})()
        self.shutting_down, self.files = False, []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.files += sorted({COLLECTION[i].split("::")[0] for i in indices})

    def shutdown(self) -> None:
        self.shutting_down = True


COLLECTION = [f"tests/e2e/test_e{n}.py::test_{t}" for n in range(4) for t in range(3)] + [
    f"tests/unit/test_u{n}.py::test_{t}" for n in range(4) for t in range(3)]


def test_make_tests_workers_keep_a_third_worker_on_in_process_files_while_two_run_e2e_files() -> None:
    from tests.xdist_scheduling import pytest_xdist_make_scheduler

    scheduler = pytest_xdist_make_scheduler(_Config(), None)  # type: ignore[arg-type]
    workers = [_Worker(f"gw{n}") for n in range(3)]
    for worker in workers:
        scheduler.add_node(worker)
    for worker in workers:
        scheduler.add_node_collection(worker, COLLECTION)
    scheduler.schedule()
    assert [w.files for w in workers] == [["tests/e2e/test_e0.py"], ["tests/e2e/test_e1.py"],
                                          ["tests/unit/test_u0.py"]]
    # gw0 is nearly through its file: it draws the next e2e file, gw1 still being in one.
    for index in range(2):
        scheduler.mark_test_complete(workers[0], COLLECTION.index(f"tests/e2e/test_e0.py::test_{index}"))
    assert workers[0].files[-1] == "tests/e2e/test_e2.py"
    # gw2 stays on in-process files while the two others are in e2e ones.
    for index in range(2):
        scheduler.mark_test_complete(workers[2], COLLECTION.index(f"tests/unit/test_u0.py::test_{index}"))
    assert workers[2].files[-1] == "tests/unit/test_u1.py"
