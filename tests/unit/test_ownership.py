"""The one ownership check: ours by this stack's tag; a customer's or another stack's is never taken over."""

from __future__ import annotations

import pytest

from expel_onboarding.errors import ResourceConflict
from expel_onboarding.naming import OWNER_TAG_KEY
from expel_onboarding.ownership import Ownership, is_ours, owner, ownership, require_ours

STACK = "expel-onboarding"


@pytest.mark.parametrize(("tags", "expected"), [
    ({OWNER_TAG_KEY: STACK, "team": "security"}, Ownership.OURS),
    ({OWNER_TAG_KEY: "other-onboarding"}, Ownership.OTHER_STACK),
    ({}, Ownership.FOREIGN),
    ({"team": "security"}, Ownership.FOREIGN),
    ({OWNER_TAG_KEY: ""}, Ownership.FOREIGN),
    ({OWNER_TAG_KEY.upper(): STACK}, Ownership.FOREIGN),  # tag keys are case-sensitive
])
def test_ownership_is_decided_by_this_stacks_tag_alone(tags: dict[str, str], expected: Ownership) -> None:
    assert ownership(tags, STACK) is expected
    assert is_ours(tags, STACK) is (expected is Ownership.OURS)


def test_owner_names_the_stack_in_the_tag() -> None:
    assert owner({OWNER_TAG_KEY: "other-onboarding"}) == "other-onboarding"
    assert owner({}) == ""


def test_require_ours_returns_for_our_resource() -> None:
    require_ours({OWNER_TAG_KEY: STACK}, STACK, parameter="TopicName", what="the SNS topic T", fix="never used")


def test_a_customers_resource_is_refused_naming_the_parameter_the_tag_and_the_fix() -> None:
    with pytest.raises(ResourceConflict) as raised:
        require_ours({"team": "security"}, STACK, parameter="TopicName", what="the SNS topic T",
                     fix="choose another TopicName (guide step 3 creates a new topic)")
    assert str(raised.value) == (
        f"Parameter TopicName: the SNS topic T already exists and was not created by this onboarding (it has no "
        f"{OWNER_TAG_KEY}={STACK} tag). Fix: choose another TopicName (guide step 3 creates a new topic)")
    assert raised.value.parameter == "TopicName"


def test_another_stacks_resource_is_refused_naming_that_stack() -> None:
    with pytest.raises(ResourceConflict) as raised:
        require_ours({OWNER_TAG_KEY: "older"}, STACK, parameter="QueueName", what="the SQS queue Q", fix="unused")
    assert str(raised.value) == ("Parameter QueueName: the SQS queue Q belongs to another onboarding stack (older). "
                                 "Fix: choose another QueueName, or delete stack older first")


def test_another_stacks_resource_can_name_its_own_fix() -> None:
    with pytest.raises(ResourceConflict, match=r"Fix: delete StackSet S of stack older, or deploy under another"):
        require_ours({OWNER_TAG_KEY: "older"}, STACK, parameter="OrganizationMode", what="the StackSet S",
                     fix="unused", other_stack_fix="delete StackSet S of stack {stack}, or deploy under another name")
