"""What CloudFormation does when a stack operation fails: roll back, delete, or keep what was made.

A CREATE whose resource fails (a provider's FAILED answer, or a resource that cannot be made) goes
ROLLBACK_IN_PROGRESS ("The following resource(s) failed to create: [X]. Rollback requested by user."): custom
resources still creating are cancelled, every custom resource gets its Delete request (also the one that failed, with
the physical id it has), the other resources are deleted, each with its DELETE events, and the stack ends
ROLLBACK_COMPLETE, which can only be deleted. The stack's failure policy decides, as CloudFormation's does:

- ``ROLLBACK`` (the default: CreateStack's OnFailure, CreateChangeSet's OnStackFailure), as above;
- ``DELETE``: the same, announced as DELETE_IN_PROGRESS ("Delete requested by user."), and the stack is deleted;
- ``DO_NOTHING`` (or DisableRollback): CREATE_FAILED, everything made stays (to read what went wrong).

An UPDATE that fails goes UPDATE_ROLLBACK_IN_PROGRESS and back to the previous template, parameters and tags (a
custom resource whose properties go back gets an Update with them), then UPDATE_ROLLBACK_COMPLETE; with
DisableRollback it stays UPDATE_FAILED. A Delete or Update that fails during a rollback leaves ROLLBACK_FAILED /
UPDATE_ROLLBACK_FAILED with "The following resource(s) failed to delete/update: [X]. ".

Stacks that StackSets make are rolled back by ``stacksets`` itself (their failure policy is DO_NOTHING here).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from local_cloud import cfn_stacks, custom_resources
from local_cloud.cfn_stacks import Previous, summary

log = logging.getLogger(__name__)
POLICIES = ("ROLLBACK", "DELETE", "DO_NOTHING")
CANCELLED = "Resource creation cancelled"
_requested = threading.local()  # the failure policy of the CreateStack / ExecuteChangeSet being served


@contextlib.contextmanager
def requested_policy(policy: str) -> Iterator[None]:
    """The failure policy of the request being served, for a stack that fails inside the request."""
    _requested.policy = policy
    try:
        yield
    finally:
        _requested.policy = None


def policy_of(stack: Any) -> str:
    return getattr(stack, "on_failure", None) or getattr(_requested, "policy", None) or "DO_NOTHING"


def failed_resources(stack: Any) -> dict[str, list[str]]:
    """The resources that failed in the stack's current operation, by what failed (create, update, delete)."""
    failed: dict[str, list[str]] = {}
    for event in reversed(stack.events):
        status = str(event.resource_status)
        if event.resource_type == "AWS::CloudFormation::Stack" and event.logical_resource_id == stack.name:
            if status.endswith("_IN_PROGRESS"):
                break
            continue
        if status.endswith("_FAILED") and event.resource_status_reason != CANCELLED:
            ids = failed.setdefault(status.split("_")[0].lower(), [])
            if event.logical_resource_id not in ids:
                ids.insert(0, event.logical_resource_id)
    return failed


def summaries(failed: dict[str, list[str]]) -> str:
    """CloudFormation's stack reason: one sentence per kind of failure."""
    return "".join(summary(verb, failed[verb]) for verb in ("create", "update", "delete") if verb in failed)


def after_failure(stack: Any, reason: str) -> None:
    """A resource of the stack failed (called with the stack's lock held): fail, roll back or delete the stack."""
    status = stack.status
    if status == "UPDATE_ROLLBACK_IN_PROGRESS":  # a custom resource could not go back
        stack.status = "UPDATE_ROLLBACK_FAILED"
        stack._add_stack_event("UPDATE_ROLLBACK_FAILED", resource_status_reason=summaries(failed_resources(stack)))
        return
    if "ROLLBACK" in status or status.startswith("DELETE"):
        return  # a rollback or delete in progress ends with its own outcome
    if status.endswith("_FAILED") or status.endswith("_COMPLETE"):
        return
    updating = status.startswith("UPDATE")
    text = summaries(failed_resources(stack)) or reason
    if updating:
        if getattr(stack, "update_rollback_disabled", False) or getattr(stack, "rollback_to", None) is None:
            stack.status = "UPDATE_FAILED"
            stack._add_stack_event("UPDATE_FAILED", resource_status_reason=text)
            return
        stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
        stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=text)
        _start(_roll_back_update, stack)
        return
    policy = policy_of(stack)
    if policy == "DO_NOTHING":
        stack.status = "CREATE_FAILED"
        stack._add_stack_event("CREATE_FAILED", resource_status_reason=text)
        return
    for resource in list(stack.custom_resources.values()):
        if getattr(resource, "pending_request", None) == "Create":
            resource.pending_request = None  # its answer is no longer awaited
            cfn_stacks.resource_event(stack, resource.logical_id, resource.cfn_resource_type, "CREATE_FAILED",
                                      resource.physical_resource_id, CANCELLED)
    if policy == "DELETE":
        stack.status = "DELETE_IN_PROGRESS"
        stack._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason=text + "Delete requested by user.")
    else:
        stack.status = "ROLLBACK_IN_PROGRESS"
        stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=text + "Rollback requested by user.")
    _start(_roll_back_create, stack, policy)


