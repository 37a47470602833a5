"""``local deploy`` and ``local delete``: the ``sam deploy`` and ``sam delete`` a person types for AWS, pointed at
the local cloud.

The local cloud takes SAM's requests as CloudFormation does (the managed bucket stack of ``--resolve-s3``, the
TemplateURL, the Serverless transform, change sets: ``cloudformation_changesets``), so nothing here packages,
uploads, transforms or deletes: ``sam deploy`` and ``sam delete --no-prompts`` run unchanged with
``AWS_ENDPOINT_URL`` set to the local cloud and fake credentials (real ones are never sent anywhere). This module
adds what a local rehearsal needs around them: ``sam build`` when the build is stale, samconfig.toml's parameter
defaults, replacing a stack that failed to create, following the stack while SAM works, and one result to print.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from local_cloud import api_calls
from local_cloud.timestamps import read_timestamp

ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_BUILD_TEMPLATE = Path(".aws-sam/build/template.yaml")
SOURCE_PATHS = ("template.yaml", "samconfig.toml", "functions", "layers", "statemachine", "roles")
TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # noqa: S105 - the emulator's
CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM")


class DeployError(Exception):
    """Deployment could not be done; the message is one line a person can act on."""


@functools.cache
def _tooling_session() -> boto3.session.Session:
    """The session of the tooling's clients (endpoint data and models parsed once), reading timestamps with
    ``read_timestamp``."""
    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=read_timestamp)
    return boto3.session.Session(botocore_session=session)


_tooling_lock = threading.Lock()  # a session is not thread-safe; the clients it makes are


def aws_client(service: str, endpoint_url: str, region: str) -> Any:
    """A client for the local cloud only: fake credentials, so real ones are never sent anywhere."""
    with _tooling_lock:
        return _tooling_session().client(
            service,
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            # Marked as the local cloud's own tooling (it stands in for the person and `sam deploy`), which
            # injected faults leave alone: they are for the code under test.
            config=Config(retries={"mode": "standard", "max_attempts": 3},
                          user_agent_appid=api_calls.TOOLING_APP_ID),
        )


def sam_executable() -> str:
    """The SAM CLI pinned in requirements-dev.txt: the one next to this Python, else the project's, else the one on
    PATH."""
    for candidate in (Path(sys.executable).parent / "sam", Path(__file__).resolve().parent.parent / ".venv/bin/sam"):
        if candidate.exists():
            return str(candidate)
    return "sam"


def sam_environment(endpoint_url: str, region: str) -> dict[str, str]:
    """The environment for the SAM CLI against the local cloud: the endpoint, fake credentials, no profile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    venv_bin = str(Path(sam_executable()).parent)
    env.update(FAKE_CREDENTIALS, AWS_ENDPOINT_URL=endpoint_url, AWS_REGION=region, AWS_DEFAULT_REGION=region,
               SAM_CLI_TELEMETRY="0", PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
               # botocore's app id (User-Agent): SAM's calls are tooling, which injected faults leave alone.
               AWS_SDK_UA_APP_ID=api_calls.TOOLING_APP_ID)
    # How often SAM checks the change set and the stack (SAM's default 5 s guards CloudFormation's rate limits,
    # which the local cloud has not): a stack is seen complete within half a second. A person's own value wins.
    env.setdefault("SAM_CLI_POLL_DELAY", "0.5")
    return with_short_sam_waits(env)


# sitecustomize.py there caps SAM's hard-coded 30 s waiter pauses (sam delete's) at SAM_CLI_POLL_DELAY.
SAM_WAITS = Path(__file__).resolve().parent / "sam_waits"


