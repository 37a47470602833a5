"""Prerequisites for the notification-path steps (guide steps 3 to 6), built directly with boto3 so
each step's tests stand on their own, plus the handler-test helpers they share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from expel_onboarding import naming
from expel_onboarding.models import Config, TrailOutput
from expel_onboarding.policies.key_policy import cloudtrail_key_policy
from tests.conftest import ACCOUNT_ID, REGION

EVENTS = Path(__file__).resolve().parents[2] / "events"


class FakeLambdaContext:
    def __init__(self, function_name: str, remaining_ms: int = 120_000) -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        self.aws_request_id = "00000000-0000-0000-0000-000000000036"
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def load_event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / f"{name}.json").read_text()))


def create_key(config: Config, tags: dict[str, str] | None = None) -> str:
    """A key as step 1 leaves it: CloudTrail's console policy and the ownership tag. Returns its ARN."""
    kms = boto3.client("kms", region_name=REGION)
    policy = cloudtrail_key_policy(config.partition, config.region, config.account_id, config.trail_name)
    tags = naming.owner_tags(config.stack_name) if tags is None else tags
    key = kms.create_key(Policy=json.dumps(policy), Description="CloudTrail log encryption",
                         Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])["KeyMetadata"]
    return str(key["Arn"])


def make_trail(config: Config) -> TrailOutput:
    """Step 1's output, backed by a real (moto) key with alias and bucket."""
    key_arn = create_key(config)
    boto3.client("kms", region_name=REGION).create_alias(AliasName=config.kms_alias, TargetKeyId=key_arn)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=config.bucket_name)
    return TrailOutput(
        trail_arn=naming.trail_arn(config.partition, config.region, config.account_id, config.trail_name),
        bucket_name=config.bucket_name,
        bucket_arn=naming.bucket_arn(config.partition, config.bucket_name),
        kms_key_arn=key_arn,
        kms_alias=config.kms_alias,
    )
