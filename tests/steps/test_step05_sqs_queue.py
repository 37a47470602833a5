"""Guide step 5 against moto: a Standard queue, 7-day retention, SSE-KMS with the trail's key,
only the topic may send."""

from __future__ import annotations

import importlib
import json
from typing import Any

import boto3
import pytest

from expel_onboarding.errors import InvalidParameter, ResourceConflict
from expel_onboarding.models import Config, QueueOutput, TopicOutput, TrailOutput, replace
from expel_onboarding.steps import step05_sqs_queue
from tests.conftest import ACCOUNT_ID, REGION
from tests.policy_audit import audit
from tests.steps.notification_path import FakeLambdaContext, create_key, load_event, make_trail
from tests.support import count_mutating_calls

TOPIC = TopicOutput(topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:ExpelCloudTrailTopic")
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:ExpelCloudTrailQueue"
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/ExpelCloudTrailQueue"
OURS = {"Sid": "Sid1572965666162", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "SQS:SendMessage", "Resource": QUEUE_ARN,
        "Condition": {"ArnEquals": {"aws:SourceArn": TOPIC.topic_arn}}}
FOREIGN = {"Sid": "AllowAuditReader", "Effect": "Allow",
           "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:role/Auditor"},
           "Action": "SQS:GetQueueAttributes", "Resource": QUEUE_ARN}


@pytest.fixture
def trail(aws: None, config: Config) -> TrailOutput:
    return make_trail(config)


def _sqs() -> Any:
    return boto3.client("sqs", region_name=REGION)


def _attributes(url: str = QUEUE_URL) -> dict[str, str]:
    return _sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def _tags(url: str = QUEUE_URL) -> dict[str, str]:
    return _sqs().list_queue_tags(QueueUrl=url).get("Tags", {})


def test_new_queue_has_every_setting_the_guide_names(config: Config, trail: TrailOutput) -> None:
    out = step05_sqs_queue.apply(config, trail, TOPIC)

    assert out == QueueOutput(queue_arn=QUEUE_ARN, queue_url=QUEUE_URL)
    attributes = _attributes(out.queue_url)
    assert attributes["QueueArn"] == QUEUE_ARN
    assert "FifoQueue" not in attributes  # Standard
    assert attributes["MessageRetentionPeriod"] == "604800"  # 7 days
    assert attributes["KmsMasterKeyId"] == trail.kms_key_arn  # SSE-KMS with the trail's key
    assert attributes["SqsManagedSseEnabled"] == "false"
    assert attributes["KmsDataKeyReusePeriodSeconds"] == "300"  # the default, as the guide leaves it
    policy = json.loads(attributes["Policy"])
    assert policy == {"Version": "2012-10-17", "Id": "SQSDefaultPolicy", "Statement": [OURS]}
    assert audit(policy, "sqs") == []
    assert _tags(out.queue_url) == {"expel-onboarding:stack": config.stack_name}


def test_second_run_makes_no_mutating_call_and_returns_the_same_output(config: Config,
                                                                      trail: TrailOutput) -> None:
    first = step05_sqs_queue.apply(config, trail, TOPIC)
    with count_mutating_calls() as calls:
        assert step05_sqs_queue.apply(config, trail, TOPIC) == first
    assert calls == []


def test_customers_queue_of_that_name_is_refused_and_left_unchanged(config: Config, trail: TrailOutput) -> None:
    """We never take over a queue we did not create: whoever reads it today relies on its settings."""
    _sqs().create_queue(QueueName=config.queue_name, Attributes={
        "Policy": json.dumps({"Version": "2012-10-17", "Id": "theirs", "Statement": [FOREIGN]})})
    before = _attributes()

    with count_mutating_calls() as calls, pytest.raises(ResourceConflict, match="Parameter QueueName: .*not created"):
        step05_sqs_queue.apply(config, trail, TOPIC)

    assert calls == []
    assert _attributes() == before


def test_only_what_differs_is_set_on_our_queue(config: Config, trail: TrailOutput,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    step05_sqs_queue.apply(config, trail, TOPIC)
    policy = _attributes()["Policy"]
    # (moto wiped the policy on such a call; tests/conftest.py makes it keep it, as SQS does.)
    _sqs().set_queue_attributes(QueueUrl=QUEUE_URL, Attributes={"MessageRetentionPeriod": "345600"})
    sent: list[dict] = []
    original = step05_sqs_queue.sqs.set_queue_attributes

    def record(url: str, attributes: dict[str, str], region: str) -> None:
        sent.append(attributes)
        original(url, attributes, region)

    monkeypatch.setattr(step05_sqs_queue.sqs, "set_queue_attributes", record)
    step05_sqs_queue.apply(config, trail, TOPIC)
    assert sent == [{"MessageRetentionPeriod": "604800"}]
    assert _attributes()["Policy"] == policy


def test_customers_queue_encrypted_with_another_key_is_a_conflict_and_unchanged(
        config: Config, trail: TrailOutput) -> None:
    other_key = create_key(config, tags={})
    _sqs().create_queue(QueueName=config.queue_name, Attributes={"KmsMasterKeyId": other_key})
    before = _attributes()

    with count_mutating_calls() as calls, pytest.raises(ResourceConflict, match="QueueName"):
        step05_sqs_queue.apply(config, trail, TOPIC)

    assert calls == []
    assert _attributes() == before


def test_queue_of_another_onboarding_stack_is_a_conflict(config: Config, trail: TrailOutput) -> None:
    _sqs().create_queue(QueueName=config.queue_name, tags={"expel-onboarding:stack": "other"})
    with count_mutating_calls() as calls, pytest.raises(ResourceConflict, match="other"):
        step05_sqs_queue.apply(config, trail, TOPIC)
    assert calls == []


def test_fifo_queue_name_is_refused_before_any_call(config: Config, trail: TrailOutput) -> None:
    with count_mutating_calls() as calls, pytest.raises(InvalidParameter, match="QueueName"):
        step05_sqs_queue.apply(replace(config, queue_name="expel.fifo"), trail, TOPIC)
    assert calls == []


def test_remove_deletes_our_queue_and_is_then_done(config: Config, trail: TrailOutput) -> None:
    step05_sqs_queue.apply(config, trail, TOPIC)
    assert step05_sqs_queue.remove(config) is True
    assert _sqs().list_queues().get("QueueUrls", []) == []
    with count_mutating_calls() as calls:
        assert step05_sqs_queue.remove(config) is False
    assert calls == []


def test_remove_leaves_a_customers_queue_untouched(config: Config, trail: TrailOutput) -> None:
    _sqs().create_queue(QueueName=config.queue_name, Attributes={
        "Policy": json.dumps({"Version": "2012-10-17", "Statement": [FOREIGN, OURS]})})
    before = _attributes()

    with count_mutating_calls() as calls:
        assert step05_sqs_queue.remove(config) is False

    assert calls == []
    assert _attributes() == before


def test_handler_runs_the_sample_event(aws: None) -> None:
    event = load_event("step05_sqs_queue")
    config = Config.from_state(event)
    trail = make_trail(config)
    event["Trail"]["KmsKeyArn"] = trail.kms_key_arn  # moto's key id is random

    app = importlib.import_module("functions.step05_sqs_queue.app")
    result = app.lambda_handler(event, FakeLambdaContext("step05_sqs_queue"))

    assert result == {"QueueArn": QUEUE_ARN, "QueueUrl": QUEUE_URL}
    assert _attributes()["KmsMasterKeyId"] == trail.kms_key_arn
