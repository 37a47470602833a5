"""Organizations mode on the local cloud, end to end through ``local serve``, as a person rehearses it.

One organization (member accounts in a nested OU and one in the root) and one onboarding are shared by
the checks below, in order: create, ``status``, a rerun (nothing to change: no StackSet operation), an
update of the Workbench GUID (one operation, every member role changed), a member account added after
onboarding (automatic deployment), ``doctor`` (each member account's role checked by CloudFormation's drift
detection) and ``doctor --repair`` (a drifted member role's instance replaced; a role IAM cannot delete named
with the fix), delete (instances and StackSet gone). The local cloud is this module's own: an organization
is account-wide, and the other e2e tests onboard single accounts. StackSet operations, and the state machine's
waits for them (and for their drift detection), run in time compressed further than the shared local cloud's: no
check here is about how long anything takes. Existing-trail mode on an organization trail:
``test_organization_existing_trail_e2e``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_cloud.cli import DEMO_WORKBENCH_GUID
from tests.e2e.test_onboarding_e2e import deploy_command
from tests.e2e.test_status_cli import step_rows
from tests.local_cloud.harness import ServedCloud, onboarding_parameters, run_cli, serve_child
from tests.organization import Organization, add_account, build, member_client, role_names, wait_for
from tests.support import DATA_PATH_POLICY

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
MANAGEMENT = "123456789012"
STACK = "e2e-org"
ROLE = f"{STACK}-role"
STACK_SET = f"{STACK}-expel-role"
NEW_GUID = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
# workloads (1 account) with a nested prod OU (2 accounts), and one account in the root.
LAYOUT = {"workloads": ("root", 1), "prod": ("workloads", 2), "root": ("root", 1)}


@dataclass
class Onboarded:
    cloud: ServedCloud
    template: Path
    organization: Organization
    outputs: dict[str, str]
    stdout: str

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.cloud.url, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def member(self, account: str, service: str) -> Any:
        return member_client(self.client("sts"), account, service, endpoint_url=self.cloud.url, region_name=REGION)

    def deploy(self, **overrides: str) -> Any:
        params = onboarding_parameters(self.cloud, STACK, OrganizationMode="true", WorkbenchApiKey="",
                                       StackSetFailureTolerancePercentage="0", **overrides)
        return run_cli(*deploy_command(self.cloud, self.template, STACK, params), timeout=400)

    def operations(self) -> list[dict[str, Any]]:
        return self.client("cloudformation").list_stack_set_operations(StackSetName=STACK_SET)["Summaries"]

    def instances(self) -> dict[str, dict[str, Any]]:
        pages = self.client("cloudformation").get_paginator("list_stack_instances").paginate(StackSetName=STACK_SET)
        return {i["Account"]: i for page in pages for i in page["Summaries"]}

    def external_id(self, account: str) -> str:
        iam = self.member(account, "iam") if account != MANAGEMENT else self.client("iam")
        trust = iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        return str(trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"])


@pytest.fixture(scope="module")
def onboarded(built_template: Path) -> Iterator[Onboarded]:
    # A StackSet operation on the four member accounts, one at a time (25 %): 0.2 s instead of 0.9 s; the drift
    # check's 15 s wait for drift detection takes the tests' time scale (0.45 s).
    with serve_child(stackset_seconds=0.05) as cloud:
        org = boto3.client("organizations", endpoint_url=cloud.url, region_name=REGION,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        organization = build(org, LAYOUT, trusted=("member.org.stacksets.cloudformation.amazonaws.com",
                                                   "cloudtrail.amazonaws.com"))
        state = Onboarded(cloud, built_template, organization, {}, "")
        created = state.deploy()
        assert created.returncode == 0, created.stdout[-4000:] + created.stderr[-3000:]
        stack = state.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
        state.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        state.stdout = created.stdout
        yield state


def test_create_deploys_an_organization_trail_and_the_role_in_every_member_account(onboarded: Onboarded) -> None:
    members = onboarded.organization.all_members()

    trail = onboarded.client("cloudtrail").get_trail(Name=f"{STACK}-trail")["Trail"]
    assert trail["IsOrganizationTrail"] is True and trail["IsMultiRegionTrail"] is True
    assert sorted(onboarded.instances()) == members  # nested OU and root alike, never the management account
    assert {i["Status"] for i in onboarded.instances().values()} == {"CURRENT"}
    for account in members:
        assert onboarded.external_id(account) == DEMO_WORKBENCH_GUID, account
        policies = onboarded.member(account, "iam").list_role_policies(RoleName=ROLE)["PolicyNames"]
        assert policies == ["ExpelInventoryReadOnly"], account
    assert [(o["Action"], o["Status"]) for o in onboarded.operations()] == [("CREATE", "SUCCEEDED")]


def test_the_management_accounts_role_is_step_9s_stack_with_the_data_path(onboarded: Onboarded) -> None:
    assert onboarded.outputs["IamRoleArn"] == f"arn:aws:iam::{MANAGEMENT}:role/{ROLE}"
    assert onboarded.outputs["AwsAccountId"] == MANAGEMENT
    assert onboarded.outputs["WorkbenchGuid"] == DEMO_WORKBENCH_GUID
    assert onboarded.outputs["WorkbenchRegistrationUrl"]
    cfn = onboarded.client("cloudformation")
    role_stack = cfn.describe_stacks(StackName=f"{STACK}-expel-role")["Stacks"][0]
    assert {o["OutputKey"]: o["OutputValue"] for o in role_stack["Outputs"]}["RoleArn"] == onboarded.outputs[
        "IamRoleArn"]
    assert sorted(onboarded.client("iam").list_role_policies(RoleName=ROLE)["PolicyNames"]) == [
        DATA_PATH_POLICY, "ExpelInventoryReadOnly"]
    assert MANAGEMENT not in onboarded.instances()


def test_status_of_the_organizations_stack_shows_every_step_succeeded(onboarded: Onboarded) -> None:
    result = run_cli("status", "--stack", STACK, "--endpoint-url", onboarded.cloud.url, "--region", REGION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].split() == ["Stack", "CREATE_COMPLETE", STACK]
    rows = step_rows(result.stdout)
    assert {"Step 8 Deploy Expel Role", "Step 10 Register Workbench Device"} <= set(rows)
    assert all(row[0] == "succeeded" for row in rows.values()), rows
    assert not any(line.startswith("StackSet ") for line in result.stdout.splitlines())  # no failed account


def test_without_a_workbench_api_key_the_stack_skips_its_secret(onboarded: Onboarded) -> None:
    """WorkbenchApiKey empty: the secret's Condition is false, and CloudFormation does not list a resource it skipped
    among the stack's resources."""
    resources = onboarded.client("cloudformation").describe_stack_resources(StackName=STACK)["StackResources"]

    assert all(r.get("ResourceType") and r.get("LogicalResourceId") for r in resources)
    assert "WorkbenchApiKeySecret" not in {r["LogicalResourceId"] for r in resources}


