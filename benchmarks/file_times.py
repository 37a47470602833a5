"""A pytest plugin for ``suite_speed.py``: where the pytest phase's wall time goes, file by file.

``make test`` runs pytest-xdist with ``--dist loadfile``: each test file runs whole on one worker, so the phase
ends when the worker with the most work is done, and a long file that starts late makes a long tail. Recorded
on the controller (the process that starts the workers) as the test reports arrive: for each file its worker, when
its first test started and its last one ended (seconds since the session started), and the time its tests took
(setup, call and teardown; the first test's setup includes the module's fixtures, e.g. a deploy). Written as JSON
to ``$FILE_TIMES_OUT`` at the end of the session.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

_started = time.monotonic()
_files: dict[str, dict[str, Any]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    now = time.monotonic() - _started
    path = report.nodeid.split("::", 1)[0]
    entry = _files.setdefault(path, {"worker": "", "start": now - report.duration, "end": now, "busy": 0.0,
                                     "tests": 0})
    entry["start"] = min(entry["start"], now - report.duration)
    entry["end"] = now
    entry["busy"] += report.duration
    entry["tests"] += report.when == "call"
    node = getattr(report, "node", None)  # the worker that ran it (on the controller only)
    entry["worker"] = getattr(getattr(node, "gateway", None), "id", "") or entry["worker"]


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("FILE_TIMES_OUT")
    if out and not hasattr(session.config, "workerinput"):  # the controller (or a run without workers)
        with open(out, "w", encoding="utf-8") as handle:
            json.dump({"wall": time.monotonic() - _started, "files": _files}, handle, indent=1)
