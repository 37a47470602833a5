"""Guide step 4 against moto: the guide's two statements merged into the key policy, nothing else touched."""

from __future__ import annotations

import importlib
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from expel_onboarding.aws import clients
from expel_onboarding.errors import OnboardingError, TransientError
from expel_onboarding.models import Config, KeyPolicyOutput, TopicOutput, TrailOutput, replace
from expel_onboarding.policies.key_policy import cloudtrail_key_policy
from expel_onboarding.steps import step04_key_policy
from tests.conftest import ACCOUNT_ID, REGION
from tests.policy_audit import audit
from tests.steps.notification_path import FakeLambdaContext, load_event, make_trail
from tests.support import count_mutating_calls

TOPIC = TopicOutput(topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:ExpelCloudTrailTopic")
SIDS = ["Allow cloudtrail bucket to encrypt/decrypt", "Allow SNS to encrypt/decrypt"]
SECURITY_TEAM = {"Sid": "Allow the security team to decrypt", "Effect": "Allow",
                 "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:role/SecurityAudit"},
                 "Action": "kms:Decrypt", "Resource": "*"}


@pytest.fixture
def trail(aws: None, config: Config) -> TrailOutput:
    return make_trail(config)


def _kms() -> Any:
    return boto3.client("kms", region_name=REGION)


def _policy(trail: TrailOutput) -> dict:
    return json.loads(_kms().get_key_policy(KeyId=trail.kms_key_arn, PolicyName="default")["Policy"])


def _put(trail: TrailOutput, policy: dict) -> None:
    _kms().put_key_policy(KeyId=trail.kms_key_arn, PolicyName="default", Policy=json.dumps(policy))


def _guide_statements(trail: TrailOutput, topic_arn: str = TOPIC.topic_arn) -> list[dict]:
    return [
        {"Sid": SIDS[0], "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
         "Condition": {"StringLike": {"aws:SourceArn": trail.bucket_arn}}},
        {"Sid": SIDS[1], "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
         "Condition": {"StringLike": {"aws:SourceArn": topic_arn}}},
    ]


def test_guide_statements_are_appended_to_cloudtrails_key_policy(config: Config, trail: TrailOutput) -> None:
    console = cloudtrail_key_policy("aws", REGION, ACCOUNT_ID, config.trail_name)

    out = step04_key_policy.apply(config, trail, TOPIC)

    assert out == KeyPolicyOutput(kms_key_arn=trail.kms_key_arn, statement_ids=SIDS)
    policy = _policy(trail)
    assert policy == {**console, "Statement": console["Statement"] + _guide_statements(trail)}
    assert audit(policy, "kms") == []


def test_second_run_makes_no_mutating_call(config: Config, trail: TrailOutput) -> None:
    first = step04_key_policy.apply(config, trail, TOPIC)
    with count_mutating_calls() as calls:
        second = step04_key_policy.apply(config, trail, TOPIC)
    assert calls == []
    assert second == first


