"""``status`` and ``launch-url`` against the real template on the local cloud, as a person runs them."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from samcli.yamlhelper import yaml_parse

from local_cloud.cli import DEMO_WORKBENCH_GUID
from tests.local_cloud.harness import ServedCloud, client, run_cli

pytestmark = pytest.mark.e2e
REGION = "us-east-1"


def status(cloud: ServedCloud, stack: str) -> Any:
    return run_cli("status", "--stack", stack, "--endpoint-url", cloud.url, "--region", REGION, timeout=60)


def step_rows(stdout: str) -> dict[str, str]:
    """Step name -> the rest of its row, from the table under the ``Step  State  Took  Started`` header."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Step ") and "State" in line)
    width = lines[header + 1].index("  ")
    table = lines[header + 2: lines.index("", header + 2)]
    return {line[:width].rstrip(): line[width:].split() for line in table}


def test_status_of_a_finished_stack_shows_every_step_succeeded_with_durations(
        local_cloud: ServedCloud, onboarded: dict[str, str]) -> None:
    """The shared onboarded stack (a single account), as ``local deploy`` left it."""
    name = onboarded["stack_name"]

    result = status(local_cloud, name)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["Stack", "CREATE_COMPLETE", name]
    assert result.stdout.splitlines()[2].split()[:2] == ["Execution", "SUCCEEDED"]
    rows = step_rows(result.stdout)
    guide = ["Preflight Checks", "Step 1 Create Trail", "Step 2 Bucket Encryption", "Step 3 Create SNS Topic",
             "Step 4 Edit KMS Key Policy", "Step 5 Create SQS Queue", "Step 6 Create SNS Subscription",
             "Step 7 Enable S3 Event Notifications", "Step 8 Deploy Expel Role", "Step 10 Register Workbench Device"]
    assert set(guide) <= set(rows), sorted(rows)
    for step, row in rows.items():
        assert row[0] == "succeeded", (step, row)
        assert any(re.fullmatch(r"\d+\.\ds|\d+m\d\ds", cell) for cell in row[1:]), (step, row)  # its duration
    assert step_rows(onboarded["stdout"]).keys() == rows.keys()  # local deploy ends with the same view
    resources = client(local_cloud, "cloudformation").describe_stack_resources(StackName=name)["StackResources"]
    assert all(r.get("ResourceType") and r.get("LogicalResourceId") for r in resources)
    # With a Workbench API key the stack keeps it in a secret of its own (without one it has none:
    # test_organizations_e2e's keyless stack).
    assert "WorkbenchApiKeySecret" in {r["LogicalResourceId"] for r in resources}


def test_status_of_a_failed_stack_names_the_failing_step_and_reason(
        local_cloud: ServedCloud, preflight_refused: dict[str, Any]) -> None:
    name = preflight_refused["name"]
    assert preflight_refused["result"].returncode != 0

    result = status(local_cloud, name)

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Stack", "CREATE_FAILED", name]
    assert step_rows(result.stdout)["Preflight Checks"][0] == "failed"
    assert "Failed step  Preflight Checks" in lines
    assert "Error        ResourceConflict" in lines
    reason = next(line for line in lines if line.startswith("Reason"))
    assert "QueueName" in reason and f"{name}-queue" in reason


def test_launch_url_points_at_a_packaged_template_in_the_bucket_without_secrets(
        local_cloud: ServedCloud, built_template: Path) -> None:
    bucket = f"e2e-launch-{uuid.uuid4().hex[:6]}"
    s3 = client(local_cloud, "s3")
    s3.create_bucket(Bucket=bucket)
    common = ["launch-url", "--bucket", bucket, "--region", REGION, "--endpoint-url", local_cloud.url,
              "--template", str(built_template), "--stack-name", "expel-onboarding"]

    refused = run_cli(*common, "--param", "WorkbenchApiKey=very-secret-key", timeout=120)
    result = run_cli(*common, "--param", f"WorkbenchGuid={DEMO_WORKBENCH_GUID}", "WorkbenchLocation=AWS cloud & co",
                     timeout=300)

    assert refused.returncode != 0 and "WorkbenchApiKey is NoEcho" in refused.stderr
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    url = result.stdout.strip().splitlines()[-1]
    assert url.startswith(f"https://{REGION}.console.aws.amazon.com/cloudformation/home?region={REGION}#/stacks/quickcreate?")
    query = dict(parse_qsl(urlsplit(url).fragment.partition("?")[2], strict_parsing=True))
    assert query["param_WorkbenchGuid"] == DEMO_WORKBENCH_GUID
    assert query["param_WorkbenchLocation"] == "AWS cloud & co"
    assert query["stackName"] == "expel-onboarding"
    assert not any(key.startswith("param_WorkbenchApiKey") for key in query)
    template = urlsplit(query["templateURL"])
    assert template.scheme == "https" and template.netloc == f"{bucket}.s3.{REGION}.amazonaws.com"
    body = s3.get_object(Bucket=bucket, Key=template.path.lstrip("/"))["Body"].read().decode()
    assert "very-secret-key" not in body
    packaged = json.loads(json.dumps(yaml_parse(body)))
    assert packaged["Parameters"]["WorkbenchApiKey"].get("Default", "") == ""
    for resource in packaged["Resources"].values():  # every artifact was uploaded next to it
        uri = resource.get("Properties", {}).get("CodeUri") or resource.get("Properties", {}).get("ContentUri")
        if isinstance(uri, str):
            assert uri.startswith(f"s3://{bucket}/"), uri
            s3.head_object(Bucket=bucket, Key=uri.split("/", 3)[3])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert not any("very-secret-key" in s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode(errors="ignore")
                   for k in keys if k.endswith(".yaml"))

