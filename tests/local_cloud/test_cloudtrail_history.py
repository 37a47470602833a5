"""CloudTrail's Event history: LookupEvents answers from every management call of the account and Region,
with no trail at all, newest first, one lookup attribute, pages of at most 50, and AWS's refusals.

An in-process moto server behind the recorder for what a client sees; ``lookup`` directly for what
needs chosen times (the 90 days, StartTime and EndTime) or another account's events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_cloud import cloudtrail_history, cloudtrail_logs
from local_cloud.server import MotoServer

ACCOUNT = "123456789012"
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


class Cloud:
    def __init__(self, url: str, events: cloudtrail_logs.EventLog) -> None:
        self.url, self.events = url, events

    def client(self, service: str, region: str = "us-east-1", config: Config | None = None) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=region, aws_access_key_id="history-key",
                            aws_secret_access_key="testing", config=config)


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    events = cloudtrail_logs.EventLog()
    cloudtrail_history.install(events)
    server = MotoServer(0, [lambda app: cloudtrail_logs.Recorder(app, events)])
    server.start()
    try:
        yield Cloud(f"http://127.0.0.1:{server.port}", events)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def a_second_between_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rate limit's clock moves a second at each lookup: these tests are about what a lookup answers, and
    would otherwise wait out the SDK's backoff after every second lookup (the limit has its own test)."""
    ticks = iter(range(10**9))
    monkeypatch.setattr(cloudtrail_history, "_limit", cloudtrail_history.RateLimit(clock=lambda: float(next(ticks))))


def lookup_all(client: Any, **query: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("lookup_events").paginate(**query):
        found.extend(page["Events"])
    return found


def test_the_history_holds_every_management_call_newest_first_with_no_trail_made(cloud: Cloud) -> None:
    """No trail is made here (moto's backends are the process's: another module's trail may exist)."""
    sns, sqs = cloud.client("sns"), cloud.client("sqs")
    topic = sns.create_topic(Name="history-topic")["TopicArn"]
    queue = sqs.create_queue(QueueName="history-queue")["QueueUrl"]
    sqs.delete_queue(QueueUrl=queue)
    sns.delete_topic(TopicArn=topic)

    events = cloud.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "ReadOnly", "AttributeValue": "false"}])["Events"]
    ours = [e for e in events if "history-" in e["CloudTrailEvent"]]
    assert [e["EventName"] for e in ours] == ["DeleteTopic", "DeleteQueue", "CreateQueue", "CreateTopic"]
    newest = ours[0]
    assert newest["EventSource"] == "sns.amazonaws.com" and newest["ReadOnly"] == "false"
    assert newest["Username"] == "root" and newest["AccessKeyId"] == "history-key"
    assert newest["Resources"] == []
    record = json.loads(newest["CloudTrailEvent"])
    assert record["eventID"] == newest["EventId"] and record["requestParameters"] == {"TopicArn": topic}
    assert newest["EventTime"] == datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_a_region_sees_only_its_own_events_and_data_events_are_not_there(cloud: Cloud) -> None:
    cloud.client("kms", "eu-west-3").list_keys()
    cloud.client("s3").create_bucket(Bucket="history-bucket")
    cloud.client("s3").put_object(Bucket="history-bucket", Key="object", Body=b"a data event")

    paris = lookup_all(cloud.client("cloudtrail", "eu-west-3"))
    assert {e["EventName"] for e in paris} == {"ListKeys"}
    virginia = {e["EventName"] for e in lookup_all(cloud.client("cloudtrail"))}
    assert "CreateBucket" in virginia and "ListKeys" not in virginia and "PutObject" not in virginia


