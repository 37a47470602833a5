"""A stack update's cleanup, in CloudFormation's order.

CloudFormation first creates and updates what the new template has, and only then, in
UPDATE_COMPLETE_CLEANUP_IN_PROGRESS, deletes the resources the new template no longer has; an update that fails
before its cleanup deletes nothing of the old template (the rollback puts the rest back). moto deleted them
first. The order is visible whenever something moves from one resource to another: the new holder is in place
before the old one goes, and an old resource whose delete removes the same thing (an ``AWS::IAM::Policy`` of
the PolicyName a role now holds in its own ``Policies``) removes it for good, as on AWS. A resource the cleanup
cannot delete (its handler refused) is skipped after a few tries with a DELETE_FAILED event, and the update
still completes: it is no longer the stack's.
"""

from __future__ import annotations

from typing import Any

CLEANUP = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
ATTEMPTS = 3  # CloudFormation's tries to delete a resource before the cleanup skips it


def _clean_up(resource_map: Any, names: list[str], old_resources: dict[str, Any]) -> None:
    """Delete what the update removed, retrying one that fails while another still depends on it (as moto's own
    loop does); a resource that never got made (its condition was false) has nothing to delete."""
    from local_cloud import cfn_stacks

    pending = [name for name in names if name in resource_map._parsed_resources]
    stack = cfn_stacks.find_stack(resource_map.stack_id)
    if pending and stack is not None and "ROLLBACK" not in str(stack.status):
        stack._add_stack_event(CLEANUP)
    errors: dict[str, Exception] = {}
    for _ in range(ATTEMPTS):
        for name in list(pending):
            try:
                resource_map._delete_resource(resource_map._parsed_resources[name], old_resources[name])
            except Exception as exc:  # a dependency still in place, or a refusal: another pass
                errors[name] = exc
                continue
            pending.remove(name)
            # Gone: a later update that adds the logical id again makes a new resource.
            resource_map._parsed_resources.pop(name, None)
    for name in pending:  # skipped: left in the account, no longer the stack's
        made = resource_map._parsed_resources.pop(name)
        if stack is not None:
            cfn_stacks.resource_event(stack, name, str(old_resources[name].get("Type", "")), "DELETE_FAILED",
                                      str(getattr(made, "physical_resource_id", "") or ""),
                                      cfn_stacks.failure_reason(errors[name]))


def install() -> None:
    """Removed resources are deleted after the update's creates and updates (idempotent)."""
    from moto.cloudformation.parsing import ResourceMap

    original_update, original_diff = ResourceMap.update, ResourceMap.build_resource_diff
    if getattr(original_update, "_cleans_up_last", False):
        return

    def build_resource_diff(self: Any, other_template: dict[str, Any], parameters: Any = None) -> dict[str, Any]:
        diff: dict[str, Any] = original_diff(self, other_template, parameters)
        deferred = getattr(self, "_cleanup", None)
        if deferred is not None:  # inside update(): the removals wait for the cleanup
            deferred += [name for name in diff["Remove"] if name not in deferred]
            diff["Remove"] = []
        return diff

    def update(self: Any, template: dict[str, Any], parameters: Any = None) -> None:
        old_resources = dict(self._resource_json_map)
        self._cleanup = removed = []
        try:
            original_update(self, template, parameters)
        finally:
            self._cleanup = None
        _clean_up(self, removed, old_resources)

    update._cleans_up_last = True  # type: ignore[attr-defined]
    ResourceMap.update = update  # type: ignore[method-assign]
    ResourceMap.build_resource_diff = build_resource_diff  # type: ignore[method-assign]
