"""SendMessage in the local cloud's SQS: what the queue keeps, without counting every message on each send."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.conftest import REGION


def test_a_send_to_a_standard_queue_counts_no_messages_yet_they_are_counted(aws: None,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.sqs.models import Queue

    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="feed")["QueueUrl"]
    counted: list[Any] = []
    count = Queue.approximate_number_of_messages
    monkeypatch.setattr(Queue, "approximate_number_of_messages",
                        property(lambda queue: counted.append(queue) or count.fget(queue)))
    sqs.send_message(QueueUrl=url, MessageBody="one")
    sqs.send_message(QueueUrl=url, MessageBody="one")
    assert counted == []
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "2"
    assert "ContentBasedDeduplication" not in attributes


def test_a_fifo_queue_with_content_based_deduplication_still_drops_the_same_body(aws: None) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="feed.fifo", Attributes={"FifoQueue": "true",
                                                              "ContentBasedDeduplication": "true"})["QueueUrl"]
    for body in ("one", "one", "two"):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ContentBasedDeduplication"] == "true"
    assert attributes["ApproximateNumberOfMessages"] == "2"