def test_one_attribute_selects_exactly_and_the_lookups_themselves_are_read_events(cloud: Cloud) -> None:
    cloud.client("sns").create_topic(Name="history-selected")
    ct = cloud.client("cloudtrail")
    by_name = lookup_all(ct, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateTopic"}])
    assert by_name and {e["EventName"] for e in by_name} == {"CreateTopic"}
    assert lookup_all(ct, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "createtopic"}]) == []
    by_source = lookup_all(ct, LookupAttributes=[{"AttributeKey": "EventSource",
                                                  "AttributeValue": "sns.amazonaws.com"}])
    assert {e["EventSource"] for e in by_source} == {"sns.amazonaws.com"}
    reads = lookup_all(ct, LookupAttributes=[{"AttributeKey": "ReadOnly", "AttributeValue": "true"}])
    assert "LookupEvents" in {e["EventName"] for e in reads} and {e["ReadOnly"] for e in reads} == {"true"}
    one = by_name[0]
    assert [e["EventId"] for e in lookup_all(ct, LookupAttributes=[
        {"AttributeKey": "EventId", "AttributeValue": one["EventId"]}])] == [one["EventId"]]
    assert lookup_all(ct, LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "root"}])
    assert lookup_all(ct, LookupAttributes=[{"AttributeKey": "AccessKeyId", "AttributeValue": "another-key"}]) == []


def test_pages_of_max_results_follow_each_other_and_a_token_serves_only_its_own_query(cloud: Cloud) -> None:
    sqs = cloud.client("sqs")
    for number in range(5):
        sqs.create_queue(QueueName=f"history-paged-{number}")
    ct = cloud.client("cloudtrail")
    query = {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "CreateQueue"}]}
    whole = [e["EventId"] for e in ct.lookup_events(**query)["Events"]]
    first = ct.lookup_events(**query, MaxResults=2)
    assert len(first["Events"]) == 2 and first["NextToken"]
    paged = [e["EventId"] for e in lookup_all(ct, **query, PaginationConfig={"PageSize": 2})]
    assert paged == whole and len(whole) >= 5
    assert "NextToken" not in ct.lookup_events(**query, MaxResults=50)

    other_query = {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "DeleteQueue"}]}
    with pytest.raises(ClientError) as other:
        ct.lookup_events(**other_query, NextToken=first["NextToken"])
    assert other.value.response["Error"]["Code"] == "InvalidNextTokenException"
    with pytest.raises(ClientError) as garbage:
        ct.lookup_events(**query, NextToken="not-a-token")
    assert garbage.value.response["Error"]["Code"] == "InvalidNextTokenException"


