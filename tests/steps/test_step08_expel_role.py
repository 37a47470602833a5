"""Guide step 8: the Expel role stack, against moto's CloudFormation and IAM."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import warnings
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from expel_onboarding.aws import clients
from expel_onboarding.errors import OnboardingError, ResourceConflict, StillInProgress
from expel_onboarding.models import Config, QueueOutput, RoleOutput, TrailOutput
from expel_onboarding.naming import OWNER_TAG_KEY
from expel_onboarding.steps import expel_role_stack
from expel_onboarding.steps.step08_expel_role import EXPEL_PRINCIPAL_ARN, deploy, remove, status
from tests.conftest import ACCOUNT_ID, REGION, WORKBENCH_GUID, boto
from tests.steps.shared import CONTEXT, KEY_ARN, ROOT, handler, queue_output, trail_output
from tests.support import DATA_PATH_POLICY, LOG_KEY_POLICY, count_mutating_calls

TEMPLATE = ROOT / "roles" / "expel-role.yaml"

trail = pytest.fixture(trail_output, name="trail")
queue = pytest.fixture(queue_output, name="queue")


def _deployed(config: Config, trail: TrailOutput, queue: QueueOutput) -> RoleOutput:
    started = deploy(config, trail, queue)
    assert started.status == "IN_PROGRESS"
    return status(config, started)  # moto finishes stacks at once


def _set_stack_status(name: str, state: str) -> None:
    from moto.cloudformation.models import cloudformation_backends

    cloudformation_backends[ACCOUNT_ID][REGION].get_stack(name).status = state


def _policies(role_name: str) -> dict[str, dict[str, Any]]:
    iam = boto("iam")
    names = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    documents = {n: iam.get_role_policy(RoleName=role_name, PolicyName=n)["PolicyDocument"] for n in names}
    # moto renders a Role's own Policies as a Python repr instead of JSON; AWS returns JSON.
    return {n: ast.literal_eval(d) if isinstance(d, str) else d for n, d in documents.items()}


# --- the role CloudFormation makes -------------------------------------------------------------------

def test_deploy_creates_role_that_trusts_only_expel_with_the_workbench_guid(aws, config, trail, queue):
    role = _deployed(config, trail, queue)

    assert role.status == "COMPLETE"
    assert role.role_arn == f"arn:aws:iam::{ACCOUNT_ID}:role/ExpelAssumeRole"
    trust = boto("iam").get_role(RoleName="ExpelAssumeRole")["Role"]["AssumeRolePolicyDocument"]
    assert [(s["Effect"], s["Principal"], s["Action"], s["Condition"]) for s in trust["Statement"]] == [
        ("Allow", {"AWS": EXPEL_PRINCIPAL_ARN}, "sts:AssumeRole",
         {"StringEquals": {"sts:ExternalId": WORKBENCH_GUID}})]


def test_data_path_policy_grants_exactly_this_bucket_queue_and_key(aws, config, trail, queue):
    _deployed(config, trail, queue)

    data_path = _policies("ExpelAssumeRole")[DATA_PATH_POLICY]
    granted = {(s["Sid"], json.dumps(s["Action"]), s["Resource"]) for s in data_path["Statement"]}
    assert granted == {
        ("ReadCloudTrailLogFiles", '"s3:GetObject"', f"{trail.bucket_arn}/*"),
        ("ConsumeNotificationQueue",
         '["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage"]',
         queue.queue_arn),
        ("DecryptThroughS3AndSqs", '"kms:Decrypt"', KEY_ARN),
    }
    decrypt = next(s for s in data_path["Statement"] if s["Sid"] == "DecryptThroughS3AndSqs")
    assert decrypt["Condition"] == {"StringLike": {"kms:ViaService": ["s3.*.amazonaws.com",
                                                                      "sqs.*.amazonaws.com"]}}
    assert all(s["Effect"] == "Allow" for s in data_path["Statement"])


def test_inventory_policy_is_read_only(aws, config, trail, queue):
    _deployed(config, trail, queue)

    inventory = _policies("ExpelAssumeRole")["ExpelInventoryReadOnly"]
    actions = [a for s in inventory["Statement"] for a in s["Action"]]
    assert actions == sorted(actions)
    for action in actions:
        service, name = action.split(":")
        assert re.fullmatch(r"(Describe|Get|List)[A-Za-z]*\*?", name), action
        assert service in {"cloudtrail", "config", "ec2", "ecs", "eks", "iam", "lambda", "lightsail",
                           "organizations", "rds", "s3"}, action
    assert {a for a in actions if a.endswith("*")} == {"iam:Get*", "iam:List*"}


def test_stack_carries_the_ownership_tag_and_all_parameters(aws, config, trail, queue):
    _deployed(config, trail, queue)

    stack = boto("cloudformation").describe_stacks(StackName=config.role_stack_name)["Stacks"][0]
    assert {t["Key"]: t["Value"] for t in stack["Tags"]} == {OWNER_TAG_KEY: config.stack_name}
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {
        "ExpelWorkbenchGuid": WORKBENCH_GUID, "RoleName": "ExpelAssumeRole",
        "ExpelPrincipalArn": EXPEL_PRINCIPAL_ARN, "BucketArn": trail.bucket_arn,
        "QueueArn": queue.queue_arn, "KmsKeyArn": KEY_ARN, "LogKmsKeyArn": "", "LogObjectPrefix": "",
        "PermissionsBoundaryArn": ""}


def test_role_is_capped_by_the_onboardings_permissions_boundary(aws, config, trail, queue):
    """The CloudFormation service role may only create a role under this boundary (template.yaml)."""
    boundary = boto("iam").create_policy(PolicyName="ExpelRoleBoundary", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}),
    )["Policy"]["Arn"]
    _deployed(dataclasses.replace(config, role_permissions_boundary_arn=boundary), trail, queue)

    role = boto("iam").get_role(RoleName=config.role_name)["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary


def test_member_account_use_without_data_path_gets_only_the_inventory(aws):
    """The StackSet instances (Organizations mode) leave BucketArn/QueueArn/KmsKeyArn empty."""
    boto("cloudformation").create_stack(
        StackName="member", TemplateBody=TEMPLATE.read_text(), Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": "ExpelWorkbenchGuid", "ParameterValue": WORKBENCH_GUID}])

    assert list(_policies("ExpelAssumeRole")) == ["ExpelInventoryReadOnly"]


# --- idempotency and updates ---------------------------------------------------------------------------

def test_rerun_makes_no_mutating_call_and_returns_the_same_output(aws, config, trail, queue):
    first = _deployed(config, trail, queue)

    with count_mutating_calls() as calls:
        again = deploy(config, trail, queue)

    assert calls == []
    assert again == first


def _change_trust_by_hand(external_id: str) -> None:
    iam = boto("iam")
    trust = iam.get_role(RoleName="ExpelAssumeRole")["Role"]["AssumeRolePolicyDocument"]
    trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = external_id
    iam.update_assume_role_policy(RoleName="ExpelAssumeRole", PolicyDocument=json.dumps(trust))


def test_a_role_changed_by_hand_is_put_back_by_a_drift_aware_change_set(aws, config, trail, queue):
    first = _deployed(config, trail, queue)
    _change_trust_by_hand("someone-elses-guid")

    with count_mutating_calls() as calls:
        started = deploy(config, trail, queue)

    assert calls == ["cloudformation.CreateChangeSet"]  # no UpdateStack: it would leave the role as it is
    assert (started.status, started.stack_id) == ("IN_PROGRESS", first.stack_id)
    change_set = boto("cloudformation").describe_change_set(StackName=config.role_stack_name,
                                                            ChangeSetName=started.change_set_id)
    assert (change_set["DeploymentMode"], change_set["StackDriftStatus"]) == ("REVERT_DRIFT", "DRIFTED")
    with count_mutating_calls() as calls:
        looked = status(config, started)  # CloudFormation has read the role: the change set is executed
    assert calls == ["cloudformation.ExecuteChangeSet"]
    assert looked.status == "IN_PROGRESS"
    assert status(config, looked) == first  # moto finishes the update at once
    trust = boto("iam").get_role(RoleName="ExpelAssumeRole")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Condition"] == {"StringEquals": {"sts:ExternalId": WORKBENCH_GUID}}
    with count_mutating_calls() as calls:
        assert deploy(config, trail, queue) == first
    assert calls == []  # in sync again: a rerun writes nothing


def _looked_at_failed_change_set(config: Config, reason: str) -> RoleOutput:
    """status() of a run whose drift-aware change set CloudFormation left FAILED with ``reason``."""
    role = RoleOutput(stack_id="arn:aws:cloudformation:us-east-1:123456789012:stack/x/1", status="IN_PROGRESS",
                      change_set_id="arn:aws:cloudformation:us-east-1:123456789012:changeSet/c/1")
    stack = {"StackName": config.role_stack_name, "StackId": role.stack_id, "CreationTime": "2026-01-01T00:00:00Z",
             "StackStatus": "UPDATE_COMPLETE", "Outputs": [{"OutputKey": "RoleArn", "OutputValue": "arn:role"}]}
    with Stubber(clients.cloudformation(REGION)) as stub:
        stub.add_response("describe_stacks", {"Stacks": [stack]})
        stub.add_response("describe_change_set", {"ChangeSetId": role.change_set_id, "Status": "FAILED",
                                                  "ExecutionStatus": "UNAVAILABLE", "StatusReason": reason},
                          {"StackName": config.role_stack_name, "ChangeSetName": role.change_set_id})
        return status(config, role)


def test_a_change_set_with_nothing_left_to_put_back_completes_the_step(config):
    # CloudFormation read the role after a person had put it back: nothing to execute.
    looked = _looked_at_failed_change_set(config, "The submitted information didn't contain changes. Submit "
                                                  "different information to create a change set.")
    assert (looked.status, looked.role_arn, looked.change_set_id) == ("COMPLETE", "arn:role", "")


def test_a_change_set_cloudformation_cannot_make_fails_the_step_with_the_reason(config):
    with pytest.raises(OnboardingError, match=r"Step 8: CloudFormation could not prepare the change set that puts "
                                              r"role ExpelAssumeRole back .*: denied\. Fix: correct the role by hand"):
        _looked_at_failed_change_set(config, "denied")


def test_changed_workbench_guid_updates_the_stack(aws, config, trail, queue):
    _deployed(config, trail, queue)
    changed = dataclasses.replace(config, workbench_guid="0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d")

    with count_mutating_calls() as calls:
        started = deploy(changed, trail, queue)

    assert calls == ["cloudformation.UpdateStack"]
    assert started.status == "IN_PROGRESS"
    stack = boto("cloudformation").describe_stacks(StackName=config.role_stack_name)["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["ExpelWorkbenchGuid"] == (
        "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d")
    assert status(changed, started).status == "COMPLETE"
    # The role itself changed (local cloud fix 15), and stays the stack's: its delete removes it.
    trust = boto("iam").get_role(RoleName="ExpelAssumeRole")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Condition"] == {
        "StringEquals": {"sts:ExternalId": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"}}
    assert sorted(_policies("ExpelAssumeRole")) == [DATA_PATH_POLICY, "ExpelInventoryReadOnly"]
    assert remove(changed) == "IN_PROGRESS"
    assert boto("iam").list_roles()["Roles"] == []


def test_a_narrower_log_folder_narrows_the_roles_read_grant_on_update(aws, config, trail, queue):
    """The folder reaches the policy only through a Fn::Sub: the update must still change it (local cloud fix 22)."""
    adopted = dataclasses.replace(trail, existing_trail=True, log_prefix="AWSLogs/o-a1b2c3d4e5/")
    _deployed(config, adopted, queue)
    narrowed = dataclasses.replace(adopted, log_prefix="AWSLogs/o-subsidiary01/")

    assert status(config, deploy(config, narrowed, queue)).status == "COMPLETE"

    read = next(s for s in _policies("ExpelAssumeRole")[DATA_PATH_POLICY]["Statement"]
                if s["Sid"] == "ReadCloudTrailLogFiles")
    assert read["Resource"] == f"{trail.bucket_arn}/AWSLogs/o-subsidiary01/*"


def test_a_stack_of_the_earlier_template_moves_its_data_path_into_the_role(aws, config, trail, queue, monkeypatch):
    """The data path was an AWS::IAM::Policy (ExpelCloudTrailDataPath): the update puts the same grants on the
    role under the new name, then CloudFormation's cleanup removes the old policy; the role is then in sync."""
    earlier = (ROOT / "tests" / "steps" / "expel-role-earlier.yaml").read_text()
    monkeypatch.setattr(expel_role_stack, "role_template", lambda: earlier)
    _deployed(config, trail, queue)
    grants = _policies("ExpelAssumeRole")["ExpelCloudTrailDataPath"]
    monkeypatch.undo()

    assert status(config, deploy(config, trail, queue)).status == "COMPLETE"

    policies = _policies("ExpelAssumeRole")
    assert sorted(policies) == [DATA_PATH_POLICY, "ExpelInventoryReadOnly"]
    assert policies[DATA_PATH_POLICY] == grants
    events = boto("cloudformation").describe_stack_events(StackName=config.role_stack_name)["StackEvents"]
    assert [e["ResourceStatus"] for e in events if e["LogicalResourceId"] == "ExpelDataPathPolicy"][:2] == [
        "DELETE_COMPLETE", "DELETE_IN_PROGRESS"]
    assert expel_role_stack.check(config, trail, queue).findings == []


