"""The local cloud's service-managed StackSets (``local_cloud/stacksets.py``) keep AWS's rules, each proven
here through the CloudFormation API, in-process with the same code ``local serve`` runs (tests/conftest.py
applies it, with operations compressed to milliseconds)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local_cloud import stacksets
from tests.conftest import ACCOUNT_ID, REGION, boto
from tests.organization import STACKSETS, Organization, add_account, build, member_client, role_names, wait_for
from tests.support import refusal

TEMPLATE = json.dumps({
    "Parameters": {"Guid": {"Type": "String"}},
    "Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": "Probe",
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::012205512454:root"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": {"Ref": "Guid"}}}}]}}}},
})
AUTO = {"Enabled": True, "RetainStacksOnAccountRemoval": False}
# workloads (1 account) with a nested prod OU (2), sandbox (1), one account in the root.
LAYOUT = {"workloads": ("root", 1), "prod": ("workloads", 2), "sandbox": ("root", 1), "root": ("root", 1)}


@pytest.fixture
def org(aws: None) -> Iterator[Organization]:
    yield build(boto("organizations"), LAYOUT)


def _create(name: str = "probe", **kwargs: Any) -> None:
    arguments: dict[str, Any] = {
        "StackSetName": name, "TemplateBody": TEMPLATE, "PermissionModel": "SERVICE_MANAGED", "AutoDeployment": AUTO,
        "Capabilities": ["CAPABILITY_NAMED_IAM"], "Parameters": [{"ParameterKey": "Guid", "ParameterValue": "g-1"}]}
    boto("cloudformation").create_stack_set(**(arguments | kwargs))


def _deploy(ous: list[str], name: str = "probe", **kwargs: Any) -> str:
    return str(boto("cloudformation").create_stack_instances(
        StackSetName=name, DeploymentTargets={"OrganizationalUnitIds": ous}, Regions=[REGION], **kwargs)["OperationId"])


def _operation(operation_id: str, name: str = "probe") -> dict[str, Any]:
    return dict(boto("cloudformation").describe_stack_set_operation(
        StackSetName=name, OperationId=operation_id)["StackSetOperation"])


def _finished(operation_id: str, name: str = "probe") -> dict[str, Any]:
    return wait_for(lambda: (o := _operation(operation_id, name))["Status"] not in ("QUEUED", "RUNNING", "STOPPING")
                    and o, what=f"operation {operation_id}")


def _instances(name: str = "probe") -> dict[str, dict[str, Any]]:
    pages = boto("cloudformation").get_paginator("list_stack_instances").paginate(StackSetName=name)
    return {i["Account"]: i for page in pages for i in page["Summaries"]}


def _roles(account: str) -> list[str]:
    return role_names(member_client(boto("sts"), account, "iam", region_name=REGION))


class HeldClock:
    """The StackSets' clock stopped (``stacksets.TIMING.clock``): an operation started meanwhile stays RUNNING (its
    accounts PENDING) and the next one QUEUED, however long a test takes to look, until ``advance`` moves the clock
    on or ``release`` lets it run with time again (a real-time batch long enough to be seen RUNNING on a loaded
    machine cost the tests seconds each)."""

    def __init__(self) -> None:
        self.now: float | None = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() if self.now is None else self.now

    def advance(self, seconds: float) -> None:
        assert self.now is not None, "released"
        self.now += seconds

    def release(self) -> None:
        self.now = None


def _hold(monkeypatch: pytest.MonkeyPatch) -> HeldClock:
    clock = HeldClock()
    monkeypatch.setattr(stacksets.TIMING, "clock", clock)
    return clock


# --- who may, and what CloudFormation checks first ------------------------------------------------------

def test_describe_returns_auto_deployment_permission_model_and_the_target_ous(org: Organization) -> None:
    _create(ManagedExecution={"Active": False})
    _finished(_deploy([org.ous["workloads"], org.ous["sandbox"]]))

    stack_set = boto("cloudformation").describe_stack_set(StackSetName="probe")["StackSet"]

    assert stack_set["AutoDeployment"] == AUTO
    assert stack_set["PermissionModel"] == "SERVICE_MANAGED"
    assert stack_set["OrganizationalUnitIds"] == sorted([org.ous["workloads"], org.ous["sandbox"]])
    assert stack_set["ManagedExecution"] == {"Active": False}
    assert stack_set["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    summary = boto("cloudformation").list_stack_sets(Status="ACTIVE")["Summaries"]
    assert [(s["StackSetName"], s["AutoDeployment"], s["PermissionModel"]) for s in summary] == [
        ("probe", AUTO, "SERVICE_MANAGED")]


def test_without_trusted_access_a_service_managed_stack_set_is_refused(aws: None) -> None:
    build(boto("organizations"), {"dev": ("root", 1)}, trusted=())

    code, message = refusal(boto("cloudformation").create_stack_set, StackSetName="probe",
                            TemplateBody=TEMPLATE, PermissionModel="SERVICE_MANAGED", AutoDeployment=AUTO,
                            Capabilities=["CAPABILITY_NAMED_IAM"])
    assert code == "ValidationError"

    assert message == "You must enable organizations access to operate a service managed stack set"


def test_outside_an_organization_a_service_managed_stack_set_is_refused(aws: None) -> None:
    code, message = refusal(boto("cloudformation").create_stack_set, StackSetName="probe", TemplateBody=TEMPLATE,
                            PermissionModel="SERVICE_MANAGED", Capabilities=["CAPABILITY_NAMED_IAM"])
    assert code == "ValidationError"

    assert "management account or delegated admin account of an organization" in message


def test_a_named_role_needs_the_named_iam_capability(org: Organization) -> None:
    code, message = refusal(boto("cloudformation").create_stack_set,
                            StackSetName="probe", TemplateBody=TEMPLATE, PermissionModel="SERVICE_MANAGED",
                            AutoDeployment=AUTO, Capabilities=["CAPABILITY_IAM"])
    assert code == "InsufficientCapabilitiesException"

    assert message == "Requires capabilities : [CAPABILITY_NAMED_IAM]"


def test_a_member_account_must_be_a_registered_delegated_administrator(org: Organization) -> None:
    member = org.accounts["sandbox"][0]
    cfn = member_client(boto("sts"), member, "cloudformation", region_name=REGION)
    arguments = {"StackSetName": "probe", "TemplateBody": TEMPLATE, "PermissionModel": "SERVICE_MANAGED",
                 "AutoDeployment": AUTO, "Capabilities": ["CAPABILITY_NAMED_IAM"]}

    code, message = refusal(cfn.create_stack_set, **arguments)
    assert code == "ValidationError" and "management account" in message
    assert refusal(cfn.create_stack_set, CallAs="DELEGATED_ADMIN", **arguments) == (
        "ValidationError", "Account used is not a delegated administrator")
    boto("organizations").register_delegated_administrator(AccountId=member, ServicePrincipal=STACKSETS)
    cfn.create_stack_set(CallAs="DELEGATED_ADMIN", **arguments)
    assert cfn.describe_stack_set(StackSetName="probe", CallAs="DELEGATED_ADMIN")["StackSet"]["StackSetName"]


# --- where instances go -------------------------------------------------------------------------------------

def test_nested_ous_are_deployed_to_and_the_management_account_never(org: Organization) -> None:
    _create()

    operation = _finished(_deploy([org.root], OperationPreferences={"MaxConcurrentCount": 10}))

    assert operation["Status"] == "SUCCEEDED"
    assert sorted(_instances()) == org.all_members()
    assert ACCOUNT_ID not in _instances()
    assert "Probe" not in role_names(boto("iam"))  # nothing in the management account's IAM
    for account in org.accounts["prod"]:  # two levels down
        assert _instances()[account]["OrganizationalUnitId"] == org.root
        assert "Probe" in _roles(account)
    stacks = member_client(boto("sts"), org.accounts["prod"][0], "cloudformation", region_name=REGION)
    assert [s["StackName"].split("-")[:2] for s in stacks.describe_stacks()["Stacks"]] == [["StackSet", "probe"]]


def test_account_filter_difference_leaves_the_named_accounts_out(org: Organization) -> None:
    _create()
    left_out = org.accounts["prod"][0]

    _finished(str(boto("cloudformation").create_stack_instances(
        StackSetName="probe", Regions=[REGION], DeploymentTargets={
            "OrganizationalUnitIds": [org.ous["workloads"]], "Accounts": [left_out],
            "AccountFilterType": "DIFFERENCE"})["OperationId"]))

    assert sorted(_instances()) == sorted(org.accounts["workloads"] + org.accounts["prod"][1:])


def test_an_instance_deleted_for_one_account_stays_gone_and_intersection_deploys_it_alone(org: Organization) -> None:
    """The OU stays a target when one account's instance is deleted, so nothing puts it back by itself; creating
    instances for that account of the OU (INTERSECTION) deploys it and touches no other instance."""
    _create()
    first = _finished(_deploy([org.ous["workloads"]]))["OperationId"]
    gone = org.accounts["prod"][1]
    cfn = boto("cloudformation")
    _finished(str(cfn.delete_stack_instances(
        StackSetName="probe", Regions=[REGION], RetainStacks=False, DeploymentTargets={
            "OrganizationalUnitIds": [org.ous["workloads"]], "Accounts": [gone],
            "AccountFilterType": "INTERSECTION"})["OperationId"]))
    assert gone not in _instances() and "Probe" not in _roles(gone)
    assert cfn.describe_stack_set(StackSetName="probe")["StackSet"]["OrganizationalUnitIds"] == [org.ous["workloads"]]
    assert refusal(cfn.create_stack_instances, StackSetName="probe", Regions=[REGION], DeploymentTargets={
        "OrganizationalUnitIds": [org.ous["workloads"]], "Accounts": [gone]}) == (
        "ValidationError", "AccountFilterType should be specified when both OrganizationalUnitIds and Accounts are "
                           "provided")

    again = _finished(str(cfn.create_stack_instances(
        StackSetName="probe", Regions=[REGION], DeploymentTargets={
            "OrganizationalUnitIds": [org.ous["workloads"]], "Accounts": [gone],
            "AccountFilterType": "INTERSECTION"})["OperationId"]))

    assert again["Status"] == "SUCCEEDED" and "Probe" in _roles(gone)
    instances = _instances()
    assert sorted(instances) == sorted(org.accounts["workloads"] + org.accounts["prod"])
    assert instances[gone]["LastOperationId"] == again["OperationId"]
    assert {i["LastOperationId"] for a, i in instances.items() if a != gone} == {first}


def test_delete_stack_instances_honours_its_deployment_targets(org: Organization) -> None:
    _create()
    _finished(_deploy([org.ous["workloads"], org.ous["sandbox"]], OperationPreferences={"MaxConcurrentCount": 5}))

    deleted = _finished(str(boto("cloudformation").delete_stack_instances(
        StackSetName="probe", DeploymentTargets={"OrganizationalUnitIds": [org.ous["sandbox"]]}, Regions=[REGION],
        RetainStacks=False)["OperationId"]))

    assert deleted["Status"] == "SUCCEEDED"
    assert sorted(_instances()) == sorted(org.accounts["workloads"] + org.accounts["prod"])
    assert "Probe" not in _roles(org.accounts["sandbox"][0])
    assert "Probe" in _roles(org.accounts["prod"][0])
    stack_set = boto("cloudformation").describe_stack_set(StackSetName="probe")["StackSet"]
    assert stack_set["OrganizationalUnitIds"] == [org.ous["workloads"]]


def test_one_operation_takes_at_most_50_ous(org: Organization) -> None:
    """CloudFormation's API reference: "The maximum number of organizational units (OUs) supported by a
    CreateStackInstances operation is 50" (and by DeleteStackInstances, UpdateStackInstances, UpdateStackSet)."""
    organizations = boto("organizations")
    ous = sorted(org.ous.values()) + [organizations.create_organizational_unit(
        ParentId=org.root, Name=f"team{n}")["OrganizationalUnit"]["Id"] for n in range(51 - len(org.ous))]
    _create()
    cfn = boto("cloudformation")
    expected = (f"1 validation error detected: Value '[{', '.join(ous)}]' at 'deploymentTargets.organizationalUnitIds' "
                "failed to satisfy constraint: Member must have length less than or equal to 50")
    for call, arguments in (
            (cfn.create_stack_instances, {}),
            (cfn.delete_stack_instances, {"RetainStacks": False}),
            (cfn.update_stack_set, {"UsePreviousTemplate": True, "Capabilities": ["CAPABILITY_NAMED_IAM"]})):
        error = refusal(call, StackSetName="probe", DeploymentTargets={"OrganizationalUnitIds": ous},
                        Regions=[REGION], **arguments)
        assert (call.__name__, error.code, error.message) == (call.__name__, "ValidationError", expected)
    assert boto("cloudformation").list_stack_set_operations(StackSetName="probe")["Summaries"] == []

    assert _finished(_deploy(ous[:50]))["Status"] == "SUCCEEDED"