def test_foreign_statements_are_kept_and_a_stale_guide_statement_is_replaced_in_place(
        config: Config, trail: TrailOutput) -> None:
    console = cloudtrail_key_policy("aws", REGION, ACCOUNT_ID, config.trail_name)
    stale_sns = _guide_statements(trail, topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:OldTopic")[1]
    _put(trail, {**console, "Statement": [console["Statement"][0], stale_sns, SECURITY_TEAM,
                                          *console["Statement"][1:]]})

    with count_mutating_calls() as calls:
        step04_key_policy.apply(config, trail, TOPIC)

    assert calls == ["kms.PutKeyPolicy"]
    assert _policy(trail)["Statement"] == [console["Statement"][0], _guide_statements(trail)[1], SECURITY_TEAM,
                                           *console["Statement"][1:], _guide_statements(trail)[0]]


def test_statements_pasted_by_hand_from_the_guide_are_not_rewritten(config: Config, trail: TrailOutput) -> None:
    """The guide lists the actions as GenerateDataKey, Decrypt: the same grant, so nothing is written."""
    console = cloudtrail_key_policy("aws", REGION, ACCOUNT_ID, config.trail_name)
    by_hand = _guide_statements(trail)
    for statement in by_hand:
        statement["Action"] = ["kms:GenerateDataKey", "kms:Decrypt"]
    _put(trail, {**console, "Statement": console["Statement"] + by_hand})

    with count_mutating_calls() as calls:
        out = step04_key_policy.apply(config, trail, TOPIC)

    assert calls == []
    assert out.statement_ids == SIDS


def test_missing_key_is_a_terminal_error_naming_the_key(config: Config, trail: TrailOutput) -> None:
    gone = replace(trail, kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/00000000-0000-4000-8000-000000000000")
    with pytest.raises(OnboardingError, match="does not exist"):
        step04_key_policy.apply(config, gone, TOPIC)


@pytest.mark.parametrize(("code", "error", "message"), [
    ("KMSInvalidStateException", OnboardingError, "disabled or pending deletion"),
    ("AccessDeniedException", OnboardingError, "kms:PutKeyPolicy"),
    ("MalformedPolicyDocumentException", OnboardingError, "statements already in the policy"),
    ("ThrottlingException", TransientError, "retrying"),
    ("DependencyTimeoutException", TransientError, "retrying"),
])
def test_kms_errors_on_write_are_named(config: Config, trail: TrailOutput, monkeypatch: pytest.MonkeyPatch,
                                       code: str, error: type[Exception], message: str) -> None:
    class Refusing:
        def get_key_policy(self, **_: Any) -> dict:
            return {"Policy": json.dumps(cloudtrail_key_policy("aws", REGION, ACCOUNT_ID, config.trail_name))}

        def put_key_policy(self, **_: Any) -> None:
            raise ClientError({"Error": {"Code": code, "Message": "refused"}}, "PutKeyPolicy")

    monkeypatch.setattr(clients, "client", lambda service, region=None: Refusing())
    with pytest.raises(error, match=message):
        step04_key_policy.apply(config, trail, TOPIC)


def test_remove_takes_out_only_the_guide_statements(config: Config, trail: TrailOutput) -> None:
    console = cloudtrail_key_policy("aws", REGION, ACCOUNT_ID, config.trail_name)
    _put(trail, {**console, "Statement": console["Statement"] + [SECURITY_TEAM]})
    step04_key_policy.apply(config, trail, TOPIC)

    assert step04_key_policy.remove(config, trail, TOPIC) is True

    assert _policy(trail) == {**console, "Statement": console["Statement"] + [SECURITY_TEAM]}
    with count_mutating_calls() as calls:
        assert step04_key_policy.remove(config, trail, TOPIC) is False
    assert calls == []


def test_remove_on_a_deleted_key_is_done(config: Config, trail: TrailOutput) -> None:
    gone = replace(trail, kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/00000000-0000-4000-8000-000000000000")
    assert step04_key_policy.remove(config, gone, TOPIC) is False


def test_remove_on_a_key_pending_deletion_is_done(config: Config, trail: TrailOutput,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    class PendingDeletion:
        def get_key_policy(self, **_: Any) -> dict:
            raise ClientError({"Error": {"Code": "KMSInvalidStateException", "Message": "pending"}}, "GetKeyPolicy")

    monkeypatch.setattr(clients, "client", lambda service, region=None: PendingDeletion())
    assert step04_key_policy.remove(config, trail, TOPIC) is False


def test_handler_runs_the_sample_event(aws: None) -> None:
    event = load_event("step04_key_policy")
    config = Config.from_state(event)
    trail = make_trail(config)
    event["Trail"]["KmsKeyArn"] = event["Topic"]["KmsKeyArn"] = trail.kms_key_arn  # moto's key id is random

    app = importlib.import_module("functions.step04_key_policy.app")
    result = app.lambda_handler(event, FakeLambdaContext("step04_key_policy"))

    assert result == {"KmsKeyArn": trail.kms_key_arn, "StatementIds": SIDS, "TopicKmsKeyArn": ""}
    assert [s["Sid"] for s in _policy(trail)["Statement"]][-2:] == SIDS