def test_a_log_key_policy_removed_by_hand_is_found_and_a_rerun_puts_it_back(aws, config, trail, queue):
    """An existing trail whose log files use another key than the queue: the role's third inline policy, under
    the same drift check and repair as the others."""
    log_key = KEY_ARN.replace("1234abcd", "5678efab")
    keyed = dataclasses.replace(trail, existing_trail=True, log_kms_key_arn=log_key)
    _deployed(config, keyed, queue)
    assert sorted(_policies("ExpelAssumeRole")) == [DATA_PATH_POLICY, LOG_KEY_POLICY, "ExpelInventoryReadOnly"]
    boto("iam").delete_role_policy(RoleName="ExpelAssumeRole", PolicyName=LOG_KEY_POLICY)

    [finding] = expel_role_stack.check(config, keyed, queue).findings
    assert (finding.setting, finding.actual, finding.repairable) == (f"inline policy {LOG_KEY_POLICY}", "(absent)",
                                                                     True)

    role = deploy(config, keyed, queue)  # the repair: a drift-aware change set, executed by a status look
    for _ in range(3):
        role = status(config, role)
    assert role.status == "COMPLETE"
    [decrypt] = _policies("ExpelAssumeRole")[LOG_KEY_POLICY]["Statement"]
    assert (decrypt["Action"], decrypt["Resource"]) == ("kms:Decrypt", log_key)
    assert expel_role_stack.check(config, keyed, queue).findings == []


