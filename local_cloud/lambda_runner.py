"""Run a deployed Lambda function's artifact in a separate Python 3.13 process.

moto can only run Lambda code in Docker. Here ``LambdaFunction._invoke_lambda`` is replaced by a runner
that takes the code zip and layer zips moto holds (what was deployed, not the source tree), extracts
them like ``/var/task`` and ``/opt``, and runs the handler with the interpreter named by
``LAMBDA_RUNTIME_PYTHON`` (a venv holding only boto3/botocore, as the Lambda runtime does), isolated
(``-I``: no user site, no PYTHON* variables, no script directory on sys.path; ``-u``: output survives
a kill on timeout) and with a clean environment: the function's Environment variables, the variables
the Lambda service sets, fake credentials and ``AWS_ENDPOINT_URL`` pointing back at the emulator.
A handler exception comes back as the Lambda error payload (``errorType``/``errorMessage``/
``stackTrace``) with FunctionError set, so ASL Retry/Catch match on the exception's class name as on
AWS. A run past the function's timeout is killed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = Path(__file__).resolve().parent / "_lambda_bootstrap.py"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIALOCALCLOUDTESTING",
    "AWS_SECRET_ACCESS_KEY": "local-cloud-secret",
    "AWS_SESSION_TOKEN": "local-cloud-session-token",
}

log = logging.getLogger(__name__)
_extract_lock = threading.Lock()
# Set by IAM enforcement: the function's execution role credentials, as Lambda provides them. Called
# when an execution environment starts; without it functions get fake keys (the root user's).
credential_provider: Callable[[Any], dict[str, str]] | None = None


def runtime_python() -> str:
    """The interpreter standing in for the Lambda python3.13 runtime."""
    configured = os.environ.get("LAMBDA_RUNTIME_PYTHON")
    path = Path(configured) if configured else REPO_ROOT / ".venv-lambda-runtime" / "bin" / "python"
    if not path.exists():
        raise FileNotFoundError(
            f"Lambda runtime interpreter {path} not found: run `make` (it creates .venv-lambda-runtime) "
            "or set LAMBDA_RUNTIME_PYTHON"
        )
    return str(path)


class ArtifactCache:
    """Extracted code and layer zips, keyed by content hash so warm invocations skip the unzip."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="local-lambda-"))

    def task_root(self, code: bytes) -> Path:
        return self._extract([code], "task")

    def opt_root(self, layers: list[bytes]) -> Path:
        """All layers extracted into one directory in order, later ones overwriting: Lambda's /opt."""
        return self._extract(layers, "opt")

    def _extract(self, zips: list[bytes], kind: str) -> Path:
        digest = hashlib.sha256(b"".join(hashlib.sha256(z).digest() for z in zips)).hexdigest()[:24]
        target = self.root / f"{kind}-{digest}"
        with _extract_lock:
            if not target.exists():
                staging = Path(tempfile.mkdtemp(dir=self.root))
                for data in zips:
                    if data:
                        with zipfile.ZipFile(io.BytesIO(data)) as archive:
                            archive.extractall(staging)
                staging.rename(target)
        return target

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


_cache: ArtifactCache | None = None


def cache() -> ArtifactCache:
    global _cache
    if _cache is None:
        _cache = ArtifactCache()
    return _cache


