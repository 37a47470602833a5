"""Drift-aware change sets (CreateChangeSet ``DeploymentMode: REVERT_DRIFT``), as CloudFormation runs them.

A normal change set compares the new template with the previous one: a resource someone changed by hand
(outside CloudFormation) whose template did not change is left as it is, and a change set of the unchanged
template is empty. A drift-aware change set compares three states: the resource as it is now (CloudFormation
reads it through its type's read handler when the change set is created), the previous deployment, and the
template. Executing it puts each drifted resource back to what the template says. Here, as on AWS:

- ``DeploymentMode`` takes only ``REVERT_DRIFT`` (botocore's enum); it needs an existing stack, so a CREATE or
  IMPORT change set with it is refused (ValidationError).
- Drift is read as drift detection reads it (``cloudformation_drift``), only for resource types whose registry
  schema has a read handler: ``AWS::IAM::Role`` has one, ``AWS::IAM::Policy`` has none (CloudFormation has
  no drift detection for it), so a hand change to such a policy is neither shown nor reverted.
- DescribeChangeSet has ``DeploymentMode`` and ``StackDriftStatus`` (DRIFTED / IN_SYNC); each drifted resource
  is a ``Modify`` (``Add`` when it was deleted) with its ``ResourceDriftStatus`` and, per drifted property,
  ``BeforeValue`` (actual, ``BeforeValueFrom: ACTUAL_STATE``), ``AfterValue`` (template, ``AfterValueFrom:
  TEMPLATE``), ``Drift`` (``PreviousValue``, ``ActualValue``) and ``AttributeChangeType``. An unchanged
  template over a stack in sync is the empty change set, FAILED as any other.
- ExecuteChangeSet updates the drifted resources through their update handler (as the stack's service role),
  with the actual state as the previous one: an inline policy added to a role by hand is part of its
  ``Policies`` and is removed; what the template does not set (a managed policy attached by hand, a tag)
  is not compared and stays. A deleted resource is created again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from local_cloud.cloudformation_templates import TemplateError

REVERT_DRIFT = "REVERT_DRIFT"
MODES = (REVERT_DRIFT,)


def check_mode(mode: str | None, change_set_type: str) -> None:
    """CreateChangeSet's refusals of ``DeploymentMode`` (before anything is created)."""
    if mode is None:
        return
    if mode not in MODES:
        raise TemplateError(
            f"1 validation error detected: Value '{mode}' at 'deploymentMode' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(MODES)}]")
    if change_set_type != "UPDATE":
        raise TemplateError(
            f"DeploymentMode {mode} is supported only for change sets of type UPDATE: a drift-aware change set "
            "compares an existing stack's resources with their template")


def drifts(stack: Any) -> dict[str, dict[str, Any]]:
    """The stack's resources as a drift-aware change set reads them: logical id -> ``StackResourceDrift``
    (MODIFIED or DELETED ones only) for the types CloudFormation detects drift of."""
    from datetime import UTC, datetime

    from local_cloud.cloudformation_drift import DELETED, MODIFIED, resource_drifts

    return {d["LogicalResourceId"]: d for d in resource_drifts(stack, datetime.now(UTC))
            if d["StackResourceDriftStatus"] in (MODIFIED, DELETED)}


def resource_change(drift: dict[str, Any], requires_recreation: Callable[[str, str], str]) -> dict[str, Any]:
    """One drifted resource as a change set's ResourceChange (attribute names for moto's serializer);
    ``requires_recreation(type, property)`` says whether changing that property replaces the resource."""
    kind = drift["ResourceType"]
    if drift["StackResourceDriftStatus"] == "DELETED":
        return {"action": "Add", "logical_resource_id": drift["LogicalResourceId"], "resource_type": kind,
                "resource_drift_status": "DELETED"}
    details = []
    for difference in drift.get("PropertyDifferences", []):
        path = str(difference["PropertyPath"])
        name = path.strip("/").split("/", 1)[0]
        expected, actual = difference["ExpectedValue"], difference["ActualValue"]
        change_type = {"ADD": "Remove", "REMOVE": "Add"}.get(difference["DifferenceType"], "Modify")
        target: dict[str, Any] = {
            "Attribute": "Tags" if name == "Tags" else "Properties", "Name": name, "Path": f"/Properties{path}",
            "RequiresRecreation": requires_recreation(kind, name), "BeforeValueFrom": "ACTUAL_STATE",
            "AfterValueFrom": "TEMPLATE", "AttributeChangeType": change_type,
            "Drift": {"PreviousValue": expected, "ActualValue": actual}}
        if actual:
            target["BeforeValue"] = actual
        if expected:
            target["AfterValue"] = expected
        details.append({"Target": target, "Evaluation": "Static", "ChangeSource": "DirectModification"})
    needs = {d["Target"]["RequiresRecreation"] for d in details}
    return {"action": "Modify", "logical_resource_id": drift["LogicalResourceId"], "resource_type": kind,
            "physical_resource_id": drift.get("PhysicalResourceId") or None, "resource_drift_status": "MODIFIED",
            "replacement": "True" if "Always" in needs else "Conditional" if "Conditionally" in needs else "False",
            "scope": list(dict.fromkeys(d["Target"]["Attribute"] for d in details)) or ["Properties"],
            "details": details}


def prepare_execution(stack: Any, drifted: dict[str, dict[str, Any]]) -> None:
    """Before the stack update runs: the drifted resources are updated (or, deleted, created again) even where
    their template did not change, each from its actual state."""
    resource_map = stack.resource_map
    modify = {logical_id for logical_id, d in drifted.items() if d["StackResourceDriftStatus"] == "MODIFIED"}
    add = {logical_id for logical_id, d in drifted.items() if d["StackResourceDriftStatus"] == "DELETED"}
    for logical_id in add:
        resource_map._parsed_resources.pop(logical_id, None)
    for logical_id in modify:
        made = resource_map._parsed_resources.get(logical_id)
        if drifted[logical_id]["ResourceType"] == "AWS::IAM::Role" and made is not None:
            # The previous state is the actual one: every inline policy the role has that is its own (not an
            # AWS::IAM::Policy resource's of the stack) is what the update handler compares with the template.
            others = _policy_resource_names(stack)
            made.cfn_policy_names = [name for name in made.policies if name not in others]
    resource_map.revert_drift = (modify, add)


def _policy_resource_names(stack: Any) -> set[str]:
    from local_cloud.cloudformation_drift import _policy_resources_of

    return _policy_resources_of((stack.template_dict or {}).get("Resources", {}) or {}, stack.resource_map)


def install() -> None:
    """moto's resource diff of a stack update also names the resources a drift-aware change set reverts."""
    from moto.cloudformation.parsing import ResourceMap

    original = ResourceMap.build_resource_diff
    if getattr(original, "_reverts_drift", False):
        return

    def build_resource_diff(self: Any, other_template: dict[str, Any], parameters: Any = None) -> dict[str, Any]:
        diff: dict[str, Any] = original(self, other_template, parameters)
        modify, add = getattr(self, "revert_drift", (set(), set()))
        resources = other_template.get("Resources") or {}
        diff["Modify"] += [n for n in sorted(modify) if n in resources and n not in diff["Modify"]]
        diff["Add"] += [n for n in sorted(add) if n in resources and n not in diff["Add"]]
        return diff

    build_resource_diff._reverts_drift = True  # type: ignore[attr-defined]
    ResourceMap.build_resource_diff = build_resource_diff  # type: ignore[method-assign]


def done(stack: Any) -> None:
    stack.resource_map.revert_drift = (set(), set())