def test_changed_template_updates_the_stack(aws, config, trail, queue, monkeypatch):
    _deployed(config, trail, queue)
    changed = TEMPLATE.read_text().replace("MaxSessionDuration: 3600", "MaxSessionDuration: 7200")
    monkeypatch.setattr(expel_role_stack, "role_template", lambda: changed)

    with count_mutating_calls() as calls:
        deploy(config, trail, queue)

    assert calls == ["cloudformation.UpdateStack"]


def test_comment_only_template_change_is_not_an_update(aws, config, trail, queue, monkeypatch):
    first = _deployed(config, trail, queue)
    commented = "# a newer release, reworded\n" + TEMPLATE.read_text().replace("\n\n", "\n\n  # why\n\n", 1)
    monkeypatch.setattr(expel_role_stack, "role_template", lambda: commented)

    with count_mutating_calls() as calls:
        again = deploy(config, trail, queue)

    assert calls == []
    assert again == first


def test_service_role_is_handed_to_cloudformation(aws, config, trail, queue):
    service_role = f"arn:aws:iam::{ACCOUNT_ID}:role/expel-onboarding-role-stack"

    deploy(config, trail, queue, service_role_arn=service_role)

    stack = boto("cloudformation").describe_stacks(StackName=config.role_stack_name)["Stacks"][0]
    assert stack["RoleARN"] == service_role


