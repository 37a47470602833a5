"""Guide step 2 against moto: default encryption SSE-KMS with the trail's key, bucket key on."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import boto3
import pytest

from expel_onboarding.models import BucketEncryptionOutput, Config, TrailOutput
from expel_onboarding.steps import step01_trail, step02_bucket_encryption
from tests.conftest import REGION
from tests.steps.notification_path import FakeLambdaContext
from tests.support import count_mutating_calls

EVENTS = Path(__file__).resolve().parents[2] / "events"




@pytest.fixture
def trail(aws: None, config: Config) -> TrailOutput:
    return step01_trail.apply(config)


def _rules(bucket: str) -> list[dict]:
    s3 = boto3.client("s3", region_name=REGION)
    return s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]


def test_default_encryption_becomes_sse_kms_with_the_trail_key(config: Config, trail: TrailOutput) -> None:
    out = step02_bucket_encryption.apply(config, trail)
    assert out == BucketEncryptionOutput(sse_algorithm="aws:kms", kms_key_arn=trail.kms_key_arn,
                                         bucket_key_enabled=True)
    assert _rules(trail.bucket_name) == [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": trail.kms_key_arn},
        "BucketKeyEnabled": True,
    }]


def test_second_run_makes_no_mutating_call_and_returns_the_same_output(config: Config,
                                                                      trail: TrailOutput) -> None:
    first = step02_bucket_encryption.apply(config, trail)
    with count_mutating_calls() as calls:
        assert step02_bucket_encryption.apply(config, trail) == first
    assert calls == []


def test_sse_s3_or_missing_bucket_key_is_replaced(config: Config, trail: TrailOutput) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_bucket_encryption(Bucket=trail.bucket_name, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    with count_mutating_calls() as calls:
        step02_bucket_encryption.apply(config, trail)
    assert calls == ["s3.PutBucketEncryption"]
    assert _rules(trail.bucket_name)[0]["BucketKeyEnabled"] is True
    assert _rules(trail.bucket_name)[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


def test_handler_runs_the_sample_event(aws: None) -> None:
    event = json.loads((EVENTS / "step02_bucket_encryption.json").read_text())
    config = Config.from_state(event)
    trail = step01_trail.apply(config)
    event["Trail"] = trail.to_dict()
    app = importlib.import_module("functions.step02_bucket_encryption.app")
    result = app.lambda_handler(event, FakeLambdaContext("step02_bucket_encryption"))
    assert result == {"SseAlgorithm": "aws:kms", "KmsKeyArn": trail.kms_key_arn, "BucketKeyEnabled": True}
    assert _rules(trail.bucket_name)[0]["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == trail.kms_key_arn
