"""CloudFormation deploys a stack as its service role (``RoleARN``), else with its caller's permissions.

moto's CloudFormation creates resources in-process, through its service backends, not over HTTP. Here,
while CloudFormation creates, updates or deletes a resource of a stack deployed as a role or an IAM
principal, each backend call that is an AWS API operation (``IAMBackend.create_role`` = iam:CreateRole)
is authorized as that principal, as the resource type's handler is on AWS. Only the actions the resource
type's handler may call count: the CloudFormation resource provider schemas (data cfn-lint ships) list
them per handler (create, update, delete); a backend call outside that list is a detail of moto. A refusal
fails the resource with the handler's message (``HandlerErrorCode: AccessDenied``), naming the role session,
the action and the resource. Only the service role's (or caller's) policies decide: CloudFormation's own
work (reading the template, events) is not an IAM call.

The service role is assumed as ``cloudformation.amazonaws.com``: a stack operation naming a role whose trust
policy does not allow that is refused at once with CloudFormation's "Role ... is invalid or cannot be assumed"
(``role_not_assumable``). CreateStack/UpdateStack with a RoleARN also need ``iam:PassRole`` from the caller
(checked on the API call itself, ``local_cloud.iam.requests.PASS_ROLE``).
"""

from __future__ import annotations

import functools
import inspect
import threading
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

from local_cloud.enforcement import authorization, credentials
from local_cloud.enforcement.identity import role_identity
from local_cloud.iam import Identity, Kind, sar
from local_cloud.iam.requests import ApiCall, Unresolvable
from local_cloud.resource_schemas import resource_schema

# Backends whose API calls a CloudFormation handler makes for the resource types stacks here use.
_BACKENDS = {"iam": ("moto.iam.models", "IAMBackend")}
_READ_VERBS = ("Get", "List", "Describe")
_state = threading.local()
# The caller of the last CreateStack/UpdateStack/DeleteStack per (account, region, stack name).
_callers: dict[tuple[str, str, str], Identity] = {}


class AccessDenied(Exception):
    """A handler's call was refused; the message is what CloudFormation shows in the stack events."""

    handler_message = True  # shown as it is (cfn_stacks.failure_reason)


class RoleNotAssumable(Exception):
    """The stack's service role cannot be assumed by CloudFormation."""


@dataclass
class _Acting:
    identity: Identity
    resource_type: str
    handler: str  # create / update / delete
    account: str
    region: str
    busy: bool = False


@cache
def handler_permissions(resource_type: str, handler: str) -> frozenset[str]:
    """The permissions the resource provider schema lists for one handler (lower case), from cfn-lint's data."""
    listed = resource_schema(resource_type).get("handlers", {}).get(handler, {}).get("permissions", [])
    return frozenset(p.lower() for p in listed)


def record_caller(identity: Identity, call: ApiCall) -> None:
    """Remember who asked CloudFormation to act on a stack (it acts with their permissions without a role)."""
    name = call.params.get("StackName")
    if call.service == "cloudformation" and name and call.operation in (
            "CreateStack", "UpdateStack", "DeleteStack", "ExecuteChangeSet", "CreateChangeSet"):
        stack_name = str(name).split(":stack/", 1)[-1].split("/")[0]
        _callers[(call.account, call.region, stack_name)] = identity


def _stack_identity(stack: Any) -> Identity | None:
    """Who CloudFormation acts as for ``stack``; None for the root user (nothing to check)."""
    role_arn = getattr(stack, "role_arn", None)
    account, region = stack.account_id, stack.region_name
    if role_arn:
        allowed, _ = credentials.trust_allows(role_arn, "cloudformation.amazonaws.com", account, stack.stack_id)
        if not allowed:
            raise RoleNotAssumable(f"Role {role_arn} is invalid or cannot be assumed")
        from moto.iam.models import iam_backends

        backend = iam_backends[account][role_arn.split(":")[1]]
        role = backend.get_role_by_arn(role_arn)
        return role_identity(credentials.session_principal(role_arn, "AWSCloudFormation"), role, backend)
    caller = _callers.get((account, region, stack.name))
    if caller is None or caller.principal.kind == Kind.ROOT:
        return None
    return caller


def _handler_message(decision_message: str, service: str) -> str:
    return (f"Resource handler returned message: \"{decision_message} (Service: {service}, Status Code: 403, "
            f"Request ID: {uuid.uuid4()})\" (RequestToken: {uuid.uuid4()}, HandlerErrorCode: AccessDenied)")


def _authorize(acting: _Acting, prefix: str, operation: str, params: dict[str, Any]) -> None:
    enforcer = authorization.running()
    if enforcer is None:
        return
    call = ApiCall(prefix, operation, params, acting.region, acting.account)
    try:
        decision = enforcer.authorize(acting.identity, call)
    except Unresolvable:
        return  # the handler would not make this call for a resource it cannot name
    if decision is not None:
        raise AccessDenied(_handler_message(decision.message(), prefix.upper() if prefix == "iam" else prefix))


