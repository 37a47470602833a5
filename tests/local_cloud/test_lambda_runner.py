"""The Lambda runner on its own: a zip in, an isolated Python 3.13 process, the Lambda result out."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from types import SimpleNamespace

import pytest
from moto import mock_aws

from local_cloud import lambda_runner

pytestmark = pytest.mark.e2e  # starts real interpreters; a few hundred ms each

CODE = """
import json, os, sys, time

def context_handler(event, context):
    return {
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb,
        "group": context.log_group_name,
        "stream": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "env": {k: os.environ.get(k) for k in (
            "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_LAMBDA_FUNCTION_TIMEOUT", "_HANDLER", "STAGE", "PYTHONPATH", "VIRTUAL_ENV")},
        "path": sys.path,
        "event": event,
    }

def slow_handler(event, context):
    print("going to sleep")
    time.sleep(30)

class TransientError(Exception):
    pass

def failing_handler(event, context):
    raise TransientError("try again later")

def layer_handler(event, context):
    import helper
    return helper.VALUE
"""


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _function(handler: str, timeout: int = 5, layers: list | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        account_id="123456789012",
        region="eu-west-1",
        function_name="probe",
        function_arn="arn:aws:lambda:eu-west-1:123456789012:function:probe",
        handler=handler,
        run_time="python3.13",
        version="$LATEST",
        memory_size=256,
        timeout=timeout,
        logs_group_name="/aws/lambda/probe",
        environment_vars={"STAGE": "test", "AWS_ENDPOINT_URL": "https://real.example"},
        code_bytes=_zip({"app.py": CODE}),
        layers=layers or [],
    )


@pytest.fixture(autouse=True)
def _moto(tmp_path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001
    monkeypatch.setattr(lambda_runner, "_cache", lambda_runner.ArtifactCache(tmp_path))
    with mock_aws():
        yield


def test_handler_gets_a_lambda_context_and_environment() -> None:
    payload, errored, logs, stream = lambda_runner.invoke_artifact(
        _function("app.context_handler"), {"hello": "world"}, "http://127.0.0.1:1"
    )
    result = json.loads(payload)
    assert not errored
    assert result["event"] == {"hello": "world"}
    assert result["function_name"] == "probe" and result["memory"] == 256
    assert result["arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:probe"
    assert result["group"] == "/aws/lambda/probe" and result["stream"] == stream
    assert 0 < result["remaining"] <= 5000
    env = result["env"]
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"  # never the real cloud
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "5" and env["_HANDLER"] == "app.context_handler"
    assert env["STAGE"] == "test" and env["PYTHONPATH"] is None and env["VIRTUAL_ENV"] is None
    assert not any("/.venv/" in p for p in result["path"])
    assert logs.startswith(f"START RequestId: {result['request_id']}")


def test_handler_exception_becomes_the_lambda_error_payload() -> None:
    payload, errored, logs, _ = lambda_runner.invoke_artifact(_function("app.failing_handler"), {}, "http://x")
    error = json.loads(payload)
    assert errored
    assert error["errorType"] == "TransientError" and error["errorMessage"] == "try again later"
    assert any("failing_handler" in frame for frame in error["stackTrace"])
    assert "[ERROR] TransientError: try again later" in logs


def test_run_past_the_timeout_is_killed_with_the_lambda_message() -> None:
    payload, errored, logs, _ = lambda_runner.invoke_artifact(_function("app.slow_handler", timeout=1), {}, "http://x")
    error = json.loads(payload)
    assert errored
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    assert "going to sleep" in logs


def test_layer_python_directory_is_importable_like_opt_python() -> None:
    from moto.awslambda.utils import get_backend

    layer = get_backend("123456789012", "eu-west-1").publish_layer_version(
        {"LayerName": "helpers", "Content": {"ZipFile": base64.b64encode(_zip({"python/helper.py": "VALUE = 7\n"}))}}
    )
    payload, errored, _, _ = lambda_runner.invoke_artifact(
        _function("app.layer_handler", layers=[{"Arn": layer.arn}]), {}, "http://x"
    )
    assert not errored and json.loads(payload) == 7


def test_missing_handler_is_reported_as_the_runtime_does() -> None:
    payload, errored, _, _ = lambda_runner.invoke_artifact(_function("app.nothing_here"), {}, "http://x")
    assert errored and json.loads(payload)["errorType"] == "Runtime.HandlerNotFound"
