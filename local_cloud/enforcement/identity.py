"""Who signed a request: the access key's IAM user or STS session, or the account's root user.

Keys IAM or STS issued (moto's backends hold them) act as their user or assumed-role session, with the
policies IAM holds for that user or role. Any other key (the dummy ``testing`` keys people and tests
pass) acts as the account's root user, so ``aws`` commands and tests keep working as an administrator.
"""

from __future__ import annotations

from typing import Any

from local_cloud.iam import Identity, NamedPolicy, PolicyError, Principal
from local_cloud.iam.evaluation import Kind

DEFAULT_ACCOUNT = "123456789012"


def _managed_document(policy: Any) -> str:
    for version in policy.versions:
        if version.is_default:
            return str(version.document)
    return str(policy.versions[0].document)


def _named(source: str, document: Any) -> NamedPolicy | None:
    try:
        return NamedPolicy.of(source, document)
    except PolicyError:
        return None  # IAM would have refused it at write time; an unreadable policy grants nothing


def _policies_of(label: str, holder: Any) -> list[NamedPolicy]:
    """The inline and managed policies of an IAM role, user or group (``label``: "role/NAME" and the like)."""
    policies: list[NamedPolicy] = []
    for name, document in list(holder.policies.items()):
        found = _named(f"{label} inline policy {name}", document)
        if found:
            policies.append(found)
    for arn, managed in list(holder.managed_policies.items()):
        found = _named(arn, _managed_document(managed))
        if found:
            policies.append(found)
    return policies


def _boundary(arn: str | None, backend: Any) -> NamedPolicy | None:
    """The permissions boundary ``arn`` names (a deleted one allows nothing)."""
    if not arn:
        return None
    managed = backend.managed_policies.get(arn)
    return _named(f"permissions boundary {arn}", _managed_document(managed) if managed else '{"Statement": []}')


def role_identity(principal: Principal, role: Any, backend: Any) -> Identity:
    """The policies IAM evaluates for a session of ``role``: inline, managed, and its boundary (as IAM has
    propagated them: ``iam_propagation``)."""
    from local_cloud import iam_propagation

    role = iam_propagation.view(role)
    if role is None:
        return Identity(principal)  # too new to exist for the services yet: its sessions can do nothing
    policies = _policies_of(f"role/{role.name}", role)
    return Identity(principal, tuple(policies), _boundary(role.permissions_boundary_arn, backend))


def user_identity(principal: Principal, user: Any, backend: Any) -> Identity:
    policies = _policies_of(f"user/{user.name}", user)
    for group in backend.get_groups_for_user(user.name):
        policies += _policies_of(f"group/{group.name}", group)
    return Identity(principal, tuple(policies), _boundary(getattr(user, "permissions_boundary", None), backend))


def sts_session(account: str, partition: str, access_key_id: str) -> Any | None:
    """The sts:AssumeRole session that holds ``access_key_id`` (moto's ``AssumedRole``), if any."""
    from moto.sts.models import sts_backends

    return next((s for s in sts_backends[account][partition].assumed_roles if s.access_key_id == access_key_id), None)


def resolve(access_key_id: str | None, partition: str = "aws") -> Identity:
    """The identity an access key acts as (root of the default account when IAM did not issue it)."""
    from moto.iam.models import iam_backends

    if not access_key_id:
        return Identity(Principal("anonymous", "", Kind.ANONYMOUS))
    for account, by_partition in list(iam_backends.items()):
        backend = by_partition[partition]
        key = backend.access_keys.get(access_key_id)
        if key is None:
            continue
        if key.role_arn:
            session = sts_session(account, partition, access_key_id)
            name = session.session_name if session else "session"
            principal = Principal.session(key.role_arn, name)
            try:
                role = backend.get_role_by_arn(key.role_arn)
            except Exception:
                return Identity(principal)  # the role was deleted: its sessions can do nothing
            return role_identity(principal, role, backend)
        if key.user_name:
            user = backend.get_user(key.user_name)
            principal = Principal(user.arn, account, Kind.USER)
            return user_identity(principal, user, backend)
    return Identity(Principal.root(DEFAULT_ACCOUNT, partition))
