"""Existing-trail mode (``ExistingTrailName``) on an organization trail of the management account, end to end
through ``local serve``: onboarded, narrowed to one organization's folder, filtered to one OU's accounts, rerun,
drift-checked after an account moved into the OU, repaired and deleted, leaving the customer's trail intact.

The local cloud and its organization (member accounts in a nested OU and one in the root) are this module's own:
an organization is account-wide, and the other e2e tests onboard single accounts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from expel_onboarding.policies.notification import account_entry_id, notification_id
from tests import customer_trail
from tests.e2e.test_existing_trail_e2e import _new_execution_with_the_same_input, functions_calls, writes
from tests.e2e.test_onboarding_e2e import deploy_command
from tests.e2e.test_organizations_e2e import LAYOUT, MANAGEMENT, REGION
from tests.local_cloud.harness import ServedCloud, onboarding_parameters, run_cli, serve_child
from tests.organization import Organization, build
from tests.support import DATA_PATH_POLICY

pytestmark = pytest.mark.e2e


@dataclass
class InOrganization:
    cloud: ServedCloud
    template: Path
    organization: Organization

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.cloud.url, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def onboarded(built_template: Path) -> Iterator[InOrganization]:
    """The organization, its CloudTrail trusted access on, on a local cloud of its own (nothing deployed yet)."""
    with serve_child() as cloud:
        org = boto3.client("organizations", endpoint_url=cloud.url, region_name=REGION,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        organization = build(org, LAYOUT, trusted=("member.org.stacksets.cloudformation.amazonaws.com",
                                                   "cloudtrail.amazonaws.com"))
        yield InOrganization(cloud, built_template, organization)


def test_their_organization_trail_without_a_key_is_onboarded_narrowed_to_one_organization_and_left_intact(
        onboarded: InOrganization) -> None:
    """Existing-trail mode (``ExistingTrailName``) on an organization trail of the management account that has
    no KMS key of its own: the onboarding's own key encrypts only the topic and queue, the entry and Expel's
    read grant cover the organization's folder, an update narrows both to another organization's folder
    (``LogPrefixOrganizationId``: a bucket that collects several organizations' logs), an OU filter
    (``LogFilterOrganizationalUnitId``) gives one entry per member account of the OU and its nested OU, a rerun
    writes nothing, an account moved into the OU is named by the drift check and added by the next run, and the
    delete leaves everything of theirs as it was."""
    stack, name = "e2e-org-existing", "E2eOrgTrail"
    customer = customer_trail.build(onboarded.client, MANAGEMENT, REGION, name=name, bucket="e2e-org-trail-logs",
                                    key_prefix="", encrypted=False)
    organization_id = onboarded.client("organizations").describe_organization()["Organization"]["Id"]
    s3 = onboarded.client("s3")
    policy = json.loads(s3.get_bucket_policy(Bucket=customer.bucket)["Policy"])  # CloudTrail writes the org folder
    write = next(s for s in policy["Statement"] if s["Sid"] == "AWSCloudTrailWrite20150319")
    resources = write["Resource"] if isinstance(write["Resource"], list) else [write["Resource"]]
    write["Resource"] = [*resources, f"arn:aws:s3:::{customer.bucket}/AWSLogs/{organization_id}/*"]
    s3.put_bucket_policy(Bucket=customer.bucket, Policy=json.dumps(policy))
    onboarded.client("cloudtrail").update_trail(Name=name, IsOrganizationTrail=True)
    before, notification_before = customer.snapshot(onboarded.client), customer.notification(onboarded.client)

    def deploy(**overrides: str) -> dict[str, str]:
        params = onboarding_parameters(onboarded.cloud, stack, ExistingTrailName=name, **overrides)
        result = run_cli(*deploy_command(onboarded.cloud, onboarded.template, stack, params), timeout=400)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
        found = onboarded.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
        return {o["OutputKey"]: o["OutputValue"] for o in found}

    def entry_and_grant() -> tuple[str, str]:
        [ours] = customer.notification(onboarded.client)["TopicConfigurations"]
        [rule] = ours["Filter"]["Key"]["FilterRules"]
        grants = json.dumps({p: onboarded.client("iam").get_role_policy(RoleName=f"{stack}-role", PolicyName=p)
                             ["PolicyDocument"] for p in (DATA_PATH_POLICY,)})
        return rule["Value"], grants

    found = deploy()

    assert found["TrailArn"] == customer.trail_arn and found["S3BucketName"] == customer.bucket
    # No key of theirs: a key of the stack's own (its alias, rotation on) encrypts the topic and queue only.
    key = onboarded.client("kms").describe_key(KeyId=f"alias/{stack}-key")["KeyMetadata"]
    assert found["KmsKeyArn"] == key["Arn"] and found["KmsAlias"] == f"alias/{stack}-key"
    topic = onboarded.client("sns").get_topic_attributes(TopicArn=found["SnsTopicArn"])["Attributes"]
    assert topic["KmsMasterKeyId"] in (key["Arn"], key["KeyId"], f"alias/{stack}-key")
    assert "not encrypted with a customer managed KMS key" in found["TrailFindings"]
    assert "organization trail onboarded with OrganizationMode false" in found["TrailFindings"]
    prefix, grants = entry_and_grant()
    assert prefix == f"AWSLogs/{organization_id}/"
    assert f"arn:aws:s3:::{customer.bucket}/AWSLogs/{organization_id}/*" in grants

    narrowed = deploy(LogPrefixOrganizationId="o-subsidiary01")

    assert narrowed["SqsQueueArn"] == found["SqsQueueArn"]  # the same onboarding, converged
    prefix, grants = entry_and_grant()
    assert prefix == "AWSLogs/o-subsidiary01/"
    assert f"{customer.bucket}/AWSLogs/o-subsidiary01/*" in grants and f"AWSLogs/{organization_id}/" not in grants
    assert customer.notification(onboarded.client)["QueueConfigurations"] == notification_before[
        "QueueConfigurations"]

    # An OU filter (LogFilterOrganizationalUnitId): one entry per member account of workloads and of its nested
    # prod OU, each for that account's folder of the organization, beside their entry.
    org = onboarded.client("organizations")
    workloads, organization = onboarded.organization.ous["workloads"], onboarded.organization

    def members() -> list[str]:
        return sorted(a["Id"] for parent in (workloads, organization.ous["prod"])
                      for a in org.list_accounts_for_parent(ParentId=parent)["Accounts"])

    def ours() -> dict[str, str]:
        return {e["Id"]: e["Filter"]["Key"]["FilterRules"][0]["Value"]
                for e in customer.notification(onboarded.client).get("TopicConfigurations", [])}

    def expected(accounts: list[str]) -> dict[str, str]:
        return {account_entry_id(notification_id(stack), a): f"AWSLogs/{organization_id}/{a}/" for a in accounts}

    filtered = deploy(LogFilterOrganizationalUnitId=workloads, LogPrefixOrganizationId="")

    assert ours() == expected(members()) and len(members()) >= 3
    assert customer.notification(onboarded.client)["QueueConfigurations"] == notification_before[
        "QueueConfigurations"]
    # A rerun (the console's "New execution" with the same input) writes nothing.
    calls = functions_calls(onboarded.cloud, lambda: _new_execution_with_the_same_input(
        onboarded.cloud, filtered["ExecutionArn"]))
    assert "organizations.ListAccountsForParent" in calls and writes(calls) == []
    # An account moved into the OU: the drift check names its missing entry, the next run (doctor's repair
    # runs the last onboarding again) adds it, and the check after it finds the bucket in step.
    # A member account in the root, as the organization lists it.
    moved = next(a["Id"] for a in org.list_accounts_for_parent(ParentId=organization.root)["Accounts"]
                 if a["Id"] != MANAGEMENT)
    org.move_account(AccountId=moved, SourceParentId=organization.root, DestinationParentId=organization.ous["prod"])
    doctor = ("doctor", "--stack", stack, "--endpoint-url", onboarded.cloud.url, "--region", REGION)
    checked = run_cli(*doctor)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert account_entry_id(notification_id(stack), moved) in checked.stdout, checked.stdout
    repaired = run_cli(*doctor, "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert moved in members() and ours() == expected(members())

    deleted = run_cli("local", "delete", "--endpoint-url", onboarded.cloud.url, "--stack-name", stack, timeout=400)

    assert deleted.returncode == 0, deleted.stdout[-3000:] + deleted.stderr[-2000:]
    assert customer.snapshot(onboarded.client) == before
    assert customer.notification(onboarded.client) == notification_before
    # Its own key encrypted only the topic and queue, both gone: scheduled for deletion.
    assert onboarded.client("kms").describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    onboarded.client("cloudtrail").delete_trail(Name=name)