def test_stack_being_created_with_our_parameters_is_left_to_finish(aws, config, trail, queue):
    first = deploy(config, trail, queue)
    _set_stack_status(config.role_stack_name, "CREATE_IN_PROGRESS")

    with count_mutating_calls() as calls:
        again = deploy(config, trail, queue)

    assert calls == []
    assert again == first
    assert status(config, again).status == "IN_PROGRESS"


def test_stack_busy_with_other_parameters_is_retried_once_it_settles(aws, config, trail, queue):
    deploy(config, trail, queue)
    _set_stack_status(config.role_stack_name, "UPDATE_ROLLBACK_IN_PROGRESS")

    with count_mutating_calls() as calls, pytest.raises(StillInProgress, match="waiting for it to settle"):
        deploy(dataclasses.replace(config, workbench_guid="another-guid"), trail, queue)
    assert calls == []


def test_stack_whose_create_rolled_back_is_deleted_then_created_again(aws, config, trail, queue):
    deploy(config, trail, queue)
    _set_stack_status(config.role_stack_name, "ROLLBACK_COMPLETE")

    with count_mutating_calls() as calls, pytest.raises(StillInProgress, match="deleting the failed stack"):
        deploy(config, trail, queue)
    assert calls == ["cloudformation.DeleteStack"]

    again = deploy(config, trail, queue)  # the state machine retries StillInProgress
    assert again.status == "IN_PROGRESS"
    assert status(config, again).status == "COMPLETE"


