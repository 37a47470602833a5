"""Guide step 3 against moto: a Standard topic encrypted with the trail's key, only the bucket may publish."""

from __future__ import annotations

import importlib
import json
from typing import Any

import boto3
import pytest

from expel_onboarding import naming
from expel_onboarding.errors import InvalidParameter, ResourceConflict
from expel_onboarding.models import Config, TopicOutput, TrailOutput, replace
from expel_onboarding.steps import step03_sns_topic
from tests.conftest import ACCOUNT_ID, REGION
from tests.policy_audit import audit
from tests.steps.notification_path import FakeLambdaContext, create_key, load_event, make_trail
from tests.support import count_mutating_calls

TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:ExpelCloudTrailTopic"
FOREIGN = {"Sid": "AllowAlarms", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
           "Action": "SNS:Publish", "Resource": TOPIC_ARN,
           "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}}


@pytest.fixture
def trail(aws: None, config: Config) -> TrailOutput:
    return make_trail(config)


def _sns() -> Any:
    return boto3.client("sns", region_name=REGION)


def _attributes() -> dict[str, str]:
    return _sns().get_topic_attributes(TopicArn=TOPIC_ARN)["Attributes"]


def _policy() -> dict:
    return json.loads(_attributes()["Policy"])


def _tags() -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in _sns().list_tags_for_resource(ResourceArn=TOPIC_ARN)["Tags"]}


def _expected_statement(trail: TrailOutput) -> dict:
    return {
        "Sid": "expel-statement-ID",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": ["SNS:Publish"],
        "Resource": TOPIC_ARN,
        "Condition": {"ArnLike": {"aws:SourceArn": trail.bucket_arn},
                      "StringEquals": {"aws:SourceAccount": ACCOUNT_ID}},
    }


def test_new_topic_is_encrypted_with_the_trail_key_and_only_the_bucket_may_publish(
        config: Config, trail: TrailOutput) -> None:
    out = step03_sns_topic.apply(config, trail)

    assert out == TopicOutput(topic_arn=TOPIC_ARN, kms_key_arn=trail.kms_key_arn)
    assert _attributes()["KmsMasterKeyId"] == trail.kms_key_arn
    assert "FifoTopic" not in _attributes() or _attributes()["FifoTopic"] == "false"
    assert _policy() == {"Version": "2008-10-17", "Id": "expel-topic-policy-ID",
                         "Statement": [_expected_statement(trail)]}
    assert audit(_policy(), "sns") == []
    assert _tags() == {"expel-onboarding:stack": config.stack_name}


def test_second_run_makes_no_mutating_call_and_returns_the_same_output(config: Config,
                                                                      trail: TrailOutput) -> None:
    first = step03_sns_topic.apply(config, trail)
    with count_mutating_calls() as calls:
        assert step03_sns_topic.apply(config, trail) == first
    assert calls == []


def test_customers_topic_of_that_name_is_refused_and_left_unchanged(config: Config, trail: TrailOutput) -> None:
    """We never take over a topic we did not create: its policy and encryption are someone else's."""
    _sns().create_topic(Name=config.topic_name)
    before = _attributes()

    with count_mutating_calls() as calls, pytest.raises(ResourceConflict, match="Parameter TopicName: .*not created"):
        step03_sns_topic.apply(config, trail)

    assert calls == []
    assert _attributes() == before


def test_our_topic_with_foreign_statements_and_a_stale_key_keeps_the_statements(
        config: Config, trail: TrailOutput) -> None:
    step03_sns_topic.apply(config, trail)
    policy = _policy()
    policy["Statement"].insert(0, FOREIGN)
    _sns().set_topic_attributes(TopicArn=TOPIC_ARN, AttributeName="Policy", AttributeValue=json.dumps(policy))
    _sns().set_topic_attributes(TopicArn=TOPIC_ARN, AttributeName="KmsMasterKeyId", AttributeValue="alias/aws/sns")

    with count_mutating_calls() as calls:
        step03_sns_topic.apply(config, trail)

    assert calls == ["sns.SetTopicAttributes"]
    assert _attributes()["KmsMasterKeyId"] == trail.kms_key_arn
    assert _policy()["Statement"] == [FOREIGN, _expected_statement(trail)]


