"""The real template on the local cloud, checked the way a person would after a deploy.

One stack is created and inspected: its Outputs are the guide's ten values, the trail, bucket,
topic, queue and role hold the guide's settings, Workbench holds one device, and the API key is
nowhere a person could read it. Then the lifecycle: a failing step fails the stack with the step's
name, a retry inside the window (a redrive, or a new execution with the same input) completes it, an
aborted execution never leaves CloudFormation waiting.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_cloud.cli import DEMO_API_KEY, DEMO_WORKBENCH_GUID
from tests.fork_server import ForkedProcess
from tests.local_cloud.harness import ServedCloud, client, onboarding_parameters, run_cli, start_cli

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
GUIDE_OUTPUTS = ("WorkbenchGuid", "AwsRegion", "S3BucketName", "KmsAlias", "S3BucketArn", "SnsTopicArn",
                 "KmsKeyArn", "SqsQueueArn", "SqsQueueUrl", "IamRoleArn")


def deploy_command(cloud: ServedCloud, template: Path, stack: str, params: list[str]) -> list[str]:
    return ["local", "deploy", "--endpoint-url", cloud.url, "--stack-name", stack, "--template", str(template),
            "--timeout", "300", "--parameter-overrides", *params]


def stack(cloud: ServedCloud, name: str) -> dict[str, Any]:
    return client(cloud, "cloudformation").describe_stacks(StackName=name)["Stacks"][0]


def outputs(cloud: ServedCloud, name: str) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack(cloud, name).get("Outputs", [])}


def custom_resource_reason(cloud: ServedCloud, name: str) -> str:
    events = client(cloud, "cloudformation").describe_stack_events(StackName=name)["StackEvents"]
    return " ".join(e.get("ResourceStatusReason", "") for e in events if e["LogicalResourceId"] == "Onboarding")


def workbench_devices(cloud: ServedCloud) -> list[dict[str, Any]]:
    request = urllib.request.Request(f"{cloud.workbench_url}/api/v2/security_devices",  # noqa: S310
                                     headers={"Authorization": f"Bearer {DEMO_API_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback emulator
        return json.loads(response.read())["data"]


def test_outputs_are_the_ten_values_the_guide_asks_to_copy(onboarded: dict[str, str]) -> None:
    for name in GUIDE_OUTPUTS:
        assert onboarded[name], f"Output {name} is empty"
    assert onboarded["WorkbenchGuid"] == DEMO_WORKBENCH_GUID
    assert onboarded["AwsRegion"] == REGION
    assert onboarded["S3BucketArn"] == f"arn:aws:s3:::{onboarded['S3BucketName']}"
    assert onboarded["KmsAlias"] == "alias/e2e-main-key"
    assert onboarded["SqsQueueUrl"].endswith("/e2e-main-queue")
    assert onboarded["IamRoleArn"].endswith(":role/e2e-main-role")
    assert onboarded["WorkbenchDeviceId"]
    assert onboarded["WorkbenchDeviceStatus"] in ("healthy", "not yet healthy")


def test_trail_is_multi_region_validated_kms_encrypted_and_logs_all_management_events(local_cloud: ServedCloud,
                                                           onboarded: dict[str, str]) -> None:
    cloudtrail = client(local_cloud, "cloudtrail")
    trail = cloudtrail.get_trail(Name="e2e-main-trail")["Trail"]
    assert trail["IsMultiRegionTrail"] is True
    assert trail["LogFileValidationEnabled"] is True
    assert trail["KmsKeyId"] == onboarded["KmsKeyArn"]
    assert trail["S3BucketName"] == onboarded["S3BucketName"]
    assert cloudtrail.get_trail_status(Name="e2e-main-trail")["IsLogging"] is True
    assert cloudtrail.get_event_selectors(TrailName="e2e-main-trail")["EventSelectors"] == [
        {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [],
         "ExcludeManagementEventSources": []}]
    kms = client(local_cloud, "kms")
    assert kms.get_key_rotation_status(KeyId=onboarded["KmsKeyArn"])["KeyRotationEnabled"] is True


def test_data_path_resources_hold_the_guides_settings(local_cloud: ServedCloud, onboarded: dict[str, str]) -> None:
    s3 = client(local_cloud, "s3")
    rule = s3.get_bucket_encryption(Bucket=onboarded["S3BucketName"])["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms",
                                                          "KMSMasterKeyID": onboarded["KmsKeyArn"]}
    assert rule["BucketKeyEnabled"] is True
    topic = client(local_cloud, "sns").get_topic_attributes(TopicArn=onboarded["SnsTopicArn"])["Attributes"]
    assert topic["KmsMasterKeyId"] == onboarded["KmsKeyArn"]
    queue = client(local_cloud, "sqs").get_queue_attributes(QueueUrl=onboarded["SqsQueueUrl"],
                                                             AttributeNames=["All"])["Attributes"]
    assert queue["MessageRetentionPeriod"] == "604800"
    assert queue["KmsMasterKeyId"] == onboarded["KmsKeyArn"]
    notification = s3.get_bucket_notification_configuration(Bucket=onboarded["S3BucketName"])
    assert [c["TopicArn"] for c in notification["TopicConfigurations"]] == [onboarded["SnsTopicArn"]]
    role = client(local_cloud, "iam").get_role(RoleName="e2e-main-role")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] == DEMO_WORKBENCH_GUID
    assert ":policy/" in role["PermissionsBoundary"]["PermissionsBoundaryArn"]


def _bucket_passes_the_private_bucket_controls(s3: Any, bucket: str) -> dict[str, Any]:
    """CIS 3.3 / CloudTrail.6, S3.2/S3.3/S3.8 (public access), S3.5 (TLS only), S3.12 (no ACLs), S3.14
    (versioning), S3.13/S3.10 (lifecycle); returns the bucket policy for the caller's own checks."""
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values()), "S3.8"
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False, "CIS 3.3"
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}], "S3.12"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled", "S3.14"
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert any(r["Status"] == "Enabled" for r in rules), "S3.13"
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}} in policy["Statement"], "S3.5"
    # S3.6: only service principals of this account's resources are granted, never another account.
    assert all(s["Effect"] == "Deny" or "Service" in s["Principal"] for s in policy["Statement"]), "S3.6"
    return policy