# --- operations: background, one at a time ------------------------------------------------------------------

def test_an_operation_runs_in_the_background_and_another_is_refused_meanwhile(
        org: Organization, monkeypatch: pytest.MonkeyPatch) -> None:
    _create()
    clock = _hold(monkeypatch)

    operation_id = _deploy([org.root])

    running = _operation(operation_id)
    assert running["Status"] == "RUNNING" and "EndTimestamp" not in running
    assert {i["StackInstanceStatus"]["DetailedStatus"] for i in _instances().values()} <= {"PENDING", "RUNNING"}
    assert {i["Status"] for i in _instances().values()} == {"OUTDATED"}
    cfn = boto("cloudformation")
    code, message = refusal(cfn.update_stack_set, StackSetName="probe",
                            UsePreviousTemplate=True, Capabilities=["CAPABILITY_NAMED_IAM"])
    assert code == "OperationInProgressException"
    assert message.startswith("Another Operation on StackSet arn:aws:cloudformation:") and "is in progress" in message
    assert refusal(cfn.delete_stack_set, StackSetName="probe").code == "OperationInProgressException"
    clock.release()
    done = _finished(operation_id)
    assert done["Status"] == "SUCCEEDED" and done["EndTimestamp"] >= done["CreationTimestamp"]
    assert {i["Status"] for i in _instances().values()} == {"CURRENT"}


