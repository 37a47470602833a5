"""What IAM enforcement costs: the demo's wall time with and without it (not part of the test suite).

Runs ``cloudtrail-onboarding demo`` (local cloud + deploy of the built template + Outputs + stop) ``--runs``
times with enforcement (the default) and as many times with ``--no-iam``, alternating so that load on the
machine hits both alike, each on free ports. Prints every run, the medians and their ratio, against the
target of at most 1.3 times the demo without enforcement; exits non-zero when a demo fails or the ratio is
over the target.

    .venv/bin/python benchmarks/iam_overhead.py --runs 3
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, built_template, log

from tests.local_cloud.harness import child_env, cli_command, free_port

TARGET_RATIO = 1.3


def demo_seconds(template: Path, enforced: bool) -> float:
    """Wall time of one ``demo``; raises with its output when it fails."""
    command = [*cli_command(), "demo", "--template", str(template), "--port", str(free_port()),
               "--workbench-port", str(free_port())]
    if not enforced:
        command.append("--no-iam")
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=900,
                            check=False)
    took = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"demo {'with' if enforced else 'without'} IAM exited {result.returncode}: "
                           f"{(result.stdout + result.stderr)[-800:]}")
    return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="demos of each kind (default 3)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="iam-overhead-") as scratch:
        template = built_template(Path(scratch))
        for run in range(1, args.runs + 1):
            for enforced in (True, False):
                took = demo_seconds(template, enforced)
                times[enforced].append(took)
                log.info("run %d  %-17s %7.1f s", run, "IAM enforced" if enforced else "--no-iam", took)
    with_iam, without = statistics.median(times[True]), statistics.median(times[False])
    ratio = with_iam / without
    log.info("")
    log.info("demo median: %.1f s with IAM enforcement, %.1f s without (%d runs each)", with_iam, without, args.runs)
    log.info("ratio %.2f: %s the target of <= %.1f", ratio, "within" if ratio <= TARGET_RATIO else "OVER",
             TARGET_RATIO)
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
