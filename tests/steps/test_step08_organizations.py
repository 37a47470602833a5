"""Guide steps 8 and 9 in Organizations mode: a service-managed StackSet across the member accounts plus
the management-account stack, against moto's Organizations and IAM and the local cloud's StackSets
(``local_cloud/stacksets.py``, as ``local serve`` runs them: operations in the background, in compressed
time here). The helpers below do what the state machine does: deploy (or check), then look again after a wait.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from expel_onboarding.aws import clients, stacks, stepfunctions
from expel_onboarding.drift import ABSENT, DriftStatus, StepCheck
from expel_onboarding.errors import OnboardingError, ResourceConflict, StillInProgress, TransientError
from expel_onboarding.models import Config, QueueOutput, RoleOutput, TrailOutput
from expel_onboarding.naming import OWNER_TAG_KEY
from expel_onboarding.steps import step08_expel_role
from expel_onboarding.steps.expel_role_stack import EXPEL_PRINCIPAL_ARN, role_template
from expel_onboarding.steps.step08_expel_role import deploy, remove, stack_set_name, status
from local_cloud import stacksets
from tests.conftest import ACCOUNT_ID, REGION, WORKBENCH_GUID, boto
from tests.organization import STACKSETS, Organization, add_account, build, member_client, role_names, wait_for
from tests.steps.shared import queue_output, trail_output
from tests.support import DATA_PATH_POLICY, count_mutating_calls

# prod (2 accounts) with a nested payments OU (1), dev (1), sandbox (1) and one account in the root.
LAYOUT = {"prod": ("root", 2), "payments": ("prod", 1), "dev": ("root", 1), "sandbox": ("root", 1),
          "root": ("root", 1)}


@pytest.fixture
def organization(aws) -> Iterator[Organization]:
    yield build(boto("organizations"), LAYOUT, trusted=(STACKSETS, "cloudtrail.amazonaws.com"))


@pytest.fixture
def org_config(config: Config, organization: Organization) -> Config:
    return dataclasses.replace(config, organization_mode=True,
                               organization_target_ou_ids=[organization.ous["prod"], organization.ous["dev"]])

trail = pytest.fixture(trail_output, name="trail")
queue = pytest.fixture(queue_output, name="queue")


def _rollout(config: Config, trail: TrailOutput, queue: QueueOutput, first: RoleOutput | None = None) -> RoleOutput:
    """What the state machine does: deploy once, then status after a wait until COMPLETE (bounded)."""
    role = first or deploy(config, trail, queue)
    for _ in range(400):
        if role.status == "COMPLETE":
            return role
        time.sleep(0.02)
        role = status(config, role)
    raise AssertionError(f"never completed: {role}")


def _instances(config: Config) -> list[dict[str, Any]]:
    pages = boto("cloudformation").get_paginator("list_stack_instances").paginate(
        StackSetName=stack_set_name(config))
    return [i for page in pages for i in page["Summaries"]]


def _instance_accounts(config: Config) -> list[str]:
    summaries = _instances(config)
    assert {s["Region"] for s in summaries} <= {REGION}
    return sorted(s["Account"] for s in summaries)


def _operations(config: Config) -> list[dict[str, Any]]:
    return boto("cloudformation").list_stack_set_operations(StackSetName=stack_set_name(config))["Summaries"]


def _member_iam(account_id: str) -> Any:
    """IAM as seen from inside a member account (moto keys accounts by the caller's credentials)."""
    return member_client(boto("sts"), account_id, "iam", region_name=REGION)


def _hand_made_role(account_id: str, name: str = "ExpelAssumeRole") -> None:
    """A role someone made by hand in that account, as the guide's manual steps would."""
    _member_iam(account_id).create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": EXPEL_PRINCIPAL_ARN},
                                                "Action": "sts:AssumeRole"}]}))


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


