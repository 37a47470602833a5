"""Whose is an existing resource: the one ownership check. Pure: no boto3, no environment.

Everything the onboarding creates carries the tag ``expel-onboarding:stack=<stack name>`` from its first
moment. A resource with this stack's tag is ours (an earlier run made it): a step converges it, a stack
delete removes it. Anything else is never taken over and never removed: a customer's (no tag) or another
onboarding stack's (its name in the tag), whose policies and settings someone else relies on.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from expel_onboarding.errors import ResourceConflict
from expel_onboarding.naming import OWNER_TAG_KEY


class Ownership(StrEnum):
    OURS = "ours"
    OTHER_STACK = "other-stack"  # another onboarding stack's
    FOREIGN = "foreign"  # no onboarding's: a customer's


def owner(tags: Mapping[str, str]) -> str:
    """The onboarding stack a resource belongs to, "" when none."""
    return tags.get(OWNER_TAG_KEY, "")


def ownership(tags: Mapping[str, str], stack_name: str) -> Ownership:
    found = owner(tags)
    if not found:
        return Ownership.FOREIGN
    return Ownership.OURS if found == stack_name else Ownership.OTHER_STACK


def is_ours(tags: Mapping[str, str], stack_name: str) -> bool:
    return ownership(tags, stack_name) is Ownership.OURS


def require_ours(tags: Mapping[str, str], stack_name: str, *, parameter: str, what: str, fix: str,
                 other_stack_fix: str = "") -> None:
    """Returns when the resource is ours; otherwise raises ResourceConflict naming the parameter whose
    value chose the resource, ``what`` it is ("the SNS topic X") and the fix. For another stack's resource
    the fix is ``other_stack_fix`` ("{stack}" is that stack), by default "choose another <parameter>, or
    delete stack <stack> first"."""
    kind = ownership(tags, stack_name)
    if kind is Ownership.OURS:
        return
    if kind is Ownership.OTHER_STACK:
        other = owner(tags)
        fix = (other_stack_fix or "choose another {parameter}, or delete stack {stack} first").format(
            parameter=parameter, stack=other)
        raise ResourceConflict.of_parameter(parameter, f"{what} belongs to another onboarding stack ({other})", fix)
    raise ResourceConflict.of_parameter(
        parameter, f"{what} already exists and was not created by this onboarding (it has no "
                   f"{OWNER_TAG_KEY}={stack_name} tag)", fix)
