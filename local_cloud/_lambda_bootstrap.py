"""Runs one Lambda invocation inside the runtime interpreter (LAMBDA_RUNTIME_PYTHON, started with -I).

This file is executed as a script by ``lambda_runner``; it imports nothing from the dev tree. It plays
the part of the AWS Lambda Python runtime: it puts the function code (``/var/task``) and the layers
(``/opt/python``) on ``sys.path``, imports the handler, builds a context object, calls the handler and
writes the outcome as JSON to the result file named on the command line. Everything the function logs
goes to stdout/stderr, which the runner stores in CloudWatch Logs.

argv: task_root opt_root result_path request_id
env:  _HANDLER, AWS_LAMBDA_* (set by the runner), _LOCAL_LAMBDA_DEADLINE_MS (epoch milliseconds)
"""

import importlib
import json
import os
import sys
import time
import traceback

TASK_ROOT, OPT_ROOT, RESULT_PATH, REQUEST_ID = sys.argv[1:5]


class LambdaContext:
    """The attributes and method the Python runtime's context object has."""

    def __init__(self) -> None:
        self.aws_request_id = REQUEST_ID
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ["_LOCAL_LAMBDA_FUNCTION_ARN"]
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = int(os.environ["_LOCAL_LAMBDA_DEADLINE_MS"])

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def _write(result: dict) -> None:
    with open(RESULT_PATH, "w", encoding="utf-8") as handle:
        json.dump(result, handle)


def _frames(exc: BaseException) -> list[str]:
    """The traceback as the runtime reports it: without this bootstrap's own frames."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    return traceback.format_list(frames)


def _error(error_type: str, message: str, stack: list[str]) -> None:
    payload = {"errorMessage": message, "errorType": error_type, "requestId": REQUEST_ID, "stackTrace": stack}
    sys.stderr.write(f"[ERROR] {error_type}: {message}\n" + "".join(stack) + "\n")
    _write({"error": payload})


def main() -> None:
    # What the runtime puts first on sys.path: the function code, then the layers' python dirs.
    sys.path[:0] = [
        TASK_ROOT,
        os.path.join(OPT_ROOT, "python", "lib", "python3.13", "site-packages"),
        os.path.join(OPT_ROOT, "python"),
    ]
    os.chdir(TASK_ROOT)
    handler_spec = os.environ["_HANDLER"]
    module_name, _, function_name = handler_spec.rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:  # the runtime reports every import-time failure this way
        _error(
            "Runtime.ImportModuleError",
            f"Unable to import module '{module_name}': {exc}",
            _frames(exc),
        )
        return
    handler = getattr(module, function_name, None)
    if handler is None:
        _error("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'", [])
        return
    with open(os.environ["_LOCAL_LAMBDA_EVENT_PATH"], encoding="utf-8") as handle:
        event = json.load(handle)
    try:
        result = handler(event, LambdaContext())
    except Exception as exc:
        _error(type(exc).__name__, str(exc), _frames(exc))
        return
    try:
        _write({"result": result})
    except (TypeError, ValueError) as exc:
        _error("Runtime.MarshalError", f"Unable to marshal response: {exc}", [])


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    sys.stderr.flush()