def _wrap_backend_method(prefix: str, operation: str, original: Any, members: dict[str, str]) -> Any:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        acting: _Acting | None = getattr(_state, "acting", None)
        if acting is None or acting.busy:
            return original(self, *args, **kwargs)
        try:
            actions = {a.lower() for a in sar.actions_for(prefix, operation)}
        except sar.UnknownAction:
            actions = set()
        listed = handler_permissions(acting.resource_type, acting.handler)
        if not actions or not actions <= listed:
            return original(self, *args, **kwargs)  # not a call the real handler makes
        bound = signature.bind(self, *args, **kwargs)
        params = {members[name]: value for name, value in bound.arguments.items() if name in members}
        _authorize(acting, prefix, operation, params)
        acting.busy = True  # what this call does inside moto is part of it, not another call
        try:
            return original(self, *args, **kwargs)
        finally:
            acting.busy = False

    return wrapped


def _acting_on(stack: Any, resource_type: str, handler: str) -> _Acting | None:
    if stack is None or authorization.running() is None:
        return None  # not a stack of this server's CloudFormation, or IAM enforcement is off
    identity = _stack_identity(stack)
    if identity is None:
        return None
    return _Acting(identity, resource_type, handler, stack.account_id, stack.region_name)


def _run(acting: _Acting | None, action: Any) -> Any:
    if acting is None:
        return action()
    previous = getattr(_state, "acting", None)
    _state.acting = acting
    try:
        return action()
    finally:
        _state.acting = previous


def install() -> None:
    """Wrap moto's resource handlers and the backends they call (idempotent)."""
    import importlib

    import moto.cloudformation.parsing as parsing
    from botocore import xform_name
    from moto.core.utils import get_service_model

    if getattr(parsing, "_local_cloud_iam", False):
        return
    for prefix, (module_name, class_name) in _BACKENDS.items():
        backend_class = getattr(importlib.import_module(module_name), class_name)
        model = get_service_model(prefix)
        for operation in model.operation_names:
            method = xform_name(operation)
            original = backend_class.__dict__.get(method)
            if original is None or not callable(original):
                continue
            shape = model.operation_model(operation).input_shape
            members = {xform_name(m): m for m in (shape.members if shape else {})}
            setattr(backend_class, method, _wrap_backend_method(prefix, operation, original, members))

    from local_cloud import cfn_stacks

    original_create = parsing.parse_and_create_resource
    original_update = parsing.parse_and_update_resource
    original_delete = parsing.ResourceMap._delete_resource

    def parse_and_create_resource(logical_id: str, resource_json: dict, resources_map: Any, account_id: str,
                                  region_name: str) -> Any:
        acting = _acting_on(cfn_stacks.find_stack(resources_map.stack_id), resource_json.get("Type", ""), "create")
        return _run(acting, lambda: original_create(logical_id, resource_json, resources_map, account_id,
                                                              region_name))

    def parse_and_update_resource(logical_id: str, resource_json: dict, resources_map: Any, account_id: str,
                                  region_name: str) -> Any:
        acting = _acting_on(cfn_stacks.find_stack(resources_map.stack_id), resource_json.get("Type", ""), "update")
        return _run(acting, lambda: original_update(logical_id, resource_json, resources_map, account_id,
                                                              region_name))

    def _delete_resource(self: Any, parsed_resource: Any, resource_json: dict) -> None:
        acting = _acting_on(cfn_stacks.find_stack(self.stack_id), resource_json.get("Type", ""), "delete")
        _run(acting, lambda: original_delete(self, parsed_resource, resource_json))

    parsing.parse_and_create_resource = parse_and_create_resource
    parsing.parse_and_update_resource = parse_and_update_resource
    parsing.ResourceMap._delete_resource = _delete_resource  # type: ignore[method-assign]
    parsing._local_cloud_iam = True  # type: ignore[attr-defined]


_ROLE_OPERATIONS = ("CreateStack", "UpdateStack", "CreateChangeSet", "DeleteStack")


def role_not_assumable(call: ApiCall) -> str | None:
    """CloudFormation's refusal of a stack operation whose service role it cannot assume, else None."""
    role_arn = call.params.get("RoleARN")
    if call.service != "cloudformation" or call.operation not in _ROLE_OPERATIONS or not role_arn:
        return None
    allowed, _ = credentials.trust_allows(str(role_arn), "cloudformation.amazonaws.com", call.account)
    return None if allowed else f"Role {role_arn} is invalid or cannot be assumed"


def validation_error(message: str) -> tuple[int, dict[str, str], bytes]:
    """CloudFormation's (query protocol) ValidationError."""
    from xml.sax.saxutils import escape

    body = (f'<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type>'
            f"<Code>ValidationError</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
    return 400, {"Content-Type": "text/xml"}, body