def test_what_the_onboarding_creates_passes_the_cis_and_security_hub_logging_controls(
        local_cloud: ServedCloud, onboarded: dict[str, str]) -> None:
    """Each "passes" row of the README's "CIS and Security Hub" table, as AWS holds it after the deploy."""
    s3, bucket = client(local_cloud, "s3"), onboarded["S3BucketName"]
    access_logs = "e2e-main-access-logs"
    _bucket_passes_the_private_bucket_controls(s3, bucket)
    _bucket_passes_the_private_bucket_controls(s3, access_logs)
    assert s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]["TargetBucket"] == access_logs, "CIS 3.6"
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms", "S3.17"
    access_encryption = s3.get_bucket_encryption(Bucket=access_logs)["ServerSideEncryptionConfiguration"]["Rules"]
    assert access_encryption[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"  # S3 requires it

    cloudtrail = client(local_cloud, "cloudtrail")
    trail = cloudtrail.get_trail(Name="e2e-main-trail")["Trail"]
    assert trail["IsMultiRegionTrail"] and cloudtrail.get_trail_status(Name="e2e-main-trail")["IsLogging"], "CIS 3.1"
    assert trail["LogFileValidationEnabled"] is True, "CIS 3.2"
    assert trail["KmsKeyId"] == onboarded["KmsKeyArn"], "CIS 3.7"
    group_arn = trail["CloudWatchLogsLogGroupArn"]
    assert group_arn.endswith(":log-group:aws-cloudtrail-logs-123456789012-e2e-main-trail:*"), "CIS 3.4"
    assert trail["CloudWatchLogsRoleArn"].startswith("arn:aws:iam::123456789012:role/"), "CIS 3.4"
    group = client(local_cloud, "logs").describe_log_groups(
        logGroupNamePrefix="aws-cloudtrail-logs-123456789012-e2e-main-trail")["logGroups"][0]
    assert (group["kmsKeyId"], group["retentionInDays"]) == (onboarded["KmsKeyArn"], 30), "CIS 3.4"

    kms = client(local_cloud, "kms")
    assert kms.get_key_rotation_status(KeyId=onboarded["KmsKeyArn"])["KeyRotationEnabled"] is True, "CIS 3.8 / KMS.4"
    topic = client(local_cloud, "sns").get_topic_attributes(TopicArn=onboarded["SnsTopicArn"])["Attributes"]
    assert topic["KmsMasterKeyId"], "SNS.1"
    queue = client(local_cloud, "sqs").get_queue_attributes(QueueUrl=onboarded["SqsQueueUrl"],
                                                             AttributeNames=["KmsMasterKeyId"])["Attributes"]
    assert queue["KmsMasterKeyId"], "SQS.1"


def test_workbench_holds_exactly_one_device_for_the_onboarding(local_cloud: ServedCloud,
                                                               onboarded: dict[str, str]) -> None:
    devices = [d for d in workbench_devices(local_cloud) if d["attributes"]["name"] == "e2e-main CloudTrail"]
    assert [d["id"] for d in devices] == [onboarded["WorkbenchDeviceId"]]


def test_api_key_appears_in_no_log_output_or_execution_history(local_cloud: ServedCloud,
                                                               onboarded: dict[str, str]) -> None:
    seen: list[str] = [json.dumps(stack(local_cloud, "e2e-main"), default=str), onboarded["stdout"]]
    sfn = client(local_cloud, "stepfunctions")
    execution = onboarded["ExecutionArn"]
    seen.append(json.dumps(sfn.describe_execution(executionArn=execution), default=str))
    seen.append(json.dumps(sfn.get_execution_history(executionArn=execution, maxResults=1000), default=str))
    logs = client(local_cloud, "logs")
    log_lines = 0
    for group in logs.describe_log_groups()["logGroups"]:
        for log_stream in logs.describe_log_streams(logGroupName=group["logGroupName"])["logStreams"]:
            events = logs.get_log_events(logGroupName=group["logGroupName"],
                                         logStreamName=log_stream["logStreamName"])["events"]
            log_lines += len(events)
            seen.extend(e["message"] for e in events)
    assert log_lines > 0, "no Lambda logs were captured: the check would prove nothing"
    assert "Step 10" in json.dumps(seen), "the history does not cover the registration step"
    leaks = [text[:200] for text in seen if DEMO_API_KEY in text]
    assert leaks == []


def test_where_to_answer_cloudformation_is_not_in_the_executions_input_or_history(
        local_cloud: ServedCloud, onboarded: dict[str, str]) -> None:
    """Whoever can read an execution could answer for the stack with its pre-signed ResponseURL."""
    sfn = client(local_cloud, "stepfunctions")
    execution = sfn.describe_execution(executionArn=onboarded["ExecutionArn"])
    history = sfn.get_execution_history(executionArn=onboarded["ExecutionArn"], maxResults=1000)
    assert json.loads(execution["input"])["CloudFormation"]["RequestType"] == "Create"
    text = json.dumps([execution, history], default=str)
    assert "ResponseURL" not in text and "cfnresponse" not in text  # the local cloud's ResponseURL path


def test_failing_step_fails_the_stack_naming_the_step(local_cloud: ServedCloud,
                                                      preflight_refused: dict[str, Any]) -> None:
    name = preflight_refused["name"]
    assert preflight_refused["result"].returncode != 0
    assert preflight_refused["seconds"] < 120
    reason = custom_resource_reason(local_cloud, name)
    assert "Preflight Checks failed" in reason and "QueueName" in reason
    assert "console.aws.amazon.com/states" in reason
    buckets = [b["Name"] for b in client(local_cloud, "s3").list_buckets()["Buckets"]]
    assert f"{name}-logs-bucket" not in buckets


def test_role_made_by_hand_fails_the_stack_before_anything_is_built(local_cloud: ServedCloud,
                                                                    built_template: Path) -> None:
    # A person who followed Expel's guide by hand already has the role: the onboarding must say so before it
    # builds a trail, key, bucket, topic and queue that step 8 would then leave behind.
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"AWS": "arn:aws:iam::012205512454:root"}}]}
    client(local_cloud, "iam").create_role(RoleName="e2e-byhand-role", AssumeRolePolicyDocument=json.dumps(trust))
    params = onboarding_parameters(local_cloud, "e2e-byhand")
    result = run_cli(*deploy_command(local_cloud, built_template, "e2e-byhand", params), timeout=300)
    assert result.returncode != 0
    reason = custom_resource_reason(local_cloud, "e2e-byhand")
    assert "Preflight Checks failed" in reason and "Parameter RoleName" in reason
    assert "e2e-byhand-logs-bucket" not in [b["Name"] for b in client(local_cloud, "s3").list_buckets()["Buckets"]]
    assert "e2e-byhand" not in json.dumps(client(local_cloud, "sqs").list_queues())
    assert "e2e-byhand" not in json.dumps(client(local_cloud, "sns").list_topics())
    assert "e2e-byhand" not in json.dumps(client(local_cloud, "cloudtrail").describe_trails())
    with pytest.raises(client(local_cloud, "kms").exceptions.NotFoundException):
        client(local_cloud, "kms").describe_key(KeyId="alias/e2e-byhand-key")
    # The stack rolled back (its Delete ran the teardown) and the person's own role is still there.
    assert stack(local_cloud, "e2e-byhand")["StackStatus"] == "ROLLBACK_COMPLETE"
    assert client(local_cloud, "iam").get_role(RoleName="e2e-byhand-role")["Role"]["AssumeRolePolicyDocument"]


