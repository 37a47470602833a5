"""Injected faults answer as each service does, so SDKs retry or raise exactly as against AWS.

An in-process moto server behind the fault middleware; each test sets its own plan.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.config import Config

from local_cloud.faults import Fault, FaultInjector, FaultPlan, FaultSpecError, parse_fault
from local_cloud.server import MotoServer
from tests.support import refused

REGION = "us-east-1"


@pytest.fixture(autouse=True, scope="module")
def _sdk_backoff_compressed() -> Iterator[None]:
    """The SDK's retry backoff (up to seconds a try, with jitter) takes a hundredth of its time, as in the local
    cloud's Lambda environments under ``--time-scale``: the tests count the retries, every one still happens."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=lambda seconds: time.sleep(seconds / 100)))
        yield


@pytest.fixture(scope="module")
def injector() -> Iterator[FaultInjector]:
    holder: list[FaultInjector] = []

    def wrap(app: Any) -> FaultInjector:
        holder.append(FaultInjector(app, FaultPlan()))
        return holder[0]

    server = MotoServer(0, [wrap])
    server.start()
    holder[0].url = f"http://127.0.0.1:{server.port}"  # type: ignore[attr-defined]
    try:
        yield holder[0]
    finally:
        server.stop()


def client(injector: FaultInjector, service: str, attempts: int = 1) -> Any:
    return boto3.client(service, endpoint_url=injector.url, region_name=REGION,  # type: ignore[attr-defined]
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}))


@pytest.mark.parametrize(("spec", "expected"), [
    ("kms:CreateKey=ThrottlingException:2", Fault("kms", "CreateKey", "ThrottlingException", 2)),
    ("s3:PutBucketNotificationConfiguration=SlowDown", Fault("s3", "PutBucketNotificationConfiguration",
                                                              "SlowDown", 1)),
    ("states:StartExecution=ThrottlingException:3", Fault("stepfunctions", "StartExecution",
                                                          "ThrottlingException", 3)),
])
def test_fault_spec_names_service_operation_code_and_count(spec: str, expected: Fault) -> None:
    assert parse_fault(spec) == expected


@pytest.mark.parametrize(("spec", "says"), [
    ("kms:CreateKey", "SERVICE:Operation=ErrorCode[:N]"),
    ("nosuch:CreateKey=Throttling", "unknown service 'nosuch'"),
    ("kms:MakeKey=Throttling", "kms has no operation 'MakeKey'"),
    ("kms:CreateKey=Throttling:0", "N must be a whole number of calls, 1 or more"),
    ("kms:CreateKey=Throttling:two", "N must be a whole number"),
])
def test_bad_fault_spec_says_what_to_write(spec: str, says: str) -> None:
    with pytest.raises(FaultSpecError, match=None) as caught:
        parse_fault(spec)
    assert says in str(caught.value)


def test_kms_throttling_is_json_with_its_code_and_then_the_call_goes_through(injector: FaultInjector) -> None:
    injector.plan = FaultPlan([parse_fault("kms:CreateKey=ThrottlingException:2")])
    kms = client(injector, "kms")
    for _ in range(2):
        error = refused(kms.create_key)
        assert error.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert error.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ThrottlingException"
    assert kms.create_key()["KeyMetadata"]["KeyId"]
    assert kms.list_keys()["Keys"]  # other operations never failed


def test_s3_slowdown_is_a_503_xml_error_with_request_ids(injector: FaultInjector) -> None:
    injector.plan = FaultPlan([parse_fault("s3:CreateBucket=SlowDown")])
    s3 = client(injector, "s3")
    error = refused(s3.create_bucket, Bucket="fault-bucket")
    assert error.response["Error"]["Code"] == "SlowDown"
    assert error.response["Error"]["Message"] == "Please reduce your request rate."
    metadata = error.response["ResponseMetadata"]
    assert metadata["HTTPStatusCode"] == 503 and metadata["RequestId"] and metadata["HostId"]
    s3.create_bucket(Bucket="fault-bucket")
    injector.plan = FaultPlan([parse_fault("s3:HeadBucket=AccessDenied")])
    head = refused(s3.head_bucket, Bucket="fault-bucket")
    assert head.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_sns_is_query_xml_and_sqs_sends_its_query_error_header(injector: FaultInjector) -> None:
    injector.plan = FaultPlan([parse_fault("sns:CreateTopic=Throttled"),
                               parse_fault("sqs:CreateQueue=RequestThrottled")])
    sns_error = refused(client(injector, "sns").create_topic, Name="fault-topic")
    assert sns_error.response["Error"]["Code"] == "Throttled"
    assert sns_error.response["Error"]["Type"] == "Sender"
    assert sns_error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    sqs_error = refused(client(injector, "sqs").create_queue, QueueName="fault-queue")
    assert sqs_error.response["Error"]["Code"] == "RequestThrottled"
    assert sqs_error.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-query-error"] == "RequestThrottled;Sender"