def test_operations_are_not_instantaneous_by_default() -> None:
    assert stacksets.Timing().start_seconds > 0 and stacksets.Timing().batch_seconds > 0


def test_with_managed_execution_a_second_operation_is_queued_then_runs(
        org: Organization, monkeypatch: pytest.MonkeyPatch) -> None:
    _create(ManagedExecution={"Active": True})
    clock = _hold(monkeypatch)
    first = _deploy([org.ous["sandbox"]])

    second = str(boto("cloudformation").update_stack_set(
        StackSetName="probe", UsePreviousTemplate=True, Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": "Guid", "ParameterValue": "g-2"}])["OperationId"])

    assert (_operation(first)["Status"], _operation(second)["Status"]) == ("RUNNING", "QUEUED")
    clock.release()
    assert _finished(second)["Status"] == "SUCCEEDED"
    assert _operation(first)["EndTimestamp"] <= _operation(second)["EndTimestamp"]


def test_a_queued_operation_stopped_never_runs_and_the_running_one_goes_on(
        org: Organization, monkeypatch: pytest.MonkeyPatch) -> None:
    _create(ManagedExecution={"Active": True})
    clock = _hold(monkeypatch)
    first = _deploy([org.ous["sandbox"]])
    second = _deploy([org.ous["workloads"]])

    boto("cloudformation").stop_stack_set_operation(StackSetName="probe", OperationId=second)

    assert (_operation(first)["Status"], _operation(second)["Status"]) == ("RUNNING", "STOPPED")
    clock.release()
    assert _finished(first)["Status"] == "SUCCEEDED"
    assert sorted(_instances()) == org.accounts["sandbox"]


def test_the_client_operation_id_is_the_operations_and_is_not_reused(org: Organization) -> None:
    _create()
    _finished(_deploy([org.ous["sandbox"]], OperationId="my-operation-1"))

    code, message = refusal(boto("cloudformation").create_stack_instances,
                            StackSetName="probe", DeploymentTargets={"OrganizationalUnitIds": [org.ous["sandbox"]]},
                            Regions=[REGION], OperationId="my-operation-1")
    assert code == "OperationIdAlreadyExistsException"
    assert "my-operation-1" in message


def test_stop_cancels_the_accounts_not_started_yet(org: Organization, monkeypatch: pytest.MonkeyPatch) -> None:
    _create()
    clock = _hold(monkeypatch)
    operation_id = _deploy([org.root])  # one account at a time (the default MaxConcurrentCount is 1)
    clock.advance(stacksets.TIMING.start_seconds)  # the first account starts
    wait_for(lambda: "RUNNING" in {r["Status"] for r in boto("cloudformation").list_stack_set_operation_results(
        StackSetName="probe", OperationId=operation_id)["Summaries"]}, what="the first account running")

    boto("cloudformation").stop_stack_set_operation(StackSetName="probe", OperationId=operation_id)

    clock.release()
    assert _finished(operation_id)["Status"] == "STOPPED"
    results = boto("cloudformation").list_stack_set_operation_results(
        StackSetName="probe", OperationId=operation_id)["Summaries"]
    # the account that had started finishes; the four not started yet never do
    assert sorted(r["Status"] for r in results) == ["CANCELLED"] * 4 + ["SUCCEEDED"]
    assert refusal(boto("cloudformation").stop_stack_set_operation, StackSetName="probe",
                   OperationId=operation_id).code == "InvalidOperationException"


def test_an_unknown_operation_is_not_found(org: Organization) -> None:
    _create()
    assert refusal(boto("cloudformation").describe_stack_set_operation,
                   StackSetName="probe", OperationId="nope").code == "OperationNotFoundException"


def test_a_stack_set_with_instances_cannot_be_deleted(org: Organization) -> None:
    _create()
    _finished(_deploy([org.ous["sandbox"]]))

    assert refusal(boto("cloudformation").delete_stack_set, StackSetName="probe") == (
        "StackSetNotEmptyException", "StackSet is not empty")


# --- failures and the failure tolerance -------------------------------------------------------------------

def _hand_made_probe(account: str) -> None:
    member_client(boto("sts"), account, "iam", region_name=REGION).create_role(
        RoleName="Probe", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))


def test_a_failure_beyond_the_tolerance_fails_the_operation_and_cancels_the_rest(org: Organization) -> None:
    _create()
    first = sorted(org.all_members())[0]  # one account at a time, in account order: the first one fails
    _hand_made_probe(first)

    operation = _finished(_deploy([org.root], OperationPreferences={"FailureToleranceCount": 0}))

    assert operation["Status"] == "FAILED"
    assert operation["StatusDetails"]["FailedStackInstancesCount"] == 1
    instances = _instances()
    assert instances[first]["StackInstanceStatus"]["DetailedStatus"] == "FAILED"
    assert instances[first]["StatusReason"].startswith("ResourceLogicalId:Role, ResourceType:AWS::IAM::Role, ")
    assert "Role with name Probe already exists" in instances[first]["StatusReason"]
    others = {a: i["StackInstanceStatus"]["DetailedStatus"] for a, i in instances.items() if a != first}
    assert set(others.values()) == {"CANCELLED"}
    assert all("Probe" not in _roles(a) for a in others)


def test_failures_within_the_tolerance_let_the_operation_succeed(org: Organization) -> None:
    _create()
    failing = org.accounts["prod"][0]
    _hand_made_probe(failing)

    operation = _finished(_deploy([org.root], OperationPreferences={"FailureTolerancePercentage": 25,
                                                                    "MaxConcurrentPercentage": 100}))

    # 5 accounts: a 25 % tolerance is 1 account (rounded down), and strict concurrency is tolerance + 1.
    assert operation["Status"] == "SUCCEEDED"
    assert operation["StatusDetails"]["FailedStackInstancesCount"] == 1
    results = boto("cloudformation").list_stack_set_operation_results(
        StackSetName="probe", OperationId=operation["OperationId"],
        Filters=[{"Name": "OPERATION_RESULT_STATUS", "Values": "FAILED"}])["Summaries"]
    assert [(r["Account"], r["Status"]) for r in results] == [(failing, "FAILED")]
    assert "already exists" in results[0]["StatusReason"]
    assert _instances()[failing]["Status"] == "OUTDATED"
    assert all("Probe" in _roles(a) for a in org.all_members() if a != failing)


def test_the_same_failures_beyond_a_lower_tolerance_fail_it(org: Organization) -> None:
    _create()
    for account in org.accounts["prod"]:
        _hand_made_probe(account)

    operation = _finished(_deploy([org.root], OperationPreferences={"FailureTolerancePercentage": 25,
                                                                    "MaxConcurrentPercentage": 100}))

    assert operation["Status"] == "FAILED"


# --- paging ---------------------------------------------------------------------------------------------------

def test_list_stack_instances_pages_by_100(aws: None) -> None:
    organization = build(boto("organizations"), {"many": ("root", 120)})
    _create()
    _finished(_deploy([organization.ous["many"]], OperationPreferences={"MaxConcurrentPercentage": 100,
                                                                        "FailureTolerancePercentage": 100}))
    cfn = boto("cloudformation")

    first = cfn.list_stack_instances(StackSetName="probe")
    second = cfn.list_stack_instances(StackSetName="probe", NextToken=first["NextToken"])

    assert (len(first["Summaries"]), len(second["Summaries"]), "NextToken" in second) == (100, 20, False)
    assert {i["Account"] for i in first["Summaries"] + second["Summaries"]} == set(organization.accounts["many"])
    assert refusal(cfn.list_stack_instances, StackSetName="probe", MaxResults=101).code == "ValidationError"


# --- automatic deployment -------------------------------------------------------------------------------------

def test_an_account_created_or_moved_into_a_target_ou_gets_its_instance(org: Organization) -> None:
    _create()
    _finished(_deploy([org.ous["workloads"]]))
    organizations = boto("organizations")

    moved = org.accounts["sandbox"][0]
    organizations.move_account(AccountId=moved, SourceParentId=org.ous["sandbox"],
                               DestinationParentId=org.ous["prod"])
    created = add_account(organizations, org.root, org.ous["prod"], "late")
    wait_for(lambda: {moved, created} <= set(_instances()) and stacksets.wait_idle(), what="automatic deployment")

    assert "Probe" in _roles(moved) and "Probe" in _roles(created)
    automatic = boto("cloudformation").list_stack_set_operations(StackSetName="probe")["Summaries"][:2]
    assert [(o["Action"], o["Status"]) for o in automatic] == [("CREATE", "SUCCEEDED")] * 2
    assert {_instances()[a]["OrganizationalUnitId"] for a in (moved, created)} == {org.ous["workloads"]}


def test_an_account_outside_the_targets_gets_nothing(org: Organization) -> None:
    _create()
    _finished(_deploy([org.ous["sandbox"]]))

    outside = add_account(boto("organizations"), org.root, org.ous["workloads"], "elsewhere")
    stacksets.wait_idle()
    time.sleep(0.05)

    assert outside not in _instances()
    assert len(boto("cloudformation").list_stack_set_operations(StackSetName="probe")["Summaries"]) == 1


def test_an_account_leaving_the_targets_loses_its_instance_unless_stacks_are_retained(org: Organization) -> None:
    _create()
    _create("kept", AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": True},
            TemplateBody=TEMPLATE.replace('"Probe"', '"Kept"'))
    _finished(_deploy([org.ous["workloads"]]))
    _finished(_deploy([org.ous["workloads"]], name="kept"), name="kept")
    leaving = org.accounts["prod"][0]

    boto("organizations").move_account(AccountId=leaving, SourceParentId=org.ous["prod"],
                                       DestinationParentId=org.ous["sandbox"])
    wait_for(lambda: leaving not in _instances() and stacksets.wait_idle(), what="automatic removal")

    assert "Probe" not in _roles(leaving)  # RetainStacksOnAccountRemoval false: the stack is deleted
    assert leaving not in _instances("kept")
    assert "Kept" in _roles(leaving)  # true: the stack stays in the account, no longer the StackSet's


def test_an_update_reaches_every_instance_and_changes_the_role_itself(org: Organization) -> None:
    _create()
    _finished(_deploy([org.ous["workloads"]], OperationPreferences={"MaxConcurrentCount": 3}))

    operation = _finished(str(boto("cloudformation").update_stack_set(
        StackSetName="probe", UsePreviousTemplate=True, Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": "Guid", "ParameterValue": "g-2"}])["OperationId"]))

    assert operation["Status"] == "SUCCEEDED" and operation["Action"] == "UPDATE"
    for account in org.accounts["workloads"] + org.accounts["prod"]:
        iam = member_client(boto("sts"), account, "iam", region_name=REGION)
        trust = iam.get_role(RoleName="Probe")["Role"]["AssumeRolePolicyDocument"]
        assert trust["Statement"][0]["Condition"] == {"StringEquals": {"sts:ExternalId": "g-2"}}


def _delete_for(account: str, ou: str, **kwargs: Any) -> dict[str, Any]:
    return _finished(str(boto("cloudformation").delete_stack_instances(
        StackSetName="probe", Regions=[REGION], RetainStacks=False, DeploymentTargets={
            "OrganizationalUnitIds": [ou], "Accounts": [account], "AccountFilterType": "INTERSECTION"},
        **kwargs)["OperationId"]))


def _attach_theirs(account: str) -> str:
    iam = _member_iam(account)
    arn = str(iam.create_policy(PolicyName="Theirs", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}))["Policy"]["Arn"])
    iam.attach_role_policy(RoleName="Probe", PolicyArn=arn)
    return arn


def test_a_role_with_a_policy_attached_by_hand_fails_its_instance_delete_and_leaves_it_inoperable(
        org: Organization) -> None:
    _create()
    _finished(_deploy([org.ous["workloads"]]))
    blocked, other = org.accounts["prod"][0], org.accounts["prod"][1]
    theirs = _attach_theirs(blocked)

    operation = _delete_for(blocked, org.ous["workloads"])

    assert operation["Status"] == "FAILED"  # no failure tolerated by default
    instance = _instances()[blocked]
    assert (instance["Status"], instance["StackInstanceStatus"]["DetailedStatus"]) == ("INOPERABLE", "INOPERABLE")
    assert instance["StatusReason"] == (
        'ResourceLogicalId:Role, ResourceType:AWS::IAM::Role, ResourceStatusReason:Resource handler returned message: '
        '"Cannot delete entity, must detach all policies first. (Service: Iam, Status Code: 409)" (HandlerErrorCode: '
        'GeneralServiceException).')
    iam = _member_iam(blocked)
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName="Probe")["AttachedPolicies"]] == [theirs]
    stacks = member_client(boto("sts"), blocked, "cloudformation", region_name=REGION).describe_stacks()["Stacks"]
    assert [s["StackStatus"] for s in stacks] == ["DELETE_FAILED"]
    # The other accounts were not part of it.
    assert _instances()[other]["Status"] == "CURRENT" and "Probe" in _roles(other)

    iam.detach_role_policy(RoleName="Probe", PolicyArn=theirs)
    again = _delete_for(blocked, org.ous["workloads"])

    assert again["Status"] == "SUCCEEDED"
    assert blocked not in _instances() and "Probe" not in _roles(blocked)


