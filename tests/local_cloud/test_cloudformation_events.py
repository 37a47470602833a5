"""DescribeStackEvents answers exactly what moto's own serializer answers, each event's XML made once."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudformation.responses import CloudFormationResponse

from local_cloud import cloudformation_events

REGION = "us-east-1"
TEMPLATE = json.dumps({"Resources": {f"Topic{i}": {"Type": "AWS::SNS::Topic"} for i in range(12)}})


@pytest.fixture
def cfn() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudformation", region_name=REGION)


def raw_events(cfn: Any, stack: str) -> bytes:
    """The response body as it came over the wire, request id left out."""
    bodies: list[bytes] = []
    cfn.meta.events.register("after-call.cloudformation.DescribeStackEvents",
                             lambda http_response, **_: bodies.append(http_response.content))
    try:
        events = cfn.describe_stack_events(StackName=stack)
    finally:
        cfn.meta.events.unregister("after-call.cloudformation.DescribeStackEvents")
    request_id = events["ResponseMetadata"]["RequestId"]
    return bodies[0].replace(request_id.encode(), b"")


def test_stack_events_are_the_xml_moto_itself_serializes(cfn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cfn.create_stack(StackName="s", TemplateBody=TEMPLATE)
    cfn.update_stack(StackName="s", TemplateBody=TEMPLATE.replace("Topic0", "Renamed"))
    ours_first, ours_again = raw_events(cfn, "s"), raw_events(cfn, "s")

    monkeypatch.setattr(CloudFormationResponse, "describe_stack_events",
                        CloudFormationResponse.describe_stack_events.original)
    assert ours_first == ours_again == raw_events(cfn, "s")
    assert ours_first.count(b"<member>") > 25


def test_stack_events_show_the_events_recorded_since_and_a_changed_one_as_it_is_now(cfn: Any) -> None:
    cfn.create_stack(StackName="s", TemplateBody=TEMPLATE)
    before = cfn.describe_stack_events(StackName="s")["StackEvents"]
    cfn.update_stack(StackName="s", TemplateBody=TEMPLATE.replace("Topic0", "Renamed"))
    from moto.cloudformation.models import cloudformation_backends

    stack = cloudformation_backends["123456789012"][REGION].get_stack("s")
    stack.events[0].resource_status_reason = "changed after it was read"

    after = cfn.describe_stack_events(StackName="s")["StackEvents"]

    assert [e["EventId"] for e in after[-len(before):]] == [e["EventId"] for e in before]
    assert len(after) > len(before) and after[0]["ResourceStatus"] == "UPDATE_COMPLETE"
    assert after[-1]["ResourceStatusReason"] == "changed after it was read"


def test_an_event_is_fingerprinted_while_another_request_keeps_its_xml_on_it() -> None:
    """Two readers of the same events (``sam deploy`` and the progress view): one adds the kept XML to an event's
    attributes while the other reads them for the fingerprint (here a thread adds and removes attributes without
    a pause). A fingerprint reads a copy: no "dictionary changed size during iteration"."""
    class Event:
        def __init__(self) -> None:
            for n in range(40):
                setattr(self, f"attribute_{n}", n)

    event = Event()
    stop = threading.Event()

    def keep_and_drop() -> None:
        kept = 0
        while not stop.is_set():
            kept += 1
            setattr(event, f"kept_{kept % 1000}", "<member/>")
            if kept % 1000 == 0:
                for n in range(1000):
                    delattr(event, f"kept_{n}")

    writer = threading.Thread(target=keep_and_drop)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    writer.start()
    try:
        for _ in range(20_000):
            assert len(cloudformation_events._fingerprint(event)) >= 40
    finally:
        stop.set()
        writer.join()
        sys.setswitchinterval(interval)
