"""A CloudFormation template's resources as CloudFormation would create them for given parameters. Pure.

The drift check of guide steps 8 and 9 compares the Expel role IAM holds with the role its stack was made
from: ``roles/expel-role.yaml`` evaluated with the stack's parameters, so the template stays the one
definition of that role. Only what that template uses is evaluated: ``Ref`` (parameters, ``AWS::NoValue``
and the pseudo parameters given), ``Fn::Sub`` (string form), ``Fn::If``, ``Fn::Equals``, ``Fn::Not``,
``Fn::And``, ``Fn::Or``, ``Fn::Join`` and ``Condition``; anything else raises, naming it. A ``Ref`` to
one of the template's resources stays the resource's logical id: its physical id is not known here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

INTRINSICS = ("Ref", "Condition", "Fn::Sub", "Fn::If", "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Fn::Join",
              "Fn::GetAtt", "Fn::Select", "Fn::Split", "Fn::FindInMap", "Fn::Base64", "Fn::GetAZs",
              "Fn::ImportValue", "Fn::Cidr", "Fn::Length", "Fn::ToJsonString")


class UnsupportedTemplate(ValueError):
    """The template uses something this evaluator does not (the message names it)."""


@functools.cache
def _loader() -> Any:
    """YAML with CloudFormation's short forms (``!Ref X`` is ``{"Ref": "X"}``, ``!Sub s`` is ``{"Fn::Sub": s}``):
    libyaml's safe loader when PyYAML has it (the layer's wheel does). Made on first use: the functions that
    import this module for the drift check (every step of guide steps 1 to 8) do not pay for importing PyYAML
    at each cold start."""
    import yaml

    def short_form(loader: Any, suffix: str, node: yaml.Node) -> dict[str, Any]:
        name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    Loader.add_multi_constructor("!", short_form)
    return Loader


def load(body: str) -> dict[str, Any]:
    import yaml

    loaded = yaml.load(body, Loader=_loader())  # noqa: S506 - a safe loader's subclass
    if not isinstance(loaded, dict):
        raise UnsupportedTemplate("the template is not a mapping")
    return loaded


class _NoValue:
    """``AWS::NoValue``: the property or list item that holds it disappears."""


NO_VALUE = _NoValue()


def resources(template: dict[str, Any], parameters: Mapping[str, str],
              pseudo: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Each resource whose Condition holds, with its Properties resolved (Type and Properties only).
    Parameters missing from ``parameters`` take the template's default."""
    values = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    values.update(parameters)
    context = _Context(values, dict(pseudo or {}), template.get("Conditions", {}), {},
                       set(template.get("Resources", {})))
    found = {}
    for logical, resource in template.get("Resources", {}).items():
        condition = resource.get("Condition")
        if condition and not context.condition(condition):
            continue
        properties = context.resolve(resource.get("Properties", {}))
        found[logical] = {"Type": resource["Type"], "Properties": properties}
    return found


class _Context:
    def __init__(self, parameters: dict[str, str], pseudo: dict[str, str], conditions: dict[str, Any],
                 decided: dict[str, bool], logical_ids: set[str]) -> None:
        self.parameters, self.pseudo, self.conditions, self.decided = parameters, pseudo, conditions, decided
        self.logical_ids = logical_ids

    def condition(self, name: str) -> bool:
        if name not in self.decided:
            if name not in self.conditions:
                raise UnsupportedTemplate(f"condition {name} is not declared")
            self.decided[name] = bool(self.resolve(self.conditions[name]))
        return self.decided[name]

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.logical_ids:
            return name
        raise UnsupportedTemplate(f"Ref {name}: not a parameter, resource or given pseudo parameter")

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            if key in INTRINSICS:
                return self._intrinsic(key, value)
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _intrinsic(self, name: str, value: Any) -> Any:
        if name == "Ref":
            return self.ref(value)
        if name == "Condition":
            return self.condition(value)
        if name == "Fn::If":
            condition, yes, no = value
            return self.resolve(yes if self.condition(condition) else no)
        if name == "Fn::Equals":
            left, right = (self.resolve(v) for v in value)
            return str(left) == str(right)
        if name == "Fn::Not":
            return not self.resolve(value[0])
        if name == "Fn::And":
            return all(self.resolve(v) for v in value)
        if name == "Fn::Or":
            return any(self.resolve(v) for v in value)
        if name == "Fn::Join":
            separator, items = value
            return str(separator).join(str(v) for v in self.resolve(items))
        if name == "Fn::Sub" and isinstance(value, str):
            return re.sub(r"\$\{([^}!][^}]*)\}", lambda m: str(self.ref(m.group(1))), value).replace("${!", "${")
        raise UnsupportedTemplate(f"{name} is not evaluated here")
