"""The onboarding under IAM's eventual consistency (``local serve --iam-propagation-delay``): a role is used
right after it is made, and the onboarding retries until IAM has propagated it instead of failing.

The template makes the Expel role stack's service role moments before step 8 hands it to CloudFormation,
which answers "Role ... is invalid or cannot be assumed" until IAM has propagated it; step 8 retries that
(a TransientError the state machine retries) and the stack completes. Expel, assuming the new Expel role
right after the deploy, is refused until the role has propagated too, then gets in."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_cloud.cli import DEMO_WORKBENCH_GUID
from tests.e2e.test_expel_side_e2e import as_keys, expel_user
from tests.e2e.test_faults_e2e import client, deploy
from tests.local_cloud.harness import ServedCloud, serve_child

pytestmark = pytest.mark.e2e
# A new role propagates DELAY seconds after a service first reads it (--iam-propagation-from-first-use), so step 8's
# first CreateStack is refused however long the machine took to reach it; shorter than the state machine's retries
# of a TransientError (2 + 4 + 8 + 16 s, at this module's TIME_SCALE 0.2 + 0.4 + 0.8 + 1.6 s, each after an
# invocation), as IAM's propagation is on AWS (seconds, here in the same compressed time).
DELAY = 2
TIME_SCALE = 0.1
STACK = "e2e-iam-delay"


@pytest.fixture(scope="module")
def propagating(built_template: Path) -> Iterator[tuple[ServedCloud, Any]]:
    args = ["--iam-propagation-delay", str(DELAY), "--iam-propagation-from-first-use"]
    with serve_child(extra_args=args, time_scale=TIME_SCALE) as cloud:
        result = deploy(cloud, built_template, STACK, RetryWindowSeconds="0")
        yield cloud, result


def test_step_8_retries_the_service_role_iam_has_not_propagated_yet_and_the_stack_completes(
        propagating: tuple[ServedCloud, Any]) -> None:
    cloud, result = propagating
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    sfn = client(cloud, "stepfunctions")
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
                   if m["name"] == f"{STACK}-onboarding")
    execution = sfn.list_executions(stateMachineArn=machine)["executions"][0]["executionArn"]
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    failed = [json.loads(details["cause"])["errorMessage"] for e in events for name, details in e.items()
              if name.endswith("FailedEventDetails") and e["type"] in ("TaskFailed", "LambdaFunctionFailed")
              and details.get("error") == "TransientError"]
    assert any("cannot (yet) assume the service role" in message for message in failed), failed


def test_expel_gets_into_the_new_role_once_iam_has_propagated_it(propagating: tuple[ServedCloud, Any]) -> None:
    cloud, _ = propagating
    role = next(o["OutputValue"] for o in client(cloud, "cloudformation").describe_stacks(
        StackName=STACK)["Stacks"][0]["Outputs"] if o["OutputKey"] == "IamRoleArn")
    user = expel_user(cloud)
    sts = as_keys(cloud, "sts", {"aws_access_key_id": user["AccessKeyId"],
                                 "aws_secret_access_key": user["SecretAccessKey"]})
    refusals: list[str] = []
    deadline = time.monotonic() + DELAY + 10
    while True:
        try:
            sts.assume_role(RoleArn=role, RoleSessionName="expel", ExternalId=DEMO_WORKBENCH_GUID)
            break
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "AccessDenied"
            refusals.append(exc.response["Error"]["Message"])
            assert time.monotonic() < deadline, f"the role was not assumable {DELAY + 10} s after the deploy"
            time.sleep(0.5)
    # Expel's first try is the first time a service reads the role (from first use, no service handed it to
    # another before), so IAM has not propagated it yet: Expel is refused, as on AWS, with the message an untrusted
    # caller gets, until DELAY seconds later.
    assert refusals, "Expel got into the new role at its first try: IAM had propagated it at once"
    assert all(m.startswith(f"User: {user['Arn']} is not authorized to perform: sts:AssumeRole") for m in refusals)