def _start(target: Any, *args: Any) -> None:
    stack = args[0]
    threading.Thread(target=target, args=args, name=f"rollback-{stack.name}", daemon=True).start()


def _roll_back_create(stack: Any, policy: str) -> None:
    """Delete what the failed create made: the custom resources through their providers, then the rest."""
    resources = list(stack.custom_resources.values())
    undeleted = custom_resources.delete_custom_resources(stack, resources)
    with cfn_stacks.stack_lock(stack.stack_id):
        failed_status = "DELETE_FAILED" if policy == "DELETE" else "ROLLBACK_FAILED"
        if undeleted:
            stack.status = failed_status
            stack._add_stack_event(failed_status, resource_status_reason=summary("delete", undeleted))
            return
        stack.custom_resources.clear()
        try:
            stack.resource_map.delete()
        except Exception as exc:
            log.info("rollback of %s failed", stack.name, exc_info=True)
            stack.status = failed_status
            stack._add_stack_event(failed_status, resource_status_reason=cfn_stacks.failure_reason(exc))
            return
        if policy == "DELETE":
            from moto.cloudformation.models import cloudformation_backends

            backend = cloudformation_backends[stack.account_id][stack.region_name]
            stack.status = "DELETE_COMPLETE"
            stack._add_stack_event("DELETE_COMPLETE")
            backend.stacks.pop(stack.stack_id, None)
            backend.deleted_stacks[stack.stack_id] = stack
            return
        stack.status = "ROLLBACK_COMPLETE"
        stack._add_stack_event("ROLLBACK_COMPLETE")


def _roll_back_update(stack: Any) -> None:
    """Back to the previous template, parameters and tags; custom resources get Update requests to go back."""
    previous: Previous = stack.rollback_to
    with cfn_stacks.stack_lock(stack.stack_id):
        try:
            stack.template = previous.template
            stack._parse_template()
            stack.resource_map.update(stack.template_dict, previous.parameters)
            stack.output_map = stack._create_output_map()
            stack.parameters = previous.parameters
            stack.tags = previous.tags
            stack.original_template = previous.original_template
            stack.processed_template = previous.processed_template
        except Exception as exc:
            log.info("update rollback of %s failed", stack.name, exc_info=True)
            stack.status = "UPDATE_ROLLBACK_FAILED"
            stack._add_stack_event("UPDATE_ROLLBACK_FAILED", resource_status_reason=cfn_stacks.failure_reason(exc))
            return
    deadline = time.monotonic() + custom_resources.CUSTOM_RESOURCE_TIMEOUT
    while custom_resources.pending(stack) and time.monotonic() < deadline:
        time.sleep(0.2)
    with cfn_stacks.stack_lock(stack.stack_id):
        if stack.status != "UPDATE_ROLLBACK_IN_PROGRESS":
            return  # a custom resource failed to go back: UPDATE_ROLLBACK_FAILED is already recorded
        late = [r.logical_id for r in custom_resources.pending(stack)]
        if late:
            for resource in custom_resources.pending(stack):
                resource.pending_request = None
                cfn_stacks.resource_event(stack, resource.logical_id, resource.cfn_resource_type, "UPDATE_FAILED",
                                          resource.physical_resource_id, custom_resources.NO_ANSWER)
            stack.status = "UPDATE_ROLLBACK_FAILED"
            stack._add_stack_event("UPDATE_ROLLBACK_FAILED", resource_status_reason=summary("update", late))
            return
        stack.rollback_to = None
        stack.status = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
        stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        stack.status = "UPDATE_ROLLBACK_COMPLETE"
        stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")


def install() -> None:
    """Make every failing stack operation end as CloudFormation's does (idempotent)."""
    cfn_stacks.failure_handler = after_failure
