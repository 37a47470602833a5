"""The CloudFormation registry's resource provider schemas, as cfn-lint ships them (data only).

CloudFormation reads a resource type's schema for what its handlers may call and which properties replace
the resource. cfn-lint's package holds those schemas per region; only its data is read here. Importing
cfn-lint itself would cost the local cloud a second of CPU (it imports sympy) on its first stack.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any


@cache
def _root() -> Path:
    spec = find_spec("cfnlint")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("cfn-lint is not installed (requirements-dev.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "schemas"


@cache
def _providers(region: str) -> dict[str, Any]:
    path = _root() / "providers" / f"{region}.json"
    if not path.is_file():
        path = _root() / "providers" / "us-east-1.json"
    providers: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return providers


@cache
def resource_schema(resource_type: str, region: str = "us-east-1") -> dict[str, Any]:
    """The schema of ``resource_type`` in ``region``; empty for a type the registry lacks (a custom resource)."""
    digest = _providers(region).get(resource_type)
    if not isinstance(digest, str):
        return {}
    schema: dict[str, Any] = json.loads((_root() / "resources" / f"{digest}.json").read_text(encoding="utf-8"))
    return schema