@pytest.fixture
def slow_operations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Operations that take long enough to be seen RUNNING."""
    monkeypatch.setattr(stacksets.TIMING, "batch_seconds", 1.0)


# --- what the organization holds afterwards -------------------------------------------------------------

def test_deploy_creates_a_service_managed_stack_set_that_follows_the_organization(org_config, trail, queue):
    role = _rollout(org_config, trail, queue)

    stack_set = boto("cloudformation").describe_stack_set(StackSetName=stack_set_name(org_config))["StackSet"]
    assert role.stack_set_id == stack_set["StackSetId"]
    assert role.operation_id
    assert stack_set["PermissionModel"] == "SERVICE_MANAGED"
    assert stack_set["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert stack_set["OrganizationalUnitIds"] == sorted(org_config.organization_target_ou_ids)
    assert {t["Key"]: t["Value"] for t in stack_set["Tags"]} == {OWNER_TAG_KEY: org_config.stack_name}
    assert stack_set["TemplateBody"] == role_template()
    # Member accounts hold no bucket, queue or key: no data-path policy there.
    assert {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack_set["Parameters"]} == {
        "ExpelWorkbenchGuid": WORKBENCH_GUID, "RoleName": "ExpelAssumeRole", "ExpelPrincipalArn": EXPEL_PRINCIPAL_ARN,
        "BucketArn": "", "QueueArn": "", "KmsKeyArn": "", "LogKmsKeyArn": "", "LogObjectPrefix": "",
        "PermissionsBoundaryArn": ""}
    assert (role.failed_accounts, role.addressed, role.operation_ours) == ([], [], False)


def test_instances_cover_the_target_ous_accounts_nested_ones_included_and_nothing_else(
        org_config, organization, trail, queue):
    _rollout(org_config, trail, queue)

    wanted = organization.accounts["prod"] + organization.accounts["payments"] + organization.accounts["dev"]
    assert _instance_accounts(org_config) == sorted(wanted)
    assert {i["Status"] for i in _instances(org_config)} == {"CURRENT"}


def test_empty_target_list_deploys_to_the_whole_organization_but_the_management_account(
        organization, org_config, trail, queue):
    whole = dataclasses.replace(org_config, organization_target_ou_ids=[])

    _rollout(whole, trail, queue)

    assert _instance_accounts(whole) == organization.all_members()
    assert ACCOUNT_ID not in _instance_accounts(whole)
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
    assert "ExpelAssumeRole" not in role_names(_member_iam(organization.accounts["sandbox"][0]))


def test_management_account_holds_the_step_9_stack_with_the_data_path(org_config, trail, queue):
    role = _rollout(org_config, trail, queue)

    assert role.role_arn == f"arn:aws:iam::{ACCOUNT_ID}:role/ExpelAssumeRole"
    stack = boto("cloudformation").describe_stacks(StackName=org_config.role_stack_name)["Stacks"][0]
    assert role.stack_id == stack["StackId"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["QueueArn"] == queue.queue_arn
    iam = boto("iam")
    assert sorted(iam.list_role_policies(RoleName="ExpelAssumeRole")["PolicyNames"]) == [
        DATA_PATH_POLICY, "ExpelInventoryReadOnly"]


def test_deploy_returns_while_the_rollout_runs_in_the_background(org_config, trail, queue, slow_operations):
    started = deploy(org_config, trail, queue)

    operation = boto("cloudformation").describe_stack_set_operation(
        StackSetName=stack_set_name(org_config), OperationId=started.operation_id)["StackSetOperation"]
    assert (started.status, operation["Status"]) == ("IN_PROGRESS", "RUNNING")
    assert "EndTimestamp" not in operation


# --- idempotency, reconciliation --------------------------------------------------------------------------

def test_rerun_makes_no_mutating_call_and_returns_the_same_output(org_config, trail, queue):
    first = _rollout(org_config, trail, queue)

    with count_mutating_calls() as calls:
        again = deploy(org_config, trail, queue)
        looked = status(org_config, dataclasses.replace(first, status="IN_PROGRESS"))

    assert calls == []
    assert again == first
    assert looked == first


def test_changed_workbench_guid_updates_the_stack_set_once_and_the_management_stack(
        org_config, organization, trail, queue):
    _rollout(org_config, trail, queue)
    changed = dataclasses.replace(org_config, workbench_guid="0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d")

    with count_mutating_calls() as calls:
        role = _rollout(changed, trail, queue)

    assert sorted(calls) == ["cloudformation.UpdateStack", "cloudformation.UpdateStackSet"]
    assert role.status == "COMPLETE"
    for account in organization.accounts["payments"] + organization.accounts["dev"]:  # the role itself changed
        trust = _member_iam(account).get_role(RoleName="ExpelAssumeRole")["Role"]["AssumeRolePolicyDocument"]
        assert trust["Statement"][0]["Condition"] == {"StringEquals": {"sts:ExternalId": changed.workbench_guid}}


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

    with count_mutating_calls() as calls:
        role = _rollout(changed, trail, queue)

    # StackSets run one operation at a time: the update first, then (once it succeeded) the new OU.
    assert calls == ["cloudformation.UpdateStack", "cloudformation.UpdateStackSet",
                     "cloudformation.CreateStackInstances"]
    assert [o["Action"] for o in _operations(changed)][:2] == ["CREATE", "UPDATE"]  # newest first
    assert role.status == "COMPLETE"
    assert organization.accounts["sandbox"][0] in _instance_accounts(changed)


def test_a_difference_that_survives_its_operation_stops_the_rollout_naming_it(
        org_config, trail, queue, monkeypatch):
    """Were CloudFormation to echo a parameter back otherwise than it was sent, each look would see a
    difference: one operation is started for it, then the step stops instead of looping until the deadline."""
    _rollout(org_config, trail, queue)
    echoed = stacks.parameters

    def parameters(held: dict[str, Any]) -> dict[str, str]:
        return {**echoed(held), "ExpelWorkbenchGuid": "echoed-otherwise"} if "StackSetId" in held else echoed(held)

    monkeypatch.setattr(stacks, "parameters", parameters)

    with count_mutating_calls() as calls, pytest.raises(OnboardingError) as raised:
        _rollout(org_config, trail, queue)

    assert calls == ["cloudformation.UpdateStackSet"]
    message = str(raised.value)
    assert "does not converge" in message
    assert f"parameter ExpelWorkbenchGuid is 'echoed-otherwise', wanted '{WORKBENCH_GUID}'" in message
    assert "Fix:" in message


def test_stack_set_of_the_same_name_without_our_tag_is_a_conflict_and_nothing_is_written(
        org_config, trail, queue):
    boto("cloudformation").create_stack_set(
        StackSetName=stack_set_name(org_config), TemplateBody=role_template(), PermissionModel="SERVICE_MANAGED",
        AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
        Capabilities=["CAPABILITY_NAMED_IAM"])

    with count_mutating_calls() as calls, pytest.raises(ResourceConflict, match="OrganizationMode"):
        deploy(dataclasses.replace(org_config, role_stack_name="someone-elses"), trail, queue)

    assert [c for c in calls if "StackSet" in c or "StackInstances" in c] == []


# --- an instance deleted by hand: the target still counts as covered, so CloudFormation does not put it back --

def _delete_instance(config: Config, target: str, account: str) -> None:
    """What a person does in the console (StackSets > Delete stacks from StackSet, one account of an OU)."""
    removed = boto("cloudformation").delete_stack_instances(
        StackSetName=stack_set_name(config), Regions=[REGION], RetainStacks=False,
        DeploymentTargets={"OrganizationalUnitIds": [target], "Accounts": [account],
                           "AccountFilterType": "INTERSECTION"})["OperationId"]
    _wait_for_operation(config, removed)


def test_a_rerun_deploys_again_exactly_the_accounts_whose_instance_was_deleted_then_writes_nothing(
        org_config, organization, trail, queue):
    first = _rollout(org_config, trail, queue)
    nested, other = organization.accounts["payments"][0], organization.accounts["dev"][0]  # payments is under prod
    _delete_instance(org_config, organization.ous["prod"], nested)
    _delete_instance(org_config, organization.ous["dev"], other)
    assert nested not in _instance_accounts(org_config) and "ExpelAssumeRole" not in role_names(_member_iam(nested))
    sent: list[dict[str, Any]] = []

    with count_mutating_calls() as calls:
        original = BaseClient._make_api_call

        def record(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            if operation == "CreateStackInstances":
                sent.append(params)
            return original(self, operation, params)

        with mock.patch.object(BaseClient, "_make_api_call", record):
            repaired = _rollout(org_config, trail, queue)

    assert calls == ["cloudformation.CreateStackInstances"]  # one operation, for exactly those two accounts
    [targets] = [params["DeploymentTargets"] for params in sent]
    assert targets == {"OrganizationalUnitIds": sorted([organization.ous["prod"], organization.ous["dev"]]),
                       "AccountFilterType": "INTERSECTION", "Accounts": sorted([nested, other])}
    assert repaired.status == "COMPLETE" and repaired.role_arn == first.role_arn
    assert _instance_accounts(org_config) == sorted(
        organization.accounts["prod"] + organization.accounts["payments"] + organization.accounts["dev"])
    assert {i["Status"] for i in _instances(org_config)} == {"CURRENT"}
    for account in (nested, other):
        trust = _member_iam(account).get_role(RoleName="ExpelAssumeRole")["Role"]["AssumeRolePolicyDocument"]
        assert trust["Statement"][0]["Condition"] == {"StringEquals": {"sts:ExternalId": WORKBENCH_GUID}}
    with count_mutating_calls() as calls:
        _rollout(org_config, trail, queue)
    assert calls == []


def test_accounts_still_without_an_instance_after_their_operation_stop_the_step_naming_both(
        org_config, organization, trail, queue, monkeypatch):
    """An operation that SUCCEEDED without deploying them (here: sent for another account) is not started again
    until the deadline: the step stops naming the operation and the accounts."""
    _rollout(org_config, trail, queue)
    missing = organization.accounts["dev"][0]
    _delete_instance(org_config, organization.ous["dev"], missing)
    wrong = step08_expel_role.stacksets._targets

    def elsewhere(ou_ids: list[str], exclude: list[str], only: list[str]) -> Any:
        return wrong(ou_ids, exclude, [organization.accounts["sandbox"][0]] if only else [])  # not under dev

    monkeypatch.setattr(step08_expel_role.stacksets, "_targets", elsewhere)

    with count_mutating_calls() as calls, pytest.raises(OnboardingError) as raised:
        _rollout(org_config, trail, queue)

    assert calls == ["cloudformation.CreateStackInstances"]
    operation = _operations(org_config)[0]
    assert (operation["Action"], operation["Status"]) == ("CREATE", "SUCCEEDED")
    assert f"does not converge: operation {operation['OperationId']} SUCCEEDED, yet accounts {missing} under " \
           "the targets have no stack instance" in str(raised.value)


# --- accounts that join later ------------------------------------------------------------------------------

def test_an_account_created_in_a_target_ou_after_onboarding_gets_the_role_and_a_rerun_changes_nothing(
        org_config, organization, trail, queue):
    first = _rollout(org_config, trail, queue)
    org = boto("organizations")

    joined = add_account(org, organization.root, organization.ous["payments"], "joined")
    wait_for(lambda: joined in _instance_accounts(org_config) and stacksets.wait_idle(), what="auto-deployment")

    assert "ExpelAssumeRole" in role_names(_member_iam(joined))
    with count_mutating_calls() as calls:
        again = _rollout(org_config, trail, queue)
    assert calls == []
    assert again.status == "COMPLETE" and again.role_arn == first.role_arn


def test_the_step_waits_for_an_automatic_deployment_before_it_looks(
        org_config, organization, trail, queue, monkeypatch):
    _rollout(org_config, trail, queue)
    monkeypatch.setattr(stacksets.TIMING, "batch_seconds", 1.0)
    add_account(boto("organizations"), organization.root, organization.ous["dev"], "late")

    with count_mutating_calls() as calls:
        looked = deploy(org_config, trail, queue)

    automatic = _operations(org_config)[0]
    assert (automatic["Action"], automatic["Status"]) == ("CREATE", "RUNNING")
    assert (looked.status, looked.operation_id, looked.operation_ours) == ("IN_PROGRESS", automatic["OperationId"],
                                                                          False)
    assert calls == []


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


def test_running_operation_is_waited_for_not_duplicated(org_config, trail, queue, slow_operations):
    first = deploy(org_config, trail, queue)

    with count_mutating_calls() as calls:
        looked = status(org_config, first)

    assert looked.status == "IN_PROGRESS"
    assert looked.operation_id == first.operation_id and looked.operation_ours
    assert calls == []


@pytest.fixture
def stuck_operations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Operations whose accounts do not finish while a test looks (an account that does not answer)."""
    monkeypatch.setattr(stacksets.TIMING, "batch_seconds", 120.0)


