"""Existing-trail mode (``ExistingTrailName``) on the local cloud, from a customer's starting state made
with plain API calls as a customer would (``tests/customer_trail.py``): a multi-region trail encrypting
with its own key, CloudTrail's bucket policy plus a statement of theirs, a notification of theirs sending
ObjectRemoved events to a queue of theirs and a topic of theirs that already gets every log file with
their SIEM's queue subscribed (a bucket without such a feed: ``test_existing_trail_entry_e2e``).

What a person checks: the stack completes with the trail's values as Outputs; a second run of the
onboarding writes nothing; an update converges; the delete leaves every trail setting, statement, entry
and subscription of theirs exactly as it found them.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from expel_onboarding.policies.key_policy import BUCKET_SID, SNS_SID, stack_sid
from expel_onboarding.policies.topic_policy import stack_sid as topic_stack_sid
from tests import customer_trail
from tests.e2e.test_onboarding_e2e import REGION, client, deploy_command, outputs, workbench_devices
from tests.local_cloud.harness import ServedCloud, onboarding_parameters, run_cli
from tests.support import READ_PREFIXES

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"
# The services whose resources the onboarding reads and writes (not the custom resource's own machinery:
# Step Functions, EventBridge, Lambda permissions, logs).
MANAGED_SERVICES = frozenset({"cloudtrail", "s3", "kms", "sns", "sqs", "iam", "cloudformation", "organizations"})


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document["Statement"])


def _moto_api(cloud: ServedCloud, path: str, method: str = "POST") -> str:
    request = urllib.request.Request(f"{cloud.url}/moto-api/recorder/{path}",  # noqa: S310 - loopback emulator
                                     method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback emulator
        return response.read().decode()


def _operation(entry: dict[str, Any]) -> tuple[str, str]:
    """(service, operation) of one recorded request, from its signature and its protocol."""
    headers = {k.lower(): v for k, v in entry["headers"].items()}
    credential = headers.get("authorization", "").split("Credential=", 1)[-1].split(",")[0].split("/")
    service = credential[3] if len(credential) > 3 else ""
    if "x-amz-target" in headers:
        return service, headers["x-amz-target"].rsplit(".", 1)[-1]
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    action = parse_qs(body).get("Action") or parse_qs(urlsplit(entry["url"]).query).get("Action")
    if action:
        return service, action[0]
    # REST (S3): only reads are GET and HEAD.
    method = entry["method"]
    return service, ("Get" if method in ("GET", "HEAD") else method) + " " + urlsplit(entry["url"]).path


def functions_calls(cloud: ServedCloud, run: Any) -> list[str]:
    """Every call the onboarding's functions (requests signed with a Lambda role's session) made to the
    services whose resources the onboarding manages while ``run()`` ran, as ``service.Operation``."""
    _moto_api(cloud, "reset-recording")
    _moto_api(cloud, "start-recording")
    try:
        run()
    finally:
        _moto_api(cloud, "stop-recording")
    recorded = _recorded(_moto_api(cloud, "download-recording", "GET"))
    calls = []
    for entry in recorded:
        if not any(k.lower() == "x-amz-security-token" for k in entry["headers"]):
            continue  # the test's own reads, the local cloud's engine
        service, operation = _operation(entry)
        if service in MANAGED_SERVICES:
            calls.append(f"{service}.{operation}")
    return calls


def _recorded(text: str) -> list[dict[str, Any]]:
    """The recorded requests. moto's recorder appends an entry's JSON, then its newline, in two writes; entries
    recorded at once by two threads can share a line (a large entry is one write, never split by another)."""
    decoder, entries, at = json.JSONDecoder(), [], 0
    while (at := len(text) - len(text[at:].lstrip())) < len(text):
        entry, at = decoder.raw_decode(text, at)
        entries.append(entry)
    return entries


def writes(calls: list[str]) -> list[str]:
    return [call for call in calls if not call.split(".", 1)[1].startswith(READ_PREFIXES)]


def _new_execution_with_the_same_input(cloud: ServedCloud, execution_arn: str) -> None:
    """What a person does from the console (New execution, same input), and waits for it."""
    sfn = client(cloud, "stepfunctions")
    described = sfn.describe_execution(executionArn=execution_arn)
    arn = sfn.start_execution(stateMachineArn=described["stateMachineArn"], name="rerun-by-hand",
                              input=described["input"])["executionArn"]
    deadline = time.monotonic() + 240
    while (status := sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING":
        assert time.monotonic() < deadline, "the rerun did not finish within 240 s"
        time.sleep(0.2)
    assert status == "SUCCEEDED", sfn.get_execution_history(executionArn=arn, reverseOrder=True)["events"][:3]


def _role_policies(cloud: ServedCloud, role: str) -> dict[str, dict[str, Any]]:
    iam = client(cloud, "iam")
    return {name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            for name in iam.list_role_policies(RoleName=role)["PolicyNames"]}


def test_their_trail_and_siem_feed_onboarded_rerun_updated_and_deleted_leaving_theirs_intact(
        local_cloud: ServedCloud, built_template: Path) -> None:
    stack, trail = "e2e-existing", "E2eCustomersTrail"
    customer = customer_trail.build(lambda s: client(local_cloud, s), ACCOUNT, REGION, name=trail,
                                    bucket="e2e-customers-trail-logs", topic_entry=True)
    before, notification_before = customer.snapshot(lambda s: client(local_cloud, s)), customer.notification(
        lambda s: client(local_cloud, s))
    params = onboarding_parameters(local_cloud, stack, ExistingTrailName=trail)

    runs: list[Any] = []
    calls = functions_calls(local_cloud, lambda: runs.append(run_cli(*deploy_command(
        local_cloud, built_template, stack, params), timeout=400)))

    assert runs[0].returncode == 0, runs[0].stdout[-3000:] + runs[0].stderr[-3000:]
    # What the create wrote: beside our queue and role stack, only the statements and the subscription
    # below; nothing on the trail, the bucket or the bucket's notifications.
    assert {"kms.PutKeyPolicy", "sns.SetTopicAttributes", "sns.Subscribe", "sqs.CreateQueue"} <= set(writes(calls))
    assert [w for w in writes(calls) if w.startswith(("cloudtrail.", "s3."))] == []
    found = outputs(local_cloud, stack)
    assert (found["TrailArn"], found["S3BucketName"], found["KmsKeyArn"], found["SnsTopicArn"]) == (
        customer.trail_arn, customer.bucket, customer.key_arn, customer.topic_arn)
    assert found["KmsAlias"] == ""  # no key of ours: the trail's own encrypts their topic and our queue
    after = customer.snapshot(lambda s: client(local_cloud, s))
    for part in ("trail", "logging", "selectors", "bucket_policy", "encryption", "versioning", "key_state",
                 "topic_key"):
        assert after[part] == before[part], part
    assert customer.notification(lambda s: client(local_cloud, s)) == notification_before
    # Added, and only that: the guide's two statements on the trail's key (which also encrypts their topic)
    # under Sids naming the stack, the bucket's publish statement on their topic, Expel's queue subscribed.
    assert _statements(after["key_policy"])[:len(_statements(before["key_policy"]))] == _statements(
        before["key_policy"])
    assert [s["Sid"] for s in _statements(after["key_policy"])[len(_statements(before["key_policy"])):]] == [
        stack_sid(BUCKET_SID, stack), stack_sid(SNS_SID, stack)]
    assert [s["Sid"] for s in _statements(after["topic_policy"]) if s not in _statements(before["topic_policy"])
            ] == [topic_stack_sid(stack)]
    assert after["topic_subscriptions"] == sorted([*before["topic_subscriptions"], (found["SqsQueueArn"], "sqs")])
    # Expel's role reads the trail's log folder only, and the device says the trail existed.
    role = found["IamRoleArn"].rsplit("/", 1)[1]
    grants = json.dumps(_role_policies(local_cloud, role))
    assert f"arn:aws:s3:::{customer.bucket}/{customer.log_prefix}*" in grants and customer.key_arn in grants
    device = next(d for d in workbench_devices(local_cloud) if d["id"] == found["WorkbenchDeviceId"])
    assert device["attributes"]["device_spec"].get("existing_trail") is True

    # Rerun: the console's "New execution" with the same input converges without writing anything.
    calls = functions_calls(local_cloud, lambda: _new_execution_with_the_same_input(local_cloud,
                                                                                     found["ExecutionArn"]))
    assert "cloudtrail.GetTrail" in calls and "kms.GetKeyPolicy" in calls  # every step looked, and
    assert writes(calls) == []  # wrote nothing
    # Update: a changed Workbench location converges the one device; nothing of AWS is written.
    updated: list[Any] = []
    calls = functions_calls(local_cloud, lambda: updated.append(run_cli(*deploy_command(
        local_cloud, built_template, stack, [*params, "WorkbenchLocation=moved by update"]), timeout=400)))
    assert updated[0].returncode == 0, updated[0].stdout[-3000:] + updated[0].stderr[-3000:]
    assert "cloudtrail.GetTrail" in calls and writes(calls) == []
    devices = [d for d in workbench_devices(local_cloud) if d["attributes"]["name"] == f"{stack} CloudTrail"]
    assert [d["attributes"]["location"] for d in devices] == ["moved by update"]

    deleted = run_cli("local", "delete", "--endpoint-url", local_cloud.url, "--stack-name", stack, timeout=400)

    assert deleted.returncode == 0, deleted.stdout[-3000:] + deleted.stderr[-3000:]
    assert customer.snapshot(lambda s: client(local_cloud, s)) == before
    assert customer.notification(lambda s: client(local_cloud, s)) == notification_before
    assert found["SqsQueueUrl"] not in json.dumps(client(local_cloud, "sqs").list_queues())
    assert role not in [r["RoleName"] for r in client(local_cloud, "iam").list_roles()["Roles"]]
    assert found["WorkbenchDeviceId"] not in {d["id"] for d in workbench_devices(local_cloud)}
    client(local_cloud, "cloudtrail").delete_trail(Name=trail)  # the customer's: it would log for every later test
