"""The deployed onboarding runs with only its grants: one action taken out of a function's grant in the built
template fails the onboarding at the step that needs it, with AWS's AccessDenied naming the function's role
session, the action and the resource, while the unchanged template (the session's ``onboarded`` stack) makes
the same call. Deployed as every other e2e deploys (``local deploy``, that is ``sam deploy``). Each kind of rule
(resource scope, tag conditions, PassRole...) is proven in process by ``tests/local_cloud/test_iam_bites.py``;
this is the whole path once: template -> execution role -> Lambda session -> refusal -> the stack's reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local_cloud.deploy import load_template
from tests.e2e.test_onboarding_e2e import client, custom_resource_reason, deploy_command, stack
from tests.local_cloud.harness import ServedCloud, onboarding_parameters, run_cli

pytestmark = pytest.mark.e2e

NARROWED = "e2e-bite"
FUNCTION = "Step01TrailFunction"
ACTION = "kms:EnableKeyRotation"


# Paths in a built template, relative to its directory: made absolute, so the narrowed copy can live elsewhere.
_PATH_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri")
_APPLICATION_PATHS = ("LicenseUrl", "ReadmeUrl")


def _absolute(value: object, base: Path) -> object:
    return str((base / value).resolve()) if isinstance(value, str) and "://" not in value else value


def _without_action(built_template: Path, directory: Path, function: str, action: str) -> Path:
    """The built template, its ``function``'s grant without ``action`` (everything else as built)."""
    template = load_template(built_template)
    statements = template["Resources"][function]["Properties"]["Policies"][0]["Statement"]
    removed = 0
    for statement in statements:
        actions = statement.get("Action") if isinstance(statement, dict) else None
        if isinstance(actions, list) and action in actions:
            actions.remove(action)
            removed += 1
    assert removed == 1, f"{function}'s grant names {action} in {removed} statements, not one"
    base = built_template.parent
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for name in _PATH_PROPERTIES:
            if name in properties:
                properties[name] = _absolute(properties[name], base)
    application = template.get("Metadata", {}).get("AWS::ServerlessRepo::Application", {})
    for name in _APPLICATION_PATHS:
        if name in application:
            application[name] = _absolute(application[name], base)
    narrowed = directory / "template.json"
    narrowed.write_text(json.dumps(template, indent=1), encoding="utf-8")
    return narrowed


def test_an_action_taken_out_of_a_grant_fails_the_onboarding_at_its_step_with_access_denied(
        local_cloud: ServedCloud, built_template: Path, onboarded: dict[str, str], tmp_path: Path) -> None:
    # The unchanged template: step 1 turned rotation on for its key, as its own role.
    assert stack(local_cloud, onboarded["stack_name"])["StackStatus"] == "CREATE_COMPLETE"
    assert client(local_cloud, "kms").get_key_rotation_status(KeyId=onboarded["KmsKeyArn"])["KeyRotationEnabled"]

    template = _without_action(built_template, tmp_path, FUNCTION, ACTION)
    params = onboarding_parameters(local_cloud, NARROWED)
    result = run_cli(*deploy_command(local_cloud, template, NARROWED, params), timeout=400)

    assert result.returncode != 0, result.stdout[-3000:] + result.stderr[-3000:]
    reason = custom_resource_reason(local_cloud, NARROWED)
    # CloudFormation's wording around the answer's Reason, which names the step first.
    assert "Received response status [FAILED] from custom resource. Message returned: Step 1 Create Trail failed: " \
        in reason, reason
    assert f"User: arn:aws:sts::123456789012:assumed-role/{NARROWED}-{FUNCTION}Role-" in reason, reason
    assert f"/{NARROWED}-{FUNCTION}-" in reason, reason  # the session is the function's
    assert f"is not authorized to perform: {ACTION} on resource: arn:aws:kms:us-east-1:123456789012:key/" in reason
    assert "AccessDeniedException" in reason, reason
    # The person running the deploy sees it too.
    assert ACTION in result.stdout + result.stderr
