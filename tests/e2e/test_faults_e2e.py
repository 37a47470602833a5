"""The onboarding under AWS's failures: throttled writes converge to exactly one of everything, and a
refusal ends in a FAILED answer naming the step, fast.

Each scenario runs its own ``local serve --fault ...``, since faults count every caller's calls.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_cloud.cli import DEMO_API_KEY
from tests.e2e.test_local_cloud import sam_env
from tests.local_cloud.harness import ServedCloud, client, onboarding_parameters, run_cli, run_sam, serve_child

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
# Each step's first write, once (the SDK's own retries absorb it); SNS's modeled "Throttled" (429) the SDK
# does not retry (the state machine must); the alias right after the key, past every SDK retry, so
# step 1 fails after writing part of its work and runs again; and Lambda throttling Step Functions' first
# invocation (Lambda.TooManyRequestsException, which the state machine retries).
FIRST_WRITES = [
    "lambda:Invoke=TooManyRequestsException",
    "kms:CreateKey=ThrottlingException",
    "kms:CreateAlias=ThrottlingException:6",
    "s3:CreateBucket=SlowDown",
    "cloudtrail:CreateTrail=ThrottlingException",
    "s3:PutBucketEncryption=SlowDown",
    "sns:CreateTopic=Throttled",
    "kms:PutKeyPolicy=ThrottlingException",
    "sqs:CreateQueue=RequestThrottled",
    "sns:Subscribe=Throttling",
    "s3:PutBucketNotificationConfiguration=SlowDown",
    "cloudformation:CreateStack=Throttling",
    "s3:PutObject=SlowDown",
]


def deploy(cloud: ServedCloud, template: Path, name: str, timeout: float = 400, **overrides: str) -> Any:
    return run_cli("local", "deploy", "--endpoint-url", cloud.url, "--stack-name", name, "--template",
                   str(template), "--timeout", str(timeout), "--parameter-overrides",
                   *onboarding_parameters(cloud, name, **overrides), timeout=timeout + 60)


def workbench(cloud: ServedCloud, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(f"{cloud.workbench_url}{path}", method="POST" if body else "GET",  # noqa: S310
                                     data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {DEMO_API_KEY}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback emulator
        return json.loads(response.read())


@pytest.fixture(scope="module")
def throttled(built_template: Path) -> Iterator[tuple[ServedCloud, Any]]:
    args = [part for spec in FIRST_WRITES for part in ("--fault", spec)]
    with serve_child(extra_args=args) as cloud:
        # Workbench loses the answer to the device's creation once (503 after creating it).
        workbench(cloud, "/_emulator/faults", {"status": 503, "count": 1, "method": "POST", "processed": True})
        result = deploy(cloud, built_template, "e2e-throttled")
        yield cloud, result


def test_throttled_onboarding_completes_and_every_fault_was_met(throttled: tuple[ServedCloud, Any]) -> None:
    cloud, result = throttled
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    injected = Counter(line.split("injected fault: ")[1].split(" answered")[0]
                       for line in cloud.output if "injected fault: " in line)
    expected = Counter({spec.split("=")[0]: int((spec.split("=")[1].split(":") + ["1"])[1]) for spec in FIRST_WRITES})
    assert injected == expected


def test_throttled_onboarding_made_exactly_one_of_everything(throttled: tuple[ServedCloud, Any]) -> None:
    cloud, _ = throttled
    kms, s3, sns, sqs = (client(cloud, name) for name in ("kms", "s3", "sns", "sqs"))
    tag = {"TagKey": "expel-onboarding:stack", "TagValue": "e2e-throttled"}
    ours = [k["KeyId"] for k in kms.list_keys()["Keys"]
            if tag in kms.list_resource_tags(KeyId=k["KeyId"])["Tags"]
            and kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"]
    assert len(ours) == 1, "step 1 ran twice and left a second key behind"
    assert kms.describe_key(KeyId="alias/e2e-throttled-key")["KeyMetadata"]["KeyId"] == ours[0]
    key_sids = [s.get("Sid") for s in json.loads(kms.get_key_policy(KeyId=ours[0], PolicyName="default")["Policy"])[
        "Statement"]]
    assert len(key_sids) == len(set(key_sids))
    bucket_sids = [s.get("Sid") for s in json.loads(s3.get_bucket_policy(Bucket="e2e-throttled-logs-bucket")["Policy"])[
        "Statement"]]
    assert len(bucket_sids) == len(set(bucket_sids))
    trails = [t for t in client(cloud, "cloudtrail").describe_trails()["trailList"]
              if t["Name"] == "e2e-throttled-trail"]
    assert len(trails) == 1
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":e2e-throttled-topic")]
    assert len(topics) == 1
    topic_policy = json.loads(sns.get_topic_attributes(TopicArn=topics[0])["Attributes"]["Policy"])
    assert len(topic_policy["Statement"]) == len({json.dumps(s, sort_keys=True) for s in topic_policy["Statement"]})
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topics[0])["Subscriptions"]
    assert [s["Endpoint"].rsplit(":", 1)[1] for s in subscriptions] == ["e2e-throttled-queue"]
    assert [u for u in sqs.list_queues()["QueueUrls"] if u.endswith("/e2e-throttled-queue")]
    notification = s3.get_bucket_notification_configuration(Bucket="e2e-throttled-logs-bucket")
    assert [c["TopicArn"] for c in notification.get("TopicConfigurations", [])] == topics
    role_stacks = [s for s in client(cloud, "cloudformation").list_stacks()["StackSummaries"]
                   if s["StackName"].startswith("e2e-throttled-") and s["StackStatus"] != "DELETE_COMPLETE"]
    assert len(role_stacks) == 1
    devices = [d for d in workbench(cloud, "/api/v2/security_devices")["data"]
               if d["attributes"]["name"] == "e2e-throttled CloudTrail"]
    assert len(devices) == 1


def test_steps_past_the_sdks_retries_were_retried_by_the_state_machine(throttled: tuple[ServedCloud, Any]) -> None:
    cloud, _ = throttled
    sfn = client(cloud, "stepfunctions")
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
                   if m["name"] == "e2e-throttled-onboarding")
    execution = sfn.list_executions(stateMachineArn=machine)["executions"][0]["executionArn"]
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    failed = [details for e in events for name, details in e.items()
              if name.endswith("FailedEventDetails") and e["type"] in ("TaskFailed", "LambdaFunctionFailed")]
    assert Counter(f["error"] for f in failed) == Counter({"TransientError": 3, "Lambda.TooManyRequestsException": 1})
    messages = " | ".join(json.loads(f["cause"])["errorMessage"] for f in failed if f["error"] == "TransientError")
    # Step 1 (the alias), step 3 (the topic, SNS's unretried 429) and step 10 (Workbench's lost answer), once each.
    assert "alias/e2e-throttled-key" in messages and "Throttled" in messages and "Workbench" in messages, messages


def test_access_denied_fails_the_stack_naming_the_step_and_rolls_it_back(built_template: Path) -> None:
    """The unchanged ``sam deploy`` a person runs: step 3 is refused after step 1 built the trail; CloudFormation
    rolls back, its Delete runs the teardown, and SAM prints what it prints on AWS."""
    with serve_child(extra_args=["--fault", "sns:CreateTopic=AuthorizationError"]) as cloud:
        parameters = [f'{p.split("=", 1)[0]}="{p.split("=", 1)[1]}"'
                      for p in onboarding_parameters(cloud, "e2e-denied", RetryWindowSeconds="0")]
        started = time.monotonic()
        # A wide terminal, so that SAM's event table keeps each column on one line.
        result = run_sam(["deploy", "--template-file", str(built_template), "--stack-name", "e2e-denied",
                          "--capabilities", "CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "--no-confirm-changeset",
                          "--resolve-s3", "--region", REGION, "--parameter-overrides", *parameters],
                         dict(sam_env(cloud), COLUMNS="400"), timeout=300)
        elapsed = time.monotonic() - started
        cfn = client(cloud, "cloudformation")
        events = cfn.describe_stack_events(StackName="e2e-denied")["StackEvents"]
        status = cfn.describe_stacks(StackName="e2e-denied")["Stacks"][0]["StackStatus"]
        trails = client(cloud, "cloudtrail").describe_trails()["trailList"]
        machines = client(cloud, "stepfunctions").list_state_machines()["stateMachines"]
    assert result.returncode != 0
    assert elapsed < 150, f"took {elapsed:.0f} s to fail and roll back"
    reason = " ".join(e.get("ResourceStatusReason", "") for e in events if e["LogicalResourceId"] == "Onboarding")
    assert "Step 3 Create SNS Topic failed" in reason and "AuthorizationError" in reason
    # What sam deploy prints on AWS: the rollback's events (a table SAM wraps to the terminal), then the waiter's error.
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["CREATE_FAILED", "Custom::CloudTrailOnboarding", "Onboarding", "Received"] in [r[:4] for r in rows], \
        result.stdout[-3000:]
    assert ["ROLLBACK_IN_PROGRESS", "AWS::CloudFormation::Stack", "e2e-denied", "The"] in [r[:4] for r in rows]
    assert ["DELETE_COMPLETE", "Custom::CloudTrailOnboarding", "Onboarding"] in [r[:3] for r in rows]
    assert ["ROLLBACK_COMPLETE", "AWS::CloudFormation::Stack", "e2e-denied"] in [r[:3] for r in rows]
    assert 'Error: Failed to create/update the stack: e2e-denied, Waiter StackCreateComplete failed: Waiter ' \
           'encountered a terminal failure state: For expression "Stacks[].StackStatus" we matched expected path: ' \
           '"ROLLBACK_COMPLETE"' in result.stderr, result.stderr[-2000:]
    assert status == "ROLLBACK_COMPLETE"
    # The Delete the rollback sent ran the teardown: the trail step 1 made is gone, and the stack's own resources.
    assert ("Onboarding", "DELETE_COMPLETE") in {(e["LogicalResourceId"], e["ResourceStatus"]) for e in events}
    assert "e2e-denied-trail" not in {t["Name"] for t in trails}
    assert not [m for m in machines if m["name"].startswith("e2e-denied")]