def test_without_a_policy_attached_by_hand_the_same_delete_succeeds(org: Organization) -> None:
    _create()
    _finished(_deploy([org.ous["workloads"]]))
    account = org.accounts["prod"][0]

    assert _delete_for(account, org.ous["workloads"])["Status"] == "SUCCEEDED"
    assert account not in _instances() and "Probe" not in _roles(account)


def test_an_inoperable_instance_is_left_out_of_an_update(org: Organization) -> None:
    _create()
    _finished(_deploy([org.ous["workloads"]]))
    blocked = org.accounts["prod"][0]
    _attach_theirs(blocked)
    _delete_for(blocked, org.ous["workloads"], OperationPreferences={"FailureToleranceCount": 1})

    updated = _finished(str(boto("cloudformation").update_stack_set(
        StackSetName="probe", UsePreviousTemplate=True, Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": "Guid", "ParameterValue": "g-2"}])["OperationId"]))

    assert updated["Status"] == "SUCCEEDED"
    results = boto("cloudformation").list_stack_set_operation_results(
        StackSetName="probe", OperationId=updated["OperationId"])["Summaries"]
    assert sorted(r["Account"] for r in results) == sorted(
        a for a in org.accounts["workloads"] + org.accounts["prod"] if a != blocked)
    assert _instances()[blocked]["Status"] == "INOPERABLE"


# --- drift detection --------------------------------------------------------------------------------------

READS = {"Sid": "Reads", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}
DRIFT_TEMPLATE = json.dumps({
    "Parameters": {"Guid": {"Type": "String"}},
    "Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": "Probe", "Description": "probe", "MaxSessionDuration": 3600,
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Sid": "Trust", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::012205512454:root"},
            "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": {"Ref": "Guid"}}}}]},
        "Policies": [{"PolicyName": "Inventory", "PolicyDocument": {"Version": "2012-10-17",
                                                                   "Statement": [READS]}}]}}},
})


