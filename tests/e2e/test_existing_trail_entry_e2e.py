"""Existing-trail mode (``ExistingTrailName``) on a trail whose bucket has no feed to a topic yet, from a customer's
starting state made with plain API calls (``tests/customer_trail.py``): a trail encrypting with its own key, a
notification of theirs sending ObjectRemoved events to a queue of theirs.

What a person checks: our entry for the trail's log folder beside theirs, the statements added to the trail's key,
the findings ``status`` shows, the drift check naming their trail when it stops logging, and a delete that takes
only what the onboarding added.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from expel_onboarding.policies.key_policy import BUCKET_SID, SNS_SID, stack_sid
from expel_onboarding.policies.notification import notification_id
from tests import customer_trail
from tests.e2e.test_existing_trail_e2e import ACCOUNT, _statements
from tests.e2e.test_onboarding_e2e import REGION, client, deploy_command, outputs
from tests.local_cloud.harness import ServedCloud, onboarding_parameters, run_cli

pytestmark = pytest.mark.e2e


def test_their_trail_without_a_feed_gets_our_entry_for_its_log_folder_and_loses_only_that(
        local_cloud: ServedCloud, built_template: Path) -> None:
    stack, trail = "e2e-existing-entry", "E2eAnotherTrail"
    customer = customer_trail.build(lambda s: client(local_cloud, s), ACCOUNT, REGION, name=trail,
                                    bucket="e2e-another-trail-logs")
    before, notification_before = customer.snapshot(lambda s: client(local_cloud, s)), customer.notification(
        lambda s: client(local_cloud, s))
    params = onboarding_parameters(local_cloud, stack, ExistingTrailName=trail)

    created = run_cli(*deploy_command(local_cloud, built_template, stack, params), timeout=400)

    assert created.returncode == 0, created.stdout[-3000:] + created.stderr[-3000:]
    found = outputs(local_cloud, stack)
    assert found["KmsKeyArn"] == customer.key_arn and found["SnsTopicArn"].endswith(f":{stack}-topic")
    # Their entry kept, ours added beside it for the trail's log folder only (a canary went through it).
    notification = customer.notification(lambda s: client(local_cloud, s))
    assert notification["QueueConfigurations"] == notification_before["QueueConfigurations"]
    [ours] = notification["TopicConfigurations"]
    assert (ours["Id"], ours["TopicArn"]) == (notification_id(stack), found["SnsTopicArn"])
    assert [(r["Name"].lower(), r["Value"]) for r in ours["Filter"]["Key"]["FilterRules"]] == [
        ("prefix", customer.log_prefix)]
    after = customer.snapshot(lambda s: client(local_cloud, s))
    assert [s["Sid"] for s in _statements(after["key_policy"])[len(_statements(before["key_policy"])):]] == [
        stack_sid(BUCKET_SID, stack), stack_sid(SNS_SID, stack)]
    assert after["bucket_policy"] == before["bucket_policy"] and after["trail"] == before["trail"]
    # The findings the template outputs, and `status` shows: their bucket's public access is not blocked.
    assert "does not block all public access" in found["TrailFindings"]
    shown = run_cli("status", "--stack", stack, "--endpoint-url", local_cloud.url, "--region", REGION)
    assert "does not block all public access" in shown.stdout, shown.stdout + shown.stderr
    # Drift of their trail: never changed by us, but named when it stops serving Expel (read-only role).
    client(local_cloud, "cloudtrail").stop_logging(Name=trail)
    checked = run_cli("doctor", "--stack", stack, "--endpoint-url", local_cloud.url, "--region", REGION)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "Guide step 1  Create a new trail: 1 difference (an existing trail" in checked.stdout, checked.stdout
    assert "logging is off" in checked.stdout and "AccessDenied" not in checked.stdout, checked.stdout
    client(local_cloud, "cloudtrail").start_logging(Name=trail)

    deleted = run_cli("local", "delete", "--endpoint-url", local_cloud.url, "--stack-name", stack, timeout=400)

    assert deleted.returncode == 0, deleted.stdout[-3000:] + deleted.stderr[-3000:]
    assert customer.snapshot(lambda s: client(local_cloud, s)) == before
    assert customer.notification(lambda s: client(local_cloud, s)) == notification_before
    assert f"{stack}-topic" not in json.dumps(client(local_cloud, "sns").list_topics())
    client(local_cloud, "cloudtrail").delete_trail(Name=trail)  # the customer's: it would log for every later test