# --- foreign stacks and failures -----------------------------------------------------------------------

def test_foreign_stack_with_the_same_name_is_a_conflict_and_untouched(aws, config, trail, queue):
    boto("cloudformation").create_stack(
        StackName=config.role_stack_name, TemplateBody=TEMPLATE.read_text(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": "ExpelWorkbenchGuid", "ParameterValue": "someone-else"}])

    with count_mutating_calls() as calls, pytest.raises(ResourceConflict) as raised:
        deploy(config, trail, queue)

    assert calls == []
    assert "RoleStackName" in str(raised.value) and "Fix:" in str(raised.value)
    assert remove(config) == "SKIPPED"
    assert boto("cloudformation").describe_stacks(StackName=config.role_stack_name)["Stacks"]


def _stack(state: str, reason: str = "") -> dict[str, Any]:
    stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/expel-onboarding-expel-role/abc"
    return {"StackId": stack_id, "StackName": "expel-onboarding-expel-role", "StackStatus": state,
            "StackStatusReason": reason, "CreationTime": "2026-01-01T00:00:00Z",
            "Tags": [{"Key": OWNER_TAG_KEY, "Value": "expel-onboarding"}]}


def _event(logical_id: str, state: str, reason: str = "", stack: bool = False) -> dict[str, Any]:
    stack_id = _stack("")["StackId"]
    return {"StackId": stack_id, "EventId": f"{logical_id}-{state}", "StackName": "expel-onboarding-expel-role",
            "LogicalResourceId": logical_id, "PhysicalResourceId": stack_id if stack else logical_id,
            "ResourceStatus": state, "ResourceStatusReason": reason, "Timestamp": "2026-01-01T00:00:00Z"}


def test_failed_stack_is_reported_with_the_first_failed_resource_and_the_fix(config):
    cfn = clients.client("cloudformation", REGION)
    name = config.role_stack_name
    events = [  # newest first, as CloudFormation returns them
        _event(name, "ROLLBACK_COMPLETE", stack=True),
        _event("ExpelDataPathPolicy", "DELETE_COMPLETE"),
        _event(name, "ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [ExpelRole]",
               stack=True),
        _event("ExpelDataPathPolicy", "CREATE_FAILED", "Resource creation cancelled"),
        _event("ExpelRole", "CREATE_FAILED", "Role with name ExpelAssumeRole already exists."),
        _event("ExpelRole", "CREATE_IN_PROGRESS"),
        _event(name, "CREATE_IN_PROGRESS", "User Initiated", stack=True),
        _event("Older", "CREATE_FAILED", "from an earlier operation: must be ignored"),
    ]
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", {"Stacks": [_stack("ROLLBACK_COMPLETE")]}, {"StackName": ANY})
        stub.add_response("describe_stack_events", {"StackEvents": events}, {"StackName": ANY})
        with pytest.raises(OnboardingError) as raised:
            status(config, RoleOutput(stack_id=_stack("")["StackId"], status="IN_PROGRESS"))

    message = str(raised.value)
    assert message.startswith("Step 8: the Expel role stack expel-onboarding-expel-role is ROLLBACK_COMPLETE: "
                              "ExpelRole: Role with name ExpelAssumeRole already exists.")
    assert "Fix: a role named ExpelAssumeRole exists outside this stack" in message


@pytest.mark.parametrize(("state", "fix"), [
    ("UPDATE_ROLLBACK_FAILED", "Continue update rollback"),
    ("DELETE_FAILED", "delete the stack in the CloudFormation console"),
])
def test_stuck_stack_is_a_failure_naming_the_console_fix(config, trail, queue, state, fix):
    cfn = clients.client("cloudformation", REGION)
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", {"Stacks": [_stack(state, "something broke")]}, {"StackName": ANY})
        stub.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": ANY})
        with pytest.raises(OnboardingError, match=fix) as raised:
            deploy(config, trail, queue)
    assert "something broke" in str(raised.value)


# --- teardown --------------------------------------------------------------------------------------------

def test_remove_deletes_our_stack_and_treats_gone_as_done(aws, config, trail, queue):
    _deployed(config, trail, queue)

    assert remove(config) == "IN_PROGRESS"
    with count_mutating_calls() as calls:
        assert remove(config) == "DELETED"
    assert calls == []
    assert boto("iam").list_roles()["Roles"] == []


# --- the template file -------------------------------------------------------------------------------

def test_layer_ships_the_role_template_from_roles(aws):
    link = ROOT / "layers/onboarding/expel_onboarding/templates/expel-role.yaml"
    assert link.is_symlink() and link.resolve() == TEMPLATE.resolve()  # one file, no drift
    assert expel_role_stack.role_template() == TEMPLATE.read_text()


def test_template_default_principal_is_the_one_the_code_passes():
    assert f"Default: {EXPEL_PRINCIPAL_ARN}\n" in TEMPLATE.read_text()


def test_role_policies_pass_parliament(aws, config, trail, queue):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # parliament imports the deprecated pkg_resources
        from parliament import analyze_policy_string
    _deployed(config, trail, queue)

    findings = {
        name: sorted({f.issue for f in analyze_policy_string(json.dumps(doc), ignore_private_auditors=True,
                                                           include_community_auditors=True).findings})
        for name, doc in _policies("ExpelAssumeRole").items()}

    # The inventory reads account-wide lists (Describe*/List* on every resource) by design.
    assert findings == {DATA_PATH_POLICY: [], "ExpelInventoryReadOnly": ["RESOURCE_STAR"]}


# --- handlers with their sample events --------------------------------------------------------------------

def test_handlers_deploy_then_report_complete_from_their_sample_events(aws, monkeypatch):
    monkeypatch.delenv("ROLE_STACK_EXECUTION_ROLE_ARN", raising=False)
    event = json.loads((ROOT / "events/step08_expel_role.json").read_text())

    role = handler("step08_expel_role")(event, CONTEXT)
    status_event = json.loads((ROOT / "events/step08_expel_role_status.json").read_text()) | {"Role": role}
    done = handler("step08_expel_role_status")(status_event, CONTEXT)

    assert role["Status"] == "IN_PROGRESS"
    assert done["Status"] == "COMPLETE"
    assert done["RoleArn"] == f"arn:aws:iam::{ACCOUNT_ID}:role/ExpelAssumeRole"


def test_remove_does_not_ask_twice_while_the_stack_is_being_deleted(aws, config, trail, queue):
    _deployed(config, trail, queue)
    _set_stack_status(config.role_stack_name, "DELETE_IN_PROGRESS")

    with count_mutating_calls() as calls:
        assert remove(config) == "IN_PROGRESS"
    assert calls == []


def test_a_change_set_of_the_same_name_made_meanwhile_is_looked_at_again(config):
    from expel_onboarding.aws import stacks

    with Stubber(clients.cloudformation(REGION)) as stub:
        stub.add_client_error("create_change_set", "AlreadyExistsException", "ChangeSet x already exists")
        with pytest.raises(StillInProgress, match="A change set of that name appeared"):
            stacks.create_change_set(config.role_stack_name, "x", "body", {}, {}, REGION)