def _detect(name: str = "probe", **kwargs: Any) -> str:
    return str(boto("cloudformation").detect_stack_set_drift(StackSetName=name, **kwargs)["OperationId"])


def _resource_drifts(account: str, operation_id: str, **kwargs: Any) -> list[dict[str, Any]]:
    return list(boto("cloudformation").list_stack_instance_resource_drifts(
        StackSetName="probe", StackInstanceAccount=account, StackInstanceRegion=REGION, OperationId=operation_id,
        **kwargs)["Summaries"])


def _member_iam(account: str) -> Any:
    return member_client(boto("sts"), account, "iam", region_name=REGION)


def test_drift_detection_of_a_clean_stack_set_finds_every_instance_in_sync(org: Organization) -> None:
    _create(TemplateBody=DRIFT_TEMPLATE)
    _finished(_deploy([org.ous["workloads"]]))
    assert boto("cloudformation").describe_stack_set(StackSetName="probe")["StackSet"][
        "StackSetDriftDetectionDetails"]["DriftStatus"] == "NOT_CHECKED"

    operation = _finished(_detect())

    assert (operation["Action"], operation["Status"]) == ("DETECT_DRIFT", "SUCCEEDED")
    details = operation["StackSetDriftDetectionDetails"]
    assert (details["DriftStatus"], details["DriftDetectionStatus"]) == ("IN_SYNC", "COMPLETED")
    assert details["TotalStackInstancesCount"] == details["InSyncStackInstancesCount"] == 3
    assert {(i["Status"], i["DriftStatus"]) for i in _instances().values()} == {("CURRENT", "IN_SYNC")}
    [role] = _resource_drifts(org.accounts["prod"][0], operation["OperationId"])
    assert (role["LogicalResourceId"], role["PhysicalResourceId"], role["StackResourceDriftStatus"]) == (
        "Role", "Probe", "IN_SYNC")
    assert "PropertyDifferences" not in role


