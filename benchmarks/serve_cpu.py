"""The CPU one ``local serve`` process spends (not part of the test suite): at start, over one onboarding's
deploy and delete, and idle.

Starts the local cloud as the e2e tests do (``tests.local_cloud.harness.serve_child``: compressed time, trail
deliveries every second), then reads the process's user+system CPU (``/proc/<pid>/stat``) at these points:

* ready: the process has printed its ready line (imports, patches; the warm-up may still be running);
* idle: ``--idle`` seconds later, before any stack exists (warm-up and background loops);
* deployed: after ``local deploy`` of the real (built) template, as the e2e tests' ``onboarded`` fixture does;
* idle, stack up: ``--idle`` seconds later (its trail delivers, its rules fire);
* deleted: after ``local delete`` of that stack (a second execution of the same state machine);
* idle after: ``--idle`` seconds later again (no stack left);

and prints each step's CPU seconds and the total. Figures only, no verdict. The local cloud is always stopped.

    .venv/bin/python benchmarks/serve_cpu.py [--idle 20] [--runs 1]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import built_template, log, stop_on_sigterm

from tests.e2e.test_onboarding_e2e import deploy_command
from tests.local_cloud.harness import onboarding_parameters, run_cli, serve_child


def cpu_seconds(pid: int) -> float:
    """user + system CPU of process ``pid`` so far (its own threads; the Lambda environments it starts are
    processes of their own and not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(template: Path, idle: float, stack: str) -> list[tuple[str, float]]:
    steps: list[tuple[str, float]] = []
    with serve_child() as cloud:
        pid = cloud.process.pid
        last = 0.0

        def mark(step: str) -> None:
            nonlocal last
            now = cpu_seconds(pid)
            steps.append((step, now - last))
            last = now

        mark("ready")
        time.sleep(idle)
        mark(f"idle {idle:g} s")
        params = onboarding_parameters(cloud, stack, CloudWatchLogsRetentionDays="30")
        deployed = run_cli(*deploy_command(cloud, template, stack, params))
        if deployed.returncode != 0:
            raise RuntimeError(deployed.stdout[-3000:] + deployed.stderr[-3000:])
        mark("deploy")
        time.sleep(idle)
        mark(f"idle {idle:g} s, stack up")
        deleted = run_cli("local", "delete", "--endpoint-url", cloud.url, "--stack-name", stack, "--timeout", "300")
        if deleted.returncode != 0:
            raise RuntimeError(deleted.stdout[-3000:] + deleted.stderr[-3000:])
        mark("delete")
        time.sleep(idle)
        mark(f"idle {idle:g} s after")
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=20.0, help="seconds to leave the cloud idle (default 20)")
    parser.add_argument("--runs", type=int, default=1, help="clouds to start, one after another (default 1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stop_on_sigterm()
    with tempfile.TemporaryDirectory() as scratch:
        template = built_template(Path(scratch))
        for run in range(args.runs):
            steps = one_run(template, args.idle, f"serve-cpu-{run}")
            for step, seconds in steps:
                log.info("run %d  %-22s %7.2f CPU s", run + 1, step, seconds)
            log.info("run %d  %-22s %7.2f CPU s", run + 1, "total", sum(s for _, s in steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