def test_a_rerun_with_nothing_to_change_starts_no_stack_set_operation(onboarded: Onboarded) -> None:
    before = onboarded.operations()

    rerun = onboarded.deploy(WorkbenchLocation="AWS cloud, rerun")

    assert rerun.returncode == 0, rerun.stdout[-4000:] + rerun.stderr[-2000:]
    assert onboarded.operations() == before


def test_an_update_of_the_workbench_guid_is_one_operation_that_changes_every_role(onboarded: Onboarded) -> None:
    before = len(onboarded.operations())

    updated = onboarded.deploy(WorkbenchGuid=NEW_GUID, WorkbenchLocation="AWS cloud, rerun")

    assert updated.returncode == 0, updated.stdout[-4000:] + updated.stderr[-2000:]
    operations = onboarded.operations()
    assert len(operations) == before + 1
    assert (operations[0]["Action"], operations[0]["Status"]) == ("UPDATE", "SUCCEEDED")
    for account in [*onboarded.organization.all_members(), MANAGEMENT]:
        assert onboarded.external_id(account) == NEW_GUID, account


def test_a_member_account_added_after_onboarding_gets_the_role(onboarded: Onboarded) -> None:
    organization = onboarded.organization
    org = onboarded.client("organizations")

    joined = add_account(org, organization.root, organization.ous["prod"], "joined")

    wait_for(lambda: onboarded.instances().get(joined, {}).get("Status") == "CURRENT", timeout=60,
             what="the automatic deployment to the new account")
    assert ROLE in role_names(onboarded.member(joined, "iam"))
    assert onboarded.external_id(joined) == NEW_GUID
    organization.accounts["prod"].append(joined)