def test_topic_already_naming_the_key_by_alias_is_left_alone(config: Config, trail: TrailOutput) -> None:
    step03_sns_topic.apply(config, trail)
    _sns().set_topic_attributes(TopicArn=TOPIC_ARN, AttributeName="KmsMasterKeyId",
                                AttributeValue=config.kms_alias)
    with count_mutating_calls() as calls:
        step03_sns_topic.apply(config, trail)
    assert calls == []


def test_customers_topic_encrypted_with_another_key_is_a_conflict_and_unchanged(
        config: Config, trail: TrailOutput) -> None:
    other_key = create_key(config, tags={})
    _sns().create_topic(Name=config.topic_name, Attributes={"KmsMasterKeyId": other_key})
    before = _attributes()

    with count_mutating_calls() as calls, pytest.raises(ResourceConflict, match="TopicName"):
        step03_sns_topic.apply(config, trail)

    assert calls == []
    assert _attributes() == before


def test_topic_of_another_onboarding_stack_is_a_conflict(config: Config, trail: TrailOutput) -> None:
    _sns().create_topic(Name=config.topic_name, Tags=[{"Key": "expel-onboarding:stack", "Value": "other"}])
    with count_mutating_calls() as calls, pytest.raises(ResourceConflict, match="other"):
        step03_sns_topic.apply(config, trail)
    assert calls == []


def test_fifo_topic_name_is_refused_before_any_call(config: Config, trail: TrailOutput) -> None:
    with count_mutating_calls() as calls, pytest.raises(InvalidParameter, match="TopicName"):
        step03_sns_topic.apply(replace(config, topic_name="expel.fifo"), trail)
    assert calls == []


def test_remove_deletes_our_topic_and_is_then_done(config: Config, trail: TrailOutput) -> None:
    step03_sns_topic.apply(config, trail)
    assert step03_sns_topic.remove(config, TopicOutput(topic_arn=TOPIC_ARN)) is True
    assert TOPIC_ARN not in [t["TopicArn"] for t in _sns().list_topics()["Topics"]]
    with count_mutating_calls() as calls:
        assert step03_sns_topic.remove(config, TopicOutput(topic_arn=TOPIC_ARN)) is False
    assert calls == []


def test_remove_leaves_a_customers_topic_untouched_even_with_the_guides_sid(config: Config,
                                                                          trail: TrailOutput) -> None:
    """A person who followed the guide by hand pasted its Sid: teardown must not take it away."""
    _sns().create_topic(Name=config.topic_name)
    _sns().set_topic_attributes(TopicArn=TOPIC_ARN, AttributeName="Policy",
                                AttributeValue=json.dumps({"Version": "2008-10-17",
                                                           "Statement": [_expected_statement(trail)]}))
    before = _attributes()

    with count_mutating_calls() as calls:
        assert step03_sns_topic.remove(config, TopicOutput(topic_arn=TOPIC_ARN)) is False

    assert calls == []
    assert _attributes() == before


def test_handler_runs_the_sample_event(aws: None) -> None:
    event = load_event("step03_sns_topic")
    config = Config.from_state(event)
    trail = make_trail(config)
    assert event["Trail"]["BucketArn"] == trail.bucket_arn
    event["Trail"]["KmsKeyArn"] = trail.kms_key_arn  # moto's key id is random

    app = importlib.import_module("functions.step03_sns_topic.app")
    result = app.lambda_handler(event, FakeLambdaContext("step03_sns_topic"))

    topic_arn = naming.topic_arn("aws", REGION, ACCOUNT_ID, config.topic_name)
    assert result == {"TopicArn": topic_arn, "KmsKeyArn": trail.kms_key_arn, "Customers": False}
    assert _sns().get_topic_attributes(TopicArn=topic_arn)["Attributes"]["KmsMasterKeyId"] == trail.kms_key_arn
