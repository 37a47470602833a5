"""Requests to the local cloud are named as AWS names them: service, operation, region, caller's key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local_cloud import api_calls
from local_cloud.server import MotoServer


@pytest.fixture(scope="module")
def seen() -> Iterator[Seen]:
    calls: list[api_calls.ApiCall | None] = []

    def wrap(app: Any) -> Any:
        def record(environ: dict[str, Any], start_response: Any) -> Any:
            calls.append(api_calls.identify(environ))
            return app(environ, start_response)
        return record

    server = MotoServer(0, [wrap])
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}", calls
    finally:
        server.stop()


Seen = tuple[str, list[api_calls.ApiCall | None]]


def named(seen: Seen, service: str, call: str, **kwargs: Any) -> api_calls.ApiCall:
    url, calls = seen
    client = boto3.client(service, endpoint_url=url, region_name="eu-west-1", aws_access_key_id="AKIDEXAMPLE",
                          aws_secret_access_key="secret")
    calls.clear()
    getattr(client, call)(**kwargs)
    assert calls[-1] is not None
    return calls[-1]


@pytest.mark.parametrize(("call", "kwargs", "operation"), [
    ("create_bucket", {"CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}}, "CreateBucket"),
    ("put_bucket_notification_configuration", {"NotificationConfiguration": {}},
     "PutBucketNotificationConfiguration"),  # not its deprecated twin PutBucketNotification
    ("put_object", {"Key": "a/b.json", "Body": b"{}"}, "PutObject"),
    ("copy_object", {"Key": "a/c.json", "CopySource": "{bucket}/a/b.json"}, "CopyObject"),
    ("head_object", {"Key": "a/b.json"}, "HeadObject"),
    ("list_object_versions", {}, "ListObjectVersions"),
    ("get_bucket_acl", {}, "GetBucketAcl"),
    ("head_bucket", {}, "HeadBucket"),
])
def test_s3_rest_calls_are_named_by_method_path_query_and_headers(
        seen: Seen, call: str, kwargs: dict[str, Any], operation: str) -> None:
    # Each case has a bucket of its own (with an object in it), made before the call that is named: the cases
    # do not depend on one another's order or worker.
    bucket = f"named-{call.replace('_', '-')}"
    if call != "create_bucket":
        s3 = boto3.client("s3", endpoint_url=seen[0], region_name="eu-west-1", aws_access_key_id="AKIDEXAMPLE",
                          aws_secret_access_key="secret")
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_object(Bucket=bucket, Key="a/b.json", Body=b"{}")
    kwargs = {name: value.format(bucket=bucket) if isinstance(value, str) else value for name, value in kwargs.items()}
    named_call = named(seen, "s3", call, Bucket=bucket, **kwargs)
    assert (named_call.service, named_call.operation, named_call.protocol) == ("s3", operation, "rest-xml")


@pytest.mark.parametrize(("service", "call", "kwargs", "operation", "protocol", "source"), [
    ("kms", "list_keys", {}, "ListKeys", "json", "kms.amazonaws.com"),
    ("sns", "list_topics", {}, "ListTopics", "query", "sns.amazonaws.com"),
    ("sqs", "list_queues", {}, "ListQueues", "json", "sqs.amazonaws.com"),
    ("stepfunctions", "list_state_machines", {}, "ListStateMachines", "json", "states.amazonaws.com"),
    ("lambda", "list_functions", {}, "ListFunctions", "rest-json", "lambda.amazonaws.com"),
    ("sts", "get_caller_identity", {}, "GetCallerIdentity", "query", "sts.amazonaws.com"),
])
def test_rpc_calls_are_named_by_target_or_action(seen: Seen, service: str,
                                                 call: str, kwargs: dict[str, Any], operation: str, protocol: str,
                                                 source: str) -> None:
    named_call = named(seen, service, call, **kwargs)
    assert (named_call.operation, named_call.protocol, named_call.event_source) == (operation, protocol, source)
    assert (named_call.region, named_call.access_key) == ("eu-west-1", "AKIDEXAMPLE")


def test_query_parameters_are_read_and_the_body_still_reaches_moto(
        seen: Seen) -> None:
    named_call = named(seen, "sns", "create_topic", Name="named-topic")
    assert named_call.params["Name"] == "named-topic"
    url, _ = seen
    sns = boto3.client("sns", endpoint_url=url, region_name="eu-west-1", aws_access_key_id="AKIDEXAMPLE",
                       aws_secret_access_key="secret")
    assert any(t["TopicArn"].endswith(":named-topic") for t in sns.list_topics()["Topics"])


@pytest.mark.parametrize(("operation", "read_only"), [
    ("GetObject", True), ("ListKeys", True), ("DescribeTrails", True), ("ReceiveMessage", True),
    ("Decrypt", True), ("GenerateDataKey", True), ("AssumeRole", True),
    ("CreateKey", False), ("PutKeyPolicy", False), ("SendMessage", False), ("DeleteObject", False),
])
def test_read_only_is_what_changes_nothing(operation: str, read_only: bool) -> None:
    assert api_calls.read_only(operation) is read_only
