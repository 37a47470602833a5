"""How long CloudFormation waits after the onboarding ends, on the local cloud (not part of the test suite).

The custom resource's poll is the one answerer: crhelper's EventBridge rule invokes the trigger every minute
on AWS (``rate(1 minute)``, EventBridge's smallest rate), and the poll answers on its first run after the
execution ended. So on AWS an answer comes 0-60 s (about 30 s on average) after the end, plus the poll's own
run. The local cloud fires scheduled rules every ``--schedule-interval`` seconds instead of every minute
(compressed time), so here the same answer comes within about one interval: this benchmark shows that
relation, and prints the AWS figure it stands for.

Starts ``cloudtrail-onboarding local serve`` as a child process on free 127.0.0.1 ports, deploys the real
(built) template ``--runs`` times with ``local deploy`` (each stack with its own resource names,
StatusPollSeconds=1, RetryWindowSeconds=0), then once more with a forced failure (a foreign SQS queue of
that stack's QueueName exists, so preflight refuses; deployed with rollback disabled, so its execution stays to
read). For each run it reads

* the execution's end: ``describe_execution(...)["stopDate"]`` of the stack's ``create-*`` execution, and
* CloudFormation's answer: the ``Onboarding`` custom resource's CREATE_COMPLETE / CREATE_FAILED event
  timestamp in ``describe_stack_events``,

and prints answer - end per run, the median and the maximum. Figures only, no verdict: the answer's
latency is a property of the design (docs/lifecycle.md), not a target to pass. The local cloud is always
stopped at the end.

    .venv/bin/python benchmarks/response_latency.py --runs 3 [--schedule-interval 1]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from _common import built_template, create_execution, log, stop_on_sigterm

from tests.local_cloud.harness import ServedCloud, client, onboarding_parameters, run_cli, serve_child

AWS_POLL_SECONDS = 60  # crhelper's rule: rate(1 minute)
ANSWERS = ("CREATE_COMPLETE", "CREATE_FAILED")


@dataclass
class Run:
    stack: str
    expect_failure: bool
    status: str = ""
    execution_status: str = ""
    latency: float | None = None
    deploy_seconds: float = 0.0
    problem: str = ""


def execution_end(cloud: ServedCloud, stack: str) -> tuple[str, float]:
    """(status, stopDate as epoch seconds) of the stack's create execution."""
    described = create_execution(cloud.url, stack)
    if "stopDate" not in described:
        raise RuntimeError(f"{stack}: the execution is still {described['status']}")
    return described["status"], described["stopDate"].timestamp()


def cloudformation_answer(cloud: ServedCloud, stack: str) -> tuple[str, float]:
    """(status, timestamp) of the custom resource's first CREATE_COMPLETE/CREATE_FAILED event."""
    events = client(cloud.url, "cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    answers = sorted((e["Timestamp"].timestamp(), e["ResourceStatus"]) for e in events
                     if e["LogicalResourceId"] == "Onboarding" and e["ResourceStatus"] in ANSWERS)
    if not answers:
        raise RuntimeError(f"{stack}: the custom resource has no answer event")
    return answers[0][1], answers[0][0]


def measure(cloud: ServedCloud, template: Path, run: Run) -> None:
    if run.expect_failure:  # a queue of that name exists and is not ours: preflight refuses
        client(cloud.url, "sqs").create_queue(QueueName=f"{run.stack}-queue")
    started = time.monotonic()
    # The failed stack keeps its state machine to read only without a rollback (which deletes it, as on AWS).
    keep = ["--disable-rollback"] if run.expect_failure else []
    result = run_cli("local", "deploy", "--endpoint-url", cloud.url, "--stack-name", run.stack,
                     "--template", str(template), "--timeout", "300", *keep,
                     "--parameter-overrides", *onboarding_parameters(cloud, run.stack), timeout=400)
    run.deploy_seconds = time.monotonic() - started
    if (result.returncode != 0) != run.expect_failure:
        run.problem = f"local deploy exited {result.returncode}: {(result.stdout + result.stderr)[-600:]}"
    run.execution_status, ended = execution_end(cloud, run.stack)
    run.status, answered = cloudformation_answer(cloud, run.stack)
    run.latency = answered - ended


def report(runs: list[Run], interval: float) -> int:
    log.info("")
    log.info("%-28s %-8s %-10s %-16s %12s %10s", "stack", "path", "execution", "custom resource",
             "answer-end s", "deploy s")
    for run in runs:
        figure = f"{run.latency:12.3f}" if run.latency is not None else f"{'-':>12}"
        log.info("%-28s %-8s %-10s %-16s %s %10.1f%s", run.stack, "FAILED" if run.expect_failure else "SUCCESS",
                 run.execution_status or "-", run.status or "-", figure, run.deploy_seconds,
                 f"  ! {run.problem}" if run.problem else "")
    measured = [r for r in runs if r.latency is not None]
    for label, group in (("success path", [r for r in measured if not r.expect_failure]),
                         ("failed path", [r for r in measured if r.expect_failure]), ("all runs", measured)):
        figures = [r.latency for r in group if r.latency is not None]
        if figures:
            log.info("%-13s median %.3f s, max %.3f s over %d run(s)", label, statistics.median(figures),
                     max(figures), len(figures))
    log.info("local cloud: scheduled rules fire every %.1f s, so the poll answers within about that after the end",
             interval)
    log.info("AWS: the poll runs every %d s, so CloudFormation gets its answer 0-%d s (about %d s on average) after "
             "the execution ends, plus the poll's own run", AWS_POLL_SECONDS, AWS_POLL_SECONDS, AWS_POLL_SECONDS // 2)
    failures = [r for r in runs if r.problem or r.latency is None]
    return 0 if measured and not failures else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="successful deploys to measure (default 5)")
    parser.add_argument("--no-failure", action="store_true", help="skip the forced-failure run")
    parser.add_argument("--schedule-interval", type=float, default=1.0,
                        help="seconds between the local cloud's firings of scheduled rules (the poll); default 1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    stop_on_sigterm()  # unwinds through serve_child, which stops the local cloud
    tag = uuid.uuid4().hex[:6]
    runs = [Run(f"bench-{tag}-{n}", expect_failure=False) for n in range(1, args.runs + 1)]
    if not args.no_failure:
        runs.append(Run(f"bench-{tag}-fail", expect_failure=True))
    with tempfile.TemporaryDirectory(prefix="response-latency-") as scratch:
        template = built_template(Path(scratch))
        log.info("starting the local cloud ...")
        with serve_child(schedule_interval=args.schedule_interval) as cloud:
            log.info("local cloud at %s; %d deploy(s) of %s", cloud.url, len(runs), template)
            for run in runs:
                try:
                    measure(cloud, template, run)
                except RuntimeError as exc:
                    run.problem = str(exc)
                log.info("  %s: %s", run.stack, f"{run.latency:.3f} s" if run.latency is not None else run.problem)
        log.info("local cloud stopped")
    return report(runs, args.schedule_interval)


if __name__ == "__main__":
    sys.exit(main())
