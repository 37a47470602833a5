"""boto3 clients made when first needed, with standard retries.

The endpoint comes from botocore's own ``AWS_ENDPOINT_URL`` support, so the same code runs
against AWS and the local cloud. ``reset()`` drops the cache (tests, and moto's fresh mocks).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

_CONFIG = BotoConfig(retries={"mode": "standard", "max_attempts": 5})


@cache
def client(service: str, region: str | None = None) -> Any:
    # The service is a runtime string, which the boto3-stubs overloads cannot narrow.
    return boto3.session.Session().client(service, region_name=region, config=_CONFIG)  # type: ignore[call-overload]


def reset() -> None:
    client.cache_clear()


def error_code(exc: BaseException | None) -> str:
    """The AWS error code of a botocore ClientError, or "" for anything else."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