def _no_redrive(monkeypatch: pytest.MonkeyPatch, redriven: datetime | None = None) -> None:
    answer = {"status": "RUNNING", **({"redriveCount": 1, "redriveDate": redriven} if redriven else {})}
    monkeypatch.setattr(stepfunctions, "describe_execution", lambda arn: {"executionArn": arn, **answer})


def test_an_operation_still_running_after_the_limit_fails_the_look_naming_it_and_where_to_retry(
        org_config, organization, trail, queue, stuck_operations, monkeypatch):
    _no_redrive(monkeypatch)
    first = deploy(org_config, trail, queue)
    started = _operations(org_config)[0]["CreationTimestamp"]
    assert status(org_config, first, EXECUTION, now=started + step08_expel_role.OPERATION_LIMIT).status == "IN_PROGRESS"

    with count_mutating_calls() as calls, pytest.raises(OnboardingError) as raised:
        status(org_config, first, EXECUTION, now=started + step08_expel_role.OPERATION_LIMIT + timedelta(minutes=1))

    name, operation = stack_set_name(org_config), first.operation_id
    pending = sorted(f"{a} ({REGION})" for a in organization.accounts["prod"] + organization.accounts["payments"]
                     + organization.accounts["dev"])
    assert str(raised.value) == (
        f"Step 8: StackSet {name} operation {operation} (CREATE) is still RUNNING after 31 minutes (step 8 waits 30); "
        f"accounts pending: {', '.join(pending)}. Fix: CloudFormation > StackSets > {name} > Operations > "
        f"{operation} shows why (an account that does not answer, an account gate); once it has ended (or you stopped "
        f"it: aws cloudformation stop-stack-set-operation --stack-set-name {name} --operation-id {operation}), "
        "redrive the execution (Step Functions > Redrive; step 8 then waits up to 30 minutes more) or run "
        f"`cloudtrail-onboarding doctor --stack {org_config.stack_name} --repair`")
    assert calls == []


