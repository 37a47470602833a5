"""End-to-end fixtures: the local cloud (``cloudtrail-onboarding local serve``) as a child process."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_cloud.deploy import build_is_stale
from tests.e2e.test_onboarding_e2e import client, deploy_command, outputs
from tests.local_cloud import harness
from tests.local_cloud.harness import REPO, ServedCloud, onboarding_parameters, run_cli, sam_build, serve_child
from tests.xdist_scheduling import SHARED_CLOUD_FILES

ONBOARDED_STACK = "e2e-main"
REFUSED_STACK = "e2e-fail"

# Runs after every other e2e test: it reads what they all did.
LAST = "test_iam_grants_used.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name == LAST)
    # As the scheduler names a file: by the nodeid's path.
    on_shared_cloud = {item.nodeid.split("::", 1)[0] for item in items if _uses_shared_cloud(item)}
    if missing := sorted(on_shared_cloud - set(SHARED_CLOUD_FILES)):
        raise pytest.UsageError(f"{missing} use the shared local cloud: add them to SHARED_CLOUD_FILES "
                                "(tests/xdist_scheduling.py), so that make test's workers start it once")


def _uses_shared_cloud(item: pytest.Item) -> bool:
    """Whether ``item`` runs on this package's ``local_cloud`` (not a module's own fixture of that name)."""
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.get("local_cloud", ()) if info else ()
    return bool(definitions) and definitions[-1].func is local_cloud.__wrapped__


@pytest.fixture(scope="session", autouse=True)
def iam_reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every local cloud of the e2e session records each call a role's grant allowed (``--iam-report``), one
    file per local cloud, in this directory: ``IAM_REPORTS_DIR`` when set (``make test`` shares it between its
    parallel workers and the coverage check that runs after them), else a directory of this session's."""
    shared = os.environ.get("IAM_REPORTS_DIR")
    reports = Path(shared) if shared else tmp_path_factory.mktemp("iam-reports")
    reports.mkdir(parents=True, exist_ok=True)
    harness.IAM_REPORTS = reports
    try:
        yield reports
    finally:
        harness.IAM_REPORTS = None


# The shared local cloud and its stacks are made once per pytest process for the e2e tests and stopped after the
# last of them (package scope): its trails deliver log files every second and its schedules keep running, which
# would otherwise take CPU from every test that a parallel worker runs after the e2e files.
@pytest.fixture(scope="package")
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


@pytest.fixture(scope="package")
def onboarded(local_cloud: ServedCloud, built_template: Path) -> dict[str, str]:
    """One onboarding of the real template, created once: its ``stack_name``, ``local deploy`` output
    (``stdout``) and stack Outputs. Shared by the tests that only read what it made; a test that changes or deletes a
    stack deploys its own."""
    # CloudWatch Logs delivery is opt-in: on here, so the one full deploy proves it (README "CIS and Security Hub").
    params = onboarding_parameters(local_cloud, ONBOARDED_STACK, CloudWatchLogsRetentionDays="30")
    result = run_cli(*deploy_command(local_cloud, built_template, ONBOARDED_STACK, params), timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {"stack_name": ONBOARDED_STACK, "stdout": result.stdout, **outputs(local_cloud, ONBOARDED_STACK)}


@pytest.fixture(scope="package")
def preflight_refused(local_cloud: ServedCloud, built_template: Path) -> dict[str, Any]:
    """An onboarding that Preflight refuses: a queue of its name exists and is not ours. The stack
    ``name``, the ``local deploy`` ``result`` and how many ``seconds`` it took until the deploy ended; the stack
    stays CREATE_FAILED (rollback disabled)."""
    client(local_cloud, "sqs").create_queue(QueueName=f"{REFUSED_STACK}-queue")
    started = time.monotonic()
    params = onboarding_parameters(local_cloud, REFUSED_STACK)
    # --disable-rollback, as a person who wants to read why: the failed execution stays with the stack.
    result = run_cli(*deploy_command(local_cloud, built_template, REFUSED_STACK, params), "--disable-rollback",
                     timeout=300)
    return {"name": REFUSED_STACK, "result": result, "seconds": time.monotonic() - started}
