"""``local serve --time-scale``: Step Functions' Retry intervals and Wait states, and the SDK's retry backoff in
Lambda functions, take a fraction of their time; every retry still happens, and 1 waits as AWS does."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.endpoint
import pytest
from moto import mock_aws

from local_cloud import _lambda_bootstrap, cli, lambda_runner, time_scale

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"
# An aws-sdk Task that fails every time: the object does not exist.
READ_MISSING = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                "Parameters": {"Bucket": "time-scale", "Key": "missing"}}


@pytest.fixture
def sfn() -> Iterator[Any]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="time-scale")
        yield boto3.client("stepfunctions", region_name=REGION)
    time_scale.configure(1.0)


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every sleep the scaled Retry asks for, in seconds (then slept)."""
    asked: list[float] = []
    real = time.sleep

    class Recording:
        @staticmethod
        def sleep(seconds: float) -> None:
            asked.append(seconds)
            real(seconds)

    monkeypatch.setattr(time_scale, "time", Recording)
    return asked


def execute(sfn: Any, states: dict[str, Any], timeout: float = 30) -> tuple[str, list[dict[str, Any]]]:
    machine = sfn.create_state_machine(name=f"m{time.monotonic_ns()}", roleArn=ROLE,
                                       definition=json.dumps({"StartAt": "Start", "States": states}))
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"])["executionArn"]
    deadline = time.monotonic() + timeout
    while (status := sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not finish"
        time.sleep(0.05)
    return status, sfn.get_execution_history(executionArn=arn)["events"]


def test_a_retry_waits_its_interval_and_backoff_times_the_scale_and_makes_every_attempt(
        sfn: Any, slept: list[float]) -> None:
    time_scale.configure(0.01)
    retry = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 2}]
    status, events = execute(sfn, {"Start": {**READ_MISSING, "Retry": retry, "End": True}})

    assert status == "FAILED"
    assert [e["type"] for e in events].count("TaskFailed") == 3  # the first attempt and both retries
    assert slept == pytest.approx([0.02, 0.06])  # 2 s, then 2 s x 3, scaled


def test_at_scale_1_a_retry_waits_what_the_definition_says(sfn: Any, slept: list[float]) -> None:
    time_scale.configure(1.0)
    retry = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 1}]
    status, _ = execute(sfn, {"Start": {**READ_MISSING, "Retry": retry, "End": True}})

    assert status == "FAILED"
    assert slept == [1.0]


def test_a_wait_state_waits_its_seconds_times_the_scale(sfn: Any) -> None:
    time_scale.configure(0.001)
    status, events = execute(sfn, {"Start": {"Type": "Wait", "Seconds": 600, "Next": "Done"},
                                   "Done": {"Type": "Succeed"}}, timeout=30)

    assert status == "SUCCEEDED"  # ten minutes of Wait, in 0.6 s
    assert [e["type"] for e in events if e["type"].startswith("Wait")] == ["WaitStateEntered", "WaitStateExited"]


def test_a_scale_outside_0_to_1_is_refused_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("0", "-1", "2"):
        with pytest.raises(SystemExit):
            cli.main(["local", "serve", "--time-scale", bad])
        assert "--time-scale: must be more than 0 and at most 1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="time scale must be more than 0"):
        time_scale.configure(0)


class _Function:
    function_name, version, memory_size, logs_group_name, handler = "f", "$LATEST", 128, "/aws/lambda/f", "app.handler"
    run_time, region, function_arn, environment_vars = "python3.13", REGION, "arn:aws:lambda:::function:f", {}


def test_lambda_environments_carry_the_sdk_backoff_scale_only_when_time_is_compressed(tmp_path: Any) -> None:
    try:
        time_scale.configure(1.0)
        assert time_scale.SDK_BACKOFF_VARIABLE not in lambda_runner._environment(_Function(), "http://x", tmp_path, 3)
        time_scale.configure(0.1)
        environment = lambda_runner._environment(_Function(), "http://x", tmp_path, 3)
        assert environment[time_scale.SDK_BACKOFF_VARIABLE] == "0.1"
    finally:
        time_scale.configure(1.0)


def test_the_runtime_scales_the_sdk_backoff_and_hides_the_variable_from_the_function(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[float] = []

    class Recording:
        @staticmethod
        def sleep(seconds: float) -> None:
            asked.append(seconds)

    monkeypatch.setattr(botocore.endpoint, "time", botocore.endpoint.time)  # restored after the test
    monkeypatch.setattr(_lambda_bootstrap, "time", Recording)
    monkeypatch.setenv(time_scale.SDK_BACKOFF_VARIABLE, "0.001")
    _lambda_bootstrap._scale_sdk_backoff()

    assert time_scale.SDK_BACKOFF_VARIABLE not in os.environ
    botocore.endpoint.time.sleep(20)  # where botocore sleeps a retry's delay: here its longest backoff
    assert asked == [pytest.approx(0.02)]
