"""The real state machine on the local cloud's Step Functions engine, a Lambda failing in each branch of
its Parallel states: the custom resource's failure reason and the status view name that step.

Every state's Lambda is a stand-in that passes the state on; the failing one waits first, so the other
branch moves on meanwhile and the branches' events interleave as they do on AWS.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import pytest

from expel_onboarding import custom_resource
from expel_onboarding.execution_history import failed_step
from local_cloud.status import ExecutionInfo, StatusView, render
from tests.local_cloud.harness import REPO, ServedCloud, client
from tests.support import function_zip
from tests.unit.test_execution_history import BRANCH_TASKS

pytestmark = pytest.mark.e2e
REGION = "us-east-1"
DEFINITION = (REPO / "statemachine" / "onboarding.asl.json").read_text()
STAND_IN = '''
import time


class ResourceConflict(Exception):
    pass


def lambda_handler(event, context):
    if event["Config"]["FailIn"] == context.function_name:
        time.sleep(1.5)
        raise ResourceConflict(f"{context.function_name}: not ours")
    time.sleep(0.1)
    return {}
'''


def function_of(step: str) -> str:
    """The substitution key of the Lambda behind ``step`` (``Step02BucketEncryptionFunctionArn``)."""
    states = {name: state for outer in json.loads(DEFINITION)["States"].values()
              for branch in outer.get("Branches", []) for name, state in branch["States"].items()}
    return str(states[step]["Resource"]).strip("${}")


@pytest.fixture(scope="module")
def machine(served_cloud: ServedCloud) -> str:
    """The onboarding state machine, every function a stand-in."""
    # One role for the stand-ins and the state machine, trusted by both services and allowed to invoke them:
    # the local cloud authorizes every call as IAM would.
    iam = client(served_cloud, "iam")
    name = f"sfn-{uuid.uuid4().hex[:6]}"
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
        "Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}}]}
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="invoke", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}]}))
    definition = DEFINITION
    lam = client(served_cloud, "lambda")
    for key in sorted(set(re.findall(r"\$\{(\w+)\}", DEFINITION))):
        arn = lam.create_function(FunctionName=key, Runtime="python3.13", Role=role, Handler="app.lambda_handler",
                                  Code={"ZipFile": function_zip({"app.py": STAND_IN})}, Timeout=30)["FunctionArn"]
        definition = definition.replace("${" + key + "}", arn)
    return str(client(served_cloud, "stepfunctions").create_state_machine(
        name=f"attribution-{uuid.uuid4().hex[:6]}", definition=definition, roleArn=role)["stateMachineArn"])


@pytest.fixture(scope="module")
def failed_histories(served_cloud: ServedCloud, machine: str) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """One execution per branch task, run together: step -> (execution ARN, history once it FAILED)."""
    sfn = client(served_cloud, "stepfunctions")
    started = {}
    for step in BRANCH_TASKS:
        state = {"Config": {"FailIn": function_of(step)}, "Settings": {"PollSeconds": 1},
                 "CloudFormation": {"RequestType": "Create", "RequestId": step}}
        started[step] = sfn.start_execution(stateMachineArn=machine, input=json.dumps(state))["executionArn"]
    deadline = time.monotonic() + 240
    histories = {}
    while len(histories) < len(started) and time.monotonic() < deadline:
        for step, arn in started.items():
            if step not in histories and sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
                histories[step] = (arn, sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"])
        time.sleep(0.5)
    assert set(histories) == set(started), "executions still running"
    return histories


@pytest.mark.parametrize("step", BRANCH_TASKS)
def test_a_lambda_failing_in_a_parallel_branch_is_named_by_the_answer_and_the_status_view(
        failed_histories: dict[str, tuple[str, list[dict[str, Any]]]], step: str) -> None:
    arn, history = failed_histories[step]
    assert history[-1]["type"] == "ExecutionFailed"

    reason = custom_resource.failure_reason(failed_step(history), REGION, arn)
    lines = render(StatusView(region=REGION, local=True, execution=ExecutionInfo(
        arn, arn.rsplit(":", 1)[-1], "FAILED", history[0]["timestamp"], history[-1]["timestamp"], history)))

    assert reason.startswith(f"{step} failed: ResourceConflict: {function_of(step)}: not ours | Execution: ")
    assert f"Failed step  {step}" in lines
    failed_rows = [line for line in lines if "  failed" in line and not line.startswith("Failed step")]
    assert [line.split("  ")[0] for line in failed_rows] == [step]


def test_the_branches_really_interleaved(failed_histories: dict[str, tuple[str, list[dict[str, Any]]]]) -> None:
    """Without interleaving the attribution would be trivially right: some failure must come after another
    branch's state was entered."""
    misread = []
    for step, (_, history) in failed_histories.items():
        failure = next(e for e in history if e["type"] == "LambdaFunctionFailed")
        entered = [e["stateEnteredEventDetails"]["name"] for e in history
                   if e["type"] == "TaskStateEntered" and e["id"] < failure["id"]]
        if entered[-1] != step:
            misread.append(step)
    assert misread
