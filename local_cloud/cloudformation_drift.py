"""CloudFormation drift detection of one stack's resources, as AWS reports it (``StackResourceDrift``).

moto has no drift detection. The StackSets emulation (``stacksets.py``: DetectStackSetDrift,
ListStackInstanceResourceDrifts) asks this module, per stack instance, how each resource of the instance's
stack compares with what its template and parameters say:

- Only the properties the template sets are compared (AWS: "Only resource properties explicitly defined in
  the stack template are checked for drift"); a resource type without a comparison here is NOT_CHECKED, as a
  type without drift support is on AWS. CloudFormation detects drift only through a type's read handler:
  one whose registry schema has none (``AWS::IAM::Policy``) is NOT_CHECKED whatever was changed.
- A resource that is gone is DELETED; one whose properties differ is MODIFIED, with one ``PropertyDifference``
  per differing leaf (``PropertyPath`` such as ``/AssumeRolePolicyDocument/Statement/0/Condition/StringEquals/
  sts:ExternalId``; ``DifferenceType`` NOT_EQUAL, ADD for an element added to a list, REMOVE for one taken away;
  values as strings, documents as JSON).
- IAM policy documents are compared as IAM reads them: a single string and a one-element list are the same.

Emulated types: ``AWS::IAM::Role`` (RoleName, Description, MaxSessionDuration, Path, PermissionsBoundary,
AssumeRolePolicyDocument, Policies, ManagedPolicyArns) and ``AWS::IAM::Policy`` (PolicyName, PolicyDocument,
Roles; compared only if its schema gains a read handler). An inline policy an ``AWS::IAM::Policy`` of the same
stack puts on a role is that resource's, not the role's ``Policies``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from local_cloud.resource_schemas import resource_schema

IN_SYNC, MODIFIED, DELETED, NOT_CHECKED = "IN_SYNC", "MODIFIED", "DELETED", "NOT_CHECKED"


def resource_drifts(stack: Any, timestamp: datetime) -> list[dict[str, Any]]:
    """Every resource of moto's ``stack`` as a ``StackResourceDrift`` (logical id order)."""
    resource_map = stack.resource_map
    resources = (stack.template_dict or {}).get("Resources", {}) or {}
    found = []
    for logical_id, resource_json in sorted(resources.items()):
        condition = resource_json.get("Condition")
        if condition and not resource_map.lazy_condition_map[condition]:
            continue
        made = resource_map._parsed_resources.get(logical_id)
        physical = str(getattr(made, "physical_resource_id", "") or "")
        kind = str(resource_json.get("Type", ""))
        drift: dict[str, Any] = {"StackId": stack.stack_id, "LogicalResourceId": logical_id, "ResourceType": kind,
                                 "PhysicalResourceId": physical, "Timestamp": timestamp}
        compare = _COMPARISONS.get(kind) if drift_supported(kind, stack.region_name) else None
        if compare is None or made is None:
            found.append(drift | {"StackResourceDriftStatus": NOT_CHECKED})
            continue
        expected = _without_no_value(_resolved(resource_json.get("Properties", {}) or {}, resource_map))
        actual = compare(stack, physical, expected, resources, resource_map)
        if actual is None:
            found.append(drift | {"StackResourceDriftStatus": DELETED, "ExpectedProperties": _text(expected)})
            continue
        differences = property_differences(expected, actual)
        drift |= {"ExpectedProperties": _text(expected), "ActualProperties": _text(actual),
                  "StackResourceDriftStatus": MODIFIED if differences else IN_SYNC}
        if differences:
            drift["PropertyDifferences"] = differences
        found.append(drift)
    return found


def drift_supported(resource_type: str, region: str) -> bool:
    """Whether CloudFormation detects (and a drift-aware change set reverts) drift of this type: its registry
    schema has a read handler."""
    return "read" in (resource_schema(resource_type, region).get("handlers") or {})