def test_drift_detection_names_each_changed_property_of_a_member_accounts_role(org: Organization) -> None:
    _create(TemplateBody=DRIFT_TEMPLATE)
    _finished(_deploy([org.ous["workloads"]]))
    changed, gone, untouched = org.accounts["prod"][0], org.accounts["prod"][1], org.accounts["workloads"][0]
    iam = _member_iam(changed)
    trust = iam.get_role(RoleName="Probe")["Role"]["AssumeRolePolicyDocument"]
    trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = "someone-else"
    iam.update_assume_role_policy(RoleName="Probe", PolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="Probe", PolicyName="Inventory", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [READS | {"Action": ["s3:GetObject", "s3:PutObject"]}]}))
    gone_iam = _member_iam(gone)
    gone_iam.delete_role_policy(RoleName="Probe", PolicyName="Inventory")
    gone_iam.delete_role(RoleName="Probe")

    operation = _finished(_detect())

    details = operation["StackSetDriftDetectionDetails"]
    assert (details["DriftStatus"], details["DriftedStackInstancesCount"], details["InSyncStackInstancesCount"]) == (
        "DRIFTED", 2, 1)
    instances = _instances()
    assert {a: i["DriftStatus"] for a, i in instances.items()} == {
        changed: "DRIFTED", gone: "DRIFTED", untouched: "IN_SYNC"}
    assert {i["Status"] for i in instances.values()} == {"CURRENT"}  # drift is not an outdated instance
    [role] = _resource_drifts(changed, operation["OperationId"])
    assert role["StackResourceDriftStatus"] == "MODIFIED"
    assert sorted((d["PropertyPath"], d["ExpectedValue"], d["ActualValue"], d["DifferenceType"])
                  for d in role["PropertyDifferences"]) == [
        ("/AssumeRolePolicyDocument/Statement/0/Condition/StringEquals/sts:ExternalId", "g-1", "someone-else",
         "NOT_EQUAL"),
        ("/Policies/0/PolicyDocument/Statement/0/Action/1", "", "s3:PutObject", "ADD"),
        ("/Policies/0/PolicyDocument/Statement/0/Action/1", "s3:ListBucket", "", "REMOVE")]
    [deleted] = _resource_drifts(gone, operation["OperationId"])
    assert deleted["StackResourceDriftStatus"] == "DELETED" and "PropertyDifferences" not in deleted
    assert _resource_drifts(changed, operation["OperationId"], StackInstanceResourceDriftStatuses=["IN_SYNC"]) == []
    described = boto("cloudformation").describe_stack_set(StackSetName="probe")["StackSet"]
    assert described["StackSetDriftDetectionDetails"]["DriftStatus"] == "DRIFTED"


