"""The deployed onboarding runs with only its grants: one needed grant taken out of, or narrowed in, a function's
policy in the built template fails the onboarding at the step that needs it, with AWS's AccessDenied naming the
function's role session, the action and the resource, as CloudFormation's stack event shows it. One deploy per kind
of rule the template's grants rely on: a plain action, a resource ARN, a tag condition on a KMS key, and PassRole.
Each is deployed as every other e2e deploys (``local deploy``, that is ``sam deploy``): template -> execution role
-> Lambda session -> refusal -> the stack's reason.

Each bite changes exactly one thing in the built template, so the refusal is that change's: the unchanged template
makes the same calls in every onboarding of ``test_onboarding_e2e.py`` (the ``onboarded`` stack runs with
CloudWatch Logs delivery, so it passes the logs role too), and ``tests/local_cloud/test_iam_bites.py`` shows each
rule both ways in process, including a tag-conditioned action on a key without our tag. Every bite fails in step 1,
the first step that writes, so each deploy is short; rollback is off (the failed stack is read, not torn down).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local_cloud.deploy import load_template
from tests.e2e.test_onboarding_e2e import client, custom_resource_reason, deploy_command
from tests.local_cloud.harness import ServedCloud, onboarding_parameters, run_cli

pytestmark = pytest.mark.e2e

ACCOUNT, REGION = "123456789012", "us-east-1"
FUNCTION = "Step01TrailFunction"
STEP = "Step 1 Create Trail"
OWNERSHIP_TAG = "expel-onboarding:stack"

Statement = dict[str, Any]


def _statements(template: dict[str, Any], function: str) -> Iterator[Statement]:
    """The statements of ``function``'s grant as built, those under a template condition (``Fn::If``) too."""
    for statement in template["Resources"][function]["Properties"]["Policies"][0]["Statement"]:
        if "Fn::If" in statement:
            statement = statement["Fn::If"][1]
        if "Effect" in statement:
            yield statement


def remove_action(action: str) -> Callable[[Statement], bool]:
    """A plain action: gone from the one statement that grants it."""
    def edit(statement: Statement) -> bool:
        actions = statement["Action"]
        if isinstance(actions, list) and action in actions:
            actions.remove(action)
            return True
        return False
    return edit


def narrow_resource(action: str, granted: str, narrowed: str) -> Callable[[Statement], bool]:
    """A resource-scoped action: the statement's ARN names another resource than the one the step acts on."""
    def edit(statement: Statement) -> bool:
        resource = statement["Resource"]
        if action in statement["Action"] and isinstance(resource, dict) and granted in resource.get("Fn::Sub", ""):
            resource["Fn::Sub"] = resource["Fn::Sub"].replace(granted, narrowed)
            return True
        return False
    return edit


def expect_another_owner(action: str) -> Callable[[Statement], bool]:
    """A tag-conditioned KMS action: the ownership-tag condition asks for another stack's tag, so the key this
    stack created and tagged no longer satisfies it."""
    def edit(statement: Statement) -> bool:
        equals = statement.get("Condition", {}).get("StringEquals", {})
        if action in statement["Action"] and f"aws:ResourceTag/{OWNERSHIP_TAG}" in equals:
            equals[f"aws:ResourceTag/{OWNERSHIP_TAG}"] = "another-stack"
            return True
        return False
    return edit


def pass_to(service: str) -> Callable[[Statement], bool]:
    """PassRole: the role may be passed to another service than the one the step hands it to."""
    def edit(statement: Statement) -> bool:
        equals = statement.get("Condition", {}).get("StringEquals", {})
        if statement["Action"] == "iam:PassRole" and "iam:PassedToService" in equals:
            equals["iam:PassedToService"] = service
            return True
        return False
    return edit


@dataclass(frozen=True)
class Bite:
    """One grant taken away: how the template changes, and the refusal the deploy must end with."""

    stack: str
    edit: Callable[[Statement], bool]
    action: str
    resource: Callable[[str], str]  # the refused resource's ARN prefix, given the stack name
    parameters: dict[str, str] = field(default_factory=dict)