def test_lambda_too_many_requests_carries_retry_after(injector: FaultInjector) -> None:
    injector.plan = FaultPlan([parse_fault("lambda:ListFunctions=TooManyRequestsException")])
    error = refused(client(injector, "lambda").list_functions)
    assert error.response["Error"]["Code"] == "TooManyRequestsException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"


def test_access_denied_names_the_action_and_is_not_retried_by_the_sdk(injector: FaultInjector) -> None:
    injector.plan = FaultPlan([parse_fault("kms:CreateKey=AccessDeniedException:3")])
    error = refused(client(injector, "kms", attempts=5).create_key)
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    assert "is not authorized to perform: kms:CreateKey" in error.response["Error"]["Message"]
    assert error.response["ResponseMetadata"]["RetryAttempts"] == 0
    assert injector.plan.faults[0].failed == 1


def test_sdk_standard_retries_absorb_a_short_throttle(injector: FaultInjector) -> None:
    injector.plan = FaultPlan([parse_fault("sns:CreateTopic=Throttling:2")])
    response = client(injector, "sns", attempts=6).create_topic(Name="retried-topic")
    assert response["ResponseMetadata"]["RetryAttempts"] == 2


def test_sns_modeled_throttled_429_is_not_retried_by_the_sdk(injector: FaultInjector) -> None:
    # Why the onboarding lists SNS's "Throttled" as transient itself: botocore gives up at once.
    injector.plan = FaultPlan([parse_fault("sns:CreateTopic=Throttled")])
    error = refused(client(injector, "sns", attempts=6).create_topic, Name="unretried-topic")
    assert error.response["ResponseMetadata"]["RetryAttempts"] == 0


def test_storm_throttles_every_write_call_n_times_and_no_read(injector: FaultInjector) -> None:
    injector.plan = FaultPlan(throttle_writes=1)
    sqs = client(injector, "sqs", attempts=6)
    assert sqs.create_queue(QueueName="storm-queue")["ResponseMetadata"]["RetryAttempts"] == 1
    again = sqs.create_queue(QueueName="storm-queue-2")  # a new call: throttled again
    assert again["ResponseMetadata"]["RetryAttempts"] == 1
    assert sqs.list_queues()["ResponseMetadata"]["RetryAttempts"] == 0
    s3 = client(injector, "s3", attempts=6)
    assert s3.head_bucket(Bucket="fault-bucket")["ResponseMetadata"]["RetryAttempts"] == 0
    injector.plan = FaultPlan(throttle_writes=2)
    assert s3.create_bucket(Bucket="storm-bucket")["ResponseMetadata"]["RetryAttempts"] == 2


def test_the_local_clouds_own_deploy_tooling_is_never_faulted(injector: FaultInjector) -> None:
    from local_cloud.deploy import aws_client

    injector.plan = FaultPlan([parse_fault("s3:CreateBucket=SlowDown")], throttle_writes=1)
    tooling = aws_client("s3", injector.url, REGION)  # type: ignore[attr-defined]
    assert tooling.create_bucket(Bucket="artifacts-bucket")["ResponseMetadata"]["RetryAttempts"] == 0
    assert injector.plan.faults[0].failed == 0


def test_storm_lets_the_same_request_through_after_n_throttles_whoever_retries_it(injector: FaultInjector) -> None:
    # A client without retries (Step Functions invoking a Task's Lambda) sends the request again itself.
    injector.plan = FaultPlan(throttle_writes=2)
    sqs = client(injector, "sqs", attempts=1)
    for _ in range(2):
        assert refused(sqs.create_queue, QueueName="resent-queue").response["Error"]["Code"] == "RequestThrottled"
    assert sqs.create_queue(QueueName="resent-queue")["QueueUrl"].endswith("/resent-queue")


def test_storm_beyond_the_sdk_retries_surfaces_the_throttling_error(injector: FaultInjector) -> None:
    injector.plan = FaultPlan(throttle_writes=3)
    error = refused(client(injector, "s3", attempts=3).create_bucket, Bucket="storm-bucket-3")
    assert error.response["Error"]["Code"] == "SlowDown"
