"""S3 refuses the notification configurations S3 refuses, with S3's error, stores nothing then, and sends
events shaped as S3's (the local cloud's rules, installed in the in-process moto too)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from local_cloud import s3_notifications
from tests.conftest import ACCOUNT_ID, REGION
from tests.support import refused

BUCKET = "notified-bucket"


def _clients() -> tuple[Any, Any, Any]:
    return (boto3.client("s3", region_name=REGION), boto3.client("sns", region_name=REGION),
            boto3.client("sqs", region_name=REGION))


def _topic(sns: Any, name: str) -> str:
    return str(sns.create_topic(Name=name)["TopicArn"])


def _entry(topic_arn: str, events: list[str], prefix: str = "", suffix: str = "", entry_id: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {"TopicArn": topic_arn, "Events": events}
    rules = [{"Name": n, "Value": v} for n, v in (("prefix", prefix), ("suffix", suffix)) if v]
    if rules:
        entry["Filter"] = {"Key": {"FilterRules": rules}}
    if entry_id:
        entry["Id"] = entry_id
    return entry


def _put(s3: Any, *entries: dict[str, Any]) -> None:
    s3.put_bucket_notification_configuration(Bucket=BUCKET,
                                             NotificationConfiguration={"TopicConfigurations": list(entries)})


@pytest.mark.parametrize(("first", "second", "message"), [
    ((["s3:ObjectCreated:*"], "", ""), (["s3:ObjectCreated:*"], "", ""), s3_notifications.OVERLAP),
    ((["s3:ObjectCreated:*"], "", ""), (["s3:ObjectCreated:Put"], "", ""), s3_notifications.OVERLAP),
    ((["s3:ObjectCreated:*"], "AWSLogs/", ""), (["s3:ObjectCreated:Put"], "", ".gz"), s3_notifications.AMBIGUOUS),
    ((["s3:ObjectCreated:*"], "AWSLogs/", ""), (["s3:ObjectCreated:*"], "AWSLogs/1234/", ""),
     s3_notifications.AMBIGUOUS),
])
def test_overlapping_configurations_are_refused_with_s3s_message_and_nothing_is_stored(
        aws: None, first: tuple[list[str], str, str], second: tuple[list[str], str, str], message: str) -> None:
    s3, sns, _ = _clients()
    s3.create_bucket(Bucket=BUCKET)
    one, two = _topic(sns, "one"), _topic(sns, "two")
    error = refused(_put, s3, _entry(one, *first), _entry(two, *second)).response["Error"]
    assert error["Code"] == "InvalidArgument" and error["Message"] == message
    assert error["ArgumentName"] == "Event"
    assert "TopicConfigurations" not in s3.get_bucket_notification_configuration(Bucket=BUCKET)


@pytest.mark.parametrize(("first", "second"), [
    ((["s3:ObjectCreated:*"], "", ""), (["s3:ObjectRemoved:*"], "", "")),
    ((["s3:ObjectCreated:*"], "AWSLogs/", ""), (["s3:ObjectCreated:*"], "images/", "")),
    ((["s3:ObjectCreated:*"], "", ".gz"), (["s3:ObjectCreated:*"], "", ".jpg")),
])
def test_disjoint_configurations_are_accepted(aws: None, first: tuple[list[str], str, str],
                                              second: tuple[list[str], str, str]) -> None:
    s3, sns, _ = _clients()
    s3.create_bucket(Bucket=BUCKET)
    _put(s3, _entry(_topic(sns, "one"), *first), _entry(_topic(sns, "two"), *second))
    assert len(s3.get_bucket_notification_configuration(Bucket=BUCKET)["TopicConfigurations"]) == 2


def test_a_topic_that_does_not_exist_is_unable_to_validate(aws: None) -> None:
    s3, _, _ = _clients()
    s3.create_bucket(Bucket=BUCKET)
    missing = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:no-such-topic"
    error = refused(_put, s3, _entry(missing, ["s3:ObjectCreated:*"])).response["Error"]
    assert error == {"Code": "InvalidArgument", "Message": s3_notifications.UNABLE_TO_VALIDATE,
                     "ArgumentName": missing, "ArgumentValue": "The destination topic does not exist"}
    assert "TopicConfigurations" not in s3.get_bucket_notification_configuration(Bucket=BUCKET)


def test_a_destination_in_another_region_is_refused(aws: None) -> None:
    s3, _, _ = _clients()
    s3.create_bucket(Bucket=BUCKET)
    elsewhere = boto3.client("sns", region_name="eu-west-1").create_topic(Name="far")["TopicArn"]
    error = refused(_put, s3, _entry(elsewhere, ["s3:ObjectCreated:*"])).response["Error"]
    assert error["Message"] == s3_notifications.WRONG_REGION


def test_events_reach_a_raw_sqs_subscriber_shaped_as_s3_sends_them(aws: None) -> None:
    s3, sns, sqs = _clients()
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    topic = _topic(sns, "events")
    queue = sqs.create_queue(QueueName="events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    _put(s3, _entry(topic, ["s3:ObjectCreated:*"], entry_id="all-new-objects"))
    put = s3.put_object(Bucket=BUCKET, Key="AWSLogs/123456789012/CloudTrail/a b.json.gz", Body=b"{}")

    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]]
    test_events = [b for b in bodies if b.get("Event") == "s3:TestEvent"]
    assert test_events and test_events[0]["Bucket"] == BUCKET and test_events[0]["Service"] == "Amazon S3"
    record = next(b for b in bodies if "Records" in b)["Records"][0]
    assert record["eventVersion"] == "2.1" and record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put" and record["awsRegion"] == REGION
    assert record["s3"]["configurationId"] == "all-new-objects"
    assert record["s3"]["bucket"]["name"] == BUCKET and record["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{BUCKET}"
    assert record["s3"]["object"]["key"] == "AWSLogs/123456789012/CloudTrail/a+b.json.gz"  # '/' kept, ' ' as '+'
    assert record["s3"]["object"]["versionId"] == put["VersionId"] and record["s3"]["object"]["sequencer"]
    assert {"userIdentity", "requestParameters", "responseElements"} <= set(record)