@pytest.mark.parametrize(("query", "code"), [
    ({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "CreateQueue"},
                           {"AttributeKey": "ReadOnly", "AttributeValue": "false"}]},
     "InvalidLookupAttributesException"),
    ({"LookupAttributes": [{"AttributeKey": "Region", "AttributeValue": "us-east-1"}]},
     "InvalidLookupAttributesException"),
    ({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "x" * 2001}]},
     "InvalidLookupAttributesException"),
    ({"EventCategory": "insight", "LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "root"}]},
     "InvalidLookupAttributesException"),
    ({"LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": "history-topic"}]},
     "UnsupportedOperationException"),
    ({"MaxResults": 51}, "InvalidMaxResultsException"),
    ({"StartTime": datetime(2026, 1, 2, tzinfo=UTC), "EndTime": datetime(2026, 1, 1, tzinfo=UTC)},
     "InvalidTimeRangeException"),
    ({"EventCategory": "management"}, "InvalidEventCategoryException"),
])
def test_aws_refuses_what_lookup_events_does_not_take(cloud: Cloud, query: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as refused:
        cloud.client("cloudtrail").lookup_events(**query)
    assert refused.value.response["Error"]["Code"] == code
    assert refused.value.response["Error"]["Message"]


def test_insight_events_are_looked_up_apart_and_there_are_none(cloud: Cloud) -> None:
    assert cloud.client("cloudtrail").lookup_events(EventCategory="insight")["Events"] == []


def test_more_than_two_lookups_a_second_are_throttled(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    moment = [100.0]
    monkeypatch.setattr(cloudtrail_history, "_limit", cloudtrail_history.RateLimit(clock=lambda: moment[0]))
    ct = cloud.client("cloudtrail", config=NO_RETRIES)
    ct.lookup_events(MaxResults=1)
    ct.lookup_events(MaxResults=1)
    with pytest.raises(ClientError) as throttled:
        ct.lookup_events(MaxResults=1)
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    cloud.client("cloudtrail", "eu-west-3", config=NO_RETRIES).lookup_events(MaxResults=1)  # per Region
    moment[0] += 1.0
    ct.lookup_events(MaxResults=1)  # a second later


# ------------------------------------------------------------------------------------ chosen times
def _record(name: str, at: datetime, account: str = ACCOUNT, region: str = "us-east-1") -> dict[str, Any]:
    return {"eventID": f"id-{name}", "eventName": name, "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": "sqs.amazonaws.com", "awsRegion": region, "recipientAccountId": account,
            "readOnly": False, "userIdentity": {"type": "AssumedRole", "accessKeyId": "ASIA1",
                                                "arn": f"arn:aws:sts::{account}:assumed-role/r/my-function"}}


NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def _names(answer: dict[str, Any]) -> list[str]:
    return [e["EventName"] for e in answer["Events"]]


def test_start_and_end_time_bound_the_events_inclusively_and_90_days_is_all_there_is() -> None:
    history = list(enumerate([
        _record("Old", datetime(2026, 3, 3, 11, 59, 59, tzinfo=UTC)),  # 90 days and a second ago
        _record("First", datetime(2026, 6, 1, 11, 0, 0, tzinfo=UTC)),
        _record("Second", datetime(2026, 6, 1, 11, 30, 0, tzinfo=UTC)),
        _record("Third", datetime(2026, 6, 1, 11, 59, 0, tzinfo=UTC)),
    ]))
    now = NOW.timestamp()

    def look(**request: Any) -> list[str]:
        return _names(cloudtrail_history.lookup(history, ACCOUNT, "us-east-1", request, now))

    assert look() == ["Third", "Second", "First"]
    assert look(StartTime=datetime(2026, 6, 1, 11, 0, tzinfo=UTC).timestamp(),
                EndTime=datetime(2026, 6, 1, 11, 30, tzinfo=UTC).timestamp()) == ["Second", "First"]
    assert look(StartTime=datetime(2026, 6, 1, 11, 0, 1, tzinfo=UTC).timestamp()) == ["Third", "Second"]
    assert look(EndTime=datetime(2026, 6, 1, 10, 0, tzinfo=UTC).timestamp()) == []


def test_events_of_another_account_are_not_in_the_history_and_a_role_session_is_the_username() -> None:
    history = list(enumerate([_record("Mine", NOW), _record("Theirs", NOW, account="210987654321")]))
    answer = cloudtrail_history.lookup(history, ACCOUNT, "us-east-1", {}, NOW.timestamp())
    assert _names(answer) == ["Mine"]
    assert answer["Events"][0]["Username"] == "my-function" and answer["Events"][0]["AccessKeyId"] == "ASIA1"
    by_session = cloudtrail_history.lookup(history, ACCOUNT, "us-east-1", {"LookupAttributes": [
        {"AttributeKey": "Username", "AttributeValue": "my-function"}]}, NOW.timestamp())
    assert _names(by_session) == ["Mine"]


def test_events_recorded_in_the_same_second_come_newest_recorded_first_across_pages() -> None:
    history = list(enumerate(_record(f"Call{n}", NOW) for n in range(7)))
    seen: list[str] = []
    request: dict[str, Any] = {"MaxResults": 3}
    while True:
        answer = cloudtrail_history.lookup(history, ACCOUNT, "us-east-1", request, NOW.timestamp())
        seen.extend(_names(answer))
        if "NextToken" not in answer:
            break
        request = {"MaxResults": 3, "NextToken": answer["NextToken"]}
    assert seen == [f"Call{n}" for n in reversed(range(7))]