def test_after_a_redrive_the_same_operation_is_waited_for_again(
        org_config, trail, queue, stuck_operations, monkeypatch):
    first = deploy(org_config, trail, queue)
    late = _operations(org_config)[0]["CreationTimestamp"] + step08_expel_role.OPERATION_LIMIT + timedelta(minutes=5)
    _no_redrive(monkeypatch, redriven=late - timedelta(minutes=1))

    looked = status(org_config, first, EXECUTION, now=late)

    assert (looked.status, looked.operation_id) == ("IN_PROGRESS", first.operation_id)
    _no_redrive(monkeypatch, redriven=late - step08_expel_role.OPERATION_LIMIT - timedelta(minutes=1))
    with pytest.raises(OnboardingError, match=f"operation {first.operation_id} \\(CREATE\\) is still RUNNING"):
        status(org_config, first, EXECUTION, now=late)


def test_someone_elses_operation_still_running_after_the_limit_fails_the_look_too(
        org_config, organization, trail, queue, monkeypatch):
    _no_redrive(monkeypatch)
    _rollout(org_config, trail, queue)
    monkeypatch.setattr(stacksets.TIMING, "batch_seconds", 120.0)
    late = add_account(boto("organizations"), organization.root, organization.ous["dev"], "late")
    looked = deploy(org_config, trail, queue)  # waits for the automatic deployment to the new account
    automatic = _operations(org_config)[0]

    with pytest.raises(OnboardingError) as raised:
        status(org_config, looked, EXECUTION,
               now=automatic["CreationTimestamp"] + step08_expel_role.OPERATION_LIMIT + timedelta(seconds=1))

    assert (f"operation {automatic['OperationId']} (CREATE) is still RUNNING after 30 minutes (step 8 waits 30); "
            f"accounts pending: {late} ({REGION}). Fix:") in str(raised.value)


def test_failed_operation_names_the_accounts_and_the_fix(org_config, organization, trail, queue):
    """The default tolerance (10 %) of four accounts is zero: one failure stops the operation."""
    failing = organization.accounts["payments"][0]
    _hand_made_role(failing)

    with pytest.raises(OnboardingError) as raised:
        _rollout(org_config, trail, queue)

    message = str(raised.value)
    assert f"account {failing} ({REGION})" in message and "already exists" in message
    assert "FAILED" in message
    assert "Fix: a role named ExpelAssumeRole exists in those accounts" in message
    assert not [a for a in organization.all_members() if a != failing and a in message]


def _last_look_before_the_failure(config: Config, trail: TrailOutput, queue: QueueOutput,
                                  monkeypatch: pytest.MonkeyPatch) -> RoleOutput:
    """The state machine's looks (in an execution never redriven) until one fails; returns its input."""
    monkeypatch.setattr(stepfunctions, "describe_execution", lambda arn: {"executionArn": arn, "status": "RUNNING"})
    role = deploy(config, trail, queue)
    for _ in range(400):
        time.sleep(0.02)
        try:
            role = status(config, role, execution_arn=EXECUTION)
        except OnboardingError:
            return role
    raise AssertionError("the rollout never failed")


EXECUTION = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:execution:expel-onboarding-onboarding:create-1"


def test_a_redrive_after_the_cause_is_fixed_retries_the_failed_accounts(
        org_config, organization, trail, queue, monkeypatch):
    failing = organization.accounts["payments"][0]
    _hand_made_role(failing)
    failed_look = _last_look_before_the_failure(org_config, trail, queue, monkeypatch)
    _member_iam(failing).delete_role(RoleName="ExpelAssumeRole")  # the person fixes the cause ...
    executions: list[str] = []

    def describe_execution(arn: str) -> dict[str, Any]:  # ... and redrives the execution
        executions.append(arn)
        return {"executionArn": arn, "status": "RUNNING", "redriveCount": 1, "redriveDate": datetime.now(UTC)}

    monkeypatch.setattr(stepfunctions, "describe_execution", describe_execution)
    with count_mutating_calls() as calls:
        role = _rollout(org_config, trail, queue, first=status(org_config, failed_look, execution_arn=EXECUTION))

    assert executions and set(executions) == {EXECUTION}
    assert calls == ["cloudformation.UpdateStackSet"]
    assert role.status == "COMPLETE" and role.failed_accounts == []
    assert "ExpelAssumeRole" in role_names(_member_iam(failing))


def test_the_failed_look_again_without_a_redrive_reports_the_same_failure(org_config, organization, trail, queue,
                                                                           monkeypatch):
    _hand_made_role(organization.accounts["payments"][0])
    failed_look = _last_look_before_the_failure(org_config, trail, queue, monkeypatch)

    with count_mutating_calls() as calls, pytest.raises(OnboardingError, match="already exists"):
        status(org_config, failed_look, execution_arn=EXECUTION)

    assert calls == []


def test_failures_within_the_tolerance_complete_and_are_named_in_the_output(org_config, organization, trail, queue):
    failing = organization.accounts["payments"][0]
    _hand_made_role(failing)
    tolerant = dataclasses.replace(org_config, stack_set_failure_tolerance_percentage=50)

    role = _rollout(tolerant, trail, queue)

    assert role.status == "COMPLETE" and role.role_arn
    [failed] = role.failed_accounts
    assert (failed["Account"], failed["Region"]) == (failing, REGION)
    assert "ExpelRole" in failed["Reason"] and "already exists" in failed["Reason"]
    assert RoleOutput.from_dict(role.to_dict()).failed_accounts == role.failed_accounts  # the step's output
    operation = _operations(tolerant)[0]
    assert (operation["Status"], operation["StatusDetails"]["FailedStackInstancesCount"]) == ("SUCCEEDED", 1)
    others = [a for a in organization.accounts["prod"] + organization.accounts["dev"]]
    assert all("ExpelAssumeRole" in role_names(_member_iam(a)) for a in others)
    # The hand-made role is left as it was: not taken over, not deleted by the rollback.
    assert "Condition" not in _member_iam(failing).get_role(RoleName="ExpelAssumeRole")["Role"][
        "AssumeRolePolicyDocument"]["Statement"][0]


