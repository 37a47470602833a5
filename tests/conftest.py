"""Shared fixtures: fake credentials, function-scoped moto, a sample configuration."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import boto3
import pytest
from moto import mock_aws

from expel_onboarding.aws import clients
from expel_onboarding.models import Config
from local_cloud import moto_patches, stacksets

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
WORKBENCH_GUID = "4f9c2a1e-7b3d-4e5f-9a8b-1c2d3e4f5a6b"


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):  # its hook is unknown to pytest without pytest-xdist
        from tests import xdist_scheduling

        config.pluginmanager.register(xdist_scheduling, "shared-stack-scheduling")


@pytest.fixture(autouse=True, scope="session")
def _one_botocore_loader() -> Iterator[None]:
    """Every boto3 session the tests make reads botocore's data files (service models, endpoints)
    through one loader, which parses each file once. The layer makes a session per client and the tests
    reset that cache for each test: without this, a third of the suite's time went into parsing the same
    JSON again. Botocore's S3 client rewrites its model's request URIs in place, so code that routes by the model
    (local_cloud.api_calls) reads it through a loader of its own."""
    import botocore.loaders
    import botocore.session

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", cache(botocore.loaders.create_loader))
        yield


@pytest.fixture(autouse=True, scope="session")
def _moto_behaves_like_aws() -> None:
    """Every test's moto obeys the local cloud's rules (local_cloud/moto_patches.py), the same ones
    ``local serve`` applies: what a test proves is what the local cloud enforces."""
    moto_patches.apply()
    # The local cloud's StackSets, with operations that take milliseconds instead of seconds.
    stacksets.configure(start_seconds=0.01, batch_seconds=0.01)


@pytest.fixture(autouse=True)
def _aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never let a test reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "expel-cloudtrail-onboarding-test",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    clients.reset()


@pytest.fixture
def aws() -> Iterator[None]:
    """A fresh moto account for one test."""
    with mock_aws():
        clients.reset()
        yield
    clients.reset()


@pytest.fixture
def config() -> Config:
    return Config(
        stack_name="expel-onboarding",
        region=REGION,
        account_id=ACCOUNT_ID,
        partition="aws",
        workbench_guid=WORKBENCH_GUID,
        trail_name="ExpelCloudTrail",
        bucket_name=f"expel-cloudtrail-{ACCOUNT_ID}-{REGION}",
        kms_alias="alias/expel-cloudtrail",
        topic_name="ExpelCloudTrailTopic",
        queue_name="ExpelCloudTrailQueue",
        role_name="ExpelAssumeRole",
        role_stack_name="expel-onboarding-expel-role",
        access_log_bucket_name=f"expel-cloudtrail-access-logs-{ACCOUNT_ID}-{REGION}",
    )


def boto(service: str) -> Any:
    """A plain boto3 client for reading back what AWS holds after a step."""
    return boto3.client(service, region_name=REGION)




