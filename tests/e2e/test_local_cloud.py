"""The real template on the local cloud: ``demo`` completes the stack; the SAM CLI a person types for AWS
deploys, updates, lists and deletes it unchanged (``local deploy`` is that same ``sam deploy``).

The expected Outputs are read from template.yaml itself (every unconditional Output must be there),
so this test follows the template instead of guessing its values.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local_cloud.cli import DEMO_WORKBENCH_GUID
from local_cloud.deploy import load_template, with_short_sam_waits
from tests.e2e.test_onboarding_e2e import workbench_devices
from tests.local_cloud.harness import (
    REPO,
    ServedCloud,
    child_env,
    free_port,
    onboarding_parameters,
    run_cli,
    run_cli_process,
    run_sam,
)

REGION = "us-east-1"

pytestmark = pytest.mark.e2e


def _declared_outputs() -> set[str]:
    outputs = load_template(REPO / "template.yaml").get("Outputs", {})
    return {name for name, output in outputs.items() if "Condition" not in output}


def test_demo_completes_the_stack_and_prints_every_output(built_template: Path) -> None:
    result = run_cli_process(
        "demo",
        "--port",
        str(free_port()),
        "--workbench-port",
        str(free_port()),
        "--template",
        str(built_template),
        "--stack-name",
        "demo-test",
        timeout=600,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert "stack demo-test CREATE_COMPLETE" in result.stdout
    table = result.stdout.split("CREATE_COMPLETE\n", 1)[1]
    for name in _declared_outputs():
        assert f"\n{name} " in f"\n{table}", f"Output {name} missing from the printed table"
    assert DEMO_WORKBENCH_GUID in table
    assert "stopping the local cloud" in result.stdout


def sam_env(cloud: ServedCloud) -> dict[str, str]:
    """What differs from running the SAM CLI against AWS: the endpoint (and made-up credentials), and SAM's pauses
    between its DescribeStacks calls, shortened as ``local deploy`` shortens them (the local cloud is done in
    seconds)."""
    return with_short_sam_waits(dict(child_env(), AWS_ENDPOINT_URL=cloud.url, AWS_ACCESS_KEY_ID="any",
                                     AWS_SECRET_ACCESS_KEY="any", AWS_REGION=REGION))


def sam(cloud: ServedCloud, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """The SAM CLI as a person runs it against AWS."""
    return run_sam(args, sam_env(cloud), timeout=timeout)


@dataclass
class SamStack:
    """The stack the SAM CLI deployed, updated and listed, with what each command answered."""

    name: str
    refused: subprocess.CompletedProcess
    created: subprocess.CompletedProcess
    updated: subprocess.CompletedProcess
    unchanged: subprocess.CompletedProcess
    listed: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def sam_stack(local_cloud: ServedCloud, built_template: Path) -> SamStack:
    """One stack through the SAM CLI's life as a person types it for AWS: a deploy refused for a missing
    capability, the create, an update as ``local deploy`` runs it, a deploy with nothing to change, its outputs
    listed. The last test deletes it with ``sam delete``."""
    stack = "e2e-sam"
    parameters = [f"{p.split('=', 1)[0]}=\"{p.split('=', 1)[1]}\"" for p in onboarding_parameters(local_cloud, stack)]
    _client(local_cloud, "s3").create_bucket(Bucket="e2e-sam-artifacts")
    deploy = ["deploy", "--template-file", str(built_template), "--stack-name", stack, "--capabilities",
              "CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "--no-confirm-changeset", "--region", REGION]

    # samconfig.toml (read from the working directory) says resolve_s3: an explicit bucket turns it off.
    bucket = ["--no-resolve-s3", "--s3-bucket", "e2e-sam-artifacts"]
    # Without CAPABILITY_IAM (the functions' roles) CloudFormation refuses the change set.
    refused = sam(local_cloud, *deploy[:6], "CAPABILITY_AUTO_EXPAND", *deploy[8:], *bucket, "--parameter-overrides",
                  *parameters)
    created = sam(local_cloud, *deploy, *bucket, "--parameter-overrides", *parameters)
    # The update as `local deploy` runs it: `sam deploy --resolve-s3` with one parameter changed.
    updated = run_cli("local", "deploy", "--endpoint-url", local_cloud.url, "--stack-name", stack, "--template",
                      str(built_template), "--parameter-overrides", *onboarding_parameters(local_cloud, stack),
                      "WorkbenchDeviceName=renamed by update", timeout=600)
    unchanged = sam(local_cloud, *deploy, "--resolve-s3", "--parameter-overrides", *parameters[:1])
    listed = sam(local_cloud, "list", "stack-outputs", "--stack-name", stack, "--region", REGION, "--output", "json")
    return SamStack(stack, refused, created, updated, unchanged, listed)


def test_the_unchanged_sam_cli_deploys_updates_and_lists_the_stack(local_cloud: ServedCloud,
                                                                          sam_stack: SamStack) -> None:
    refused, created, updated, unchanged = sam_stack.refused, sam_stack.created, sam_stack.updated, sam_stack.unchanged
    assert refused.returncode != 0
    assert "InsufficientCapabilitiesException" in refused.stderr
    assert "Requires capabilities : [CAPABILITY_IAM]" in refused.stderr
    assert created.returncode == 0, created.stderr[-3000:]
    assert "Successfully created/updated stack - e2e-sam" in created.stdout
    assert updated.returncode == 0, updated.stderr[-3000:]
    assert "stack e2e-sam UPDATE_COMPLETE" in updated.stdout
    assert unchanged.returncode == 1 and "No changes to deploy. Stack e2e-sam is up to date" in unchanged.stderr
    outputs = {o["OutputKey"]: o["OutputValue"] for o in json.loads(sam_stack.listed.stdout)}
    assert _declared_outputs() <= set(outputs)
    # Converged, not duplicated: the update renamed the one device the create registered.
    devices = {d["id"]: d["attributes"]["name"] for d in workbench_devices(local_cloud)}
    assert devices[outputs["WorkbenchDeviceId"]] == "renamed by update"
    assert "e2e-sam CloudTrail" not in devices.values()
    cfn = _client(local_cloud, "cloudformation")
    assert cfn.describe_stacks(StackName=sam_stack.name)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"


def _client(cloud: ServedCloud, service: str) -> Any:
    return boto3.client(service, endpoint_url=cloud.url, region_name=REGION, aws_access_key_id="x",
                        aws_secret_access_key="y")


def test_sam_delete_runs_the_teardown_and_keeps_the_bucket_and_key(
        local_cloud: ServedCloud, sam_stack: SamStack) -> None:
    """The unchanged ``sam delete`` of the stack the SAM CLI made and updated: the real template and state machine
    tear down what the onboarding made (the Delete execution runs the teardown path) and keep the log bucket and key
    by default."""
    assert sam_stack.updated.returncode == 0, sam_stack.updated.stderr[-2000:]
    stack = sam_stack.name

    # What the customer has beside the onboarding: a log file, another queue and topic, another
    # notification on the log bucket, a statement of their own in the key policy.
    s3, sqs, sns, kms = (_client(local_cloud, name) for name in ("s3", "sqs", "sns", "kms"))
    s3.put_object(Bucket="e2e-sam-logs-bucket", Key="AWSLogs/123456789012/CloudTrail/log.json.gz", Body=b"{}")
    foreign_queue = sqs.create_queue(QueueName="CustomersOwnQueue")["QueueUrl"]
    foreign_queue_arn = sqs.get_queue_attributes(QueueUrl=foreign_queue,
                                                 AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # S3 validates a destination by its policy, as on AWS: the customer's queue admits the bucket's events.
    sqs.set_queue_attributes(QueueUrl=foreign_queue, Attributes={"Policy": json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": foreign_queue_arn,
            "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::e2e-sam-logs-bucket"}}}]})})
    sns.create_topic(Name="CustomersOwnTopic")
    notification = s3.get_bucket_notification_configuration(Bucket="e2e-sam-logs-bucket")
    notification.pop("ResponseMetadata", None)
    notification["QueueConfigurations"] = [{"Id": "customers-own", "QueueArn": foreign_queue_arn,
                                            "Events": ["s3:ObjectRemoved:*"]}]
    s3.put_bucket_notification_configuration(Bucket="e2e-sam-logs-bucket", NotificationConfiguration=notification)
    key_id = kms.describe_key(KeyId="alias/e2e-sam-key")["KeyMetadata"]["KeyId"]
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    audit = {"Sid": "CustomersAuditRole", "Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*",
             "Principal": {"AWS": "arn:aws:iam::123456789012:role/Audit"}}
    policy["Statement"].append(audit)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    device_id = {o["OutputKey"]: o["OutputValue"] for o in _client(local_cloud, "cloudformation").describe_stacks(
        StackName=stack)["Stacks"][0]["Outputs"]}["WorkbenchDeviceId"]

    # The trail itself delivers log files into the bucket too: every one of them must outlive the delete.
    logs_before = {o["Key"] for o in s3.list_objects_v2(Bucket="e2e-sam-logs-bucket").get("Contents", [])}

    started = datetime.now(UTC).replace(microsecond=0)
    deleted = sam(local_cloud, "delete", "--stack-name", stack, "--no-prompts", "--region", "us-east-1")
    output = deleted.stdout + deleted.stderr

    assert deleted.returncode == 0, (output[-2000:], _events(local_cloud, stack))
    assert "Deleted successfully" in output
    with pytest.raises(ClientError, match="does not exist"):
        _client(local_cloud, "cloudformation").describe_stacks(StackName=stack)
    # The Delete execution's writes, in reverse guide order, as CloudTrail's Event history lists them (it
    # outlives the stack's state machine and functions; newest first, read here oldest first): role stack (8),
    # bucket notification (7), subscription (6), queue (5), topic (3), key policy (4), trail (1), each once.
    writes = _teardown_writes(_client(local_cloud, "cloudtrail"), started, key_id)
    assert [name for name, _ in writes] == [
        "DeleteStack e2e-sam-expel-role", "PutBucketNotificationConfiguration e2e-sam-logs-bucket",
        "Unsubscribe e2e-sam-topic", "DeleteQueue e2e-sam-queue", "DeleteTopic e2e-sam-topic",
        "PutKeyPolicy e2e-sam-key", "DeleteTrail e2e-sam-trail"], writes
    assert "e2e-sam-topic" not in str(_client(local_cloud, "sns").list_topics())
    assert "e2e-sam-queue" not in str(_client(local_cloud, "sqs").list_queues())
    assert "e2e-sam-trail" not in str(_client(local_cloud, "cloudtrail").describe_trails())
    assert "e2e-sam-role" not in str(_client(local_cloud, "iam").list_roles())
    assert _client(local_cloud, "s3").head_bucket(Bucket="e2e-sam-logs-bucket")
    assert _client(local_cloud, "s3").head_bucket(Bucket="e2e-sam-access-logs")  # kept with the log bucket
    key = _client(local_cloud, "kms").describe_key(KeyId="alias/e2e-sam-key")["KeyMetadata"]
    assert key["KeyState"] == "Enabled"
    # Logs kept; the customer's own resources and entries untouched; only our statements removed.
    logs_after = {o["Key"] for o in s3.list_objects_v2(Bucket="e2e-sam-logs-bucket").get("Contents", [])}
    assert "AWSLogs/123456789012/CloudTrail/log.json.gz" in logs_before
    assert logs_before <= logs_after
    assert "CustomersOwnQueue" in str(sqs.list_queues())
    assert "CustomersOwnTopic" in str(sns.list_topics())
    left = s3.get_bucket_notification_configuration(Bucket="e2e-sam-logs-bucket")
    assert [c["Id"] for c in left.get("QueueConfigurations", [])] == ["customers-own"]
    assert left.get("TopicConfigurations", []) == []
    statements = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])["Statement"]
    assert audit in statements
    assert not {"Allow cloudtrail bucket to encrypt/decrypt", "Allow SNS to encrypt/decrypt"} & {
        st.get("Sid") for st in statements}
    assert device_id not in {d["id"] for d in workbench_devices(local_cloud)}
    # crhelper's poll rule does not outlive the trigger function it targets.
    rules = _client(local_cloud, "events").list_rules(NamePrefix="Onboarding")["Rules"]
    triggers = [r for r in rules if stack in str(_client(local_cloud, "events").list_targets_by_rule(
        Rule=r["Name"])["Targets"])]
    assert triggers == []


# What each write of the teardown names, in the call's requestParameters (the key by its id).
_TEARDOWN_WRITES = {
    ("cloudformation.amazonaws.com", "DeleteStack"): "e2e-sam-expel-role",
    ("s3.amazonaws.com", "PutBucketNotificationConfiguration"): "e2e-sam-logs-bucket",
    ("sns.amazonaws.com", "Unsubscribe"): "e2e-sam-topic",
    ("sqs.amazonaws.com", "DeleteQueue"): "e2e-sam-queue",
    ("sns.amazonaws.com", "DeleteTopic"): "e2e-sam-topic",
    ("kms.amazonaws.com", "PutKeyPolicy"): "e2e-sam-key",
    ("cloudtrail.amazonaws.com", "DeleteTrail"): "e2e-sam-trail",
}


def _teardown_writes(cloudtrail: Any, since: datetime, key_id: str,
                     timeout: float = 60.0) -> list[tuple[str, datetime]]:
    """("<operation> <resource>", event time) of each successful write the stack's functions (an assumed role)
    made to the onboarding's resources since ``since``, oldest first, from CloudTrail's Event history. AWS shows
    an event there minutes after the call: wait (bounded) until the last one, the trail's delete, is in."""
    deadline = time.monotonic() + timeout
    while True:
        found: list[tuple[str, datetime]] = []
        pages = cloudtrail.get_paginator("lookup_events").paginate(
            StartTime=since, LookupAttributes=[{"AttributeKey": "ReadOnly", "AttributeValue": "false"}])
        for event in (e for page in pages for e in page["Events"]):
            record = json.loads(event["CloudTrailEvent"])
            names = _TEARDOWN_WRITES.get((record["eventSource"], record["eventName"]))
            parameters = json.dumps(record.get("requestParameters")).replace(key_id, "e2e-sam-key")
            if (names and names in parameters and record["userIdentity"]["type"] == "AssumedRole"
                    and "errorCode" not in record):
                found.append((f"{record['eventName']} {names}", event["EventTime"]))
        found.reverse()  # the history is newest first
        if any(name == "DeleteTrail e2e-sam-trail" for name, _ in found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"the trail's delete is not in CloudTrail's Event history after {timeout} s: {found}")
        time.sleep(5)


def _events(cloud: ServedCloud, stack: str) -> list[str]:
    """The stack's failures as CloudFormation recorded them (what a person reads when sam delete fails)."""
    try:
        events = _client(cloud, "cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    except ClientError:
        return []
    return [f"{e['LogicalResourceId']} {e['ResourceStatus']}: {e.get('ResourceStatusReason')}" for e in events
            if e["ResourceStatus"].endswith("FAILED")]
