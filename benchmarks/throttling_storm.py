"""The onboarding under a throttling storm against a clean run, on the local cloud (not part of the test suite).

Starts the local cloud in this process on free 127.0.0.1 ports and deploys the real (built) template twice
with ``local deploy``: once clean, once with every write call throttled twice before it goes through
(``local serve --throttle-writes 2``: each write answers the service's own throttling error twice, as AWS
does under load, and the SDK's standard retries carry on). For each run it prints the deploy's wall time,
the onboarding execution's duration and the AWS calls the onboarding made (every request on the wire,
throttled answers included; the deploy tool's own calls are not counted), reads and writes, and the
ratios storm/clean. Both runs must complete with every Output, or the script exits 1.

    .venv/bin/python benchmarks/throttling_storm.py [--throttle 2]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import built_template, create_execution, log, stop_on_sigterm

from local_cloud import api_calls
from local_cloud.server import LocalCloud, WsgiApp
from tests.local_cloud.harness import ServedCloud, free_port, onboarding_parameters, run_cli


class CallCounter:
    """WSGI middleware in front of everything: every AWS call on the wire, throttled answers included."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.calls: Counter[tuple[str, bool, bool]] = Counter()  # (service:operation, read only, throttled)
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = self.app(environ, start_response)
        call = api_calls.identify(environ)
        if call is not None and not call.from_tooling:
            with self._lock:
                self.calls[(f"{call.service}:{call.operation}", api_calls.read_only(call.operation),
                            "local_cloud.fault" in environ)] += 1
        return body

    def take(self) -> Counter[tuple[str, bool, bool]]:
        with self._lock:
            taken, self.calls = self.calls, Counter()
        return taken


class CountedCloud(LocalCloud):
    counter: CallCounter

    def middleware(self) -> list[Callable[[WsgiApp], WsgiApp]]:
        def count(app: WsgiApp) -> WsgiApp:
            self.counter = CallCounter(app)
            return self.counter

        return [*super().middleware(), count]


@dataclass
class Run:
    label: str
    stack: str
    throttle: int
    wall: float = 0.0
    execution: float = 0.0
    calls: Counter[tuple[str, bool, bool]] = field(default_factory=Counter)
    problem: str = ""

    def total(self, read_only: bool | None = None, throttled: bool | None = None) -> int:
        return sum(n for (_, ro, th), n in self.calls.items()
                   if (read_only is None or ro == read_only) and (throttled is None or th == throttled))


def execution_seconds(url: str, stack: str) -> float:
    described = create_execution(url, stack)
    return float((described["stopDate"] - described["startDate"]).total_seconds())


def measure(cloud: CountedCloud, template: Path, run: Run) -> None:
    cloud.faults.throttle_writes = run.throttle
    served = ServedCloud(url=cloud.url, workbench_url=cloud.workbench_url or "", port=0, workbench_port=0,
                         process=None)  # type: ignore[arg-type]
    cloud.counter.take()
    started = time.monotonic()
    result = run_cli("local", "deploy", "--endpoint-url", cloud.url, "--stack-name", run.stack,
                     "--template", str(template), "--timeout", "600",
                     "--parameter-overrides", *onboarding_parameters(served, run.stack), timeout=700)
    run.wall = time.monotonic() - started
    time.sleep(1)  # the last Lambda's calls are answered before the deploy tool sees the stack complete
    run.calls = cloud.counter.take()
    if result.returncode != 0:
        run.problem = f"local deploy exited {result.returncode}: {(result.stdout + result.stderr)[-600:]}"
        return
    run.execution = execution_seconds(cloud.url, run.stack)


def report(runs: list[Run]) -> int:
    log.info("")
    log.info("%-22s %8s %8s %10s %8s %8s %10s", "run", "wall s", "exec s", "AWS calls", "reads", "writes",
             "throttled")
    for run in runs:
        log.info("%-22s %8.1f %8.1f %10d %8d %8d %10d%s", run.label, run.wall, run.execution, run.total(),
                 run.total(read_only=True, throttled=False), run.total(read_only=False, throttled=False),
                 run.total(throttled=True), f"  ! {run.problem}" if run.problem else "")
    clean, storm = runs
    if clean.total() and clean.wall:
        log.info("storm / clean: wall time x%.2f, execution x%.2f, AWS calls x%.2f (each write retried %d times: "
                 "%d extra calls expected, %d seen)", storm.wall / clean.wall,
                 storm.execution / clean.execution if clean.execution else 0.0, storm.total() / clean.total(),
                 storm.throttle, storm.throttle * storm.total(read_only=False, throttled=False),
                 storm.total(throttled=True))
    log.info("slowest to converge under the storm (throttled answers per operation):")
    throttled = Counter({op: n for (op, _, th), n in storm.calls.items() if th})
    for operation, count in throttled.most_common(8):
        log.info("  %-50s %d", operation, count)
    return 1 if any(r.problem for r in runs) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--throttle", type=int, default=2, help="throttled answers per write call (default 2)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.getLogger("local_cloud").setLevel(logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    stop_on_sigterm()
    tag = uuid.uuid4().hex[:6]
    runs = [Run("clean", f"bench-{tag}-clean", 0), Run(f"storm (writes x{args.throttle})", f"bench-{tag}-storm",
                                                        args.throttle)]
    with tempfile.TemporaryDirectory(prefix="throttling-storm-") as scratch:
        template = built_template(Path(scratch))
        cloud = CountedCloud(free_port(), free_port(), schedule_interval=1.0).start()
        try:
            log.info("local cloud at %s", cloud.url)
            for run in runs:
                log.info("deploying %s ...", run.label)
                measure(cloud, template, run)
        finally:
            cloud.stop()
    return report(runs)


if __name__ == "__main__":
    sys.exit(main())
