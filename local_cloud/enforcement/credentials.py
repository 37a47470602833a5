"""Temporary credentials a service obtains for a role it was given, as AWS services do.

Lambda runs each function with its execution role's credentials, Step Functions calls Lambda as the
state machine's role, CloudFormation deploys a stack as its service role. Each first asks STS to
assume the role as its service principal (``lambda.amazonaws.com``, ...): the role's trust policy must
allow that, or the service refuses as on AWS.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from local_cloud.iam import Principal, Values, resource_policy_allows


class RoleNotAssumable(Exception):
    """The role's trust policy does not let the service assume it."""


@dataclass(frozen=True)
class SessionCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires: float

    def as_environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


_cache: dict[tuple[str, str, str], SessionCredentials] = {}
_lock = threading.Lock()
SESSION_SECONDS = 3600


def trust_allows(
    role_arn: str, service: str, source_account: str | None = None, source_arn: str | None = None
) -> tuple[bool, str]:
    """Does ``role_arn``'s trust policy let ``service`` assume it? (allowed, refusal message)"""
    from moto.iam.models import iam_backends

    from local_cloud import iam_propagation

    account, partition = role_arn.split(":")[4], role_arn.split(":")[1]
    try:
        role = iam_backends[account][partition].get_role_by_arn(role_arn)
    except Exception:
        return False, f"role {role_arn} does not exist"
    role = iam_propagation.view(role)
    if role is None:
        return False, f"role {role_arn} is not visible to {service} yet (IAM propagation)"
    values: dict[str, tuple[str, ...]] = {}
    if source_account:
        values["aws:sourceaccount"] = (source_account,)
    if source_arn:
        values["aws:sourcearn"] = (source_arn,)
    decision = resource_policy_allows(
        role.assume_role_policy_document, Principal.of_service(service), "sts:AssumeRole", role_arn, Values(values)
    )
    return decision.allowed, decision.message()


def assume(
    role_arn: str, service: str, session_name: str, source_account: str | None = None, source_arn: str | None = None
) -> SessionCredentials:
    """Credentials of a ``session_name`` session of ``role_arn``, assumed as ``service`` (cached until
    shortly before they expire, as services refresh them)."""
    key = (role_arn, service, session_name)
    with _lock:
        found = _cache.get(key)
        if found and found.expires - time.time() > 300:
            return found
    allowed, message = trust_allows(role_arn, service, source_account, source_arn)
    if not allowed:
        raise RoleNotAssumable(message)
    from moto.sts.models import sts_backends

    account, partition = role_arn.split(":")[4], role_arn.split(":")[1]
    session = sts_backends[account][partition].assume_role(
        region_name="us-east-1" if partition == "aws" else partition,
        role_session_name=session_name[:64],
        role_arn=role_arn,
        policy="",
        duration=SESSION_SECONDS,
        external_id="",
    )
    credentials = SessionCredentials(
        session.access_key_id, session.secret_access_key, session.session_token, time.time() + SESSION_SECONDS
    )
    with _lock:
        _cache[key] = credentials
    return credentials


def session_principal(role_arn: str, session_name: str) -> Principal:
    return Principal.session(role_arn, session_name[:64])
