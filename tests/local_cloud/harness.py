"""The local cloud for tests: ``cloudtrail-onboarding local serve`` as a child process (the e2e tests), or its
IAM enforcement served in this process (``enforcing_cloud``)."""

from __future__ import annotations

import atexit
import contextlib
import functools
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

from local_cloud.cli import DEMO_API_KEY, DEMO_WORKBENCH_GUID
from tests import fork_server

REPO = Path(__file__).resolve().parents[2]
FIXTURE_APP = REPO / "tests" / "local_cloud" / "app" / "template.yaml"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "cloudtrail-onboarding"
    return [str(script)] if script.exists() else [sys.executable, "-m", "local_cloud.cli"]


def child_env() -> dict[str, str]:
    """The tests' environment minus anything pointing at a cloud: the child is the cloud."""
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "MOTO_PORT")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["SAM_CLI_TELEMETRY"] = "0"
    env.setdefault("MOTO_RECORDER_FILEPATH", str(_recording_file()))
    return env


@functools.cache
def _recording_file() -> Path:
    """Where moto's request recorder (off until a test starts it) writes for the local clouds this process starts:
    the temporary directory, not the working directory, and gone when this process ends."""
    path = Path(tempfile.gettempdir()) / f"local-cloud-requests-{os.getpid()}.jsonl"
    atexit.register(path.unlink, missing_ok=True)
    return path


# What a local cloud and the SAM CLI import (and read) before they do anything: a fork server does it once for each
# of them (tests/fork_server.py). The lists only move a cost: a module left out is imported by the program itself.
SERVE_PRELOAD = ("local_cloud.cli", "local_cloud.server", "local_cloud.moto_patches:apply",
                 "moto.stepfunctions.parser.models", "samtranslator.translator.translator",
                 "local_cloud.server:warm_up")
SAM_PRELOAD = ("samcli.cli.main", "samcli.commands.deploy.command", "samcli.commands.deploy.deploy_context",
               "samcli.commands.package.package_context", "samcli.lib.package.artifact_exporter",
               "samcli.commands.delete.command", "samcli.commands.delete.delete_context",
               # the botocore data of SAM's clients, parsed once as the Lambda runner's fork server does it
               "local_cloud._lambda_bootstrap:preparse=cloudformation,s3,sts")


def start_program(command: list[str], env: dict[str, str], cwd: Path, preload: Sequence[str]
                  ) -> subprocess.Popen[str] | fork_server.ForkedProcess:
    """``command`` started as ``Popen(command, env=env, cwd=cwd, stdout=PIPE, stderr=STDOUT, text=True)`` starts
    it, from a fork server that preloaded ``preload`` (unless TESTS_FORK_SERVER=0)."""
    if fork_server.enabled():
        return fork_server.start(command, env, cwd, preload)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd)


