"""IAM's eventual consistency (``local serve --iam-propagation-delay SECONDS``; off by default).

IAM is a global service whose changes reach the services that read them after a while ("Changes that I
make are not always immediately visible", IAM User Guide, troubleshooting). For ``delay`` seconds:

- a new role does not exist for anyone who would use it: ``sts:AssumeRole`` is refused (``AccessDenied``, as
  for a role whose trust policy does not admit the caller), a service cannot assume it (Lambda CreateFunction:
  ``InvalidParameterValueException`` "The role defined for the function cannot be assumed by Lambda.";
  CloudTrail: ``InvalidCloudWatchLogsRoleArnException``), and its sessions can do nothing;
- a change of a role's trust policy, inline or attached policies or boundary is not in effect: requests are
  decided on the role as it was before the change.

How long IAM takes varies. By default a role propagates ``delay`` seconds after it was made, so whether a
caller meets it unpropagated depends on how soon it comes. ``from_first_use`` (``local serve
--iam-propagation-from-first-use``) takes IAM's slow case instead: a new role propagates ``delay`` seconds
after a service first reads it, so its first user is always refused, however long the machine took to get
there (the e2e test of step 8's retry relies on it).

CloudFormation's handlers retry until a role they hand to a function or state machine has propagated,
creating the stack's other resources meanwhile: such a role counts as propagated at once
(``settle_for_cloudformation``). A role a stack makes for later use (a service role for CloudTrail or
CloudFormation) propagates on the clock, so the code that uses it right after the stack is made sees IAM's
answers, as on AWS.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from local_cloud.once import once

delay = 0.0
from_first_use = False
_lock = threading.Lock()
# CloudFormation is creating or updating a resource (its handlers retry what IAM has not propagated yet).
in_cloudformation: contextvars.ContextVar[bool] = contextvars.ContextVar("in_cloudformation", default=False)


@dataclass
class _State:
    created: float | None  # None: created before the delay was on
    changed: float = 0.0
    before: Any = None  # the role as IAM still serves it until ``changed + delay``
    unread: bool = False  # ``from_first_use``: no service has read the new role yet (its clock has not started)


_states: dict[str, _State] = {}


def configure(seconds: float, first_use: bool = False) -> None:
    global delay, from_first_use
    delay, from_first_use = max(0.0, float(seconds)), first_use
    with _lock:
        _states.clear()


def _snapshot(role: Any) -> Any:
    return SimpleNamespace(
        name=role.name, arn=role.arn, path=role.path, id=getattr(role, "id", ""), tags=getattr(role, "tags", {}),
        policies=dict(role.policies), managed_policies=dict(role.managed_policies),
        permissions_boundary_arn=role.permissions_boundary_arn,
        assume_role_policy_document=role.assume_role_policy_document)


def created(role: Any) -> None:
    if delay > 0:
        with _lock:
            _states[role.arn] = _State(time.time(), unread=from_first_use)


def changing(role: Any) -> None:
    """Before a change of ``role``: what IAM serves until the change has propagated."""
    if delay <= 0:
        return
    now = time.time()
    with _lock:
        state = _states.setdefault(role.arn, _State(None))
        if state.before is None or now - state.changed >= delay:
            state.before = _snapshot(role)
        state.changed = now


def deleted(role_arn: str) -> None:
    with _lock:
        _states.pop(role_arn, None)


def view(role: Any, by_service: bool = True) -> Any:
    """The role as the services that read IAM see it now: itself, its state before a recent change, or None
    while it is too new to exist for them. ``by_service``: a service, or a principal assuming the role, reads
    it (IAM's own API about the role, GetRole or PutRolePolicy, does not start a ``from_first_use`` clock)."""
    if delay <= 0 or role is None:
        return role
    now = time.time()
    with _lock:
        state = _states.get(role.arn)
        if state is not None and state.unread and by_service:
            state.created, state.unread = now, False
    if state is None:
        return role
    if state.unread:
        return None
    if state.created is not None and now - state.created < delay:
        return None
    if state.before is not None and now - state.changed < delay:
        return state.before
    return role


def settled_at(role_arn: str) -> float:
    """When every change of the role so far has propagated (0 when nothing is pending); for a role no service
    has read yet (``from_first_use``), if one read it now."""
    with _lock:
        state = _states.get(role_arn)
    if state is None or delay <= 0 or (state.created is None and state.before is None):
        return 0.0
    return max(time.time() if state.unread else state.created or 0.0, state.changed) + delay


def settle_for_cloudformation(role_arn: str) -> None:
    """A role CloudFormation hands to a resource it creates (a function's, a state machine's): its handler
    retries until the service can assume the role, while it creates the stack's other resources in parallel.
    The local cloud creates them one by one, so the role counts as propagated at once: the stack takes no
    longer, and the resource never runs with a role IAM has not propagated."""
    with _lock:
        state = _states.get(role_arn)
        if state is not None:
            state.created, state.before, state.unread = None, None, False


@once
def install() -> None:
    """Record role creations and changes in moto's IAM, and mark what CloudFormation creates (idempotent)."""
    from moto.cloudformation import parsing
    from moto.iam.models import IAMBackend

    original_create = IAMBackend.create_role

    # functools.wraps keeps each method's signature (inspect follows __wrapped__): IAM enforcement of
    # CloudFormation's service role binds a backend call's arguments by name; a bare (*args, **kwargs)
    # wrapper hides the role and its tags from it, and a call it cannot name a resource for goes unchecked.
    @functools.wraps(original_create)
    def create_role(self: Any, *args: Any, **kwargs: Any) -> Any:
        role = original_create(self, *args, **kwargs)
        created(role)
        return role

    def before(method_name: str) -> None:
        original = getattr(IAMBackend, method_name)

        @functools.wraps(original)
        def changed_role(self: Any, *args: Any, **kwargs: Any) -> Any:
            role_name = kwargs.get("role_name", args[1] if method_name in _POLICY_ARN_FIRST else args[0])
            with contextlib.suppress(Exception):  # moto's own method answers NoSuchEntity
                changing(self.get_role(role_name))
            return original(self, *args, **kwargs)

        setattr(IAMBackend, method_name, changed_role)

    for name in ("put_role_policy", "delete_role_policy", "attach_role_policy", "detach_role_policy",
                 "update_assume_role_policy", "put_role_permissions_boundary", "delete_role_permissions_boundary"):
        before(name)
    original_delete = IAMBackend.delete_role

    @functools.wraps(original_delete)
    def delete_role(self: Any, role_name: str) -> None:
        arn = self.get_role(role_name).arn
        original_delete(self, role_name)
        deleted(arn)

    IAMBackend.create_role = create_role  # type: ignore[method-assign]
    IAMBackend.delete_role = delete_role  # type: ignore[method-assign]

    for name in ("parse_and_create_resource", "parse_and_update_resource"):
        original = getattr(parsing, name)

        def by_cloudformation(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            token = in_cloudformation.set(True)
            try:
                return _original(*args, **kwargs)
            finally:
                in_cloudformation.reset(token)

        setattr(parsing, name, by_cloudformation)


# moto's methods that take the policy ARN before the role name.
_POLICY_ARN_FIRST = {"attach_role_policy", "detach_role_policy"}
