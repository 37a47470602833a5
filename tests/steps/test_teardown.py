"""Stack delete against moto: the teardown handlers called in the state machine's order, with the state
document the ASL gives them ("Action": "Delete", discovered outputs, results under $.Teardown).

"Nothing lost": only resources carrying this stack's ownership tag are deleted, on anything else only
our statement or entry goes, the logs stay unless the person chose otherwise, gone counts as done.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import boto3
import pytest
from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

from expel_onboarding import naming
from expel_onboarding.aws import stacks
from expel_onboarding.errors import OnboardingError, StillInProgress
from expel_onboarding.models import Config, RoleRemoval, RoleStatus, replace
from expel_onboarding.policies.key_policy import GUIDE_KEY_SIDS
from expel_onboarding.policies.notification import NOTIFICATION_ID
from expel_onboarding.steps import step01_trail, step08_expel_role, step09_management_stack, teardown
from tests.conftest import ACCOUNT_ID, REGION, boto
from tests.steps.notification_path import FakeLambdaContext
from tests.steps.test_onboarding_rerun import configure
from tests.support import allow_cloudtrail, count_mutating_calls, key_policy

TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:ExpelCloudTrailTopic"
LOG_KEY = f"AWSLogs/{ACCOUNT_ID}/CloudTrail/{REGION}/2026/11/26/log.json.gz"


def _run(function: str, state: dict[str, Any]) -> dict[str, Any]:
    app = importlib.import_module(f"functions.{function}.app")
    return dict(app.lambda_handler(state, FakeLambdaContext(function)))


def run_teardown(config: Config) -> dict[str, Any]:
    """The ASL's teardown path: Discover, plan, then steps 10, 8 (until gone), 7, 6, 5, 3, 4 (key kept), 1."""
    start = {"Config": config.to_dict(), "ExecutionId": "arn:aws:states:us-east-1:123456789012:execution:x:delete-1"}
    discovered = _run("teardown_discover", start)
    state: dict[str, Any] = {**start, "Action": "Delete", "Trail": discovered["Trail"],
                             "Topic": discovered["Topic"], "Queue": discovered["Queue"], "Teardown": {}}
    done = state["Teardown"]
    done["Device"] = _run("step10_workbench_device", state)
    done["Role"] = {}
    while done["Role"].get("Status") not in ("DELETED", "SKIPPED"):
        done["Role"] = _run("step08_expel_role", state)  # moto deletes at once; the ASL waits here
    done["BucketNotification"] = _run("step07_bucket_notification", state)
    done["Subscription"] = _run("step06_sns_subscription", state)
    done["Queue"] = _run("step05_sqs_queue", state)
    done["Topic"] = _run("step03_sns_topic", state)
    if not config.schedule_key_deletion or config.existing_trail_name:
        done["KeyPolicy"] = _run("step04_key_policy", state)
    done["Trail"] = _run("step01_trail", state)
    return state


def _put_logs(config: Config) -> None:
    """What CloudTrail leaves in the bucket: log files, one of them overwritten and one deleted (versions)."""
    s3 = boto("s3")
    s3.put_object(Bucket=config.bucket_name, Key=LOG_KEY, Body=b"first")
    s3.put_object(Bucket=config.bucket_name, Key=LOG_KEY, Body=b"second")
    s3.put_object(Bucket=config.bucket_name, Key="AWSLogs/gone.json.gz", Body=b"x")
    s3.delete_object(Bucket=config.bucket_name, Key="AWSLogs/gone.json.gz")


def _exists(call: Any, missing: tuple[str, ...], **kwargs: Any) -> bool:
    try:
        call(**kwargs)
    except Exception as exc:  # botocore ClientError
        if getattr(exc, "response", {}).get("Error", {}).get("Code") in missing:
            return False
        raise
    return True


def _sids(key_arn: str) -> set[str]:
    return {s.get("Sid", "") for s in key_policy(key_arn)["Statement"]}


