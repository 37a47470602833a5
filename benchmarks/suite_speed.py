"""The two figures a newcomer waits for: ``make demo`` from a built tree, and the pytest phase of ``make test``.

Not part of the test suite (performance targets are figures, not timed assertions). Run it from a built
tree (``make build`` first: the demo would otherwise include ``sam build``):

    .venv/bin/python benchmarks/suite_speed.py [--demo-runs 3] [--no-suite] [--ci] [-- PYTEST ARGS]
    .venv/bin/python benchmarks/suite_speed.py --against REV [--pairs N]

* demo: ``cloudtrail-onboarding demo`` on free ports, start to exit (local cloud start, deploy of the real
  template, Outputs, stop), ``--demo-runs`` times; prints each run with when each of its phases ended (local
  cloud ready, change set created, execution started and succeeded, stack complete, exit), the median and the
  best.
* pytest phase: ``pytest`` with the arguments after ``--`` (default: the whole suite, as ``make test`` runs
  it, with the Makefile's PYTEST_WORKERS), once; prints its wall time, the CPU time of pytest and everything
  it started (the local clouds and their Lambda processes), and the test count pytest reported; then each
  worker's busy time and the longest test files with when they ran (``benchmarks/file_times.py``), which is
  where a long tail shows. ``--demo-runs 0`` runs the pytest phase only.
* ``--ci``: instead of both, what CI does (``.ci/run``) in a clean clone of HEAD in a temporary directory,
  phase by phase: the installs (the dev and runtime venvs, checkov's venv), lint, scan, sam build, the test
  modules' bytecode (make test writes it beside sam build), pytest;
  each phase's wall and CPU time and the total. On a machine that has installed them before, pip's cache
  makes the installs faster than on a fresh one.
* ``--against REV [--pairs N]``: before and after, on this machine: the pytest phase of ``make test`` (its
  recipe, once the clone's lint, scan, build and test bytecode are made) for REV and for HEAD, each in a clean
  clone of its own with a temporary directory of its own (so no run finds the Lambda code and bytecode an earlier
  one extracted, as on CI's fresh machine), in N interleaved pairs (REV first, then HEAD first, ...): a machine's
  speed drifts within the hour, and only runs close in time compare. Prints each pair's ratio and their mean.

The machine is shared with whatever else runs: wall time is what a person waits; CPU time is the figure to
compare between runs when the load differs (on 2 idle cores, wall is at least CPU / 2). The issue's targets
(demo under 15 s; the pytest phase at most half of the 7 min 41 s measured at 881 tests) are stated, not
asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "onboarding"), str(ROOT)]

from local_cloud.deploy import build_is_stale  # noqa: E402
from tests.local_cloud.harness import child_env, cli_command, free_port  # noqa: E402

BUILT = ROOT / ".aws-sam" / "build" / "template.yaml"
# What CI runs (.ci/run: `make test`), its prerequisites one by one, then its own recipe (pytest) alone.
CI_PHASES = (("install dev + runtime venvs", [".venv/bin/.installed"]), ("install checkov venv",
             [".venv-checkov/.installed"]), ("lint", ["lint"]), ("scan", ["scan"]), ("sam build", ["build"]),
             ("test modules' bytecode", [".pytest-bytecode"]),
             ("pytest", ["-o", "lint", "-o", "scan", "-o", "build", "test"]))
DEMO_TARGET_SECONDS = 15
PYTEST_BASELINE_SECONDS = 7 * 60 + 41
log = logging.getLogger("benchmark")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None,
          ) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds, CPU seconds of the command and its descendants, the finished process)."""
    cpu, started = children_cpu(), time.monotonic()
    done = subprocess.run(command, cwd=cwd, env=env or child_env(), capture_output=True, text=True, check=False)
    return time.monotonic() - started, children_cpu() - cpu, done


def pytest_workers() -> list[str]:
    """The Makefile's PYTEST_WORKERS: how ``make test`` runs pytest."""
    found = re.search(r"^PYTEST_WORKERS\s*:?=(.*)$", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE)
    return found.group(1).split() if found else []


def clean_env() -> dict[str, str]:
    """This environment without this tree's venvs: the clone's Makefile sets up its own."""
    here = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "LAMBDA_RUNTIME_PYTHON", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != here)
    return env


def clean_clone(clone: Path, commit: str = "HEAD") -> Path:
    """A clone of this repository at ``commit`` (its committed state: what CI checks out)."""
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "checkout", "-q", commit], cwd=clone, check=True)
    return clone


def ci_phases() -> int:
    """``make test`` in a clean clone, phase by phase (the last phase, pytest, once the others made it up to date)."""
    with tempfile.TemporaryDirectory(prefix="ci-phases-") as workdir:
        clone = clean_clone(Path(workdir) / "clone")
        total_wall = total_cpu = 0.0
        for name, targets in CI_PHASES:
            wall, cpu, done = timed(["make", *targets], cwd=clone, env=clean_env())
            total_wall, total_cpu = total_wall + wall, total_cpu + cpu
            log.info("%-28s %6.0f s wall %6.0f s CPU", name, wall, cpu)
            if done.returncode != 0:
                log.error("%s failed (exit %d):\n%s", name, done.returncode, (done.stdout + done.stderr)[-3000:])
                return 1
        log.info("%-28s %6.0f s wall %6.0f s CPU (CI's limit: 20 min)", "total", total_wall, total_cpu)
    return 0