def with_short_sam_waits(env: dict[str, str]) -> dict[str, str]:
    """``env`` with SAM's stack waiters pausing at most ``SAM_CLI_POLL_DELAY`` (0.5 s unless set)."""
    paths = [str(SAM_WAITS), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {"SAM_CLI_POLL_DELAY": "0.5", **env, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


# ---------------------------------------------------------------------------------------------- build
def build_is_stale(build_template: Path, source_root: Path) -> bool:
    if not build_template.exists():
        return True
    built = build_template.stat().st_mtime
    for name in SOURCE_PATHS:
        path = source_root / name
        files: Iterable[Path] = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
        for item in files:
            if item.is_file() and "__pycache__" not in item.parts and item.stat().st_mtime > built:
                return True
    return False


def sam_build(source_root: Path, say: Callable[[str], None]) -> None:
    """``sam build --cached`` with the venv's bin first on PATH, so sam finds python3.13."""
    venv_bin = Path(__file__).resolve().parent.parent / ".venv" / "bin"
    sam = venv_bin / "sam" if (venv_bin / "sam").exists() else Path("sam")
    env = dict(os.environ, PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}", SAM_CLI_TELEMETRY="0")
    say("sam build --cached (the build output is missing or older than the sources)")
    proc = subprocess.run(
        [str(sam), "build", "--cached"], cwd=source_root, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise DeployError(f"sam build failed: {last[0]}")


# ------------------------------------------------------------------------------------------ templates
def load_template(path: Path) -> dict[str, Any]:
    """A CloudFormation/SAM template (YAML short-form tags or JSON) as plain data."""
    from local_cloud.cloudformation_templates import read_template

    return json.loads(json.dumps(read_template(path.read_text(encoding="utf-8")), default=str))


def as_json(build_template: Path) -> Path:
    """The built template as the JSON CloudFormation also takes: ``.template.yaml.json`` beside it (so CodeUri,
    ContentUri and DefinitionUri resolve to the same build folders), made again when the YAML is newer; a JSON
    template as it is. The same data: read from the YAML as the SAM CLI reads it (``load_template``). ``sam build``
    writes YAML, which the SAM CLI parses with PyYAML's pure-Python parser about three times per deploy (over a
    second of CPU for this application's template); JSON it reads with ``json``."""
    if build_template.suffix not in (".yaml", ".yml"):
        return build_template
    target = build_template.with_name(f".{build_template.name}.json")
    if target.exists() and target.stat().st_mtime >= build_template.stat().st_mtime:
        return target
    staged = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
    staged.write_text(json.dumps(load_template(build_template), indent=1) + "\n", encoding="utf-8")
    os.replace(staged, target)  # whole, also when two deploys of one build write it at once
    return target


def read_samconfig(path: Path, env: str = "default") -> dict[str, str]:
    """``parameter_overrides`` from samconfig.toml (deploy section, then global), as a dict."""
    if not path.exists():
        return {}
    config = tomllib.loads(path.read_text(encoding="utf-8")).get(env, {})
    for section in ("deploy", "global"):
        value = config.get(section, {}).get("parameters", {}).get("parameter_overrides")
        if value:
            return parse_overrides(value if isinstance(value, list) else shlex.split(value))
    return {}


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` items; one item may hold several, space separated, as samconfig's
    parameter_overrides (``A=1 B="two words"``), and a value may hold spaces (``A=two words``)."""
    result: dict[str, str] = {}
    for item in items:
        for token in re.split(r"\s+(?=[A-Za-z0-9]+=)", item.strip()):
            key, sep, value = token.partition("=")
            if not sep or not re.fullmatch(r"[A-Za-z0-9]+", key):
                raise DeployError(f"parameter override {token!r} is not KEY=VALUE")
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            result[key] = value
    return result


def sam_parameter_overrides(parameters: dict[str, str]) -> list[str]:
    """``--parameter-overrides`` values as the SAM CLI parses them: ``Key="value"``, inner quotes escaped."""
    return [key + '="' + value.replace('"', '\\"') + '"' for key, value in parameters.items()]


def sam_deploy_command(
    template: Path, stack_name: str, region: str, parameters: dict[str, str], config_file: Path | None = None,
    config_env: str = "default", s3_bucket: str | None = None, disable_rollback: bool = False,
) -> list[str]:
    """The ``sam deploy`` a person types, without the confirmation prompt."""
    command = [sam_executable(), "deploy", "--template-file", str(template), "--stack-name", stack_name,
               "--region", region, "--capabilities", *CAPABILITIES, "--no-confirm-changeset",
               "--no-fail-on-empty-changeset", "--no-progressbar"]
    command += ["--s3-bucket", s3_bucket] if s3_bucket else ["--resolve-s3"]
    if disable_rollback:
        command.append("--disable-rollback")
    if config_file is not None and config_file.exists():
        command += ["--config-file", str(config_file.resolve()), "--config-env", config_env]
    if parameters:
        command += ["--parameter-overrides", *sam_parameter_overrides(parameters)]
    return command


def masked(parameters: dict[str, str], declared: dict[str, Any]) -> dict[str, str]:
    """Parameter values fit to print: a NoEcho parameter's value is ``****``."""
    return {key: "****" if str((declared.get(key) or {}).get("NoEcho", "")).lower() == "true" and value else value
            for key, value in parameters.items()}


# ------------------------------------------------------------------------------------------- deploy
@dataclass
class DeployResult:
    stack_name: str
    status: str
    outputs: dict[str, str]
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.status in TERMINAL_OK


def stack_status(cfn: Any, stack_name: str) -> str | None:
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stacks[0]["StackStatus"] if stacks else None


def failure_reason(cfn: Any, stack_name: str, since: float = 0.0) -> str | None:
    """The first failure CloudFormation recorded (a resource's reason beats the stack's summary)."""
    events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
    events = sorted(events, key=lambda e: e["Timestamp"])
    failed = [
        e
        for e in events
        if e["ResourceStatus"].endswith("_FAILED")
        and e.get("ResourceStatusReason")
        and e["Timestamp"].timestamp() >= since
    ]
    resource_failures = [e for e in failed if e["ResourceType"] != "AWS::CloudFormation::Stack"]
    chosen = (resource_failures or failed)[:1]
    if not chosen:
        return None
    event = chosen[0]
    return f"{event['LogicalResourceId']} {event['ResourceStatus']}: {event['ResourceStatusReason']}"


def sam_error(output: str) -> str | None:
    """The SAM CLI's own error line (``Error: ...``), if it printed one."""
    lines = [line.strip() for line in output.splitlines() if line.strip().startswith("Error:")]
    return lines[-1] if lines else None


def deploy(
    endpoint_url: str,
    stack_name: str,
    build_template: Path,
    parameters: dict[str, str],
    region: str = "us-east-1",
    timeout: float = 900.0,
    on_progress: Callable[[], None] | None = None,
    config_file: Path | None = None,
    config_env: str = "default",
    say: Callable[[str], None] | None = None,
    disable_rollback: bool = False,
    starting: Callable[[], None] | None = None,
) -> DeployResult:
    """``sam deploy`` of the built template to the local cloud; the stack followed while SAM works.

    ``starting``: the local cloud is bound but not serving yet (the demo's new one, which has no stacks):
    it is called (and starts the cloud) once SAM is started, so the seconds SAM takes to start up and read
    the template are spent while the local cloud starts, not after it."""
    cfn = aws_client("cloudformation", endpoint_url, region)
    declared = load_template(build_template).get("Parameters", {})
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise DeployError(f"the template has no parameter(s) {', '.join(unknown)}")
    started = time.time() - 1
    status = stack_status(cfn, stack_name) if starting is None else None
    if status in ("CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "REVIEW_IN_PROGRESS"):
        if say:
            say(f"stack {stack_name} is {status}: deleting it first")
        delete(endpoint_url, stack_name, region, timeout, on_progress, say)
    elif status is not None and status.endswith("_IN_PROGRESS"):
        raise DeployError(f"stack {stack_name} is {status}: wait for it to finish")
    template = as_json(build_template)
    command = sam_deploy_command(template, stack_name, region, parameters, config_file, config_env,
                                 disable_rollback=disable_rollback)
    if say:
        # The command as a person would type it, NoEcho values (the Workbench API key) masked as SAM masks them.
        shown = sam_deploy_command(template, stack_name, region, masked(parameters, declared), config_file,
                                   config_env, disable_rollback=disable_rollback)
        say(f"AWS_ENDPOINT_URL={endpoint_url} sam {shlex.join(shown[1:])}")
    ran = _run_following(command, sam_environment(endpoint_url, region), timeout, on_progress, starting=starting)
    output = ran.output
    # A stack that failed is read below; any other failure of SAM's is said as SAM said it.
    if ran.failed and "No changes to deploy" not in output and "Failed to create/update the stack" not in (
            sam_error(output) or ""):
        raise DeployError(f"sam deploy failed: {ran.error}")
    final = _wait(cfn, stack_name, timeout, on_progress)
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs") or []}
    reason = None
    if final not in TERMINAL_OK:
        reason = failure_reason(cfn, stack_name, started) or sam_error(output) or final
    return DeployResult(stack_name, final, outputs, reason)


def _start_sam_process(command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=Path.cwd())


# How SAM starts: a new process, as a person's shell starts it; its output (stdout and stderr) read as text.
# The tests swap in a start from a fork server that has imported the SAM CLI already (tests/fork_server.py).
start_sam: Callable[[list[str], dict[str, str]], Any] = _start_sam_process


def _run_following(
    command: list[str], env: dict[str, str], timeout: float, on_progress: Callable[[], None] | None,
    every: float = 0.5, starting: Callable[[], None] | None = None,
) -> SamRun:
    """Run SAM, calling ``starting`` once it runs, then ``on_progress`` meanwhile; its output is kept (read
    when it fails)."""
    deadline = time.monotonic() + timeout
    with start_sam(command, env) as process:
        chunks: list[str] = []

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                chunks.append(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        if starting is not None:
            try:
                starting()
            except BaseException:
                process.kill()
                raise
        while process.poll() is None:
            if on_progress:
                on_progress()
            if time.monotonic() > deadline:
                process.kill()
                raise DeployError(f"sam {command[1]} did not finish within {timeout:.0f} s")
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=every)  # back at once when SAM is done
        reader.join(timeout=5)
    return SamRun("".join(chunks), process.returncode)


@dataclass
class SamRun:
    output: str
    returncode: int

    @property
    def failed(self) -> bool:
        return self.returncode != 0

    @property
    def error(self) -> str:
        """SAM's ``Error:`` line, else its last line."""
        return sam_error(self.output) or (self.output.strip().splitlines() or ["(no output)"])[-1]


def _wait(cfn: Any, stack_name: str, timeout: float, on_progress: Callable[[], None] | None) -> str:
    deadline = time.monotonic() + timeout
    while True:
        if on_progress:
            on_progress()
        status = stack_status(cfn, stack_name)
        if status is None:
            raise DeployError(f"stack {stack_name} does not exist")
        if not status.endswith("_IN_PROGRESS") and status != "CREATE_PENDING":
            if on_progress:
                on_progress()
            return status
        if time.monotonic() > deadline:
            raise DeployError(f"stack {stack_name} still {status} after {timeout:.0f} s")
        time.sleep(0.5)


def sam_delete_command(stack_name: str, region: str) -> list[str]:
    """The ``sam delete`` a person types, without the confirmation prompts (it also removes the artifacts
    ``sam deploy`` uploaded for the stack, as on AWS)."""
    return [sam_executable(), "delete", "--stack-name", stack_name, "--region", region, "--no-prompts"]


def delete(
    endpoint_url: str,
    stack_name: str,
    region: str = "us-east-1",
    timeout: float = 900.0,
    on_progress: Callable[[], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> str:
    """``sam delete --no-prompts`` of the stack on the local cloud, followed while SAM works."""
    command = sam_delete_command(stack_name, region)
    started = time.time() - 1
    if say:
        say(f"AWS_ENDPOINT_URL={endpoint_url} sam {shlex.join(command[1:])}")
    # Local time is compressed (scheduled rules fire every second, warm Lambdas answer in milliseconds): a
    # delete's last steps and the stack's removal, which takes their history with it, can be well under a
    # second apart, so the stack is read often enough to show every step.
    ran = _run_following(command, sam_environment(endpoint_url, region), timeout, on_progress, every=0.2)
    if on_progress:
        on_progress()
    cfn = aws_client("cloudformation", endpoint_url, region)
    status = stack_status(cfn, stack_name)
    if status is not None:  # SAM returns without error only once DescribeStacks no longer finds the stack
        reason = failure_reason(cfn, stack_name, started) or ran.error
        raise DeployError(f"stack {stack_name} {status}: {reason}")
    # SAM answers a stack that does not exist with an ``Error:`` line and exit status 0.
    if ran.failed or sam_error(ran.output):
        raise DeployError(f"sam delete failed: {ran.error}")
    return "DELETE_COMPLETE"