BITES = [
    pytest.param(Bite("e2e-bite-action", remove_action("kms:EnableKeyRotation"), "kms:EnableKeyRotation",
                      lambda stack: f"arn:aws:kms:{REGION}:{ACCOUNT}:key/"), id="plain-action"),
    # CreateAlias needs the alias and the key: the alias's ARN is the resource scope taken away here...
    pytest.param(Bite("e2e-bite-resource", narrow_resource("kms:CreateAlias", "alias/${KmsAlias}",
                                                           "alias/${KmsAlias}-other"), "kms:CreateAlias",
                      lambda stack: f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/{stack}-key"), id="resource-arn"),
    # ... and the key's ownership tag the condition taken away here.
    pytest.param(Bite("e2e-bite-tag", expect_another_owner("kms:CreateAlias"), "kms:CreateAlias",
                      lambda stack: f"arn:aws:kms:{REGION}:{ACCOUNT}:key/"), id="kms-ownership-tag"),
    # With CloudWatch Logs delivery, step 1 hands CloudTrail the template's CloudTrailLogsRole at CreateTrail.
    pytest.param(Bite("e2e-bite-passrole", pass_to("logs.amazonaws.com"), "iam:PassRole",
                      lambda stack: f"arn:aws:iam::{ACCOUNT}:role/{stack}-CloudTrailLogsRole-",
                      {"CloudWatchLogsRetentionDays": "30"}), id="pass-role"),
]


# Paths in a built template, relative to its directory: made absolute, so the changed copy can live elsewhere.
_PATH_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri")
_APPLICATION_PATHS = ("LicenseUrl", "ReadmeUrl")


def _absolute(value: object, base: Path) -> object:
    return str((base / value).resolve()) if isinstance(value, str) and "://" not in value else value


def bitten(built_template: Path, directory: Path, edit: Callable[[Statement], bool]) -> Path:
    """The built template with ``edit`` applied to exactly one statement of step 1's grant (everything else as
    built)."""
    template = load_template(built_template)
    edited = sum(edit(statement) for statement in _statements(template, FUNCTION))
    assert edited == 1, f"the bite changed {edited} statements of {FUNCTION}'s grant, not one"
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
    changed = directory / "template.json"
    changed.write_text(json.dumps(template, indent=1), encoding="utf-8")
    return changed


@pytest.mark.parametrize("bite", BITES)
def test_a_grant_taken_away_fails_the_onboarding_at_its_step_with_access_denied(
        local_cloud: ServedCloud, built_template: Path, tmp_path: Path, bite: Bite) -> None:
    template = bitten(built_template, tmp_path, bite.edit)
    params = onboarding_parameters(local_cloud, bite.stack, **bite.parameters)
    # --disable-rollback, as a person who wants to read why: the failed stack stays to be read.
    result = run_cli(*deploy_command(local_cloud, template, bite.stack, params), "--disable-rollback", timeout=400)

    assert result.returncode != 0, result.stdout[-3000:] + result.stderr[-3000:]
    reason = custom_resource_reason(local_cloud, bite.stack)
    # CloudFormation's wording around the answer's Reason, which names the step first.
    assert f"Received response status [FAILED] from custom resource. Message returned: {STEP} failed: " \
        in reason, reason
    # The function's role, and a session of the function itself.
    assert f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{bite.stack}-{FUNCTION}Role-" in reason, reason
    assert f"/{bite.stack}-{FUNCTION}-" in reason, reason
    assert f"is not authorized to perform: {bite.action} on resource: {bite.resource(bite.stack)}" in reason, reason
    assert "AccessDeniedException" in reason, reason
    # The person running the deploy sees it too.
    assert bite.action in result.stdout + result.stderr
    if bite.stack == "e2e-bite-tag":  # the key carries our tag: the condition asking for another's is what refuses
        key_arn = reason.split(f"on resource: arn:aws:kms:{REGION}:{ACCOUNT}:key/", 1)[1].split()[0].rstrip(".,")
        tags = client(local_cloud, "kms").list_resource_tags(KeyId=key_arn)["Tags"]
        assert {"TagKey": OWNERSHIP_TAG, "TagValue": bite.stack} in tags, tags
