"""The real template on the local cloud: ``demo`` completes the stack; the SAM CLI a person types for AWS
deploys, updates and lists it unchanged (``local deploy`` is that same ``sam deploy``; ``sam delete`` is in
test_local_cloud_delete).

The expected Outputs are read from template.yaml itself (every unconditional Output must be there),
so this test follows the template instead of guessing its values.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_cloud.cli import DEMO_WORKBENCH_GUID
from local_cloud.deploy import load_template, sam_executable, with_short_sam_waits
from tests.e2e.test_onboarding_e2e import workbench_devices
from tests.local_cloud.harness import REPO, ServedCloud, child_env, free_port, onboarding_parameters, run_cli

REGION = "us-east-1"

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


def sam_env(cloud: ServedCloud) -> dict[str, str]:
    """What differs from running the SAM CLI against AWS: the endpoint (and made-up credentials), and SAM's pauses
    between its DescribeStacks calls, shortened as ``local deploy`` shortens them (the local cloud is done in
    seconds)."""
    return with_short_sam_waits(dict(child_env(), AWS_ENDPOINT_URL=cloud.url, AWS_ACCESS_KEY_ID="any",
                                     AWS_SECRET_ACCESS_KEY="any", AWS_REGION=REGION))


def sam(cloud: ServedCloud, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """The SAM CLI as a person runs it against AWS."""
    return subprocess.run([sam_executable(), *args], cwd=REPO, env=sam_env(cloud), capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_the_unchanged_sam_cli_deploys_updates_and_lists_the_stack(local_cloud: ServedCloud,
                                                                          built_template: Path) -> None:
    stack = "e2e-sam"
    parameters = [f"{p.split('=', 1)[0]}=\"{p.split('=', 1)[1]}\"" for p in onboarding_parameters(local_cloud, stack)]
    cfn, s3 = _client(local_cloud, "cloudformation"), _client(local_cloud, "s3")
    s3.create_bucket(Bucket="e2e-sam-artifacts")
    deploy = ["deploy", "--template-file", str(built_template), "--stack-name", stack, "--capabilities",
              "CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "--no-confirm-changeset", "--region", REGION]

    # samconfig.toml (read from the working directory) says resolve_s3: an explicit bucket turns it off.
    bucket = ["--no-resolve-s3", "--s3-bucket", "e2e-sam-artifacts"]
    # Without CAPABILITY_IAM (the functions' roles) CloudFormation refuses the change set.
    refused = sam(local_cloud, *deploy[:6], "CAPABILITY_AUTO_EXPAND", *deploy[8:], *bucket, "--parameter-overrides",
                  *parameters)
    created = sam(local_cloud, *deploy, *bucket, "--parameter-overrides", *parameters)
    # The update as `local deploy` runs it: `sam deploy --resolve-s3` with one parameter changed.
    updated = run_cli("local", "deploy", "--endpoint-url", local_cloud.url, "--stack-name", stack, "--template",
                      str(built_template), "--parameter-overrides", *onboarding_parameters(local_cloud, stack),
                      "WorkbenchDeviceName=renamed by update", timeout=600)
    unchanged = sam(local_cloud, *deploy, "--resolve-s3", "--parameter-overrides", *parameters[:1])
    listed = sam(local_cloud, "list", "stack-outputs", "--stack-name", stack, "--region", REGION, "--output", "json")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in json.loads(listed.stdout)}
    devices = {d["id"]: d["attributes"]["name"] for d in workbench_devices(local_cloud)}

    assert refused.returncode != 0
    assert "InsufficientCapabilitiesException" in refused.stderr
    assert "Requires capabilities : [CAPABILITY_IAM]" in refused.stderr
    assert created.returncode == 0, created.stderr[-3000:]
    assert "Successfully created/updated stack - e2e-sam" in created.stdout
    assert updated.returncode == 0, updated.stderr[-3000:]
    assert "stack e2e-sam UPDATE_COMPLETE" in updated.stdout
    assert unchanged.returncode == 1 and "No changes to deploy. Stack e2e-sam is up to date" in unchanged.stderr
    assert _declared_outputs() <= set(outputs)
    # Converged, not duplicated: the update renamed the one device the create registered.
    assert devices[outputs["WorkbenchDeviceId"]] == "renamed by update"
    assert "e2e-sam CloudTrail" not in devices.values()
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"


def _client(cloud: ServedCloud, service: str) -> Any:
    return boto3.client(service, endpoint_url=cloud.url, region_name=REGION, aws_access_key_id="x",
                        aws_secret_access_key="y")
