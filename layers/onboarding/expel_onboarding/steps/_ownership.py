"""Shared by steps 3 and 5: whose is an existing resource, and does it already use our key.

A resource carrying our ownership tag is ours (an earlier run made it): converge it. Anything else
is refused, as preflight refuses it: we never take over a customer's topic or queue, whose policy
and encryption someone else relies on. The steps re-check because a resource can appear between
preflight and the step.
"""

from __future__ import annotations

from expel_onboarding.errors import ResourceConflict
from expel_onboarding.naming import OWNER_TAG_KEY, full_alias


def is_ours(tags: dict[str, str], stack_name: str) -> bool:
    return tags.get(OWNER_TAG_KEY) == stack_name


def ensure_ours(kind: str, name: str, tags: dict[str, str], stack_name: str, parameter: str) -> None:
    """Returns when an earlier run of this stack created the resource; raises ResourceConflict otherwise."""
    owner = tags.get(OWNER_TAG_KEY)
    if owner is None:
        raise ResourceConflict(
            f"Parameter {parameter}: {kind} {name} already exists and was not created by this onboarding "
            f"(it has no {OWNER_TAG_KEY}={stack_name} tag). Fix: choose another {parameter}, or delete that "
            f"{kind} if nothing uses it")
    if owner != stack_name:
        raise ResourceConflict(
            f"{kind} {name} belongs to another onboarding stack ({OWNER_TAG_KEY}={owner}). "
            f"Fix: choose another {parameter}, or delete stack {owner} first")


def refers_to_key(value: str, key_arn: str, alias: str) -> bool:
    """Whether a KmsMasterKeyId attribute names our key: services keep whatever form was set
    (key ARN, key id, alias name or alias ARN)."""
    if not value:
        return False
    key_id = key_arn.rsplit("/", 1)[-1]
    alias_name = full_alias(alias) if alias else ""
    alias_arn = key_arn.rsplit(":", 1)[0] + f":{alias_name}" if alias_name else ""
    return value in {key_arn, key_id} or (bool(alias_name) and value in {alias_name, alias_arn})
