"""boto3 clients made when first needed, with standard retries, typed per service.

While a drift check runs (``drift.refusing_writes``) every client refuses a call that is not a read
(Get/List/Describe/Head, and DetectStackSetDrift: IAM's Read) before it is sent: a check writes nothing,
whatever its code does.

The endpoint comes from botocore's own ``AWS_ENDPOINT_URL`` support, so the same code runs
against AWS and the local cloud. All clients come from one session, which resolves the credentials once
(a Lambda execution environment's do not change). ``reset()`` drops the clients (tests, and moto's fresh
mocks) and keeps the session only if the environment's AWS settings did not change.

Each service has its own accessor (``clients.s3(region)``) typed with the mypy-boto3 stubs, so mypy
checks every call's operation and parameter names. The stubs are a dev dependency only: they are
imported for type checking, never at run time (the Lambda layer does not ship them).
"""

from __future__ import annotations

import os
import threading
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config as BotoConfig

from expel_onboarding.drift import refuse_write

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudtrail import CloudTrailClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_organizations import OrganizationsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3control import S3ControlClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient
    from mypy_boto3_sts import STSClient

_CONFIG = BotoConfig(retries={"mode": "standard", "max_attempts": 5})
# Operations that only read. (SQS ReceiveMessage is not one: it hides the message from its consumer.)
# DetectStackSetDrift compares each stack instance with the template and changes nothing (IAM: Read).
READ_PREFIXES = ("Get", "List", "Describe", "Head", "DetectStackSetDrift")


def _refuse_writes_while_checking(model: Any, **_: Any) -> None:
    if not str(model.name).startswith(READ_PREFIXES):
        refuse_write(f"{model.service_model.service_name}:{model.name}")


@lru_cache(maxsize=4)
def _session_for(environment: tuple[tuple[str, str], ...]) -> boto3.session.Session:
    """One session for every client: a session parses botocore's endpoint data (over a megabyte of JSON) and
    each service's model once, so a second session per client would cost a cold start ~0.1 s of CPU each."""
    return boto3.session.Session()


@cache
def _session() -> boto3.session.Session:
    """The session until the next ``reset()``, for the environment's AWS settings (credentials, region,
    endpoint, profile: all a session reads from it) as they are then: a reset that changed none of them
    keeps the session, and only the clients are made again."""
    return _session_for(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))


_creating = threading.Lock()  # a session is not thread-safe; the clients it makes are


@cache
def _cached(service: str, region: str | None) -> BaseClient:
    with _creating:
        # The service is a runtime string here, which the boto3-stubs overloads cannot narrow.
        made: BaseClient = _session().client(service, region_name=region, config=_CONFIG)  # type: ignore[call-overload]
    made.meta.events.register("before-call", _refuse_writes_while_checking)
    return made


def client(service: str, region: str | None = None) -> BaseClient:
    """The cached client of ``service``; callers use the typed accessors below."""
    return _cached(service, region)


def reset() -> None:
    """Forget the clients and which session makes them (credentials and region are read again)."""
    _cached.cache_clear()
    _session.cache_clear()


def cloudformation(region: str | None = None) -> CloudFormationClient:
    return cast("CloudFormationClient", client("cloudformation", region))


def cloudtrail(region: str | None = None) -> CloudTrailClient:
    return cast("CloudTrailClient", client("cloudtrail", region))


def cloudwatch(region: str | None = None) -> CloudWatchClient:
    return cast("CloudWatchClient", client("cloudwatch", region))


def iam() -> IAMClient:
    return cast("IAMClient", client("iam"))


def kms(region: str | None = None) -> KMSClient:
    return cast("KMSClient", client("kms", region))


def logs(region: str | None = None) -> CloudWatchLogsClient:
    return cast("CloudWatchLogsClient", client("logs", region))


def organizations() -> OrganizationsClient:
    return cast("OrganizationsClient", client("organizations"))


def s3(region: str | None = None) -> S3Client:
    return cast("S3Client", client("s3", region))


def s3control(region: str | None = None) -> S3ControlClient:
    return cast("S3ControlClient", client("s3control", region))


def secretsmanager(region: str | None = None) -> SecretsManagerClient:
    return cast("SecretsManagerClient", client("secretsmanager", region))


def sns(region: str | None = None) -> SNSClient:
    return cast("SNSClient", client("sns", region))


def sqs(region: str | None = None) -> SQSClient:
    return cast("SQSClient", client("sqs", region))


def stepfunctions(region: str | None = None) -> SFNClient:
    return cast("SFNClient", client("stepfunctions", region))


def sts(region: str | None = None) -> STSClient:
    return cast("STSClient", client("sts", region))
