"""Stack delete on the local cloud with the unchanged ``sam delete``: the real template and state machine tear
down what the onboarding made (the Delete execution runs the teardown path) and keep the log bucket and key by
default."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local_cloud.cli import DEMO_API_KEY, DEMO_WORKBENCH_GUID
from local_cloud.deploy import sam_executable
from tests.e2e.test_local_cloud import sam_env
from tests.e2e.test_onboarding_e2e import workbench_devices
from tests.local_cloud.harness import REPO, ServedCloud, run_cli

pytestmark = pytest.mark.e2e
STACK = "e2e-teardown"


def _client(cloud: ServedCloud, service: str) -> Any:
    return boto3.client(service, endpoint_url=cloud.url, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="y")


def test_local_delete_runs_the_teardown_and_keeps_the_bucket_and_key(
        local_cloud: ServedCloud, built_template: Path) -> None:
    parameters = [f"WorkbenchGuid={DEMO_WORKBENCH_GUID}", f"WorkbenchApiKey={DEMO_API_KEY}",
                  f"WorkbenchBaseUrl={local_cloud.workbench_url}", "RetryWindowSeconds=0", "StatusPollSeconds=1",
                  "TrailName=E2eTeardownTrail", "TopicName=E2eTeardownTopic", "QueueName=E2eTeardownQueue",
                  "KmsAlias=e2e-teardown", "RoleName=E2eTeardownRole", "BucketName=e2e-teardown-logs",
                  "AccessLogBucketName=e2e-teardown-access-logs"]
    created = run_cli("local", "deploy", "--endpoint-url", local_cloud.url, "--stack-name", STACK,
                      "--template", str(built_template), "--parameter-overrides", *parameters, timeout=600)
    assert created.returncode == 0, created.stderr[-2000:]

    # What the customer has beside the onboarding: a log file, another queue and topic, another
    # notification on the log bucket, a statement of their own in the key policy.
    s3, sqs, sns, kms = (_client(local_cloud, name) for name in ("s3", "sqs", "sns", "kms"))
    s3.put_object(Bucket="e2e-teardown-logs", Key="AWSLogs/123456789012/CloudTrail/log.json.gz", Body=b"{}")
    foreign_queue = sqs.create_queue(QueueName="CustomersOwnQueue")["QueueUrl"]
    foreign_queue_arn = sqs.get_queue_attributes(QueueUrl=foreign_queue,
                                                 AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # S3 validates a destination by its policy, as on AWS: the customer's queue admits the bucket's events.
    sqs.set_queue_attributes(QueueUrl=foreign_queue, Attributes={"Policy": json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": foreign_queue_arn,
            "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::e2e-teardown-logs"}}}]})})
    sns.create_topic(Name="CustomersOwnTopic")
    notification = s3.get_bucket_notification_configuration(Bucket="e2e-teardown-logs")
    notification.pop("ResponseMetadata", None)
    notification["QueueConfigurations"] = [{"Id": "customers-own", "QueueArn": foreign_queue_arn,
                                            "Events": ["s3:ObjectRemoved:*"]}]
    s3.put_bucket_notification_configuration(Bucket="e2e-teardown-logs", NotificationConfiguration=notification)
    key_id = kms.describe_key(KeyId="alias/e2e-teardown")["KeyMetadata"]["KeyId"]
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    audit = {"Sid": "CustomersAuditRole", "Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*",
             "Principal": {"AWS": "arn:aws:iam::123456789012:role/Audit"}}
    policy["Statement"].append(audit)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    device_id = {o["OutputKey"]: o["OutputValue"] for o in _client(local_cloud, "cloudformation").describe_stacks(
        StackName=STACK)["Stacks"][0]["Outputs"]}["WorkbenchDeviceId"]

    # The trail itself delivers log files into the bucket too: every one of them must outlive the delete.
    logs_before = {o["Key"] for o in s3.list_objects_v2(Bucket="e2e-teardown-logs").get("Contents", [])}

    sfn = _client(local_cloud, "stepfunctions")
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
                   if m["name"] == f"{STACK}-onboarding")

    deleting = subprocess.Popen([sam_executable(), "delete", "--stack-name", STACK, "--no-prompts", "--region",
                                 "us-east-1"], cwd=REPO, env=sam_env(local_cloud), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    entered = _states_entered_until_done(sfn, machine, deleting)  # the state machine goes with the stack
    output = deleting.communicate(timeout=600)[0]

    assert deleting.returncode == 0, (output[-2000:], _events(local_cloud))
    assert "Deleted successfully" in output
    with pytest.raises(ClientError, match="does not exist"):
        _client(local_cloud, "cloudformation").describe_stacks(StackName=STACK)
    # The Delete execution entered the teardown states in reverse guide order.
    teardown = [name for name in entered if name.startswith(("Teardown", "Step"))]
    assert list(dict.fromkeys(teardown)) == [
        "Teardown Discover", "Step 10 Remove Workbench Device", "Step 8 Remove Expel Role",
        "Step 7 Remove S3 Event Notification", "Step 6 Remove SNS Subscription", "Step 5 Delete SQS Queue",
        "Step 3 Delete SNS Topic", "Step 4 Remove Key Policy Statements", "Step 1 Remove Trail"]
    assert "E2eTeardownTopic" not in str(_client(local_cloud, "sns").list_topics())
    assert "E2eTeardownQueue" not in str(_client(local_cloud, "sqs").list_queues())
    assert "E2eTeardownTrail" not in str(_client(local_cloud, "cloudtrail").describe_trails())
    assert "E2eTeardownRole" not in str(_client(local_cloud, "iam").list_roles())
    assert _client(local_cloud, "s3").head_bucket(Bucket="e2e-teardown-logs")
    assert _client(local_cloud, "s3").head_bucket(Bucket="e2e-teardown-access-logs")  # kept with the log bucket
    key = _client(local_cloud, "kms").describe_key(KeyId="alias/e2e-teardown")["KeyMetadata"]
    assert key["KeyState"] == "Enabled"
    # Logs kept; the customer's own resources and entries untouched; only our statements removed.
    logs_after = {o["Key"] for o in s3.list_objects_v2(Bucket="e2e-teardown-logs").get("Contents", [])}
    assert "AWSLogs/123456789012/CloudTrail/log.json.gz" in logs_before
    assert logs_before <= logs_after
    assert "CustomersOwnQueue" in str(sqs.list_queues())
    assert "CustomersOwnTopic" in str(sns.list_topics())
    left = s3.get_bucket_notification_configuration(Bucket="e2e-teardown-logs")
    assert [c["Id"] for c in left.get("QueueConfigurations", [])] == ["customers-own"]
    assert left.get("TopicConfigurations", []) == []
    statements = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])["Statement"]
    assert audit in statements
    assert not {"Allow cloudtrail bucket to encrypt/decrypt", "Allow SNS to encrypt/decrypt"} & {
        st.get("Sid") for st in statements}
    assert device_id not in {d["id"] for d in workbench_devices(local_cloud)}
    # crhelper's poll rule does not outlive the trigger function it targets.
    rules = _client(local_cloud, "events").list_rules(NamePrefix="Onboarding")["Rules"]
    triggers = [r for r in rules if STACK in str(_client(local_cloud, "events").list_targets_by_rule(
        Rule=r["Name"])["Targets"])]
    assert triggers == []


def _states_entered_until_done(sfn: Any, machine: str, process: subprocess.Popen) -> list[str]:
    """The Task states the stack's Delete execution enters, read while ``sam delete`` runs."""
    seen: dict[int, str] = {}
    while process.poll() is None:
        try:
            for execution in sfn.list_executions(stateMachineArn=machine)["executions"]:
                if execution["name"].startswith("delete-"):
                    for event in sfn.get_execution_history(executionArn=execution["executionArn"],
                                                           maxResults=1000)["events"]:
                        if event["type"] == "TaskStateEntered":
                            seen[event["id"]] = event["stateEnteredEventDetails"]["name"]
        except ClientError:
            pass  # the state machine is deleted with the stack
        time.sleep(0.3)
    return [seen[key] for key in sorted(seen)]


def _events(cloud: ServedCloud) -> list[str]:
    """The stack's failures as CloudFormation recorded them (what a person reads when sam delete fails)."""
    try:
        events = _client(cloud, "cloudformation").describe_stack_events(StackName=STACK)["StackEvents"]
    except ClientError:
        return []
    return [f"{e['LogicalResourceId']} {e['ResourceStatus']}: {e.get('ResourceStatusReason')}" for e in events
            if e["ResourceStatus"].endswith("FAILED")]