def has_target(clone: Path, target: str) -> bool:
    """Whether the clone's Makefile can make ``target`` (an older commit may not have it)."""
    return subprocess.run(["make", "-q", target], cwd=clone, env=clean_env(), capture_output=True,
                          check=False).returncode != 2


def pytest_phase_of(commit: str, workdir: Path) -> tuple[float, float, str]:
    """(wall, CPU, pytest's summary) of ``make test``'s pytest phase in a clean clone of ``commit``, made as CI
    makes it, with a new temporary directory."""
    clone, scratch = clean_clone(workdir / "clone", commit), workdir / "tmp"
    scratch.mkdir()
    env = {**clean_env(), "TMPDIR": str(scratch)}
    for name, targets in CI_PHASES[:-1]:
        if not has_target(clone, targets[0]):
            continue
        _, _, done = timed(["make", *targets], cwd=clone, env=env)
        if done.returncode != 0:
            raise SystemExit(f"{commit[:12]}: {name} failed (exit {done.returncode}):\n"
                             f"{(done.stdout + done.stderr)[-3000:]}")
    wall, cpu, done = timed(["make", *CI_PHASES[-1][1]], cwd=clone, env=env)
    # make test may run pytest more than once: each run's summary, in order.
    summary = " + ".join(line.strip("= ") for line in done.stdout.splitlines()
                         if re.search(r"\d+ (passed|failed)", line)) or "(no summary)"
    if done.returncode != 0:
        raise SystemExit(f"{commit[:12]}: the pytest phase failed (exit {done.returncode}):\n{done.stdout[-3000:]}")
    # A clone with its venvs is over a gigabyte. Extracted Lambda code is read-only (as Lambda mounts it):
    # writable again first.
    subprocess.run(["chmod", "-R", "u+w", str(workdir)], check=False)
    shutil.rmtree(workdir, ignore_errors=True)
    return wall, cpu, summary


