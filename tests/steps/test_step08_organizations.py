"""Guide steps 8 and 9 in Organizations mode: a service-managed StackSet across the member accounts plus
the management-account stack, against moto's Organizations, CloudFormation StackSets and IAM.

moto creates the StackSet's resources for real in each member account (readable with that account's
credentials), and every operation finishes at once; ``tests.moto_stacksets`` fills its other gaps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from expel_onboarding.errors import OnboardingError, ResourceConflict, StillInProgress, TransientError
from expel_onboarding.models import Config, QueueOutput, RoleOutput, TrailOutput
from expel_onboarding.naming import OWNER_TAG_KEY
from expel_onboarding.steps.expel_role_stack import EXPEL_PRINCIPAL_ARN, role_template
from expel_onboarding.steps.step08_expel_role import deploy, remove, stack_set_name, status
from tests.conftest import ACCOUNT_ID, REGION, WORKBENCH_GUID, boto
from tests.moto_stacksets import service_managed_stacksets
from tests.steps.shared import queue_output, trail_output
from tests.support import count_mutating_calls

STACKSETS = "member.org.stacksets.cloudformation.amazonaws.com"


@dataclasses.dataclass
class Organization:
    root: str
    ous: dict[str, str]  # name -> id
    accounts: dict[str, list[str]]  # OU name -> account ids


@pytest.fixture
def organization(aws) -> Iterator[Organization]:
    """prod (2 accounts) with a nested payments OU (1), dev (1), sandbox (1) and one account in the root."""
    with service_managed_stacksets():
        org = boto("organizations")
        org.create_organization(FeatureSet="ALL")
        root = org.list_roots()["Roots"][0]["Id"]
        ous = {"prod": org.create_organizational_unit(ParentId=root, Name="prod")["OrganizationalUnit"]["Id"]}
        ous["payments"] = org.create_organizational_unit(ParentId=ous["prod"], Name="payments")[
            "OrganizationalUnit"]["Id"]
        for name in ("dev", "sandbox"):
            ous[name] = org.create_organizational_unit(ParentId=root, Name=name)["OrganizationalUnit"]["Id"]
        accounts: dict[str, list[str]] = {}
        for parent, count in (("prod", 2), ("payments", 1), ("dev", 1), ("sandbox", 1), ("root", 1)):
            for n in range(count):
                account = org.create_account(AccountName=f"{parent}{n}", Email=f"{parent}{n}@example.com")[
                    "CreateAccountStatus"]["AccountId"]
                if parent != "root":
                    org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ous[parent])
                accounts.setdefault(parent, []).append(account)
        for principal in (STACKSETS, "cloudtrail.amazonaws.com"):
            org.enable_aws_service_access(ServicePrincipal=principal)
        yield Organization(root=root, ous=ous, accounts=accounts)


@pytest.fixture
def org_config(config: Config, organization: Organization) -> Config:
    return dataclasses.replace(config, organization_mode=True,
                               organization_target_ou_ids=[organization.ous["prod"], organization.ous["dev"]])

trail = pytest.fixture(trail_output, name="trail")
queue = pytest.fixture(queue_output, name="queue")


def _rollout(config: Config, trail: TrailOutput, queue: QueueOutput) -> RoleOutput:
    """What the state machine does: deploy once, then status until COMPLETE (bounded)."""
    role = deploy(config, trail, queue)
    for _ in range(5):
        if role.status == "COMPLETE":
            return role
        role = status(config, role)
    raise AssertionError(f"never completed: {role}")


def _instance_accounts(config: Config) -> list[str]:
    summaries = boto("cloudformation").list_stack_instances(StackSetName=stack_set_name(config))["Summaries"]
    assert {s["Region"] for s in summaries} <= {REGION}
    return sorted(s["Account"] for s in summaries)


def _member_iam(account_id: str) -> Any:
    """IAM as seen from inside a member account (moto keys accounts by the caller's credentials)."""
    credentials = boto("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="test")[
        "Credentials"]
    return boto3.client("iam", region_name=REGION, aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"])


def _answering(answers: dict[str, Any]) -> Any:
    """Patch botocore so these operations answer as given (a ClientError code raises it); the rest reach moto."""
    original = BaseClient._make_api_call

    def call(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if operation_name not in answers:
            return original(self, operation_name, api_params)
        answer = answers[operation_name]
        if isinstance(answer, str):
            raise ClientError({"Error": {"Code": answer, "Message": f"{answer} (test)"}}, operation_name)
        return answer

    return mock.patch.object(BaseClient, "_make_api_call", call)


# --- what the organization holds afterwards -------------------------------------------------------------

def test_deploy_creates_a_service_managed_stack_set_that_follows_the_organization(org_config, trail, queue):
    role = _rollout(org_config, trail, queue)

    stack_set = boto("cloudformation").describe_stack_set(StackSetName=stack_set_name(org_config))["StackSet"]
    assert role.stack_set_id == stack_set["StackSetId"]
    assert role.operation_id
    assert stack_set["PermissionModel"] == "SERVICE_MANAGED"
    assert stack_set["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert {t["Key"]: t["Value"] for t in stack_set["Tags"]} == {OWNER_TAG_KEY: org_config.stack_name}
    assert stack_set["TemplateBody"] == role_template()
    # Member accounts hold no bucket, queue or key: no data-path policy there.
    assert {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack_set["Parameters"]} == {
        "ExpelWorkbenchGuid": WORKBENCH_GUID, "RoleName": "ExpelAssumeRole", "ExpelPrincipalArn": EXPEL_PRINCIPAL_ARN,
        "BucketArn": "", "QueueArn": "", "KmsKeyArn": "", "PermissionsBoundaryArn": ""}


def test_instances_cover_the_target_ous_accounts_nested_ones_included_and_nothing_else(
        org_config, organization, trail, queue):
    _rollout(org_config, trail, queue)

    wanted = organization.accounts["prod"] + organization.accounts["payments"] + organization.accounts["dev"]
    assert _instance_accounts(org_config) == sorted(wanted)


def test_empty_target_list_deploys_to_the_whole_organization_but_the_management_account(
        organization, org_config, trail, queue):
    whole = dataclasses.replace(org_config, organization_target_ou_ids=[])

    _rollout(whole, trail, queue)

    everyone = sorted(a for accounts in organization.accounts.values() for a in accounts)
    assert _instance_accounts(whole) == everyone
    assert ACCOUNT_ID not in everyone
    stack_set = boto("cloudformation").describe_stack_set(StackSetName=stack_set_name(whole))["StackSet"]
    assert stack_set["OrganizationalUnitIds"] == [organization.root]


def test_each_member_role_trusts_only_expel_with_the_workbench_guid_and_has_no_data_path(
        org_config, organization, trail, queue):
    _rollout(org_config, trail, queue)

    for account in organization.accounts["prod"] + organization.accounts["payments"]:
        iam = _member_iam(account)
        trust = iam.get_role(RoleName="ExpelAssumeRole")["Role"]["AssumeRolePolicyDocument"]
        assert [(s["Effect"], s["Principal"], s["Action"], s["Condition"]) for s in trust["Statement"]] == [
            ("Allow", {"AWS": EXPEL_PRINCIPAL_ARN}, "sts:AssumeRole",
             {"StringEquals": {"sts:ExternalId": WORKBENCH_GUID}})], account
        assert iam.list_role_policies(RoleName="ExpelAssumeRole")["PolicyNames"] == ["ExpelInventoryReadOnly"]
    sandbox = _member_iam(organization.accounts["sandbox"][0])
    assert "ExpelAssumeRole" not in [r["RoleName"] for r in sandbox.list_roles()["Roles"]]


def test_management_account_holds_the_step_9_stack_with_the_data_path(org_config, trail, queue):
    role = _rollout(org_config, trail, queue)

    assert role.role_arn == f"arn:aws:iam::{ACCOUNT_ID}:role/ExpelAssumeRole"
    stack = boto("cloudformation").describe_stacks(StackName=org_config.role_stack_name)["Stacks"][0]
    assert role.stack_id == stack["StackId"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["QueueArn"] == queue.queue_arn
    iam = boto("iam")
    assert sorted(iam.list_role_policies(RoleName="ExpelAssumeRole")["PolicyNames"]) == [
        "ExpelCloudTrailDataPath", "ExpelInventoryReadOnly"]


# --- idempotency, reconciliation --------------------------------------------------------------------------

def test_rerun_makes_no_mutating_call_and_returns_the_same_output(org_config, trail, queue):
    first = _rollout(org_config, trail, queue)

    with count_mutating_calls() as calls:
        again = deploy(org_config, trail, queue)
        looked = status(org_config, dataclasses.replace(first, status="IN_PROGRESS"))

    assert calls == []
    assert again == first
    assert looked == first


def test_changed_workbench_guid_updates_the_stack_set_once_and_the_management_stack(org_config, trail, queue):
    _rollout(org_config, trail, queue)
    changed = dataclasses.replace(org_config, workbench_guid="0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d")

    with count_mutating_calls() as calls:
        role = _rollout(changed, trail, queue)

    assert sorted(calls) == ["cloudformation.UpdateStack", "cloudformation.UpdateStackSet"]
    stack_set = boto("cloudformation").describe_stack_set(StackSetName=stack_set_name(changed))["StackSet"]
    guid = {p["ParameterKey"]: p["ParameterValue"] for p in stack_set["Parameters"]}["ExpelWorkbenchGuid"]
    assert guid == changed.workbench_guid
    assert role.status == "COMPLETE"


def test_a_new_target_ou_gets_instances_and_nothing_else_changes(org_config, organization, trail, queue):
    _rollout(org_config, trail, queue)
    wider = dataclasses.replace(org_config, organization_target_ou_ids=[
        *org_config.organization_target_ou_ids, organization.ous["sandbox"]])

    with count_mutating_calls() as calls:
        _rollout(wider, trail, queue)

    assert calls == ["cloudformation.CreateStackInstances"]
    assert organization.accounts["sandbox"][0] in _instance_accounts(wider)


def test_update_and_new_ou_together_run_one_after_the_other(org_config, organization, trail, queue):
    _rollout(org_config, trail, queue)
    changed = dataclasses.replace(
        org_config, workbench_guid="0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
        organization_target_ou_ids=[*org_config.organization_target_ou_ids, organization.ous["sandbox"]])

    with count_mutating_calls() as deploy_calls:
        started = deploy(changed, trail, queue)
    with count_mutating_calls() as status_calls:
        looked = status(changed, started)

    # StackSets run one operation at a time: the update first, then (once it succeeded) the new OU.
    assert sorted(deploy_calls) == ["cloudformation.UpdateStack", "cloudformation.UpdateStackSet"]
    assert status_calls == ["cloudformation.CreateStackInstances"]
    assert looked.status == "IN_PROGRESS" and looked.operation_id != started.operation_id
    assert status(changed, looked).status == "COMPLETE"
    assert organization.accounts["sandbox"][0] in _instance_accounts(changed)


def test_stack_set_of_the_same_name_without_our_tag_is_a_conflict_and_nothing_is_written(
        org_config, trail, queue):
    boto("cloudformation").create_stack_set(
        StackSetName=stack_set_name(org_config), TemplateBody=role_template(), PermissionModel="SERVICE_MANAGED",
        AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
        Capabilities=["CAPABILITY_NAMED_IAM"])

    with count_mutating_calls() as calls, pytest.raises(ResourceConflict, match="OrganizationMode"):
        deploy(dataclasses.replace(org_config, role_stack_name="someone-elses"), trail, queue)

    assert [c for c in calls if "StackSet" in c or "StackInstances" in c] == []


def test_delegated_administrator_calls_as_such_and_leaves_itself_to_the_step_9_stack(
        org_config, organization, trail, queue):
    """Run from a member account registered as StackSets delegated administrator (here: the first prod
    account; moto keeps the StackSet wherever the call lands, which is enough to read the calls)."""
    admin = organization.accounts["prod"][0]
    sent: list[tuple[str, dict[str, Any]]] = []
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if "StackSet" in operation or "StackInstances" in operation:
            sent.append((operation, params))
        return original(self, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", record):
        _rollout(dataclasses.replace(org_config, account_id=admin), trail, queue)

    assert sent and all(params.get("CallAs") == "DELEGATED_ADMIN" for _, params in sent)
    targets = next(params["DeploymentTargets"] for op, params in sent if op == "CreateStackInstances")
    assert targets["AccountFilterType"] == "DIFFERENCE" and targets["Accounts"] == [admin]
    assert admin not in _instance_accounts(org_config)


# --- waiting and failing ----------------------------------------------------------------------------------

def test_operation_in_progress_is_still_in_progress_and_the_next_attempt_finishes(org_config, organization,
                                                                                  trail, queue):
    with _answering({"CreateStackInstances": "OperationInProgressException"}), \
            pytest.raises(StillInProgress, match="another operation is running"):
        deploy(org_config, trail, queue)

    role = _rollout(org_config, trail, queue)

    assert role.status == "COMPLETE"
    assert len(_instance_accounts(org_config)) == 4


def test_throttling_is_transient(org_config, trail, queue):
    with _answering({"DescribeStackSet": "ThrottlingException"}), pytest.raises(TransientError, match="busy"):
        deploy(org_config, trail, queue)


def test_running_operation_is_waited_for_not_duplicated(org_config, trail, queue):
    first = deploy(org_config, trail, queue)
    running = {"StackSetOperation": {"OperationId": first.operation_id, "Status": "RUNNING"}}

    with _answering({"DescribeStackSetOperation": running}), count_mutating_calls() as calls:
        looked = status(org_config, first)

    assert looked.status == "IN_PROGRESS"
    assert looked.operation_id == first.operation_id
    assert calls == []


def test_failed_operation_names_the_accounts_and_the_fix(org_config, trail, queue):
    first = deploy(org_config, trail, queue)
    failed = {"StackSetOperation": {"OperationId": first.operation_id, "Status": "FAILED"}}
    results = {"Summaries": [
        {"Account": "111111111111", "Region": REGION, "Status": "FAILED",
         "StatusReason": "ResourceLogicalId:ExpelRole, ResourceType:AWS::IAM::Role, "
                         "ResourceStatusReason:ExpelAssumeRole already exists."},
        {"Account": "222222222222", "Region": REGION, "Status": "SUCCEEDED"}]}

    with _answering({"DescribeStackSetOperation": failed, "ListStackSetOperationResults": results}), \
            pytest.raises(OnboardingError) as raised:
        status(org_config, first)

    message = str(raised.value)
    assert "account 111111111111" in message and "already exists" in message
    assert "222222222222" not in message
    assert "Fix: a role named ExpelAssumeRole exists in those accounts" in message


# --- teardown ------------------------------------------------------------------------------------------

def test_remove_organization_deletes_instances_then_the_stack_set(org_config, organization, trail, queue):
    _rollout(org_config, trail, queue)

    results = [remove(org_config) for _ in range(3)]

    assert results == ["IN_PROGRESS", "DELETED", "DELETED"]
    # moto ignores list_stack_sets' Status filter; a deleted StackSet is listed as DELETED.
    summaries = boto("cloudformation").list_stack_sets()["Summaries"]
    assert [s["Status"] for s in summaries] == ["DELETED"]
    for account in organization.accounts["prod"]:
        assert "ExpelAssumeRole" not in [r["RoleName"] for r in _member_iam(account).list_roles()["Roles"]]


def test_remove_organization_leaves_a_stack_set_that_is_not_ours(org_config):
    boto("cloudformation").create_stack_set(
        StackSetName=stack_set_name(org_config), TemplateBody=role_template(), PermissionModel="SERVICE_MANAGED",
        Capabilities=["CAPABILITY_NAMED_IAM"])

    with count_mutating_calls() as calls:
        assert remove(org_config) == "SKIPPED"

    assert calls == []


def test_remove_organization_when_nothing_was_deployed_is_done(org_config):
    with count_mutating_calls() as calls:
        assert remove(org_config) == "DELETED"

    assert calls == []
