"""The local cloud's view of a moto CloudFormation stack: find it, lock it, record events, fail it.

Shared by ``moto_patches`` (resource creation) and ``custom_resources`` (provider requests and answers),
so that neither imports the other's internals.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_stack_locks: dict[str, threading.RLock] = {}
_locks_guard = threading.Lock()


def stack_lock(stack_id: str) -> threading.RLock:
    """One lock per stack: a custom resource answer waits until moto has finished creating resources."""
    with _locks_guard:
        return _stack_locks.setdefault(stack_id, threading.RLock())


def find_stack(stack_id: str) -> Any:
    from moto.cloudformation.models import cloudformation_backends

    # Snapshots: the StackSets worker adds member accounts' backends while a request thread looks.
    for account_id, regions in list(cloudformation_backends.items()):
        for region, backend in list(regions.items()):
            for stacks in (backend.stacks, backend.deleted_stacks):
                if stack_id in stacks:
                    return stacks[stack_id]
            del account_id, region
    return None


def resource_event(
    stack: Any,
    logical_id: str,
    resource_type: str,
    status: str,
    physical_id: str | None = None,
    reason: str | None = None,
    properties: Any = None,
) -> None:
    """Append a resource-level event to a stack, as CloudFormation reports each resource's progress."""
    from moto.cloudformation.models import Event

    stack.events.append(
        Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=physical_id or "",
            resource_type=resource_type,
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=json.dumps(properties) if properties is not None else None,
        )
    )


# Set by ``cloudformation_rollback.install``: what CloudFormation does once a resource failed.
failure_handler: Callable[[Any, str], None] | None = None


def fail_stack(stack: Any, reason: str) -> None:
    """A resource of the stack failed: the stack fails, rolls back or is deleted, by its failure policy
    (``cloudformation_rollback``). ``reason`` is said when no resource's failure explains it."""
    if failure_handler is not None:
        failure_handler(stack, reason)
        return
    if not (stack.status.endswith("_FAILED") or stack.status.endswith("COMPLETE")):
        stack.status = "UPDATE_FAILED" if stack.status.startswith("UPDATE") else "CREATE_FAILED"
        stack._add_stack_event(stack.status, resource_status_reason=reason)


def summary(verb: str, failed: list[str]) -> str:
    """CloudFormation's stack reason for the resources that failed to create, update or delete."""
    return f"The following resource(s) failed to {verb}: [{', '.join(failed)}]. "


@dataclass
class Previous:
    """What an update replaces, so that its rollback can bring it back."""

    template: str
    parameters: dict[str, Any]
    tags: dict[str, str]
    original_template: Any
    processed_template: Any


def remember_previous(stack: Any) -> None:
    """Called before an update changes the stack: what its rollback returns to."""
    stack.rollback_to = Previous(
        template=stack.template, parameters=dict(stack.parameters or {}), tags=dict(stack.tags or {}),
        original_template=getattr(stack, "original_template", None),
        processed_template=getattr(stack, "processed_template", None),
    )


class ResourceFailed(Exception):
    """A resource of the stack could not be created; the message names it and says why."""


def failure_reason(exc: BaseException, limit: int = 600) -> str:
    """One line for a person: the exception's message without a quoted state machine definition."""
    if isinstance(exc, ResourceFailed) or getattr(exc, "handler_message", False):
        return str(exc)  # already the message CloudFormation shows
    message = str(getattr(exc, "message", None) or getattr(exc, "description", None) or exc)
    message = re.sub(r" in definition '.*", "", " ".join(message.split()), flags=re.DOTALL)
    if not message.startswith(type(exc).__name__):
        message = f"{type(exc).__name__}: {message}"
    return message if len(message) <= limit else message[: limit - 1] + "…"


def handler_message(exc: BaseException) -> str:
    """A resource handler's failure as CloudFormation words it: the service's own message, its status code."""
    message = " ".join(str(getattr(exc, "message", None) or getattr(exc, "description", None) or exc).split())
    service = type(exc).__module__.split(".")[1] if type(exc).__module__.startswith("moto.") else ""
    status = _http_status(service, str(getattr(exc, "code", ""))) if service else None
    origin = f" (Service: {service.capitalize()}, Status Code: {status})" if status else ""
    return f'Resource handler returned message: "{message}{origin}" (HandlerErrorCode: GeneralServiceException)'


def _http_status(service: str, code: str) -> int | None:
    """The HTTP status AWS answers an error code of the service with (its botocore model says)."""
    import botocore.session
    from botocore.exceptions import UnknownServiceError

    try:
        model = botocore.session.get_session().get_service_model(service)
    except UnknownServiceError:
        return None
    for shape in model.error_shapes:
        if shape.error_code == code:
            return shape.metadata.get("error", {}).get("httpStatusCode")
    return None


def undeleted_resources(stack: Any) -> list[tuple[str, str, str]]:
    """(logical id, type, physical id) of each resource moto's delete of the stack left in place."""
    resource_map = stack.resource_map
    left = []
    for logical_id, resource_json in resource_map._resource_json_map.items():
        parsed = resource_map._parsed_resources.get(logical_id)
        if parsed is not None and not isinstance(parsed, str):
            left.append((logical_id, str(resource_json.get("Type", "")),
                         str(getattr(parsed, "physical_resource_id", "") or "")))
    return left


def delete_or_fail(backend: Any, stack: Any, delete: Callable[[Any, str], None]) -> None:
    """moto's delete, as CloudFormation's: a resource that cannot be deleted (IAM's DeleteConflict for a role with
    a policy attached by hand) leaves the stack DELETE_FAILED with an event naming it and why (moto forgot the
    stack and raised). What was deleted stays deleted; another DeleteStack retries the rest."""
    try:
        delete(backend, stack.stack_id)
    except Exception as exc:
        backend.stacks[stack.stack_id] = stack
        backend.deleted_stacks.pop(stack.stack_id, None)
        failed = undeleted_resources(stack)
        for logical_id, resource_type, physical_id in failed:
            resource_event(stack, logical_id, resource_type, "DELETE_FAILED", physical_id or None,
                           handler_message(exc))
        stack.status = "DELETE_FAILED"
        stack._add_stack_event("DELETE_FAILED", resource_status_reason=summary(
            "delete", [f[0] for f in failed]) if failed else failure_reason(exc))