def test_retry_inside_the_window_completes_the_stack(local_cloud: ServedCloud, built_template: Path) -> None:
    sqs = client(local_cloud, "sqs")
    blocker = sqs.create_queue(QueueName="e2e-retry-queue")["QueueUrl"]
    params = onboarding_parameters(local_cloud, "e2e-retry", RetryWindowSeconds="240")
    with _deploying(local_cloud, built_template, "e2e-retry", params) as deploy:
        sfn = client(local_cloud, "stepfunctions")
        failed = _wait_for_execution(sfn, "e2e-retry-onboarding", "FAILED")
        waiting = stack(local_cloud, "e2e-retry")["StackStatus"]
        sqs.delete_queue(QueueUrl=blocker)  # the person fixes the cause ...
        original = sfn.describe_execution(executionArn=failed)
        sfn.start_execution(stateMachineArn=original["stateMachineArn"],  # ... and retries from the console
                            name="retry-by-a-person", input=original["input"])
        output, _ = deploy.communicate(timeout=300)
    assert waiting == "CREATE_IN_PROGRESS"  # the retry window kept CloudFormation waiting
    assert deploy.returncode == 0, output[-3000:]
    assert stack(local_cloud, "e2e-retry")["StackStatus"] == "CREATE_COMPLETE"
    done = outputs(local_cloud, "e2e-retry")
    assert all(done[name] for name in GUIDE_OUTPUTS) and done["SqsQueueUrl"].endswith("/e2e-retry-queue")
    assert done["ExecutionArn"].endswith(":retry-by-a-person")


