"""Helpers the step-8 and delivery tests share: step outputs with no AWS resource behind them, and a
function's handler loaded from its folder with a Lambda context.

A test module makes the outputs its fixtures with ``trail = pytest.fixture(trail_output, name="trail")``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from expel_onboarding.models import Config, QueueOutput, TrailOutput
from tests.conftest import ACCOUNT_ID, REGION

ROOT = Path(__file__).resolve().parents[2]
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CONTEXT = SimpleNamespace(function_name="test", memory_limit_in_mb=128, aws_request_id="req-1",
                          invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:test")


def trail_output(config: Config) -> TrailOutput:
    return TrailOutput(
        trail_arn=f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/{config.trail_name}",
        bucket_name=config.bucket_name, bucket_arn=f"arn:aws:s3:::{config.bucket_name}",
        kms_key_arn=KEY_ARN, kms_alias=config.kms_alias)


def queue_output(config: Config) -> QueueOutput:
    return QueueOutput(queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{config.queue_name}",
                       queue_url=f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{config.queue_name}")


def handler(name: str) -> Any:
    """``lambda_handler`` of ``functions/<name>/app.py``."""
    spec = importlib.util.spec_from_file_location(f"{name}_app", ROOT / "functions" / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler
