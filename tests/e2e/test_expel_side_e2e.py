"""Expel's side of a deployed onboarding, as Expel's service does it: assume the role as
arn:aws:iam::012205512454:user/ExpelCloudService with the Workbench GUID as external id, take the queue's S3
event for a log file the trail delivered, read that file through S3 (decrypted through KMS as the role), and
be refused everything else. Runs against the shared onboarded stack."""

from __future__ import annotations

import gzip
import json
import time
import urllib.request
from typing import Any

import boto3
import pytest

from local_cloud.cli import DEMO_WORKBENCH_GUID
from local_cloud.expel_account import EXPEL_PRINCIPAL_ARN
from tests.e2e.test_onboarding_e2e import REGION, client
from tests.local_cloud.harness import ServedCloud
from tests.support import refusal

pytestmark = pytest.mark.e2e
ACCOUNT = "123456789012"


def expel_user(cloud: ServedCloud) -> dict[str, str]:
    """Expel's service user's access key, issued by the local cloud (``local_cloud.expel_account``)."""
    with urllib.request.urlopen(f"{cloud.workbench_url}/_emulator/expel-principal", timeout=10) as answer:  # noqa: S310
        return dict(json.loads(answer.read()))


def as_keys(cloud: ServedCloud, service: str, keys: dict[str, str]) -> Any:
    return boto3.client(service, endpoint_url=cloud.url, region_name=REGION, **keys)


@pytest.fixture(scope="module")
def expel(local_cloud: ServedCloud, onboarded: dict[str, str]) -> dict[str, str]:
    """A session of the onboarding's role, assumed as Expel assumes it."""
    user = expel_user(local_cloud)
    sts = as_keys(local_cloud, "sts", {"aws_access_key_id": user["AccessKeyId"],
                                       "aws_secret_access_key": user["SecretAccessKey"]})
    assert sts.get_caller_identity()["Arn"] == EXPEL_PRINCIPAL_ARN
    found = sts.assume_role(RoleArn=onboarded["IamRoleArn"], RoleSessionName="expel-cloud-service",
                            ExternalId=DEMO_WORKBENCH_GUID)
    credentials = found["Credentials"]
    return {"aws_access_key_id": credentials["AccessKeyId"], "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"]}


@pytest.mark.parametrize("external_id", [None, "00000000-0000-0000-0000-000000000000"], ids=["missing", "another"])
def test_expel_is_refused_the_role_without_the_workbench_guid_as_external_id(
        local_cloud: ServedCloud, onboarded: dict[str, str], external_id: str | None) -> None:
    user = expel_user(local_cloud)
    sts = as_keys(local_cloud, "sts", {"aws_access_key_id": user["AccessKeyId"],
                                       "aws_secret_access_key": user["SecretAccessKey"]})
    params = {"RoleArn": onboarded["IamRoleArn"], "RoleSessionName": "expel-cloud-service"}
    error = refusal(sts.assume_role, **params, **({"ExternalId": external_id} if external_id else {}))
    assert error.code == "AccessDenied"
    assert error.message.startswith(f"User: {EXPEL_PRINCIPAL_ARN} is not authorized to perform: sts:AssumeRole "
                                       f"on resource: {onboarded['IamRoleArn']}")


def test_expel_reads_the_log_file_whose_event_the_trail_delivery_put_in_the_queue(
        local_cloud: ServedCloud, onboarded: dict[str, str], expel: dict[str, str]) -> None:
    sqs, s3 = as_keys(local_cloud, "sqs", expel), as_keys(local_cloud, "s3", expel)
    prefix = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/"
    event: dict[str, Any] | None = None
    deadline = time.monotonic() + 60
    while event is None and time.monotonic() < deadline:
        # VisibilityTimeout 0: every other reader of the shared stack's queue still finds the messages.
        for message in sqs.receive_message(QueueUrl=onboarded["SqsQueueUrl"], MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1, VisibilityTimeout=0).get("Messages", []):
            body = json.loads(message["Body"])  # raw message delivery: the S3 event itself, no SNS envelope
            event = next((r for r in body.get("Records", []) if r["eventName"].startswith("ObjectCreated:")
                          and r["s3"]["object"]["key"].startswith(prefix)), event)
    assert event is not None, "no S3 event of a delivered CloudTrail log file reached the queue within a minute"
    assert event["s3"]["bucket"]["name"] == onboarded["S3BucketName"]
    stored = s3.get_object(Bucket=onboarded["S3BucketName"], Key=event["s3"]["object"]["key"])
    assert stored["ServerSideEncryption"] == "aws:kms" and stored["SSEKMSKeyId"] == onboarded["KmsKeyArn"]
    records = json.loads(gzip.decompress(stored["Body"].read()))["Records"]
    assert records and all(r["recipientAccountId"] == ACCOUNT and r["eventVersion"] for r in records)


def test_expel_may_not_write_the_bucket_send_to_the_queue_or_decrypt_directly(
        local_cloud: ServedCloud, onboarded: dict[str, str], expel: dict[str, str]) -> None:
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{onboarded['IamRoleArn'].rsplit('/', 1)[1]}/expel-cloud-service"
    bucket, queue_url = onboarded["S3BucketName"], onboarded["SqsQueueUrl"]
    put = refusal(as_keys(local_cloud, "s3", expel).put_object, Bucket=bucket, Key="AWSLogs/forged.json.gz", Body=b"x")
    assert put.code == "AccessDenied"
    assert put.message.startswith(f"User: {session} is not authorized to perform: s3:PutObject on resource: "
                                     f"arn:aws:s3:::{bucket}/AWSLogs/forged.json.gz")
    send = refusal(as_keys(local_cloud, "sqs", expel).send_message, QueueUrl=queue_url, MessageBody="forged")
    assert send.code == "AccessDenied"
    assert f"is not authorized to perform: sqs:SendMessage on resource: {onboarded['SqsQueueArn']}" in send.message
    # A data key of the onboarding's key, decrypted by Expel directly rather than through S3 or SQS: the role
    # may use the key only via those services (kms:ViaService).
    ciphertext = client(local_cloud, "kms").encrypt(KeyId=onboarded["KmsKeyArn"], Plaintext=b"a data key")
    decrypt = refusal(as_keys(local_cloud, "kms", expel).decrypt, CiphertextBlob=ciphertext["CiphertextBlob"],
                       KeyId=onboarded["KmsKeyArn"])
    assert decrypt.code == "AccessDeniedException"
    assert decrypt.message.startswith(f"User: {session} is not authorized to perform: kms:Decrypt on resource: "
                                         f"{onboarded['KmsKeyArn']}")