def invoke_artifact(fn: Any, event: Any, endpoint_url: str) -> tuple[str, bool, str, str]:
    """Run ``fn`` (a moto LambdaFunction) on ``event``.

    Returns (payload JSON, errored, logs, log stream name), the shape moto's ``_invoke_lambda`` uses
    plus the stream the logs belong in.
    """
    from moto.awslambda.utils import get_backend

    backend = get_backend(fn.account_id, fn.region)
    layer_zips = []
    for layer in fn.layers:
        version = backend.layers_versions_by_arn(layer["Arn"])
        layer_zips.append(version.code_bytes if version else b"")
    task_root = cache().task_root(fn.code_bytes)
    opt_root = cache().opt_root(layer_zips)

    request_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    stream = f"{now:%Y/%m/%d}/[{fn.version}]{uuid.uuid4().hex}"
    timeout = int(fn.timeout or 3)
    workdir = Path(tempfile.mkdtemp(prefix="invoke-", dir=cache().root))
    event_path = workdir / "event.json"
    result_path = workdir / "result.json"
    event_path.write_text(event if isinstance(event, str) else json.dumps(event), encoding="utf-8")

    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(Path(runtime_python()).parent.parent),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time or 'python3.13'}",
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version if fn.version not in (1, "1") else "$LATEST"),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout),
        "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "_HANDLER": fn.handler or "",
        "_X_AMZN_TRACE_ID": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
        "AWS_REGION": fn.region,
        "AWS_DEFAULT_REGION": fn.region,
        **(credential_provider(fn) if credential_provider else FAKE_CREDENTIALS),
        **{k: str(v) for k, v in (fn.environment_vars or {}).items()},
        # After the function's own variables: the emulator is the only cloud a local function may reach.
        "AWS_ENDPOINT_URL": endpoint_url,
        "_LOCAL_LAMBDA_FUNCTION_ARN": fn.function_arn,
        "_LOCAL_LAMBDA_EVENT_PATH": str(event_path),
        "_LOCAL_LAMBDA_DEADLINE_MS": str(int(time.time() * 1000) + timeout * 1000),
    }
    started = time.monotonic()
    command = [runtime_python(), "-I", "-u", str(BOOTSTRAP)]
    command += [str(task_root), str(opt_root), str(result_path), request_id]
    timed_out = False
    try:
        proc = subprocess.run(
            command,
            env=env,
            cwd=str(workdir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
        output = proc.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed it
        timed_out = True
        output = (exc.stdout or b"").decode("utf-8", "replace")
    duration_ms = (time.monotonic() - started) * 1000

    if timed_out:
        error = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
        }
        payload, errored = json.dumps(error), True
        output += f"{now:%Y-%m-%dT%H:%M:%S.%fZ} {request_id} Task timed out after {timeout:.2f} seconds\n"
    elif result_path.exists():
        outcome = json.loads(result_path.read_text(encoding="utf-8"))
        errored = "error" in outcome
        payload = json.dumps(outcome["error"] if errored else outcome["result"])
    else:
        errored = True
        payload = json.dumps(
            {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status "
                f"{proc.returncode}",
            }
        )
    shutil.rmtree(workdir, ignore_errors=True)
    logs = (
        f"START RequestId: {request_id} Version: $LATEST\n{output}"
        f"END RequestId: {request_id}\n"
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Memory Size: {fn.memory_size} MB\n"
    )
    return payload, errored, logs, stream


def save_logs(fn: Any, stream: str, logs: str) -> None:
    """Store one invocation's output as a log stream of /aws/lambda/<function> in moto's CloudWatch Logs."""
    fn.logs_backend.ensure_log_group(fn.logs_group_name)
    fn.logs_backend.create_log_stream(fn.logs_group_name, stream)
    now_ms = int(time.time() * 1000)
    events = [{"timestamp": now_ms, "message": line} for line in logs.splitlines() if line]
    if events:
        fn.logs_backend.put_log_events(fn.logs_group_name, stream, events)


def install(endpoint_url: str) -> None:
    """Patch moto's LambdaFunction so invocations run the artifact (and Event invocations do not block)."""
    from moto.awslambda.models import LambdaFunction

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        try:
            payload, errored, logs, stream = invoke_artifact(self, event if event is not None else {}, endpoint_url)
        except Exception as exc:  # the runner itself failed: report it like the service would
            log.exception("local Lambda runner failed for %s", self.function_name)
            return json.dumps({"errorType": "Runtime.Unknown", "errorMessage": str(exc)}), True, ""
        try:
            save_logs(self, stream, logs)
        except Exception:
            log.exception("could not store logs of %s", self.function_name)
        return payload, errored, logs

    original_invoke = LambdaFunction.invoke

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        """As moto's, plus: Event invocations run in the background (202 at once), as on AWS, and errors
        are marked Unhandled (the runtime's word for an exception escaping the handler)."""
        headers = request_headers or {}
        inv_type = headers.get("x-amz-invocation-type") or headers.get("X-Amz-Invocation-Type")
        if inv_type == "Event":
            thread = threading.Thread(
                target=original_invoke, args=(self, body, {}, {}), name=f"event-{self.function_name}", daemon=True
            )
            thread.start()
            return b""
        result = original_invoke(self, body, request_headers, response_headers)
        if response_headers.get("x-amz-function-error"):
            response_headers["x-amz-function-error"] = "Unhandled"
        if isinstance(result, bytes) and "x-amz-log-result" in response_headers:
            # The API returns only the last 4 KB of the log.
            tail = base64.b64decode(response_headers["x-amz-log-result"])[-4096:]
            response_headers["x-amz-log-result"] = base64.b64encode(tail).decode()
        return result

    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]
    LambdaFunction.invoke = invoke  # type: ignore[method-assign]