def test_a_rerun_retries_failed_accounts_once_and_converges_when_the_cause_is_gone(
        org_config, organization, trail, queue):
    failing = organization.accounts["payments"][0]
    _hand_made_role(failing)
    tolerant = dataclasses.replace(org_config, stack_set_failure_tolerance_percentage=50)
    _rollout(tolerant, trail, queue)

    with count_mutating_calls() as calls:
        still = _rollout(tolerant, trail, queue)
    assert calls == ["cloudformation.UpdateStackSet"]  # one retry, then reported again
    assert [f["Account"] for f in still.failed_accounts] == [failing]

    _member_iam(failing).delete_role(RoleName="ExpelAssumeRole")
    fixed = _rollout(tolerant, trail, queue)

    assert fixed.failed_accounts == []
    assert {i["Status"] for i in _instances(tolerant)} == {"CURRENT"}
    trust = _member_iam(failing).get_role(RoleName="ExpelAssumeRole")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Condition"] == {"StringEquals": {"sts:ExternalId": WORKBENCH_GUID}}


# --- a delegated administrator ---------------------------------------------------------------------------

def _act_as(account_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the step's own clients act inside that member account."""
    credentials = boto("sts").assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
                                          RoleSessionName="onboarding")["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])
    clients.reset()


def test_delegated_administrator_calls_as_such_and_leaves_itself_to_the_step_9_stack(
        org_config, organization, trail, queue, monkeypatch):
    admin = organization.accounts["prod"][0]
    boto("organizations").register_delegated_administrator(AccountId=admin, ServicePrincipal=STACKSETS)
    _act_as(admin, monkeypatch)
    sent: list[tuple[str, dict[str, Any]]] = []
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if "StackSet" in operation or "StackInstances" in operation:
            sent.append((operation, params))
        return original(self, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", record):
        role = _rollout(dataclasses.replace(org_config, account_id=admin), trail, queue)

    assert sent and all(params.get("CallAs") == "DELEGATED_ADMIN" for _, params in sent)
    targets = next(params["DeploymentTargets"] for op, params in sent if op == "CreateStackInstances")
    assert targets["AccountFilterType"] == "DIFFERENCE" and targets["Accounts"] == [admin]
    instances = clients.client("cloudformation", REGION).list_stack_instances(
        StackSetName=stack_set_name(org_config), CallAs="DELEGATED_ADMIN")["Summaries"]
    accounts = sorted(i["Account"] for i in instances)
    assert admin not in accounts and accounts  # the rest of prod, payments and dev
    assert role.role_arn == f"arn:aws:iam::{admin}:role/ExpelAssumeRole"  # the step-9 stack, in its account


def test_a_delegated_administrator_checks_the_organization_and_repairs_a_deleted_instance_but_not_its_own(
        org_config, organization, trail, queue, monkeypatch):
    """A StackSets delegated administrator is a delegated administrator to Organizations too: it lists the targets'
    accounts (leaving out itself, whose role is the step-9 stack, and the management account)."""
    admin = organization.accounts["prod"][0]
    boto("organizations").register_delegated_administrator(AccountId=admin, ServicePrincipal=STACKSETS)
    _act_as(admin, monkeypatch)
    config = dataclasses.replace(org_config, account_id=admin)
    _rollout(config, trail, queue)
    assert _checked(config)[0].findings == []
    missing = organization.accounts["dev"][0]
    removed = clients.client("cloudformation", REGION).delete_stack_instances(
        StackSetName=stack_set_name(config), Regions=[REGION], RetainStacks=False, CallAs="DELEGATED_ADMIN",
        DeploymentTargets={"OrganizationalUnitIds": [organization.ous["dev"]], "Accounts": [missing],
                           "AccountFilterType": "INTERSECTION"})["OperationId"]
    assert removed and stacksets.wait_idle()
    assert [f.resource for f in _checked(config)[0].findings] == [f"account {missing} ({REGION})"]

    _rollout(config, trail, queue)

    assert _checked(config)[0].findings == []
    accounts = [i["Account"] for i in clients.client("cloudformation", REGION).list_stack_instances(
        StackSetName=stack_set_name(config), CallAs="DELEGATED_ADMIN")["Summaries"]]
    assert missing in accounts and admin not in accounts


def test_an_account_that_is_not_a_delegated_administrator_is_told_how_to_become_one(
        org_config, organization, trail, queue, monkeypatch):
    member = organization.accounts["prod"][0]
    _act_as(member, monkeypatch)

    with pytest.raises(OnboardingError) as raised:
        deploy(dataclasses.replace(org_config, account_id=member), trail, queue)

    assert "Account used is not a delegated administrator" in str(raised.value)
    assert "register-delegated-administrator" in str(raised.value)


def test_trusted_access_not_enabled_names_the_command_that_enables_it(aws, config, trail, queue):
    organization = build(boto("organizations"), {"dev": ("root", 1)}, trusted=())
    org_config = dataclasses.replace(config, organization_mode=True,
                                     organization_target_ou_ids=[organization.ous["dev"]])

    with pytest.raises(OnboardingError, match="activate-organizations-access"):
        deploy(org_config, trail, queue)


# --- teardown ------------------------------------------------------------------------------------------

def test_remove_deletes_the_instances_then_the_stack_set(org_config, organization, trail, queue):
    _rollout(org_config, trail, queue)

    results = [remove(org_config)]
    while results[-1] == "IN_PROGRESS" and len(results) < 200:
        time.sleep(0.02)
        results.append(remove(org_config))

    assert results[0] == "IN_PROGRESS" and results[-1] == "DELETED"
    assert remove(org_config) == "DELETED"
    assert boto("cloudformation").list_stack_sets(Status="ACTIVE")["Summaries"] == []
    for account in organization.accounts["prod"] + organization.accounts["payments"]:
        assert "ExpelAssumeRole" not in role_names(_member_iam(account))
    # Step 9's stack is not step 8's to remove.
    assert boto("cloudformation").describe_stacks(StackName=org_config.role_stack_name)["Stacks"]


def test_remove_of_a_stack_set_targeting_more_ous_than_one_operation_takes_deletes_them_in_turns(
        config, organization, trail, queue):
    """CloudFormation takes at most 50 OUs per DeleteStackInstances: 51 targets, each holding an account (50
    onboarded, one added by hand), are deleted in two operations, and the StackSet after them."""
    organizations = boto("organizations")
    teams = []
    for n in range(48):
        teams.append(organizations.create_organizational_unit(ParentId=organization.root, Name=f"team{n}")[
            "OrganizationalUnit"]["Id"])
        add_account(organizations, organization.root, teams[-1], f"team{n}")
    targets = [organization.ous[name] for name in ("prod", "dev", "sandbox")] + teams[:47]
    org_config = dataclasses.replace(config, organization_mode=True, organization_target_ou_ids=targets)
    _rollout(org_config, trail, queue)
    cloudformation = boto("cloudformation")
    cloudformation.create_stack_instances(StackSetName=stack_set_name(org_config), Regions=[REGION],
                                          DeploymentTargets={"OrganizationalUnitIds": [teams[47]]})
    stacksets.wait_idle()
    assert len(cloudformation.describe_stack_set(StackSetName=stack_set_name(org_config))["StackSet"][
        "OrganizationalUnitIds"]) == 51

    sent: list[list[str]] = []
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if operation_name == "DeleteStackInstances":
            sent.append(api_params["DeploymentTargets"]["OrganizationalUnitIds"])
        return original(self, operation_name, api_params)

    with mock.patch.object(BaseClient, "_make_api_call", record):
        results = [remove(org_config)]
        while results[-1] == "IN_PROGRESS" and len(results) < 400:
            time.sleep(0.02)
            results.append(remove(org_config))

    assert results[-1] == "DELETED"
    assert [len(ous) for ous in sent] == [50, 1]
    assert sorted(sent[0] + sent[1]) == sorted([*targets, teams[47]])
    assert cloudformation.list_stack_sets(Status="ACTIVE")["Summaries"] == []
    for account in organization.accounts["prod"] + organization.accounts["payments"]:
        assert "ExpelAssumeRole" not in role_names(_member_iam(account))


def test_remove_leaves_a_stack_set_that_is_not_ours(org_config):
    boto("cloudformation").create_stack_set(
        StackSetName=stack_set_name(org_config), TemplateBody=role_template(), PermissionModel="SERVICE_MANAGED",
        Capabilities=["CAPABILITY_NAMED_IAM"])

    with count_mutating_calls() as calls:
        assert remove(org_config) == "SKIPPED"

    assert calls == []


def test_remove_when_nothing_was_deployed_is_done(org_config):
    with count_mutating_calls() as calls:
        assert remove(org_config) == "DELETED"

    assert calls == []


# --- the drift check (guide step 8): the StackSet, its instances, the member accounts' roles ---------------

def _checked(config: Config, looks: list[StepCheck] | None = None) -> tuple[StepCheck, int]:
    """The check, looked at again until CloudFormation's drift detection has been read; and how many looks
    (each one kept in ``looks``)."""
    looks = [] if looks is None else looks
    looks.append(step08_expel_role.check(config))
    while looks[-1].pending:
        assert len(looks) < 400, looks[-1]
        time.sleep(0.02)
        looks.append(step08_expel_role.check(config, previous=looks[-1]))
    return looks[-1], len(looks)


def test_a_clean_organization_is_in_sync_and_the_check_only_starts_drift_detection(org_config, trail, queue):
    _rollout(org_config, trail, queue)

    looks: list[StepCheck] = []
    with count_mutating_calls() as calls:
        check, _ = _checked(org_config, looks)

    first = looks[0]
    assert first.pending and first.detection and first.findings == []
    assert (check.status, check.findings, check.pending) == (DriftStatus.IN_SYNC, [], False)
    assert calls == ["cloudformation.DetectStackSetDrift"]  # IAM's Read: it changes nothing in any account
    operation = boto("cloudformation").describe_stack_set_operation(
        StackSetName=stack_set_name(org_config), OperationId=first.detection)["StackSetOperation"]
    assert operation["Action"] == "DETECT_DRIFT"
    assert operation["OperationPreferences"]["FailureTolerancePercentage"] == 100


def test_a_member_accounts_role_changed_by_hand_is_named_with_its_account_property_and_fix(
        org_config, organization, trail, queue):
    _rollout(org_config, trail, queue)
    account = organization.accounts["prod"][1]
    iam = _member_iam(account)
    trust = iam.get_role(RoleName="ExpelAssumeRole")["Role"]["AssumeRolePolicyDocument"]
    trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = "not-the-guid"
    iam.update_assume_role_policy(RoleName="ExpelAssumeRole", PolicyDocument=json.dumps(trust))

    check, looks = _checked(org_config)

    assert looks > 1 and check.status == DriftStatus.DRIFTED
    [finding] = check.findings
    assert finding.step == 8
    assert finding.resource == f"role ExpelAssumeRole in account {account} ({REGION})"
    assert finding.setting == "AssumeRolePolicyDocument/Statement/0/Condition/StringEquals/sts:ExternalId (NOT_EQUAL)"
    assert (finding.actual, finding.expected) == ("not-the-guid", WORKBENCH_GUID)
    assert finding.repairable is True  # the repair replaces that account's instance
    assert finding.fix.startswith("`cloudtrail-onboarding doctor --stack <stack> --repair` replaces that account's "
                                  "stack instance")
    assert f"in account {account}, IAM > Roles > ExpelAssumeRole" in finding.fix
    assert "delete-stack-instances" in finding.fix and f"Accounts={account}" in finding.fix


def _set_external_id(account: str, external_id: str) -> None:
    iam = _member_iam(account)
    trust = iam.get_role(RoleName="ExpelAssumeRole")["Role"]["AssumeRolePolicyDocument"]
    trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = external_id
    iam.update_assume_role_policy(RoleName="ExpelAssumeRole", PolicyDocument=json.dumps(trust))


def test_the_check_reports_what_its_own_drift_detection_found_not_a_later_ones(
        org_config, organization, trail, queue):
    """Each instance's DriftStatus is the latest detection's: a person fixed one role and broke another, then ran
    a detection of their own after the check's had ended. The check names what its operation found."""
    _rollout(org_config, trail, queue)
    fixed, broken = organization.accounts["prod"][0], organization.accounts["dev"][0]
    _set_external_id(fixed, "changed-before-the-check")
    first = step08_expel_role.check(org_config)
    assert first.pending and stacksets.wait_idle()
    _set_external_id(fixed, WORKBENCH_GUID)
    _set_external_id(broken, "changed-after-the-check")
    theirs = boto("cloudformation").detect_stack_set_drift(StackSetName=stack_set_name(org_config))["OperationId"]
    _wait_for_operation(org_config, theirs)
    latest = {i["Account"]: i["DriftStatus"] for i in _instances(org_config)}
    assert (latest[fixed], latest[broken]) == ("IN_SYNC", "DRIFTED")

    check = step08_expel_role.check(org_config, previous=first)

    assert not check.pending and check.status == DriftStatus.DRIFTED
    assert [(f.resource, f.actual) for f in check.findings] == [
        (f"role ExpelAssumeRole in account {fixed} ({REGION})", "changed-before-the-check")]


def test_a_detection_that_found_no_drift_reads_no_instance(org_config, trail, queue):
    _rollout(org_config, trail, queue)
    first = step08_expel_role.check(org_config)
    assert first.pending and stacksets.wait_idle()
    read: list[str] = []
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        read.append(operation)
        return original(self, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", record):
        check = step08_expel_role.check(org_config, previous=first)

    assert (check.status, check.pending) == (DriftStatus.IN_SYNC, False)
    assert "DescribeStackSetOperation" in read
    assert not {"ListStackInstances", "ListStackInstanceResourceDrifts"} & set(read)  # none per account


def test_a_deleted_member_role_and_an_account_without_its_instance_are_each_named(
        org_config, organization, trail, queue):
    _rollout(org_config, trail, queue)
    gone, missing = organization.accounts["prod"][0], organization.accounts["dev"][0]
    iam = _member_iam(gone)
    for name in iam.list_role_policies(RoleName="ExpelAssumeRole")["PolicyNames"]:
        iam.delete_role_policy(RoleName="ExpelAssumeRole", PolicyName=name)
    iam.delete_role(RoleName="ExpelAssumeRole")
    cfn = boto("cloudformation")
    removed = cfn.delete_stack_instances(
        StackSetName=stack_set_name(org_config), Regions=[REGION], RetainStacks=False,
        DeploymentTargets={"OrganizationalUnitIds": [organization.ous["dev"]], "Accounts": [missing],
                           "AccountFilterType": "INTERSECTION"})["OperationId"]
    _wait_for_operation(org_config, removed)

    check, _ = _checked(org_config)

    found = {(f.resource, f.setting): f for f in check.findings}
    assert set(found) == {(f"role ExpelAssumeRole in account {gone} ({REGION})", "role"),
                          (f"account {missing} ({REGION})", f"stack instance of StackSet {stack_set_name(org_config)}")}
    instance = found[(f"account {missing} ({REGION})", f"stack instance of StackSet {stack_set_name(org_config)}")]
    assert instance.actual == ABSENT
    assert instance.repairable and instance.fix.startswith("`cloudtrail-onboarding doctor --stack <stack> --repair` "
                                                           "deploys it again")
    assert f"OrganizationalUnitIds={organization.ous['dev']},Accounts={missing},AccountFilterType=INTERSECTION" in \
        instance.fix and "create-stack-instances" in instance.fix
    assert found[(f"role ExpelAssumeRole in account {gone} ({REGION})", "role")].repairable is True


def test_a_missing_instance_named_by_the_check_is_restored_by_the_repair_and_the_next_check_is_clean(
        org_config, organization, trail, queue):
    _rollout(org_config, trail, queue)
    missing = organization.accounts["payments"][0]
    _delete_instance(org_config, organization.ous["prod"], missing)
    named, _ = _checked(org_config)
    assert [(f.resource, f.repairable) for f in named.findings] == [(f"account {missing} ({REGION})", True)]

    _rollout(org_config, trail, queue)  # the repair: the onboarding, run again

    check, _ = _checked(org_config)
    assert (check.status, check.findings) == (DriftStatus.IN_SYNC, [])


def test_an_instance_that_is_not_current_is_named_with_its_reason_and_the_rest_still_checked(
        org_config, organization, trail, queue):
    failing = organization.accounts["payments"][0]
    _hand_made_role(failing)  # the rollout fails there, within the tolerance
    tolerant = dataclasses.replace(org_config, stack_set_failure_tolerance_percentage=50)
    _rollout(tolerant, trail, queue)

    check, _ = _checked(tolerant)

    [finding] = check.findings
    assert (finding.resource, finding.setting) == (f"account {failing} ({REGION})",
                                                   f"stack instance of StackSet {stack_set_name(tolerant)}")
    assert finding.actual.startswith("OUTDATED (FAILED): ResourceLogicalId:ExpelRole") and "already exists" in \
        finding.actual
    assert finding.expected == "CURRENT"
    assert finding.fix.startswith("a role named ExpelAssumeRole exists in that account outside the StackSet")
    assert "--repair" in finding.fix


def test_no_stack_set_is_a_finding_that_names_the_repair(org_config):
    check, looks = _checked(org_config)

    assert looks == 1
    [finding] = check.findings
    assert (finding.setting, finding.actual) == ("StackSet", ABSENT)
    assert "--repair" in finding.fix


def _wait_for_operation(config: Config, operation_id: str) -> dict[str, Any]:
    for _ in range(500):
        operation = boto("cloudformation").describe_stack_set_operation(
            StackSetName=stack_set_name(config), OperationId=operation_id)["StackSetOperation"]
        if operation["Status"] not in ("QUEUED", "RUNNING", "STOPPING"):
            return dict(operation)
        time.sleep(0.02)
    raise AssertionError(f"operation {operation_id} did not end")


def test_a_drift_detection_that_does_not_finish_in_time_leaves_the_step_not_checked_naming_it(
        org_config, trail, queue, monkeypatch):
    _rollout(org_config, trail, queue)
    monkeypatch.setattr(stacksets.TIMING, "batch_seconds", 5.0)  # the detection outlasts the check
    first = step08_expel_role.check(org_config)

    later = datetime.now(UTC) + step08_expel_role.DRIFT_DETECTION_LIMIT + timedelta(seconds=1)
    late = step08_expel_role.check(org_config, previous=first, now=later)

    assert first.pending and not late.pending
    assert late.status == DriftStatus.NOT_CHECKED and late.findings == []
    assert f"did not finish within 30 minutes (operation {first.detection};" in late.note


# --- the repair of member accounts' roles changed by hand ----------------------------------------------------

def _repair(config: Config, trail: TrailOutput, queue: QueueOutput) -> RoleOutput:
    """What a repair does (``doctor --repair``, DriftRepair): the onboarding again, as a repair."""
    role = deploy(config, trail, queue, repair=True)
    for _ in range(400):
        if role.status == "COMPLETE":
            return role
        time.sleep(0.02)
        role = status(config, role, repair=True)
    raise AssertionError(f"never completed: {role}")


def _external_id(account: str) -> str:
    trust = _member_iam(account).get_role(RoleName="ExpelAssumeRole")["Role"]["AssumeRolePolicyDocument"]
    return str(trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"])


def test_the_repair_replaces_the_instance_of_each_account_whose_role_drifted_and_no_other(
        org_config, organization, trail, queue):
    _rollout(org_config, trail, queue)
    changed, gone = organization.accounts["prod"][0], organization.accounts["payments"][0]
    _set_external_id(changed, "not-the-guid")
    iam = _member_iam(gone)
    iam.delete_role_policy(RoleName="ExpelAssumeRole", PolicyName="ExpelInventoryReadOnly")
    iam.delete_role(RoleName="ExpelAssumeRole")
    named, _ = _checked(org_config)
    assert {f.repairable for f in named.findings} == {True} and len(named.findings) == 2
    before = {i["Account"]: i["LastOperationId"] for i in _instances(org_config)}
    operations = len(_operations(org_config))

    _repair(org_config, trail, queue)

    new = _operations(org_config)[: len(_operations(org_config)) - operations]
    assert sorted(o["Action"] for o in new) == ["CREATE", "DELETE"]
    cfn = boto("cloudformation")
    for operation in new:
        described = cfn.describe_stack_set_operation(StackSetName=stack_set_name(org_config),
                                                     OperationId=operation["OperationId"])["StackSetOperation"]
        assert described["Status"] == "SUCCEEDED"
        assert described["DeploymentTargets"]["AccountFilterType"] == "INTERSECTION"
        assert sorted(described["DeploymentTargets"]["Accounts"]) == sorted([changed, gone])  # those alone
    assert described["Action"] == "CREATE" or described["RetainStacks"] is False
    assert _external_id(changed) == WORKBENCH_GUID and _external_id(gone) == WORKBENCH_GUID
    assert _member_iam(gone).list_role_policies(RoleName="ExpelAssumeRole")["PolicyNames"] == ["ExpelInventoryReadOnly"]
    after = {i["Account"]: i["LastOperationId"] for i in _instances(org_config)}
    assert {a: o for a, o in after.items() if a not in (changed, gone)} == {
        a: o for a, o in before.items() if a not in (changed, gone)}  # the other instances untouched
    check, _ = _checked(org_config)
    assert (check.status, check.findings) == (DriftStatus.IN_SYNC, [])


def test_a_rerun_that_is_not_a_repair_leaves_a_drifted_role_to_the_repair(org_config, organization, trail, queue):
    _rollout(org_config, trail, queue)
    changed = organization.accounts["prod"][0]
    _set_external_id(changed, "not-the-guid")
    _checked(org_config)
    operations = len(_operations(org_config))

    _rollout(org_config, trail, queue)  # a stack update: replacing a role (Expel loses it a while) is the repair's

    assert len(_operations(org_config)) == operations and _external_id(changed) == "not-the-guid"


def test_a_role_with_a_policy_attached_by_hand_stops_the_repair_naming_the_account_and_the_fix(
        org_config, organization, trail, queue):
    _rollout(org_config, trail, queue)
    blocked, changed = organization.accounts["prod"][0], organization.accounts["dev"][0]
    _set_external_id(blocked, "not-the-guid")
    _set_external_id(changed, "not-the-guid-either")
    iam = _member_iam(blocked)
    theirs = iam.create_policy(PolicyName="TheirOwn", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="ExpelAssumeRole", PolicyArn=theirs)
    _checked(org_config)

    with pytest.raises(OnboardingError) as raised:
        _repair(org_config, trail, queue)

    message = str(raised.value)
    assert f"the Expel role of member accounts {blocked} ({REGION}) could not be replaced" in message
    assert "Cannot delete entity, must detach all policies first." in message
    assert "IAM > Roles > ExpelAssumeRole > Permissions, note and detach it" in message
    assert "--repair` again" in message
    # Never detached here; the other drifted account was replaced all the same.
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName="ExpelAssumeRole")["AttachedPolicies"]] \
        == [theirs]
    assert _external_id(changed) == WORKBENCH_GUID
    assert {i["Account"]: i["Status"] for i in _instances(org_config)}[blocked] == "INOPERABLE"
    inoperable, _ = _checked(org_config)
    [finding] = [f for f in inoperable.findings if f.resource == f"account {blocked} ({REGION})"]
    assert finding.actual.startswith("INOPERABLE (INOPERABLE): ResourceLogicalId:ExpelRole")
    assert finding.fix.startswith("a managed policy attached to the role by hand blocks IAM's delete: detach it")

    # The person detaches their policy: the repair deletes the instance again and creates it anew.
    iam.detach_role_policy(RoleName="ExpelAssumeRole", PolicyArn=theirs)
    _repair(org_config, trail, queue)

    assert _external_id(blocked) == WORKBENCH_GUID
    check, _ = _checked(org_config)
    assert (check.status, check.findings) == (DriftStatus.IN_SYNC, [])