def against(rev: str, pairs: int) -> int:
    """The pytest phase of ``rev`` and of HEAD in ``pairs`` interleaved pairs; each pair's HEAD / rev ratio."""
    def resolve(name: str) -> str:
        return subprocess.run(["git", "rev-parse", "--verify", f"{name}^{{commit}}"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()

    # By role, not by commit: REV may be HEAD itself (how much two runs of the same commit differ).
    commits = {"before": resolve(rev), "after": resolve("HEAD")}
    ratios: list[float] = []
    walls: dict[str, list[float]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="suite-against-") as workdir:
        for pair in range(1, pairs + 1):
            for role in ("before", "after") if pair % 2 else ("after", "before"):
                commit = commits[role]
                wall, cpu, summary = pytest_phase_of(commit, Path(workdir) / f"{pair}-{role}")
                walls[role].append(wall)
                log.info("pair %d: %-6s %s %6.1f s wall %6.0f s CPU  %s", pair, role, commit[:12], wall, cpu, summary)
            ratios.append(walls["after"][-1] / walls["before"][-1])
            log.info("pair %d: HEAD / %s = %.1f %%", pair, rev, 100 * ratios[-1])
    log.info("%s: mean %.1f s; HEAD %s: mean %.1f s", rev, statistics.mean(walls["before"]), commits["after"][:12],
             statistics.mean(walls["after"]))
    log.info("HEAD / %s: mean of the pairs %.1f %%, %d of %d pairs at most half", rev, 100 * statistics.mean(ratios),
             sum(r <= 0.5 for r in ratios), len(ratios))
    return 0


# The demo's phases, each ended by the first line of its output that matches (seconds since the start).
DEMO_PHASES = (
    ("local cloud ready", re.compile(r"^local cloud ready")),
    ("change set created (SAM started, packaged, uploaded)", re.compile(r"REVIEW_IN_PROGRESS")),
    ("stack resources created, execution started", re.compile(r"execution \S+: execution started")),
    ("execution SUCCEEDED (the ten steps)", re.compile(r"execution \S+: execution SUCCEEDED")),
    ("stack CREATE_COMPLETE (the custom resource answered)",
     re.compile(r"CREATE_COMPLETE +\S+ \(AWS::CloudFormation::Stack\)")),
    ("outputs printed, local cloud stopped (exit)", None),
)


def demo_once(stack: str) -> tuple[float, float, list[tuple[str, float]]]:
    """(wall, CPU of the demo and everything it started, [(phase, seconds since the start when it ended)])."""
    command = cli_command() + ["demo", "--port", str(free_port()), "--workbench-port", str(free_port()),
                               "--template", str(BUILT), "--stack-name", stack]
    cpu, started = children_cpu(), time.monotonic()
    ended: dict[str, float] = {}
    lines: list[str] = []
    with subprocess.Popen(command, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            for name, pattern in DEMO_PHASES:
                if pattern is not None and name not in ended and pattern.search(line):
                    ended[name] = time.monotonic() - started
    wall, cpu = time.monotonic() - started, children_cpu() - cpu
    output = "".join(lines)
    if process.returncode != 0 or f"stack {stack} CREATE_COMPLETE" not in output:
        raise SystemExit(f"demo failed (exit {process.returncode}):\n{output[-4000:]}")
    ended[DEMO_PHASES[-1][0]] = wall
    return wall, cpu, [(name, ended[name]) for name, _ in DEMO_PHASES if name in ended]


def pytest_once(args: list[str]) -> tuple[float, float, str]:
    with tempfile.TemporaryDirectory(prefix="file-times-") as workdir:
        times = Path(workdir) / "file-times.json"
        wall, cpu, done = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                 "-p", "benchmarks.file_times", *(args or pytest_workers())],
                                env={**child_env(), "FILE_TIMES_OUT": str(times)})
        if times.exists():
            print_file_times(json.loads(times.read_text(encoding="utf-8")))
    summary = next((line for line in reversed(done.stdout.splitlines()) if re.search(r"\d+ (passed|failed)", line)),
                   "(no summary)")
    if done.returncode != 0:
        log.error("pytest failed (exit %d):\n%s", done.returncode, done.stdout[-3000:])
    return wall, cpu, summary.strip("= ")


def print_file_times(recorded: dict[str, Any], slowest: int = 15) -> None:
    """Each worker's busy time and when its last file ended, and the files that took longest (benchmarks/file_times.py):
    the phase ends with the last worker, so a long file that starts late is the tail to shorten."""
    files: dict[str, dict[str, Any]] = recorded["files"]
    workers = sorted({entry["worker"] for entry in files.values()})
    for worker in workers:
        mine = [entry for entry in files.values() if entry["worker"] == worker]
        log.info("worker %-4s %4d files, tests busy %5.0f s, last file ended at %5.0f s", worker or "-", len(mine),
                 sum(entry["busy"] for entry in mine), max(entry["end"] for entry in mine))
    log.info("the %d longest files (wall from their first test's start to their last test's end):", slowest)
    for path, entry in sorted(files.items(), key=lambda item: item[1]["start"] - item[1]["end"])[:slowest]:
        log.info("  %5.0f s  %-4s %5.0f-%5.0f s  %3d tests  %s", entry["end"] - entry["start"], entry["worker"],
                 entry["start"], entry["end"], entry["tests"], path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-runs", type=int, default=3)
    parser.add_argument("--no-suite", action="store_true", help="only the demo")
    parser.add_argument("--ci", action="store_true", help="each phase of make test in a clean clone instead")
    parser.add_argument("--against", metavar="REV", help="the pytest phase of REV and of HEAD, in clean clones")
    parser.add_argument("--pairs", type=int, default=3, help="with --against: how many pairs (default 3)")
    parser.add_argument("pytest_args", nargs="*", help="after --: what pytest runs (default: the whole suite)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if args.against:
        log.info("load average before: %s on %s CPUs", load(), os.cpu_count())
        return against(args.against, args.pairs)
    if args.ci:
        log.info("load average before: %s on %s CPUs", load(), os.cpu_count())
        return ci_phases()
    if build_is_stale(BUILT, ROOT):
        log.error("the build is missing or older than the sources: run `make build` first")
        return 2
    os.environ.setdefault("SAM_CLI_TELEMETRY", "0")
    log.info("load average before: %s on %s CPUs", load(), os.cpu_count())

    runs = [demo_once(f"bench-demo-{i}") for i in range(args.demo_runs)]
    for i, (wall, cpu, phases) in enumerate(runs, 1):
        log.info("demo run %d: %.1f s wall, %.1f s CPU (load average now %s)", i, wall, cpu, load())
        previous = 0.0
        for name, at in phases:
            log.info("  %5.1f s  +%4.1f s  %s", at, at - previous, name)
            previous = at
    walls = [wall for wall, _, _ in runs]
    cpus = [cpu for _, cpu, _ in runs]
    if walls:  # --demo-runs 0: the pytest phase only
        log.info("demo: median %.1f s wall (best %.1f s), median %.1f s CPU (target: under %d s wall)",
                 statistics.median(walls), min(walls), statistics.median(cpus), DEMO_TARGET_SECONDS)

    if not args.no_suite:
        wall, cpu, summary = pytest_once(args.pytest_args)
        log.info("pytest phase: %.0f s wall (%.1f min), %.0f s CPU, %s (target: at most %.0f s, half of %d s)",
                 wall, wall / 60, cpu, summary, PYTEST_BASELINE_SECONDS / 2, PYTEST_BASELINE_SECONDS)
    log.info("load average after: %s", load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