def test_teardown_removes_what_the_stack_made_and_keeps_the_bucket_its_logs_and_the_key(
        aws: None, config: Config) -> None:
    outputs = configure(config)
    _put_logs(config)
    key_arn = outputs["Trail"].kms_key_arn
    assert set(GUIDE_KEY_SIDS) <= _sids(key_arn)

    state = run_teardown(config)

    assert not _exists(boto("sns").get_topic_attributes, ("NotFound",), TopicArn=TOPIC_ARN)
    assert not _exists(boto("sqs").get_queue_url, ("AWS.SimpleQueueService.NonExistentQueue",
                                                   "QueueDoesNotExist"), QueueName=config.queue_name)
    assert boto("sns").list_subscriptions()["Subscriptions"] == []
    notifications = boto("s3").get_bucket_notification_configuration(Bucket=config.bucket_name)
    assert NOTIFICATION_ID not in json.dumps(notifications)
    assert stacks.describe_stack(config.role_stack_name, REGION) is None
    assert boto("cloudtrail").describe_trails()["trailList"] == []
    # Kept by default: the bucket with every log version, the key (usable, alias intact), minus our statements.
    versions = boto("s3").list_object_versions(Bucket=config.bucket_name)
    assert len(versions["Versions"]) >= 3 and len(versions["DeleteMarkers"]) == 1
    assert boto("kms").describe_key(KeyId=config.kms_alias)["KeyMetadata"]["KeyState"] == "Enabled"
    assert not _sids(key_arn) & set(GUIDE_KEY_SIDS)
    assert state["Teardown"]["Trail"] == {"Trail": "DELETED", "Bucket": "KEPT", "Key": "KEPT",
                                          "AccessLogBucket": "KEPT", "LogGroup": "ABSENT"}
    assert state["Teardown"]["Role"]["Status"] == "DELETED"


def test_teardown_with_keep_log_bucket_false_deletes_the_bucket_with_every_version_and_delete_marker(
        aws: None, config: Config) -> None:
    config = replace(config, keep_log_bucket=False)
    configure(config)
    _put_logs(config)

    state = run_teardown(config)

    assert not _exists(boto("s3").head_bucket, ("404", "NoSuchBucket"), Bucket=config.bucket_name)
    assert state["Teardown"]["Trail"]["Bucket"] == "DELETED"


def _versions_left(bucket: str) -> int:
    """Object versions and delete markers the bucket holds, counted in moto's store: moto copies every
    version for each ListObjectVersions page, which made counting through the API most of this test's time."""
    keys = s3_backends[ACCOUNT_ID][get_partition(REGION)].get_bucket(bucket).keys
    return sum(len(versions) for _, versions in keys.iterlists())


