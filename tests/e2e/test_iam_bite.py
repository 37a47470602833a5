"""The deployed onboarding runs with only its grants: one grant taken out of the built template fails the
deploy at the step that needs it, with AWS's AccessDenied naming the function's session, the action and the
resource. (Each kind of rule is proven in process by ``tests/local_cloud/test_iam_bites.py``; this is the
whole path once: template -> execution role -> Lambda session -> refusal -> the stack's failure reason.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_onboarding_e2e import custom_resource_reason, deploy_command
from tests.local_cloud.harness import ServedCloud, onboarding_parameters, run_cli

pytestmark = pytest.mark.e2e


def test_a_grant_taken_out_fails_the_deploy_at_its_step_with_access_denied(
        local_cloud: ServedCloud, built_template: Path, tmp_path: Path) -> None:
    build = tmp_path / "build"
    shutil.copytree(built_template.parent, build)
    template = yaml.safe_load((build / "template.yaml").read_text(encoding="utf-8"))
    # Step 1's grant without kms:EnableKeyRotation (its statement on keys carrying our tag keeps the rest).
    for statement in template["Resources"]["Step01TrailFunction"]["Properties"]["Policies"][0]["Statement"]:
        if isinstance(statement.get("Action"), list) and "kms:EnableKeyRotation" in statement["Action"]:
            statement["Action"].remove("kms:EnableKeyRotation")
    machine = template["Resources"]["OnboardingStateMachine"]["Properties"]
    machine["DefinitionUri"] = str((built_template.parent / machine["DefinitionUri"]).resolve())
    # JSON is YAML too, and holds whatever mapping type the loader gave.
    (build / "template.yaml").write_text(json.dumps(template, indent=1, default=str), encoding="utf-8")

    params = onboarding_parameters(local_cloud, "e2e-bite")
    result = run_cli(*deploy_command(local_cloud, build / "template.yaml", "e2e-bite", params), timeout=300)

    assert result.returncode != 0, result.stdout[-3000:] + result.stderr[-3000:]
    reason = custom_resource_reason(local_cloud, "e2e-bite")
    assert reason.startswith("Step 1 Create Trail failed: "), reason
    assert ":assumed-role/e2e-bite-Step01TrailFunctionRole-" in reason, reason
    assert "/e2e-bite-Step01TrailFunction-" in reason, reason
    assert "is not authorized to perform: kms:EnableKeyRotation on resource: arn:aws:kms:us-east-1:" in reason, reason