def run_sam(args: Sequence[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``sam ARGS`` run to its end as ``subprocess.run(capture_output=True, text=True)`` runs it, from the fork
    server (unless TESTS_FORK_SERVER=0): a person's own SAM command."""
    from local_cloud.deploy import sam_executable

    return run_program([sam_executable(), *args], env, SAM_PRELOAD, timeout)


def run_program(command: list[str], env: dict[str, str], preload: Sequence[str], timeout: float
                ) -> subprocess.CompletedProcess[str]:
    """``command`` run to its end in REPO as ``subprocess.run(capture_output=True, text=True)`` runs it, from the fork
    server that preloaded ``preload`` (unless TESTS_FORK_SERVER=0)."""
    if not fork_server.enabled():
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
    process = fork_server.start(command, env, REPO, preload, stderr_to_stdout=False)
    try:
        out, err = process.communicate(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return subprocess.CompletedProcess(command, process.returncode or 0, out, err)


def start_sam(command: list[str], env: dict[str, str]) -> subprocess.Popen[str] | fork_server.ForkedProcess:
    """``local deploy``'s and ``local delete``'s start of SAM (local_cloud.deploy.start_sam), from a fork server."""
    return start_program(command, env, Path.cwd(), SAM_PRELOAD)


@dataclass
class ServedCloud:
    url: str
    workbench_url: str
    port: int
    workbench_port: int
    process: subprocess.Popen[str] | fork_server.ForkedProcess
    output: list[str] = field(default_factory=list)


# When set (the e2e session sets it), every local cloud started here records the calls roles' grants allowed
# into a report file of its own in this directory (``local serve --iam-report``).
IAM_REPORTS: Path | None = None


@contextlib.contextmanager
def serve_child(schedule_interval: float = 1.0, ready_timeout: float = 60.0,
                extra_args: Sequence[str] = (), stackset_seconds: float = 0.2,
                time_scale: float = 0.03) -> Iterator[ServedCloud]:
    """``local serve`` on free 127.0.0.1 ports (plus ``extra_args``, e.g. ``--fault``); yields once it printed
    its ready line; always stops it. Time is compressed further than ``local serve``'s defaults: scheduled rules
    every ``schedule_interval``, StackSet batches of ``stackset_seconds``, trails deliver log files every second
    and digests every five, and Step Functions Retry intervals, Wait states and the SDK's retry backoff in
    Lambda functions take ``time_scale`` of their time (every retry still happens)."""
    port, workbench_port = free_port(), free_port()
    command = cli_command() + [
        "local",
        "serve",
        "--port",
        str(port),
        "--workbench-port",
        str(workbench_port),
        "--schedule-interval",
        str(schedule_interval),
        "--stackset-seconds",
        str(stackset_seconds),
        "--cloudtrail-interval",
        "1",
        "--cloudtrail-digest-interval",
        "5",
        "--time-scale",
        str(time_scale),
        *extra_args,
    ]
    if IAM_REPORTS is not None and "--iam-report" not in extra_args:  # a test's own report comes first
        command += ["--iam-report", str(IAM_REPORTS / f"local-cloud-{uuid.uuid4().hex}.jsonl")]
    process = start_program(command, child_env(), REPO, SERVE_PRELOAD)
    output: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip("\n"))
            if line.startswith("local cloud ready"):
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + ready_timeout
        while not ready.wait(0.1):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("local serve did not start:\n" + "\n".join(output))
        yield ServedCloud(
            url=f"http://127.0.0.1:{port}",
            workbench_url=f"http://127.0.0.1:{workbench_port}",
            port=port,
            workbench_port=workbench_port,
            process=process,
            output=output,
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@contextlib.contextmanager
def enforcing_cloud() -> Iterator[str]:
    """The local cloud's IAM enforcement in this process: moto's WSGI app behind the IAM middleware on a free
    127.0.0.1 port, no Lambda runner; yields its URL. Requests are enforced as ``local serve`` enforces them
    until it stops; the enforcer in effect before is put back then."""
    # imported here: the e2e tests and benchmarks need none of it
    from local_cloud.enforcement.authorization import Enforcer, run
    from local_cloud.enforcement.middleware import IamMiddleware
    from local_cloud.server import MotoServer, wait_until_listening

    server = MotoServer(0, [lambda app: IamMiddleware(app, Enforcer())])
    server.start()
    wait_until_listening(server.port)
    previous = run(Enforcer())
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        run(previous)
        server.stop()


def reset(url: str) -> None:
    """An empty account again (moto's reset API; the IAM middleware lets it through)."""
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()


def client(cloud: ServedCloud | str, service: str, keys: dict[str, str] | None = None) -> Any:
    """A client of the local cloud (served, or at a URL) in us-east-1; without ``keys``, keys IAM never issued:
    the account's root user."""
    keys = keys or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    url = cloud if isinstance(cloud, str) else cloud.url
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", **keys)


def sam_build(template: Path, build_dir: Path) -> Path:
    """``sam build`` of a template into ``build_dir``; returns the built template."""
    subprocess.run(
        [str(Path(sys.executable).parent / "sam"), "build", "--template", str(template), "--build-dir", str(build_dir)],
        cwd=REPO,
        env=child_env(),
        check=True,
        capture_output=True,
        timeout=300,
    )
    return build_dir / "template.yaml"


def run_cli_process(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``cloudtrail-onboarding ARGS`` as a process of its own: for ``demo`` (and ``local serve``), whose local cloud
    sets process-wide state (time scale, StackSet timing, IAM propagation, signal handlers) that must not leak into
    the tests run after it in this process. Forked from the fork server that starts local clouds (unless
    TESTS_FORK_SERVER=0), as ``start_cli``: the command's own process, without its imports each time."""
    env = child_env()
    env.pop("LOCAL_LAMBDA_PREINIT", None)  # as a person starts it: the local cloud's default (tests/conftest.py)
    return run_program(cli_command() + list(args), env, SERVE_PRELOAD, timeout)


def start_cli(*args: str) -> subprocess.Popen[str] | fork_server.ForkedProcess:
    """``cloudtrail-onboarding ARGS`` as a process of its own, output and errors piped together as text, from the
    fork server that starts local clouds: for a command a test acts beside while it runs (``local deploy``)."""
    return start_program(cli_command() + list(args), child_env(), REPO, SERVE_PRELOAD)


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """``cloudtrail-onboarding ARGS`` run by its ``main`` in this process, its exit code and output captured as the
    command gives them: a test reads what the command says and does, not how its process starts (a new Python and
    its imports per call, about a second of CPU). What the command starts itself (``sam deploy``) still runs as a
    child. ``timeout`` is the command's own business here (``local deploy --timeout``); a test about the process
    itself (signals, exit) runs ``cli_command()``."""
    del timeout
    from local_cloud import cli

    if args[:1] == ("demo",) or args[:2] == ("local", "serve"):
        raise ValueError("demo and local serve start a local cloud: run them with run_cli_process")

    # The command sets up logging as its process's owner, and reads samconfig.toml from (and runs SAM in) the
    # working directory; the tests that run after it in this process get theirs back.
    loggers = [logging.getLogger(name) for name in ("", "moto", "werkzeug")]
    levels, handlers = [logger.level for logger in loggers], list(logging.root.handlers)
    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    os.chdir(REPO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as exit_:  # argparse refusing the arguments
                code = exit_.code if isinstance(exit_.code, int) else 2
    finally:
        os.chdir(previous)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        logging.root.handlers[:] = handlers
    return subprocess.CompletedProcess(["cloudtrail-onboarding", *args], code, out.getvalue(), err.getvalue())


def onboarding_parameters(cloud: ServedCloud, name: str, **overrides: str) -> list[str]:
    """Parameters of one onboarding whose resource names are all its own, so stacks don't collide."""
    values = {
        "WorkbenchGuid": DEMO_WORKBENCH_GUID, "WorkbenchApiKey": DEMO_API_KEY,
        "WorkbenchBaseUrl": cloud.workbench_url, "RetryWindowSeconds": "0", "StatusPollSeconds": "1",
        "TrailName": f"{name}-trail", "BucketName": f"{name}-logs-bucket", "KmsAlias": f"{name}-key",
        "AccessLogBucketName": f"{name}-access-logs",
        "TopicName": f"{name}-topic", "QueueName": f"{name}-queue", "RoleName": f"{name}-role",
        "WorkbenchDeviceName": f"{name} CloudTrail",
    }
    values.update(overrides)
    return [f"{key}={value}" for key, value in values.items()]