def test_emptying_a_large_bucket_stops_at_the_time_budget_and_repeated_calls_finish_and_delete_it(
        aws: None, config: Config) -> None:
    # Without access logging: each of the requests below would add an access log to count as well.
    config = replace(config, keep_log_bucket=False, access_logging=False)
    trail = step01_trail.apply(config)
    s3 = boto("s3")
    keys = [f"AWSLogs/{i}.json.gz" for i in range(700)]
    # Written straight into moto's store: 2100 PutObject requests through boto3 took half a minute and
    # the versions are the same (the bucket is versioned, each put adds one). The teardown reads and
    # deletes them through the API.
    store = s3_backends[ACCOUNT_ID][get_partition(REGION)]
    for _ in range(3):  # 2100 object versions, then a delete marker on each key: 2800 in all
        for key in keys:
            store.put_object(config.bucket_name, key, b"x")
    s3.delete_objects(Bucket=config.bucket_name, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
    assert _versions_left(config.bucket_name) == 2800
    state = {"Config": config.to_dict(), "ExecutionId": "delete-1", "Action": "Delete", "Trail": trail.to_dict()}
    app = importlib.import_module("functions.step01_trail.app")
    almost_over = FakeLambdaContext("step01_trail", remaining_ms=1000)  # less than the reserve: one batch a call

    with pytest.raises(StillInProgress, match=r"deleted 1000 object versions"):
        app.lambda_handler(state, almost_over)
    assert _versions_left(config.bucket_name) == 1800
    assert boto("cloudtrail").describe_trails()["trailList"] == []

    calls = 1
    while True:  # what the state machine's Retry on StillInProgress does
        calls += 1
        try:
            result = app.lambda_handler(state, almost_over)
        except StillInProgress:
            continue
        break

    assert calls == 3
    assert not _exists(s3.head_bucket, ("404", "NoSuchBucket"), Bucket=config.bucket_name)
    assert result == {"Trail": "ABSENT", "Bucket": "DELETED", "Key": "KEPT", "AccessLogBucket": "ABSENT",
                      "LogGroup": "ABSENT"}


def test_teardown_with_schedule_key_deletion_leaves_the_key_pending_deletion_and_drops_our_alias(
        aws: None, config: Config) -> None:
    config = replace(config, schedule_key_deletion=True)
    key_arn = configure(config)["Trail"].kms_key_arn

    state = run_teardown(config)

    assert boto("kms").describe_key(KeyId=key_arn)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    aliases = boto("kms").list_aliases()["Aliases"]
    assert config.kms_alias not in [a["AliasName"] for a in aliases]
    assert state["Teardown"]["Trail"]["Key"] == "SCHEDULED_FOR_DELETION"


def test_teardown_leaves_foreign_resources_and_statements_alone(aws: None, config: Config) -> None:
    outputs = configure(config)
    key_arn, topic_arn = outputs["Trail"].kms_key_arn, outputs["Topic"].topic_arn
    sns, sqs, s3, kms = boto("sns"), boto("sqs"), boto("s3"), boto("kms")
    foreign_topic = sns.create_topic(Name="CustomerTopic")["TopicArn"]
    foreign_queue = sqs.create_queue(QueueName="CustomerQueue")["QueueUrl"]
    foreign_queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:CustomerQueue"
    foreign_subscription = sns.subscribe(TopicArn=foreign_topic, Protocol="sqs", Endpoint=foreign_queue_arn)
    # Someone else's entry on our bucket (another event type: S3 refuses overlapping ones).
    notifications = s3.get_bucket_notification_configuration(Bucket=config.bucket_name)
    notifications.pop("ResponseMetadata")
    notifications.setdefault("QueueConfigurations", []).append(
        {"Id": "CustomerRemovals", "QueueArn": foreign_queue_arn, "Events": ["s3:ObjectRemoved:*"]})
    s3.put_bucket_notification_configuration(Bucket=config.bucket_name, NotificationConfiguration=notifications)
    # Someone else's statement in our key's policy, and a trail of theirs beside ours.
    policy = key_policy(key_arn)
    policy["Statement"].append({"Sid": "CustomerAudit", "Effect": "Allow",
                                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
                                "Action": "kms:DescribeKey", "Resource": "*"})
    kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=json.dumps(policy))
    s3.create_bucket(Bucket="customer-trail-logs")
    allow_cloudtrail(s3, "customer-trail-logs", f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/CustomerTrail")
    boto("cloudtrail").create_trail(Name="CustomerTrail", S3BucketName="customer-trail-logs")

    run_teardown(config)

    assert _exists(sns.get_topic_attributes, ("NotFound",), TopicArn=foreign_topic)
    assert _exists(sqs.get_queue_attributes, ("AWS.SimpleQueueService.NonExistentQueue",), QueueUrl=foreign_queue)
    assert [s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]] == [
        foreign_subscription["SubscriptionArn"]]
    remaining = s3.get_bucket_notification_configuration(Bucket=config.bucket_name)
    assert [c["Id"] for c in remaining.get("QueueConfigurations", [])] == ["CustomerRemovals"]
    assert not any(c.get("TopicArn") == topic_arn for c in remaining.get("TopicConfigurations", []))
    assert "CustomerAudit" in _sids(key_arn)
    assert [t["Name"] for t in boto("cloudtrail").describe_trails()["trailList"]] == ["CustomerTrail"]


def test_teardown_skips_another_onboarding_stacks_topic_queue_and_role_stack_under_our_names(
        aws: None, config: Config) -> None:
    theirs = [{"Key": naming.OWNER_TAG_KEY, "Value": "other-stack"}]
    boto("sns").create_topic(Name=config.topic_name, Tags=theirs)
    boto("sqs").create_queue(QueueName=config.queue_name, tags={naming.OWNER_TAG_KEY: "other-stack"})
    boto("cloudformation").create_stack(
        StackName=config.role_stack_name, Tags=theirs,
        TemplateBody=json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}))

    with count_mutating_calls() as calls:
        state = run_teardown(config)

    assert calls == []
    assert _exists(boto("sns").get_topic_attributes, ("NotFound",), TopicArn=TOPIC_ARN)
    assert boto("sqs").get_queue_url(QueueName=config.queue_name)["QueueUrl"]
    assert state["Teardown"]["Role"]["Status"] == "SKIPPED"