def test_redrive_inside_the_window_completes_the_stack_with_every_output(local_cloud: ServedCloud,
                                                                          built_template: Path) -> None:
    # A revoked API key: Workbench answers 401 and step 10 fails after steps 1-8 built everything.
    params = onboarding_parameters(local_cloud, "e2e-redrive", RetryWindowSeconds="240",
                                   WorkbenchApiKey="revoked-key")
    with _deploying(local_cloud, built_template, "e2e-redrive", params) as deploy:
        sfn = client(local_cloud, "stepfunctions")
        failed = _wait_for_execution(sfn, "e2e-redrive-onboarding", "FAILED")
        waiting = stack(local_cloud, "e2e-redrive")["StackStatus"]
        history = sfn.get_execution_history(executionArn=failed, maxResults=1000)["events"]
        assert history[-1]["type"] == "ExecutionFailed" and "HTTP 401" in history[-1][
            "executionFailedEventDetails"]["cause"]
        # The person puts a valid key into the secret (README: Troubleshooting) ...
        secret = json.loads(sfn.describe_execution(executionArn=failed)["input"])["Config"]["WorkbenchApiKeySecretArn"]
        client(local_cloud, "secretsmanager").put_secret_value(SecretId=secret, SecretString=DEMO_API_KEY)
        sfn.redrive_execution(executionArn=failed)  # ... and chooses Redrive in the Step Functions console
        output, _ = deploy.communicate(timeout=300)
    assert waiting == "CREATE_IN_PROGRESS"  # the retry window kept CloudFormation waiting
    assert deploy.returncode == 0, output[-3000:]
    assert stack(local_cloud, "e2e-redrive")["StackStatus"] == "CREATE_COMPLETE"
    done = outputs(local_cloud, "e2e-redrive")
    assert all(done[name] for name in GUIDE_OUTPUTS) and done["WorkbenchDeviceId"]
    assert done["ExecutionArn"] == failed  # a redrive keeps the execution, and the poll read its success
    redriven = sfn.describe_execution(executionArn=failed)
    assert redriven["status"] == "SUCCEEDED" and redriven["redriveCount"] == 1
    events = sfn.get_execution_history(executionArn=failed, maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert entered.count("Step 1 Create Trail") == 1  # the steps that had succeeded did not run again
    assert entered.count("Step 10 Register Workbench Device") == 2
    assert [e["type"] for e in events].count("ExecutionRedriven") == 1


def test_aborted_execution_fails_the_stack_without_waiting(local_cloud: ServedCloud, built_template: Path) -> None:
    # Longer polls keep the execution inside a Wait state (about 2 s in the local cloud's compressed time) long enough
    # to abort it there; the rollback's teardown waits as long for the role stack's removal.
    params = onboarding_parameters(local_cloud, "e2e-abort", StatusPollSeconds="60", RetryWindowSeconds="600")
    with _deploying(local_cloud, built_template, "e2e-abort", params) as deploy:
        sfn = client(local_cloud, "stepfunctions")
        running = _wait_for_execution(sfn, "e2e-abort-onboarding", "RUNNING")
        _wait_for_event(sfn, running, "WaitStateEntered")
        sfn.stop_execution(executionArn=running, error="Aborted", cause="stopped by a person")
        aborted_at = time.monotonic()
        output, _ = deploy.communicate(timeout=240)
    assert deploy.returncode != 0, output[-3000:]
    assert time.monotonic() - aborted_at < 60
    assert stack(local_cloud, "e2e-abort")["StackStatus"] == "ROLLBACK_COMPLETE"


@contextlib.contextmanager
def _deploying(cloud: ServedCloud, template: Path, stack: str, params: list[str]
               ) -> Iterator[subprocess.Popen[str] | ForkedProcess]:
    """``local deploy`` running in the background while the test acts as a person would; killed should the test
    end before it does."""
    deploy = start_cli(*deploy_command(cloud, template, stack, params))
    try:
        yield deploy
    finally:
        if deploy.poll() is None:
            deploy.kill()


def _wait_for_execution(sfn: Any, machine_name: str, status: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        machines = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
                    if m["name"] == machine_name]
        for machine in machines:
            for execution in sfn.list_executions(stateMachineArn=machine)["executions"]:
                if execution["status"] == status:
                    return str(execution["executionArn"])
        time.sleep(0.5)
    raise AssertionError(f"no {status} execution of {machine_name} within {timeout} s")


def _wait_for_event(sfn: Any, execution: str, event_type: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not any(e["type"] == event_type for e in sfn.get_execution_history(
            executionArn=execution, reverseOrder=True, maxResults=20)["events"]):
        assert time.monotonic() < deadline, f"{execution} had no {event_type} event within {timeout} s"
        time.sleep(0.2)


def test_the_trail_delivers_signed_log_files_whose_events_reach_the_queue(local_cloud: ServedCloud,
                                                                          onboarded: dict[str, str]) -> None:
    """The data path as in production: it starts at the trail, not at a test's own object."""
    sqs, s3 = client(local_cloud, "sqs"), client(local_cloud, "s3")
    prefix = f"AWSLogs/123456789012/CloudTrail/{REGION}/"
    seen: list[str] = []
    handles: list[str] = []
    deadline = time.monotonic() + 60
    while not seen and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=onboarded["SqsQueueUrl"], MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1).get("Messages", []):
            handles.append(message["ReceiptHandle"])
            for record in json.loads(message["Body"]).get("Records", []):
                if record["s3"]["object"]["key"].startswith(prefix):
                    seen.append(record["s3"]["object"]["key"])
    for handle in handles:  # leave them for the next reader, as Expel would find them
        sqs.change_message_visibility(QueueUrl=onboarded["SqsQueueUrl"], ReceiptHandle=handle, VisibilityTimeout=0)
    assert seen, "no CloudTrail log file event reached the queue within a minute"
    head = s3.head_object(Bucket=onboarded["S3BucketName"], Key=seen[0])
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == onboarded["KmsKeyArn"]
    names = {r["eventName"] for key in s3.list_objects_v2(Bucket=onboarded["S3BucketName"], Prefix=prefix)["Contents"]
             for r in json.loads(gzip.decompress(s3.get_object(Bucket=onboarded["S3BucketName"],
                                                                Key=key["Key"])["Body"].read()))["Records"]}
    assert {"CreateTopic", "CreateQueue", "PutKeyPolicy"} <= names  # the onboarding's own steps, logged
    digests = s3.list_objects_v2(Bucket=onboarded["S3BucketName"],
                                 Prefix=f"AWSLogs/123456789012/CloudTrail-Digest/{REGION}/").get("Contents", [])
    assert digests, "log file validation is on, yet no digest file was delivered"
