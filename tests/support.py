"""Test helpers shared by the suites."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

from botocore.client import BaseClient

# Read-only API prefixes: anything else that reaches AWS counts as a mutation.
READ_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "Check", "Search", "Select", "Receive")


@contextlib.contextmanager
def count_mutating_calls() -> Iterator[list[str]]:
    """Collect ``service.Operation`` for every mutating AWS call made while the block runs.

    Wraps botocore's single entry point for API calls, so it sees every client however made.
    """
    calls: list[str] = []
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if not operation_name.startswith(READ_PREFIXES):
            calls.append(f"{self.meta.service_model.service_name}.{operation_name}")
        return original(self, operation_name, api_params)

    with mock.patch.object(BaseClient, "_make_api_call", record):
        yield calls


def allow_cloudtrail(s3: Any, bucket: str, trail_arn: str, organization_id: str | None = None) -> None:
    """Give ``bucket`` the policy CloudTrail needs before it accepts the bucket for ``trail_arn`` (the
    local cloud, like AWS, refuses CreateTrail without it): the guide's statements, no key prefix."""
    import json

    from expel_onboarding.policies.bucket_policy import cloudtrail_bucket_statements

    partition, account = trail_arn.split(":")[1], trail_arn.split(":")[4]
    statements = cloudtrail_bucket_statements(partition, bucket, account, trail_arn, organization_id=organization_id)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))
