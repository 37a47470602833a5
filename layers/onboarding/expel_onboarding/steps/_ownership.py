"""Shared by steps 3 and 5: whose is an existing resource, and does it already use our key.

A resource carrying our ownership tag is ours (an earlier run made it): converge it. One carrying
another onboarding stack's tag is never touched. An untagged one is the customer's, named in the
parameters on purpose: we add the guide's settings but never tag it (teardown must not delete it)
and never overwrite a KMS key someone else chose.
"""

from __future__ import annotations

from expel_onboarding.errors import ResourceConflict
from expel_onboarding.naming import OWNER_TAG_KEY, full_alias


def owned(kind: str, name: str, tags: dict[str, str], stack_name: str, parameter: str) -> bool:
    """True when an earlier run of this stack created the resource; False for a customer's own.

    Raises ResourceConflict when another onboarding stack owns it.
    """
    owner = tags.get(OWNER_TAG_KEY)
    if owner is None:
        return False
    if owner != stack_name:
        raise ResourceConflict(
            f"{kind} {name} belongs to another onboarding stack ({OWNER_TAG_KEY}={owner}). "
            f"Fix: choose another {parameter}, or delete stack {owner} first")
    return True


def refers_to_key(value: str, key_arn: str, alias: str) -> bool:
    """Whether a KmsMasterKeyId attribute names our key: services keep whatever form was set
    (key ARN, key id, alias name or alias ARN)."""
    if not value:
        return False
    key_id = key_arn.rsplit("/", 1)[-1]
    alias_name = full_alias(alias) if alias else ""
    alias_arn = key_arn.rsplit(":", 1)[0] + f":{alias_name}" if alias_name else ""
    return value in {key_arn, key_id} or (bool(alias_name) and value in {alias_name, alias_arn})


def foreign_key_conflict(kind: str, name: str, current_key: str, key_arn: str, parameter: str) -> ResourceConflict:
    return ResourceConflict(
        f"{kind} {name} already exists, is not tagged as this onboarding's, and is encrypted with "
        f"{current_key}, not the trail's key {key_arn}. Changing it could cut off whoever uses it today. "
        f"Fix: choose another {parameter}, or switch its encryption to {key_arn} yourself, then retry")