def test_doctor_checks_every_member_accounts_role_and_names_the_account_the_role_and_the_property(
        onboarded: Onboarded) -> None:
    organization = onboarded.organization
    doctor = ("doctor", "--stack", STACK, "--endpoint-url", onboarded.cloud.url, "--region", REGION)
    clean = run_cli(*doctor)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Guide step 8  Set up CloudFormation (the Expel role): in sync" in clean.stdout

    changed, missing = organization.accounts["prod"][0], organization.accounts["root"][0]
    guid = onboarded.external_id(changed)  # the Workbench GUID of the last update
    iam = onboarded.member(changed, "iam")
    trust = iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = "not-the-workbench-guid"
    iam.update_assume_role_policy(RoleName=ROLE, PolicyDocument=json.dumps(trust))
    cfn = onboarded.client("cloudformation")
    removed = cfn.delete_stack_instances(
        StackSetName=STACK_SET, Regions=[REGION], RetainStacks=False,
        DeploymentTargets={"OrganizationalUnitIds": [organization.root], "Accounts": [missing],
                           "AccountFilterType": "INTERSECTION"})["OperationId"]
    wait_for(lambda: cfn.describe_stack_set_operation(StackSetName=STACK_SET, OperationId=removed)[
        "StackSetOperation"]["Status"] == "SUCCEEDED", timeout=60, what="the instance's removal")

    drifted = run_cli(*doctor)

    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    text = drifted.stdout
    assert "Guide step 8  Set up CloudFormation (the Expel role): 2 differences" in text, text
    assert (f"  - AssumeRolePolicyDocument/Statement/0/Condition/StringEquals/sts:ExternalId (NOT_EQUAL) of role "
            f"{ROLE} in account {changed} ({REGION})\n      is now     not-the-workbench-guid\n      should be  "
            f"{guid}\n      fix        `cloudtrail-onboarding doctor --stack {STACK} --repair` replaces that "
            "account's stack instance: CloudFormation deletes the role there and creates it again") in text, text
    assert f"  - stack instance of StackSet {STACK_SET} of account {missing} ({REGION})\n      is now     (absent)" \
        in text, text
    assert f"create-stack-instances --stack-set-name {STACK_SET} --deployment-targets OrganizationalUnitIds=" \
           f"{organization.root},Accounts={missing},AccountFilterType=INTERSECTION --regions {REGION}" in text
    assert "By hand only" not in text, text  # the repair puts back both

    # The repair replaces the changed account's instance (delete, then create: the role made again from the
    # template) and deploys the missing one again, those accounts alone; the check after it is clean.
    before, instances = len(onboarded.operations()), onboarded.instances()
    repaired = run_cli(*doctor, "--repair")

    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "Guide step 8  Set up CloudFormation (the Expel role): in sync" in repaired.stdout.split(
        "checking again")[-1], repaired.stdout
    started = {o["Action"]: cfn.describe_stack_set_operation(StackSetName=STACK_SET, OperationId=o["OperationId"])[
        "StackSetOperation"] for o in onboarded.operations()[: len(onboarded.operations()) - before]
        if o["Action"] != "DETECT_DRIFT"}
    assert sorted(started) == ["CREATE", "DELETE"] and {o["Status"] for o in started.values()} == {"SUCCEEDED"}
    assert started["DELETE"]["DeploymentTargets"] == {
        "OrganizationalUnitIds": [instances[changed]["OrganizationalUnitId"]], "Accounts": [changed],
        "AccountFilterType": "INTERSECTION"} and started["DELETE"]["RetainStacks"] is False  # that account alone
    assert started["CREATE"]["DeploymentTargets"]["Accounts"] == sorted([changed, missing])
    assert started["CREATE"]["DeploymentTargets"]["AccountFilterType"] == "INTERSECTION"
    after = onboarded.instances()
    assert {after[a]["Status"] for a in (changed, missing)} == {"CURRENT"}
    assert onboarded.external_id(missing) == guid and onboarded.external_id(changed) == guid
    untouched = sorted(set(instances) - {changed, missing})
    assert untouched and [after[a]["LastOperationId"] for a in untouched] == [
        instances[a]["LastOperationId"] for a in untouched]  # the other accounts' instances as they were
    again = run_cli(*doctor)
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_member_role_with_a_policy_attached_by_hand_stops_the_repair_naming_the_account_and_the_fix(
        onboarded: Onboarded) -> None:
    """IAM refuses to delete a role a managed policy is attached to, and CloudFormation detaches only what the
    template attached: the replacement cannot happen there, and the repair says so instead of detaching it."""
    account = onboarded.organization.accounts["workloads"][0]
    doctor = ("doctor", "--stack", STACK, "--endpoint-url", onboarded.cloud.url, "--region", REGION)
    guid = onboarded.external_id(account)
    iam = onboarded.member(account, "iam")
    theirs = iam.create_policy(PolicyName="TheirOwnReads", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets",
                                                "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=theirs)
    trust = iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = "not-the-workbench-guid"
    iam.update_assume_role_policy(RoleName=ROLE, PolicyDocument=json.dumps(trust))

    blocked = run_cli(*doctor, "--repair")

    assert blocked.returncode == 2, blocked.stdout + blocked.stderr
    said = blocked.stdout + blocked.stderr
    assert f"the Expel role of member accounts {account} ({REGION}) could not be replaced" in said, said
    assert "Cannot delete entity, must detach all policies first." in said, said
    assert f"IAM > Roles > {ROLE} > Permissions, note and detach it" in said, said
    attached = iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [theirs]  # never detached by the onboarding
    assert onboarded.instances()[account]["Status"] == "INOPERABLE"

    # The person detaches it as told; the repair then replaces the instance, and the check after it is clean.
    iam.detach_role_policy(RoleName=ROLE, PolicyArn=theirs)
    repaired = run_cli(*doctor, "--repair")

    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert onboarded.external_id(account) == guid
    assert onboarded.instances()[account]["Status"] == "CURRENT"


def test_delete_removes_the_instances_the_stack_set_and_every_role(onboarded: Onboarded) -> None:
    deleted = run_cli("local", "delete", "--endpoint-url", onboarded.cloud.url, "--stack-name", STACK, "--timeout",
                      "300", timeout=400)

    assert deleted.returncode == 0, deleted.stdout[-3000:] + deleted.stderr[-2000:]
    cfn = onboarded.client("cloudformation")
    assert cfn.list_stack_sets(Status="ACTIVE")["Summaries"] == []
    for account in onboarded.organization.all_members():
        assert ROLE not in role_names(onboarded.member(account, "iam")), account
    assert ROLE not in role_names(onboarded.client("iam"))