def test_drift_detection_is_an_operation_refused_while_another_runs(
        org: Organization, monkeypatch: pytest.MonkeyPatch) -> None:
    _create(TemplateBody=DRIFT_TEMPLATE)
    _finished(_deploy([org.ous["workloads"]]))
    clock = _hold(monkeypatch)

    detecting = _detect()

    running = _operation(detecting)
    assert running["Status"] == "RUNNING"
    assert running["StackSetDriftDetectionDetails"]["DriftDetectionStatus"] == "IN_PROGRESS"
    code, message = refusal(boto("cloudformation").detect_stack_set_drift, StackSetName="probe")
    assert code == "OperationInProgressException"
    assert "is in progress" in message
    assert refusal(boto("cloudformation").update_stack_set, StackSetName="probe", UsePreviousTemplate=True,
                   Capabilities=["CAPABILITY_NAMED_IAM"]).code == "OperationInProgressException"
    clock.release()
    assert _finished(detecting)["Status"] == "SUCCEEDED"


def test_resource_drifts_need_a_drift_operation_that_checked_that_instance(org: Organization) -> None:
    _create(TemplateBody=DRIFT_TEMPLATE)
    deployed = _finished(_deploy([org.ous["prod"]]))["OperationId"]
    detected = _finished(_detect())["OperationId"]

    assert refusal(_resource_drifts, account=org.accounts["prod"][0],
                   operation_id="nope").code == "OperationNotFoundException"
    assert refusal(_resource_drifts, account=org.accounts["prod"][0],
                   operation_id=deployed).code == "StackInstanceNotFoundException"
    assert refusal(_resource_drifts, account=org.accounts["sandbox"][0],
                   operation_id=detected).code == "StackInstanceNotFoundException"