def test_teardown_after_preflight_refused_a_customers_topic_and_queue_with_our_names_leaves_their_subscription(
        aws: None, config: Config) -> None:
    # The guide done by hand before: same names, no owner tag, subscribed with raw delivery. Preflight
    # refuses them, the Create fails, CloudFormation sends Delete.
    sns, sqs = boto("sns"), boto("sqs")
    topic_arn = sns.create_topic(Name=config.topic_name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=config.queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    theirs = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                           Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]

    with count_mutating_calls() as calls:
        state = run_teardown(config)

    assert calls == []
    assert [s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]] == [
        theirs]
    assert sqs.get_queue_url(QueueName=config.queue_name)["QueueUrl"] == queue_url
    assert (state["Topic"]["TopicArn"], state["Queue"]["QueueUrl"]) == ("", "")
    assert state["Teardown"]["Subscription"] == {"Removed": False}


def test_second_teardown_succeeds_without_a_single_mutating_call(aws: None, config: Config) -> None:
    configure(config)
    run_teardown(replace(config, keep_log_bucket=False, schedule_key_deletion=True))

    with count_mutating_calls() as calls:
        state = run_teardown(replace(config, keep_log_bucket=False, schedule_key_deletion=True))

    assert calls == []
    assert state["Teardown"]["Trail"] == {"Trail": "ABSENT", "Bucket": "ABSENT", "Key": "ABSENT",
                                          "AccessLogBucket": "ABSENT", "LogGroup": "ABSENT"}


def test_teardown_after_a_create_that_stopped_after_step_1_removes_the_trail_and_succeeds(
        aws: None, config: Config) -> None:
    step01_trail.apply(config)

    state = run_teardown(config)

    assert boto("cloudtrail").describe_trails()["trailList"] == []
    assert boto("s3").head_bucket(Bucket=config.bucket_name)
    assert state["Teardown"]["Role"]["Status"] == "DELETED"
    assert state["Teardown"]["Trail"] == {"Trail": "DELETED", "Bucket": "KEPT", "Key": "KEPT",
                                          "AccessLogBucket": "KEPT", "LogGroup": "ABSENT"}


def test_teardown_after_a_create_that_wrote_nothing_makes_no_mutating_call(aws: None, config: Config) -> None:
    with count_mutating_calls() as calls:
        run_teardown(replace(config, keep_log_bucket=False, schedule_key_deletion=True))
    assert calls == []


def test_role_removal_gives_up_with_the_stacks_name_when_deletion_never_finishes(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(step08_expel_role, "remove", lambda _config: RoleStatus.IN_PROGRESS)
    assert teardown.remove_role(config, RoleRemoval()).to_dict() == {"Status": "IN_PROGRESS", "Checks": 1,
                                                                     "Stack": "IN_PROGRESS"}
    with pytest.raises(OnboardingError, match=config.role_stack_name):
        teardown.remove_role(config, RoleRemoval(checks=teardown.MAX_ROLE_CHECKS - 1))


@pytest.mark.parametrize(("stack", "stack_set", "expected"), [
    ("DELETED", "IN_PROGRESS", "IN_PROGRESS"), ("IN_PROGRESS", "DELETED", "IN_PROGRESS"),
    ("DELETED", "SKIPPED", "DELETED"), ("SKIPPED", "SKIPPED", "SKIPPED")])
def test_organization_mode_waits_for_both_the_stack_and_the_stack_set(
        config: Config, monkeypatch: pytest.MonkeyPatch, stack: str, stack_set: str, expected: str) -> None:
    monkeypatch.setattr(step09_management_stack, "remove", lambda _config: stack)
    monkeypatch.setattr(step08_expel_role, "remove", lambda _config: stack_set)
    result = teardown.remove_role(replace(config, organization_mode=True), RoleRemoval(checks=3))
    assert result.to_dict() == {"Status": expected, "Checks": 4, "Stack": stack, "StackSet": stack_set}


def test_foreign_bucket_is_never_emptied_even_when_keep_log_bucket_is_false(aws: None, config: Config) -> None:
    boto("s3").create_bucket(Bucket=config.bucket_name)
    boto("s3").put_object(Bucket=config.bucket_name, Key=LOG_KEY, Body=b"theirs")

    state = run_teardown(replace(config, keep_log_bucket=False))

    assert boto3.client("s3", region_name=REGION).get_object(Bucket=config.bucket_name, Key=LOG_KEY)
    assert state["Teardown"]["Trail"]["Bucket"] == "KEPT_NOT_CREATED_BY_THIS_STACK"
