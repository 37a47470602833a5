"""The local cloud end to end with the fixture SAM app: deploy, custom resource, Retry/Catch, runner."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.local_cloud.harness import ServedCloud, client, run_cli

pytestmark = pytest.mark.e2e
REGION = "us-east-1"


def deploy(cloud: ServedCloud, template: Path, stack: str, *overrides: str, keep: bool = False):  # noqa: ANN201
    """``local deploy``; ``keep``: with --disable-rollback, so a failed stack keeps its executions to read."""
    args = ["local", "deploy", "--endpoint-url", cloud.url, "--stack-name", stack, "--template", str(template)]
    args += ["--disable-rollback"] if keep else []
    if overrides:
        args += ["--parameter-overrides", *overrides]
    return run_cli(*args)


@pytest.fixture(scope="module")
def good_stack(served_cloud: ServedCloud, fixture_app: Path) -> tuple[str, object]:
    """A created stack the tests read; the lifecycle test, after every reader in this file, updates and deletes
    it (one create fewer)."""
    stack = f"good-{uuid.uuid4().hex[:6]}"
    return stack, deploy(served_cloud, fixture_app, stack, "Greeting=hello")


@pytest.fixture(scope="module")
def failing_stack(served_cloud: ServedCloud, fixture_app: Path) -> tuple[str, object]:
    stack = f"bad-{uuid.uuid4().hex[:6]}"
    return stack, deploy(served_cloud, fixture_app, stack, "Fail=true", keep=True)


def outputs(cloud: ServedCloud, stack: str) -> dict[str, str]:
    described = client(cloud, "cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def test_deploy_completes_the_stack_and_prints_the_outputs(served_cloud: ServedCloud, good_stack) -> None:
    stack, result = good_stack
    assert result.returncode == 0, result.stderr
    assert f"stack {stack} CREATE_COMPLETE" in result.stdout
    assert "Greeting" in result.stdout and "hello, world" in result.stdout
    held = outputs(served_cloud, stack)
    assert held["Greeting"] == "hello, world"  # Data the last Lambda PUT to the ResponseURL
    assert held["ExecutionArn"].startswith(f"arn:aws:states:{REGION}:123456789012:execution:")
    assert held["WorkFunctionArn"].startswith(f"arn:aws:lambda:{REGION}:123456789012:function:{stack}-")


def test_deploy_shows_stack_events_and_execution_steps_as_progress(good_stack) -> None:
    _, result = good_stack
    assert "CREATE_COMPLETE      Run (Custom::Run)" in result.stdout
    assert ": Work\n" in result.stdout
    assert "step failed: TransientError" in result.stdout


def test_definition_substitutions_are_resolved_into_the_state_machine(served_cloud: ServedCloud, good_stack) -> None:
    stack, _ = good_stack
    held = outputs(served_cloud, stack)
    definition = client(served_cloud, "stepfunctions").describe_state_machine(stateMachineArn=held["StateMachineArn"])[
        "definition"
    ]
    assert "${" not in definition
    states = json.loads(definition)["States"]
    assert states["Work"]["Resource"] == held["WorkFunctionArn"]
    assert states["Report Success"]["Resource"] == "arn:aws:states:::lambda:invoke"


def test_transient_error_is_retried_by_its_class_name(served_cloud: ServedCloud, good_stack) -> None:
    stack, _ = good_stack
    history = client(served_cloud, "stepfunctions").get_execution_history(
        executionArn=outputs(served_cloud, stack)["ExecutionArn"]
    )["events"]
    failures = [e["lambdaFunctionFailedEventDetails"] for e in history if e["type"] == "LambdaFunctionFailed"]
    assert [f["error"] for f in failures] == ["TransientError"]
    cause = json.loads(failures[0]["cause"])
    assert cause["errorType"] == "TransientError" and cause["stackTrace"]
    assert "_lambda_bootstrap" not in "".join(cause["stackTrace"])


def test_failing_stack_exits_non_zero_with_the_reason_in_one_line(failing_stack) -> None:
    stack, result = failing_stack
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"stack {stack} CREATE_FAILED: Run CREATE_FAILED: Received response status [FAILED] from "
                           "custom resource. Message returned: OnboardingError: Greeting refused")
    assert last.endswith(")") and "(RequestId: " in last  # CloudFormation's wording around the provider's Reason


def test_a_failed_create_rolls_back_and_the_custom_resource_gets_its_delete(served_cloud: ServedCloud,
                                                                             fixture_app: Path) -> None:
    stack = f"rollback-{uuid.uuid4().hex[:6]}"

    result = deploy(served_cloud, fixture_app, stack, "Fail=true")

    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"stack {stack} ROLLBACK_COMPLETE: Run CREATE_FAILED: Received response status [FAILED]")
    assert "ROLLBACK_IN_PROGRESS" in result.stdout and "The following resource(s) failed to create: [Run]. Rollback " \
        "requested by user." in result.stdout
    assert "DELETE_COMPLETE      Run (Custom::Run)" in result.stdout
    cfn = client(served_cloud, "cloudformation")
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"
    functions = client(served_cloud, "lambda").list_functions()["Functions"]
    events = [(e["LogicalResourceId"], e["ResourceStatus"]) for e in cfn.describe_stack_events(StackName=stack)[
        "StackEvents"]]
    left = [f["FunctionName"] for f in functions if f["FunctionName"].startswith(f"{stack}-")]
    assert not left, "\n".join(map(str, events))  # the rollback deleted them
    trigger = next(group for group in _log_groups(served_cloud) if f"/{stack}-TriggerFunction" in group)
    requests = _trigger_log(served_cloud, stack, trigger.rsplit("/", 1)[-1])
    assert [r["RequestType"] for r in requests] == ["Create", "Delete"]
    assert requests[1]["PhysicalResourceId"]  # the id the failed Create answered with
    # A stack in ROLLBACK_COMPLETE can only be deleted: the next deploy deletes it first, as a person must.
    again = deploy(served_cloud, fixture_app, stack, "Fail=false")
    assert again.returncode == 0, again.stderr
    assert f"stack {stack} is ROLLBACK_COMPLETE: deleting it first" in again.stdout


def test_raised_error_reaches_catch_with_its_error_type(served_cloud: ServedCloud, failing_stack) -> None:
    stack, _ = failing_stack
    sfn = client(served_cloud, "stepfunctions")
    machine = next(m for m in sfn.list_state_machines()["stateMachines"] if m["name"].startswith(f"{stack}-"))
    execution = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"][0]
    assert execution["status"] == "FAILED"
    history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered == ["Work", "Report Failure", "Failed"]
    report_input = json.loads(
        next(e for e in history if e.get("stateEnteredEventDetails", {}).get("name") == "Report Failure")[
            "stateEnteredEventDetails"
        ]["input"]
    )  # noqa: E501
    assert report_input["Error"]["Error"] == "OnboardingError"


def test_function_importing_a_module_missing_from_its_layer_fails_to_import(
    served_cloud: ServedCloud, good_stack
) -> None:
    import yaml  # the dev venv has it: the runner must not let it leak into the function

    assert yaml
    stack, _ = good_stack
    response = client(served_cloud, "lambda").invoke(FunctionName=outputs(served_cloud, stack)["BrokenFunctionName"])
    payload = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'yaml'" in payload["errorMessage"]


def test_invocations_are_logged_to_cloudwatch_logs(served_cloud: ServedCloud, good_stack) -> None:
    stack, _ = good_stack
    function = outputs(served_cloud, stack)["WorkFunctionArn"].rsplit(":", 1)[-1]
    messages = _messages(client(served_cloud, "logs"), f"/aws/lambda/{function}")
    assert any(m.startswith("START RequestId:") for m in messages)
    assert any("TransientError: first attempt always fails" in m for m in messages)


def test_event_invocation_returns_before_the_function_finishes(served_cloud: ServedCloud, good_stack) -> None:
    stack, _ = good_stack
    started = time.monotonic()
    response = client(served_cloud, "lambda").invoke(
        FunctionName=outputs(served_cloud, stack)["WorkFunctionArn"],
        InvocationType="Event",
        Payload=json.dumps({"SleepSeconds": 3}),
    )
    assert response["StatusCode"] == 202
    assert time.monotonic() - started < 2


def test_enabled_scheduled_rule_invokes_its_lambda_target_with_the_input(served_cloud: ServedCloud, good_stack) -> None:
    stack, _ = good_stack
    arn = outputs(served_cloud, stack)["WorkFunctionArn"]
    events, logs = client(served_cloud, "events"), client(served_cloud, "logs")
    group = f"/aws/lambda/{arn.rsplit(':', 1)[-1]}"
    marker = uuid.uuid4().hex
    rule = f"poll-{marker[:6]}"
    events.put_rule(Name=rule, ScheduleExpression="rate(1 minute)", State="ENABLED")
    events.put_targets(
        Rule=rule, Targets=[{"Id": "1", "Arn": arn, "Input": json.dumps({"SleepSeconds": 0, "Marker": marker})}]
    )
    try:
        deadline = time.monotonic() + 20
        while marker not in " ".join(_messages(logs, group)):
            assert time.monotonic() < deadline, "the scheduled rule never invoked its target with its Input"
            time.sleep(0.5)
    finally:
        events.remove_targets(Rule=rule, Ids=["1"])
        events.delete_rule(Name=rule)


def _messages(logs, group: str) -> list[str]:  # noqa: ANN001
    """Every message of a log group, oldest first (stream names are random, not chronological)."""
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    events = [
        (e["timestamp"], index, e["message"])
        for s in streams
        for index, e in enumerate(logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])["events"])
    ]
    return [message for _, _, message in sorted(events)]


def _trigger_name(cloud: ServedCloud, stack: str) -> str:
    functions = client(cloud, "lambda").list_functions()["Functions"]
    return next(f["FunctionName"] for f in functions if f["FunctionName"].startswith(f"{stack}-TriggerFunction"))


def _trigger_log(cloud: ServedCloud, stack: str, name: str | None = None) -> list[dict]:
    name = name or _trigger_name(cloud, stack)
    requests = []
    for message in _messages(client(cloud, "logs"), f"/aws/lambda/{name}"):
        if message.startswith('{"request"'):
            requests.append(json.loads(message)["request"])
    return requests


def test_deploy_again_updates_the_stack_and_custom_resource_then_delete_removes_it(
    served_cloud: ServedCloud, fixture_app: Path, good_stack
) -> None:
    stack, created = good_stack  # created with Greeting=hello; the last test of this file that uses it
    assert created.returncode == 0, created.stderr

    updated = deploy(served_cloud, fixture_app, stack, "Greeting=bonjour")

    assert updated.returncode == 0, updated.stderr
    assert f"stack {stack} UPDATE_COMPLETE" in updated.stdout
    assert outputs(served_cloud, stack)["Greeting"] == "bonjour, world"
    create, update = _trigger_log(served_cloud, stack)
    assert create["RequestType"] == "Create" and update["RequestType"] == "Update"
    assert update["OldResourceProperties"]["Greeting"] == "hello"
    assert update["PhysicalResourceId"].startswith("run-")

    # An update whose custom resource fails goes back: the provider gets an Update to the previous properties.
    failed = deploy(served_cloud, fixture_app, stack, "Greeting=bonjour", "Fail=true")
    assert failed.returncode != 0
    assert f"stack {stack} UPDATE_ROLLBACK_COMPLETE: Run UPDATE_FAILED: Received response status [FAILED]" in (
        failed.stderr)
    assert outputs(served_cloud, stack)["Greeting"] == "bonjour, world"
    *_, failing, back = [r for r in _trigger_log(served_cloud, stack) if r["RequestType"] == "Update"]
    assert back["OldResourceProperties"]["Fail"] == "true" and failing["OldResourceProperties"]["Fail"] == "false"

    trigger = _trigger_name(served_cloud, stack)
    deleted = run_cli("local", "delete", "--endpoint-url", served_cloud.url, "--stack-name", stack)

    assert deleted.returncode == 0, deleted.stderr
    assert f"sam delete --stack-name {stack} --region {REGION} --no-prompts" in deleted.stdout
    assert "DELETE_COMPLETE      Run (Custom::Run)" in deleted.stdout  # the progress SAM does not show
    assert f"stack {stack} DELETE_COMPLETE" in deleted.stdout
    delete_request = _trigger_log(served_cloud, stack, trigger)[-1]  # logs outlive the function
    assert delete_request["RequestType"] == "Delete" and delete_request["PhysicalResourceId"].startswith("run-")
    assert not _trigger_exists(served_cloud, stack)
    with pytest.raises(client(served_cloud, "cloudformation").exceptions.ClientError):
        client(served_cloud, "cloudformation").describe_stacks(StackName=stack)


def test_delete_of_a_stack_that_does_not_exist_fails_with_sams_message(served_cloud: ServedCloud) -> None:
    deleted = run_cli("local", "delete", "--endpoint-url", served_cloud.url, "--stack-name", "never-made")

    assert deleted.returncode == 1
    assert deleted.stderr.strip() == (
        "sam delete failed: Error: The input stack never-made does not exist on Cloudformation in the region "
        f"{REGION}")


def _log_groups(cloud: ServedCloud) -> list[str]:
    groups = client(cloud, "logs").describe_log_groups()["logGroups"]
    return [g["logGroupName"] for g in groups]


def _trigger_exists(cloud: ServedCloud, stack: str) -> bool:
    functions = client(cloud, "lambda").list_functions()["Functions"]
    return any(f["FunctionName"].startswith(f"{stack}-TriggerFunction") for f in functions)


def test_deploy_over_a_failed_stack_replaces_it(served_cloud: ServedCloud, fixture_app: Path, failing_stack) -> None:
    stack, _ = failing_stack

    result = deploy(served_cloud, fixture_app, stack, "Fail=false")

    assert result.returncode == 0, result.stderr
    assert outputs(served_cloud, stack)["Greeting"] == "hello, world"