def property_differences(expected: Any, actual: Any, path: str = "") -> list[dict[str, str]]:
    """Each leaf where ``actual`` differs from ``expected``, as ``PropertyDifference`` entries."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found: list[dict[str, str]] = []
        for key in expected:
            if key not in actual:
                found.append(_difference(f"{path}/{key}", expected[key], None, "REMOVE"))
            else:
                found += property_differences(expected[key], actual[key], f"{path}/{key}")
        found += [_difference(f"{path}/{key}", None, actual[key], "ADD") for key in actual if key not in expected]
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        return _list_differences(expected, actual, path)
    if _scalar(expected) == _scalar(actual):
        return []
    return [_difference(path, expected, actual, "NOT_EQUAL")]


def _list_differences(expected: list[Any], actual: list[Any], path: str) -> list[dict[str, str]]:
    """Lists as sets (CloudFormation reports an element added or removed, not a reordering): the elements
    found on both sides match; of the rest, a pair of documents at the same place is compared inside."""
    unmatched = list(range(len(actual)))
    missing = []
    for index, item in enumerate(expected):
        match = next((i for i in unmatched if _canonical(actual[i]) == _canonical(item)), None)
        if match is None:
            missing.append(index)
        else:
            unmatched.remove(match)
    found: list[dict[str, str]] = []
    for index in missing:
        pair = next((i for i in unmatched if isinstance(actual[i], dict) and isinstance(expected[index], dict)
                     and _same_identity(expected[index], actual[i])), None)
        if pair is not None:
            unmatched.remove(pair)
            found += property_differences(expected[index], actual[pair], f"{path}/{index}")
        else:
            found.append(_difference(f"{path}/{index}", expected[index], None, "REMOVE"))
    found += [_difference(f"{path}/{i}", None, actual[i], "ADD") for i in unmatched]
    return found


def _same_identity(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    """Two list elements that are the same thing changed (a statement with its Sid, a policy with its name),
    or, without a name, the only candidates."""
    for key in ("Sid", "PolicyName"):
        if key in expected or key in actual:
            return expected.get(key) == actual.get(key)
    return True


def _difference(path: str, expected: Any, actual: Any, kind: str) -> dict[str, str]:
    return {"PropertyPath": path, "ExpectedValue": "" if expected is None else _text(expected),
            "ActualValue": "" if actual is None else _text(actual), "DifferenceType": kind}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _canonical(value: Any) -> str:
    return json.dumps(_iam_normal(value), sort_keys=True, default=str)


def _iam_normal(value: Any) -> Any:
    """A one-element list is its element (IAM reads "Action": "x" and "Action": ["x"] alike); numbers and
    booleans as the text IAM and CloudFormation hand back."""
    if isinstance(value, list):
        items = [_iam_normal(v) for v in value]
        return items[0] if len(items) == 1 else sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, dict):
        return {k: _iam_normal(v) for k, v in value.items()}
    return _scalar(value)


def _normalized_document(document: Any) -> Any:
    """An IAM policy document as a value to compare: text parsed, single strings where the template has a
    one-element list, so only a real change differs."""
    parsed = json.loads(document) if isinstance(document, str) else document
    return _singletons(parsed)


def _singletons(value: Any) -> Any:
    if isinstance(value, list):
        return [_singletons(v) for v in value]
    if isinstance(value, dict):
        return {k: (_singletons(v[0]) if isinstance(v, list) and len(v) == 1 and k != "Statement" else _singletons(v))
                for k, v in value.items()}
    return value


def _resolved(properties: Any, resource_map: Any) -> Any:
    from moto.cloudformation.parsing import clean_json

    return clean_json(properties, resource_map)


def _without_no_value(value: Any) -> Any:
    """``Ref: AWS::NoValue`` removes the property, as CloudFormation does."""
    if isinstance(value, dict):
        return {k: _without_no_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_no_value(v) for v in value if v is not None]
    return value


# ----------------------------------------------------------------------------------------- per resource type
def _iam(stack: Any) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[stack.account_id]["aws"]


def _role(stack: Any, name: str) -> Any:
    return next((r for r in _iam(stack).roles.values() if r.name == name), None)


def _policy_resources_of(resources: dict[str, Any], resource_map: Any) -> set[str]:
    """Names of the inline policies the stack's ``AWS::IAM::Policy`` resources put on roles."""
    names = set()
    for logical_id, resource_json in resources.items():
        if resource_json.get("Type") != "AWS::IAM::Policy" or logical_id not in resource_map._parsed_resources:
            continue
        names.add(str(_resolved(resource_json.get("Properties", {}).get("PolicyName", ""), resource_map)))
    return names


def _actual_role(stack: Any, physical: str, expected: dict[str, Any], resources: dict[str, Any],
                 resource_map: Any) -> dict[str, Any] | None:
    role = _role(stack, physical)
    if role is None:
        return None
    others = _policy_resources_of(resources, resource_map)
    actual: dict[str, Any] = {
        "RoleName": role.name, "Path": role.path,
        "AssumeRolePolicyDocument": _normalized_document(role.assume_role_policy_document),
        "Policies": [{"PolicyName": name, "PolicyDocument": _normalized_document(document)}
                     for name, document in sorted(role.policies.items()) if name not in others],
        "ManagedPolicyArns": sorted(role.managed_policies),
    }
    if role.description:
        actual["Description"] = role.description
    if role.max_session_duration is not None:
        actual["MaxSessionDuration"] = int(role.max_session_duration)
    if role.permissions_boundary_arn:
        actual["PermissionsBoundary"] = role.permissions_boundary_arn
    # Only what the template sets is compared: a property it leaves out (a MaxSessionDuration IAM defaulted, a
    # boundary put by hand) is not.
    actual = {key: value for key, value in actual.items() if key in expected}
    if "AssumeRolePolicyDocument" in expected:
        expected["AssumeRolePolicyDocument"] = _normalized_document(expected["AssumeRolePolicyDocument"])
    for policy in expected.get("Policies", []):
        policy["PolicyDocument"] = _normalized_document(policy.get("PolicyDocument", {}))
    return actual


def _actual_policy(stack: Any, physical: str, expected: dict[str, Any], resources: dict[str, Any],
                   resource_map: Any) -> dict[str, Any] | None:
    name = str(expected.get("PolicyName", ""))
    roles = [str(r) for r in expected.get("Roles", [])]
    holders = [r for r in (_role(stack, n) for n in roles) if r is not None and name in r.policies]
    if not holders:
        return None
    expected["PolicyDocument"] = _normalized_document(expected.get("PolicyDocument", {}))
    return {"PolicyName": name, "PolicyDocument": _normalized_document(holders[0].policies[name]),
            "Roles": [r.name for r in holders]}


_COMPARISONS: dict[str, Callable[[Any, str, dict[str, Any], dict[str, Any], Any], dict[str, Any] | None]] = {
    "AWS::IAM::Role": _actual_role,
    "AWS::IAM::Policy": _actual_policy,
}
