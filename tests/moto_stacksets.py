"""What moto 5.2's service-managed StackSets leave out, filled in so tests see what AWS answers.

moto really creates the template's resources in member accounts (a hidden stack per instance, in
that account's IAM), and finishes every operation at once (SUCCEEDED). It does not:
- keep AutoDeployment or the targeted OU ids (DescribeStackSet answers without them),
- skip the management account or descend more than one OU level when deploying to an OU/root,
- honour DeploymentTargets when deleting instances.
``service_managed_stacksets()`` patches exactly those, on moto's response and model classes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.cloudformation import models, responses
from moto.cloudformation.exceptions import ValidationError


def _backend(response: Any) -> Any:
    return response.cloudformation_backend


def _accounts_under(org: Any, parent_ids: list[str]) -> list[str]:
    """Accounts under these roots/OUs at any depth, the management account excluded (as AWS does)."""
    wanted, frontier = set(parent_ids), list(parent_ids)
    while frontier:
        children = [ou.id for ou in org.ou if ou.parent_id in frontier and ou.id not in wanted]
        wanted.update(children)
        frontier = children
    master = org.org.master_account_id if org.org else None
    return sorted(a.id for a in org.accounts if a.parent_id in wanted and a.id != master)


def _create_instances(self: Any, accounts: list[str], regions: list[str], parameters: Any,
                      deployment_targets: dict[str, Any], permission_model: str) -> list[dict[str, Any]]:
    ous = deployment_targets.get("OrganizationalUnitIds", [])
    if permission_model == "SERVICE_MANAGED" and ous:
        resolved = _accounts_under(self.org_backend, ous)
        if deployment_targets.get("AccountFilterType") == "DIFFERENCE":
            resolved = [a for a in resolved if a not in deployment_targets.get("Accounts", [])]
        accounts, deployment_targets = resolved, {}
    return _ORIGINAL_CREATE_INSTANCES(self, accounts, regions, parameters, deployment_targets, permission_model)


_ORIGINAL_CREATE_INSTANCES = models.StackInstances.create_instances
_ORIGINAL = {name: getattr(responses.CloudFormationResponse, name)
             for name in ("create_stack_set", "update_stack_set", "create_stack_instances", "delete_stack_instances")}


def _create_stack_set(self: Any) -> Any:
    result = _ORIGINAL["create_stack_set"](self)
    stack_set = _backend(self).describe_stack_set(self._get_param("StackSetName"))
    stack_set.auto_deployment = self._get_params().get("AutoDeployment")
    stack_set.organizational_unit_ids = []
    return result


def _update_stack_set(self: Any) -> Any:
    result = _ORIGINAL["update_stack_set"](self)
    auto = self._get_params().get("AutoDeployment")
    if auto is not None:
        _backend(self).describe_stack_set(self._get_param("StackSetName")).auto_deployment = auto
    return result


def _create_stack_instances(self: Any) -> Any:
    result = _ORIGINAL["create_stack_instances"](self)
    stack_set = _backend(self).describe_stack_set(self._get_param("StackSetName"))
    ous = (self._get_params().get("DeploymentTargets") or {}).get("OrganizationalUnitIds", [])
    stack_set.organizational_unit_ids = sorted(set(getattr(stack_set, "organizational_unit_ids", [])) | set(ous))
    return result


def _delete_stack_instances(self: Any) -> Any:
    stack_set = _backend(self).describe_stack_set(self._get_param("StackSetName"))
    ous = (self._get_params().get("DeploymentTargets") or {}).get("OrganizationalUnitIds", [])
    if ous and stack_set.permission_model == "SERVICE_MANAGED":
        if self._get_param("Accounts"):
            raise ValidationError(message="Accounts are not allowed with service-managed permissions")
        accounts = _accounts_under(stack_set.instances.org_backend, ous)
        stack_set.delete_stack_instances(accounts, self._get_param("Regions", []))
        stack_set.organizational_unit_ids = [o for o in stack_set.organizational_unit_ids if o not in ous]
        operation = stack_set.operations[-1]
        return responses.ActionResult({"OperationId": operation["OperationId"]})
    return _ORIGINAL["delete_stack_instances"](self)


@contextlib.contextmanager
def service_managed_stacksets() -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(models.StackInstances, "create_instances", _create_instances))
        for name, replacement in (("create_stack_set", _create_stack_set), ("update_stack_set", _update_stack_set),
                                  ("create_stack_instances", _create_stack_instances),
                                  ("delete_stack_instances", _delete_stack_instances)):
            stack.enter_context(mock.patch.object(responses.CloudFormationResponse, name, replacement))
        yield