def test_drift_detection_by_an_account_no_longer_delegated_administrator_is_refused(org: Organization) -> None:
    member = org.accounts["sandbox"][0]
    boto("organizations").register_delegated_administrator(AccountId=member, ServicePrincipal=STACKSETS)
    cfn = member_client(boto("sts"), member, "cloudformation", region_name=REGION)
    cfn.create_stack_set(StackSetName="probe", TemplateBody=DRIFT_TEMPLATE, PermissionModel="SERVICE_MANAGED",
                         AutoDeployment=AUTO, Capabilities=["CAPABILITY_NAMED_IAM"], CallAs="DELEGATED_ADMIN",
                         Parameters=[{"ParameterKey": "Guid", "ParameterValue": "g-1"}])
    cfn.detect_stack_set_drift(StackSetName="probe", CallAs="DELEGATED_ADMIN")
    boto("organizations").deregister_delegated_administrator(AccountId=member, ServicePrincipal=STACKSETS)

    code, message = refusal(cfn.detect_stack_set_drift, StackSetName="probe", CallAs="DELEGATED_ADMIN")
    assert code == "ValidationError"
    assert message == "Account used is not a delegated administrator"


def test_an_instance_without_a_stack_fails_drift_detection_within_or_beyond_the_tolerance(
        org: Organization) -> None:
    _create(TemplateBody=DRIFT_TEMPLATE)
    failing = sorted(org.accounts["prod"])[0]
    _hand_made_probe(failing)  # its instance fails to deploy: no stack there
    _finished(_deploy([org.ous["prod"]], OperationPreferences={"FailureToleranceCount": 1}))

    strict = _finished(_detect(OperationPreferences={"FailureToleranceCount": 0}))
    tolerant = _finished(_detect(OperationPreferences={"FailureTolerancePercentage": 100}))

    assert (strict["Status"], strict["StackSetDriftDetectionDetails"]["DriftDetectionStatus"]) == ("FAILED", "FAILED")
    details = tolerant["StackSetDriftDetectionDetails"]
    assert (tolerant["Status"], details["DriftDetectionStatus"]) == ("SUCCEEDED", "PARTIAL_SUCCESS")
    assert (details["FailedStackInstancesCount"], details["InSyncStackInstancesCount"]) == (1, 1)
    assert _instances()[failing]["DriftStatus"] == "UNKNOWN"
    assert _instances()[failing]["StackInstanceStatus"]["DetailedStatus"] == "FAILED"  # its deployment's, unchanged
