"""A logging trail delivers the calls the local cloud saw as CloudTrail does: gzip JSON records under
AWSLogs/<account>/CloudTrail/<region>/..., SSE-KMS with the trail's key, signed digests that chain.

An in-process moto server behind the recorder; ``Delivery.deliver()`` is called directly (the interval
only decides when ``local serve`` calls it).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from expel_onboarding.policies.key_policy import cloudtrail_key_policy
from local_cloud import cloudtrail_checks, cloudtrail_logs
from local_cloud.server import MotoServer
from tests.support import allow_cloudtrail

ACCOUNT = "123456789012"
LOG_KEY = re.compile(rf"^AWSLogs/{ACCOUNT}/CloudTrail/(?P<region>[a-z0-9-]+)/\d{{4}}/\d{{2}}/\d{{2}}/"
                     rf"{ACCOUNT}_CloudTrail_(?P=region)_\d{{8}}T\d{{4}}Z_[A-Za-z0-9]{{16}}\.json\.gz$")
DIGEST_KEY = re.compile(rf"^AWSLogs/{ACCOUNT}/CloudTrail-Digest/(?P<region>[a-z0-9-]+)/\d{{4}}/\d{{2}}/\d{{2}}/"
                        rf"{ACCOUNT}_CloudTrail-Digest_(?P=region)_logged-trail_us-east-1_\d{{8}}T\d{{6}}Z\.json\.gz$")


class Cloud:
    def __init__(self, url: str, delivery: cloudtrail_logs.Delivery) -> None:
        self.url, self.delivery = url, delivery

    def client(self, service: str, region: str = "us-east-1") -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=region, aws_access_key_id="testing",
                            aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    events = cloudtrail_logs.EventLog()
    delivery = cloudtrail_logs.Delivery(events, check=cloudtrail_checks.delivery_refusal)
    cloudtrail_logs.install(delivery)
    server = MotoServer(0, [lambda app: cloudtrail_logs.Recorder(app, events)])
    server.start()
    try:
        yield Cloud(f"http://127.0.0.1:{server.port}", delivery)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def trail(cloud: Cloud) -> dict[str, str]:
    """A multi-region trail with log file validation and a KMS key, logging, after one call before it."""
    s3, kms, sqs = cloud.client("s3"), cloud.client("kms"), cloud.client("sqs")
    sqs.create_queue(QueueName="called-before-logging")
    s3.create_bucket(Bucket="trail-logs")
    queue_url = sqs.create_queue(QueueName="log-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket="trail-logs", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]})
    allow_cloudtrail(s3, "trail-logs", f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/logged-trail")
    key_arn = kms.create_key(Policy=json.dumps(cloudtrail_key_policy("aws", "us-east-1", ACCOUNT, "logged-trail"))
                             )["KeyMetadata"]["Arn"]
    ct = cloud.client("cloudtrail")
    ct.create_trail(Name="logged-trail", S3BucketName="trail-logs", IsMultiRegionTrail=True,
                    EnableLogFileValidation=True, KmsKeyId=key_arn)
    ct.start_logging(Name="logged-trail")
    cloud.client("sns").create_topic(Name="made-while-logging")
    cloud.client("kms", "eu-west-1").list_keys()
    s3.put_object(Bucket="trail-logs", Key="data/object.txt", Body=b"a data event")
    cloud.client("secretsmanager").create_secret(Name="api-key", SecretString="do-not-log-me")
    try:
        kms.describe_key(KeyId="alias/missing")
    except kms.exceptions.NotFoundException:
        pass
    assert cloud.delivery.deliver(force_digest=True) >= 3
    return {"key_arn": key_arn, "queue_url": queue_url}


def objects(cloud: Cloud, prefix: str) -> list[str]:
    listed = cloud.client("s3").list_objects_v2(Bucket="trail-logs", Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def records(cloud: Cloud, region: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for key in objects(cloud, f"AWSLogs/{ACCOUNT}/CloudTrail/{region}/"):
        body = cloud.client("s3").get_object(Bucket="trail-logs", Key=key)["Body"].read()
        found.extend(json.loads(gzip.decompress(body))["Records"])
    return found


def test_log_files_are_named_and_placed_as_cloudtrail_names_them(cloud: Cloud, trail: dict[str, str]) -> None:
    keys = objects(cloud, "AWSLogs/")
    logs = [k for k in keys if "/CloudTrail/" in k]
    assert logs and all(LOG_KEY.match(k) for k in logs), logs
    assert {LOG_KEY.match(k)["region"] for k in logs} == {"us-east-1", "eu-west-1"}  # type: ignore[index]


def test_records_are_the_management_calls_made_while_logging(cloud: Cloud, trail: dict[str, str]) -> None:
    here = records(cloud, "us-east-1")
    names = [r["eventName"] for r in here]
    assert "CreateTopic" in names and "CreateSecret" in names
    assert "CreateQueue" not in names, "a call made before StartLogging was delivered"
    assert "PutObject" not in names, "an S3 data event was logged as a management event"
    topic = next(r for r in here if r["eventName"] == "CreateTopic")
    assert topic["eventSource"] == "sns.amazonaws.com" and topic["awsRegion"] == "us-east-1"
    assert topic["userIdentity"] == {"type": "Root", "principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root",
                                     "accountId": ACCOUNT, "accessKeyId": "testing"}
    assert topic["requestParameters"] == {"Name": "made-while-logging"}
    assert topic["readOnly"] is False and topic["eventType"] == "AwsApiCall" and topic["recipientAccountId"] == ACCOUNT
    assert [r["eventName"] for r in records(cloud, "eu-west-1")] == ["ListKeys"]


def test_refused_calls_carry_aws_error_and_secrets_are_hidden(cloud: Cloud, trail: dict[str, str]) -> None:
    here = records(cloud, "us-east-1")
    refused = next(r for r in here if r["eventName"] == "DescribeKey")
    assert refused["errorCode"] == "NotFoundException"
    secret = next(r for r in here if r["eventName"] == "CreateSecret")
    assert secret["requestParameters"]["SecretString"] == cloudtrail_logs.HIDDEN
    assert "do-not-log-me" not in json.dumps(here)


def test_log_files_are_sse_kms_with_the_trails_key_and_fire_the_buckets_notification(
        cloud: Cloud, trail: dict[str, str]) -> None:
    log_key = objects(cloud, f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/")[0]
    head = cloud.client("s3").head_object(Bucket="trail-logs", Key=log_key)
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == trail["key_arn"]
    messages = cloud.client("sqs").receive_message(QueueUrl=trail["queue_url"], MaxNumberOfMessages=10)["Messages"]
    notified = [r["s3"]["object"]["key"] for m in messages for r in json.loads(m["Body"]).get("Records", [])]
    assert any(k.startswith(f"AWSLogs/{ACCOUNT}/CloudTrail/") for k in notified)


def _public_key(cloud: Cloud, fingerprint: str) -> Any:
    keys = cloud.client("cloudtrail").list_public_keys()["PublicKeyList"]
    value = next(k["Value"] for k in keys if k["Fingerprint"] == fingerprint)
    return serialization.load_der_public_key(base64.b64decode(value))  # as `aws cloudtrail validate-logs` does


def _verify(cloud: Cloud, key: str) -> dict[str, Any]:
    """The digest's signature and its log files' hashes, checked the way the AWS CLI checks them."""
    s3 = cloud.client("s3")
    response = s3.get_object(Bucket="trail-logs", Key=key)
    content = gzip.decompress(response["Body"].read())
    digest = json.loads(content)
    assert response["Metadata"]["signature-algorithm"] == "SHA256withRSA"
    to_sign = (f"{digest['digestEndTime']}\n{digest['digestS3Bucket']}/{digest['digestS3Object']}\n"
               f"{hashlib.sha256(content).hexdigest()}\n{digest['previousDigestSignature'] or 'null'}").encode()
    _public_key(cloud, digest["digestPublicKeyFingerprint"]).verify(
        bytes.fromhex(response["Metadata"]["signature"]), to_sign, padding.PKCS1v15(), hashes.SHA256())
    for log_file in digest["logFiles"]:
        body = s3.get_object(Bucket=log_file["s3Bucket"], Key=log_file["s3Object"])["Body"].read()
        assert hashlib.sha256(gzip.decompress(body)).hexdigest() == log_file["hashValue"]
    return digest


def test_digests_are_signed_list_the_log_files_and_chain(cloud: Cloud, trail: dict[str, str]) -> None:
    first = objects(cloud, f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/")
    assert len(first) == 1 and DIGEST_KEY.match(first[0]), first
    digest = _verify(cloud, first[0])
    assert digest["previousDigestSignature"] is None and digest["logFiles"]
    head = cloud.client("s3").head_object(Bucket="trail-logs", Key=first[0])
    assert head["ServerSideEncryption"] == "AES256"

    cloud.client("sns").create_topic(Name="second-hour")
    time.sleep(1.1)  # digest names carry the second they end in (on AWS an hour apart)
    cloud.delivery.deliver(force_digest=True)
    second = [k for k in objects(cloud, f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/") if k not in first]
    chained = _verify(cloud, second[0])
    previous = cloud.client("s3").get_object(Bucket="trail-logs", Key=first[0])
    assert chained["previousDigestS3Object"] == first[0]
    assert chained["previousDigestSignature"] == previous["Metadata"]["signature"]
    assert chained["previousDigestHashValue"] == hashlib.sha256(gzip.decompress(previous["Body"].read())).hexdigest()


def test_a_write_only_trail_delivers_no_read_events(cloud: Cloud, trail: dict[str, str]) -> None:
    ct = cloud.client("cloudtrail")
    ct.put_event_selectors(TrailName="logged-trail", EventSelectors=[
        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}])
    cloud.delivery.deliver()  # what was recorded before the change
    before = set(objects(cloud, f"AWSLogs/{ACCOUNT}/CloudTrail/"))
    cloud.client("sns").create_topic(Name="written-while-write-only")
    cloud.client("sns").list_topics()
    cloud.delivery.deliver()
    added = [k for k in objects(cloud, f"AWSLogs/{ACCOUNT}/CloudTrail/") if k not in before]
    names = [r["eventName"] for key in added for r in json.loads(gzip.decompress(cloud.client("s3").get_object(
        Bucket="trail-logs", Key=key)["Body"].read()))["Records"]]
    assert "CreateTopic" in names and "ListTopics" not in names
    ct.put_event_selectors(TrailName="logged-trail", EventSelectors=[
        {"ReadWriteType": "All", "IncludeManagementEvents": True}])


def test_trail_status_reports_the_real_deliveries_and_a_stopped_trail_delivers_nothing(
        cloud: Cloud, trail: dict[str, str]) -> None:
    ct = cloud.client("cloudtrail")
    status = ct.get_trail_status(Name="logged-trail")
    assert status["IsLogging"] and status["LatestDeliveryTime"] and status["LatestDigestDeliveryTime"]
    assert "LatestDeliveryError" not in status
    ct.stop_logging(Name="logged-trail")
    before = objects(cloud, "AWSLogs/")
    cloud.client("sns").create_topic(Name="made-after-stopping")
    cloud.delivery.deliver(force_digest=True)
    assert objects(cloud, "AWSLogs/") == before
    ct.start_logging(Name="logged-trail")


def test_a_bucket_policy_taken_away_while_logging_stops_delivery_with_the_error_in_the_status(
        cloud: Cloud, trail: dict[str, str]) -> None:
    s3, ct = cloud.client("s3"), cloud.client("cloudtrail")
    policy = s3.get_bucket_policy(Bucket="trail-logs")["Policy"]
    s3.delete_bucket_policy(Bucket="trail-logs")
    try:
        before = objects(cloud, "AWSLogs/")
        cloud.client("sns").create_topic(Name="made-without-a-bucket-policy")
        cloud.delivery.deliver()
        assert objects(cloud, "AWSLogs/") == before
        assert ct.get_trail_status(Name="logged-trail")["LatestDeliveryError"] == "AccessDenied"
    finally:
        s3.put_bucket_policy(Bucket="trail-logs", Policy=policy)
    cloud.delivery.deliver()
    assert "LatestDeliveryError" not in ct.get_trail_status(Name="logged-trail")


def test_each_delivery_reads_the_calls_since_its_last_one_also_after_the_oldest_were_dropped() -> None:
    events = cloudtrail_logs.EventLog(limit=3)
    for n in range(5):
        events.add({"n": n})
    assert events.since(0) == (5, [{"n": 2}, {"n": 3}, {"n": 4}])  # 0 and 1 dropped: the log keeps 3
    assert events.since(4) == (5, [{"n": 4}])
    assert events.since(5) == (5, [])
    events.add({"n": 5})
    assert events.since(5) == (6, [{"n": 5}])


def test_a_delivery_round_that_raises_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    rounds: list[int] = []

    class Flaky(cloudtrail_logs.Delivery):
        def deliver(self, force_digest: bool = False) -> int:
            rounds.append(len(rounds))
            if len(rounds) == 1:
                raise RuntimeError("the first round fails")
            return 0

    delivery = Flaky(cloudtrail_logs.EventLog(), interval=0.01)
    delivery.start()
    deadline = time.monotonic() + 10
    while len(rounds) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    delivery.stop()
    assert len(rounds) >= 3
    assert "the first round fails" in caplog.text
    stopped = len(rounds)
    time.sleep(0.05)
    assert len(rounds) == stopped  # stop() ends the loop
