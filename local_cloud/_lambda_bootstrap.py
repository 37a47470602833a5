"""The Lambda Python runtime inside one execution environment (LAMBDA_RUNTIME_PYTHON, started with -I).

This file is executed as a script by ``lambda_runner``; it imports nothing from the dev tree. Like the
AWS runtime it has two phases:

- Init, once per process (a cold start): put the function code (``/var/task``) and the layers
  (``/opt/python``) on ``sys.path``, import the handler module (running its module-level code), and say
  ``{"ready": ...}`` (or report the import failure and exit).
- Invoke, for each request read from the request pipe, one at a time: build the context, call the
  handler, write the outcome as one JSON line to the result pipe. Module state (loggers, cached
  clients) lives on between invocations, as in a warm execution environment on AWS.

Everything the function prints goes to stdout/stderr: the runner's log file for this environment. A
request pipe closed by the runner ends the process.

argv: task_root opt_root request_fd result_fd
env:  _HANDLER, AWS_LAMBDA_* and the function's variables (set once, by the runner)
request line: {"request_id", "event" (JSON text), "deadline_ms" (epoch ms), "trace_id"}
"""

import importlib
import json
import os
import sys
import time
import traceback

TASK_ROOT, OPT_ROOT = sys.argv[1:3]
REQUESTS = os.fdopen(int(sys.argv[3]), "rb")
RESULTS = os.fdopen(int(sys.argv[4]), "wb", buffering=0)


class LambdaContext:
    """The attributes and method the Python runtime's context object has."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ["_LOCAL_LAMBDA_FUNCTION_ARN"]
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def _send(message: dict) -> None:
    """One JSON line to the runner, after everything printed so far reached the log."""
    sys.stdout.flush()
    sys.stderr.flush()
    RESULTS.write(json.dumps(message).encode("utf-8") + b"\n")


def _frames(exc: BaseException) -> list[str]:
    """The traceback as the runtime reports it: without this bootstrap's own frames."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    return traceback.format_list(frames)


def _error(error_type: str, message: str, stack: list[str], request_id: str | None = None) -> dict:
    payload = {"errorMessage": message, "errorType": error_type, "stackTrace": stack}
    if request_id:
        payload["requestId"] = request_id
    sys.stderr.write(f"[ERROR] {error_type}: {message}\n" + "".join(stack) + "\n")
    return {"error": payload}


def init() -> object | None:
    """The Init phase: the handler function, or None after reporting why it cannot be loaded."""
    # What the runtime puts first on sys.path: the function code, then the layers' python dirs.
    sys.path[:0] = [
        TASK_ROOT,
        os.path.join(OPT_ROOT, "python", "lib", "python3.13", "site-packages"),
        os.path.join(OPT_ROOT, "python"),
    ]
    os.chdir(TASK_ROOT)
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:  # the runtime reports every import-time failure this way
        _send(_error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}", _frames(exc)))
        return None
    handler = getattr(module, function_name, None)
    if handler is None:
        _send(_error("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'", []))
        return None
    _send({"ready": True})
    return handler


def invoke(handler, request: dict) -> dict:  # noqa: ANN001 - any callable the module defines
    request_id = request["request_id"]
    os.environ["_X_AMZN_TRACE_ID"] = request["trace_id"]
    try:
        event = json.loads(request["event"])
    except ValueError as exc:
        return _error("Runtime.UnmarshalError", f"Unable to unmarshal input: {exc}", [], request_id)
    try:
        result = handler(event, LambdaContext(request_id, request["deadline_ms"]))
    except Exception as exc:
        return _error(type(exc).__name__, str(exc), _frames(exc), request_id)
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        return _error("Runtime.MarshalError", f"Unable to marshal response: {exc}", [], request_id)
    return {"result": result}


def main() -> None:
    handler = init()
    if handler is None:
        return
    for line in REQUESTS:
        _send(invoke(handler, json.loads(line)))


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    sys.stderr.flush()
