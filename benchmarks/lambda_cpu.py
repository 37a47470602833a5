"""CPU that one deploy of the real template costs the local cloud, by process kind (not part of the test suite).

Starts ``cloudtrail-onboarding local serve`` as a child process (as the e2e tests do: Lambda environments are not
initialized proactively unless ``--preinit``, which measures what ``local serve`` does for a person), deploys the
built template ``--runs`` times, each in a new local cloud (as the e2e ``onboarded`` fixture deploys it), and after
each deploy reads from ``/proc`` (Linux) the user+system CPU seconds the deploy added to

* ``serve``: the ``local serve`` process itself (moto, the emulation, the Lambda runner),
* ``fork servers``: the Lambda fork servers (their start-up: the runtime's imports and botocore's data parsed),
* ``environments``: the Lambda execution environments (their Init and invocations), and how many were started,
* ``sam``: what ``local deploy`` ran as child processes of this one.

Figures only, no verdict. The local cloud is always stopped at the end. On a shared machine CPU seconds move
by a tenth or so between runs: compare medians of a few runs.

    .venv/bin/python benchmarks/lambda_cpu.py --runs 3
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import sys
import tempfile
import threading
import uuid
from pathlib import Path

from _common import built_template, log, stop_on_sigterm

from tests.local_cloud.harness import ServedCloud, onboarding_parameters, run_cli, serve_child

TICKS = os.sysconf("SC_CLK_TCK")
KINDS = ("serve", "fork servers", "environments")


def _stat(pid: int) -> tuple[int, float, float]:
    """(parent pid, CPU seconds of the process, CPU seconds of its children it waited for)."""
    fields = _fields(pid)
    user, system, children_user, children_system = (int(value) for value in fields[11:15])
    return int(fields[1]), (user + system) / TICKS, (children_user + children_system) / TICKS


def _fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def _is_environment(pid: int) -> bool:
    """An environment leads a session of its own; a layer server (a fork server's fork) stays in its parent's."""
    return int(_fields(pid)[3]) == pid


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(_stat(int(entry))[0], []).append(int(entry))
            except OSError:  # ended meanwhile
                continue
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _is_fork_server(pid: int) -> bool:
    """A fork server runs ``_lambda_bootstrap.py --fork-server``; so do the environments it forks, one level down."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"--fork-server" in cmdline.read()
    except OSError:
        return False


def cpu(serve: int) -> dict[str, float]:
    """CPU seconds so far of the serve process, its fork servers and their environments (ended ones included:
    a fork server waits for each environment it forked, so the kernel adds theirs to its children's time). The
    layer servers a fork server forks (the layers' modules a handler imports, imported once for the environments
    forked from them) count as fork servers while they run, and as environments once ended."""
    _, own, waited = _stat(serve)
    figures = dict.fromkeys(KINDS, 0.0)
    figures["serve"] = own + waited  # waited: what it ran itself (compiling a new layer's bytecode)
    for pid in _descendants(serve):
        try:
            parent, own, waited = _stat(pid)
            environment = _is_environment(pid)
        except OSError:
            continue
        if not _is_fork_server(pid):
            figures["serve"] += own + waited
        elif parent == serve or not environment:
            figures["fork servers"] += own
            figures["environments"] += waited
        else:
            figures["environments"] += own + waited
    return figures


def _count_environments(serve: int, seen: set[int], stop: threading.Event) -> None:
    """Every environment process that lives at some moment (they live until idle for two minutes)."""
    while not stop.wait(0.05):
        for pid in _descendants(serve):
            try:
                if _stat(pid)[0] != serve and _is_fork_server(pid) and _is_environment(pid):
                    seen.add(pid)
            except OSError:
                continue


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def deploy(cloud: ServedCloud, template: Path, stack: str) -> dict[str, float]:
    serve = cloud.process.pid
    before, sam_before, stop = cpu(serve), _children_cpu(), threading.Event()
    seen: set[int] = set()
    counter = threading.Thread(target=_count_environments, args=(serve, seen, stop), daemon=True)
    counter.start()
    try:
        params = onboarding_parameters(cloud, stack, CloudWatchLogsRetentionDays="30")
        result = run_cli("local", "deploy", "--endpoint-url", cloud.url, "--stack-name", stack, "--template",
                         str(template), "--timeout", "300", "--parameter-overrides", *params, timeout=400)
    finally:
        stop.set()
        counter.join()
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-600:]
        raise RuntimeError(f"{stack}: local deploy exited {result.returncode}: {output}")
    after = cpu(serve)
    figures = {kind: after[kind] - before[kind] for kind in KINDS}
    figures["sam"] = _children_cpu() - sam_before
    figures["environments started"] = len(seen)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="deploys to measure, each in a new local cloud (default 3)")
    parser.add_argument("--preinit", action="store_true",
                        help="initialize each function's environment when it is created (local serve's default)")
    args = parser.parse_args(argv)
    os.environ["LOCAL_LAMBDA_PREINIT"] = "1" if args.preinit else "0"  # the local cloud's (tests/conftest.py: 0)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    stop_on_sigterm()  # unwinds through serve_child, which stops the local cloud
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="lambda-cpu-") as scratch:
        template = built_template(Path(scratch))
        for number in range(1, args.runs + 1):
            # A new local cloud each time: its fork server starts, as in each e2e test module's.
            with serve_child() as cloud:
                figures = deploy(cloud, template, f"cpu-{uuid.uuid4().hex[:6]}")
            runs.append(figures)
            log.info("run %d: %s", number, ", ".join(f"{kind} {value:.2f}" if kind != "environments started"
                                                      else f"{kind} {value:.0f}" for kind, value in figures.items()))
    log.info("")
    for run in runs:
        run["fork servers + environments"] = run["fork servers"] + run["environments"]
    for kind in (*KINDS, "fork servers + environments", "sam", "environments started"):
        values = [run[kind] for run in runs]
        log.info("%-22s median %6.2f  (min %.2f, max %.2f)%s", kind, statistics.median(values), min(values),
                 max(values), "" if kind == "environments started" else " CPU s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
