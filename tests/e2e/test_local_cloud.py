"""The real template on the local cloud: ``demo`` and ``local deploy`` complete the stack.

The expected Outputs are read from template.yaml itself (every unconditional Output must be there),
so this test follows the template instead of guessing its values.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from local_cloud.cli import DEMO_API_KEY, DEMO_WORKBENCH_GUID
from local_cloud.deploy import load_template
from tests.e2e.test_onboarding_e2e import workbench_devices
from tests.local_cloud.harness import REPO, ServedCloud, free_port, run_cli

pytestmark = pytest.mark.e2e


def _declared_outputs() -> set[str]:
    outputs = load_template(REPO / "template.yaml").get("Outputs", {})
    return {name for name, output in outputs.items() if "Condition" not in output}


def test_demo_completes_the_stack_and_prints_every_output(built_template: Path) -> None:
    result = run_cli(
        "demo",
        "--port",
        str(free_port()),
        "--workbench-port",
        str(free_port()),
        "--template",
        str(built_template),
        "--stack-name",
        "demo-test",
        timeout=600,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert "stack demo-test CREATE_COMPLETE" in result.stdout
    table = result.stdout.split("CREATE_COMPLETE\n", 1)[1]
    for name in _declared_outputs():
        assert f"\n{name} " in f"\n{table}", f"Output {name} missing from the printed table"
    assert DEMO_WORKBENCH_GUID in table
    assert "stopping the local cloud" in result.stdout


def test_local_deploy_creates_then_updates_the_stack(local_cloud: ServedCloud, built_template: Path) -> None:
    parameters = [
        f"WorkbenchGuid={DEMO_WORKBENCH_GUID}",
        f"WorkbenchApiKey={DEMO_API_KEY}",
        f"WorkbenchBaseUrl={local_cloud.workbench_url}",
        "RetryWindowSeconds=0",
        "StatusPollSeconds=1",
    ]
    command = ["local", "deploy", "--endpoint-url", local_cloud.url, "--stack-name", "e2e-onboarding"]
    command += ["--template", str(built_template), "--parameter-overrides", *parameters]

    created = run_cli(*command, timeout=600)
    updated = run_cli(*command[:-1], "WorkbenchDeviceName=renamed by update", timeout=600)

    assert created.returncode == 0, created.stderr[-2000:]
    assert updated.returncode == 0, updated.stderr[-2000:]
    assert "stack e2e-onboarding UPDATE_COMPLETE" in updated.stdout
    cfn = boto3.client(
        "cloudformation",
        endpoint_url=local_cloud.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    stack = cfn.describe_stacks(StackName="e2e-onboarding")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert _declared_outputs() <= {o["OutputKey"] for o in stack["Outputs"]}
    # Converged, not duplicated: the update renamed the one device the create registered.
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    names = {d["id"]: d["attributes"]["name"] for d in workbench_devices(local_cloud)}
    assert names[outputs["WorkbenchDeviceId"]] == "renamed by update"
    assert "123456789012 CloudTrail" not in names.values()
