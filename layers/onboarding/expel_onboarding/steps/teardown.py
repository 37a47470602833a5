"""Stack delete: the one piece of teardown that is not a single step's ``remove`` — waiting for the
role stack (and in Organizations mode the StackSet of step 8 and the stack of step 9) to be deleted,
with a bound, so a stack stuck in DELETE_FAILED fails the teardown with its name instead of looping
until the deadline. The state machine does the waiting between calls."""

from __future__ import annotations

from expel_onboarding.errors import OnboardingError
from expel_onboarding.models import Config, RoleRemoval, RoleStatus
from expel_onboarding.steps import step08_expel_role, step09_management_stack

# With the default 10 s poll: 20 minutes, far more than deleting one IAM role takes.
MAX_ROLE_CHECKS = 120


def remove_role(config: Config, previous: RoleRemoval) -> RoleRemoval:
    """One call of step 8's ``remove`` (and step 9's); ``previous`` is this function's last result."""
    checks = previous.checks + 1
    if config.organization_mode:
        # The StackSet's roles in every member account (step 8) and the management account's stack (step 9).
        stack, stack_set = step09_management_stack.remove(config), step08_expel_role.remove(config)
        status = _combined([stack, stack_set])
    else:
        stack, stack_set = step08_expel_role.remove(config), None
        status = _combined([stack])
    if status is RoleStatus.IN_PROGRESS and checks >= MAX_ROLE_CHECKS:
        raise OnboardingError(
            f"Step 8: the Expel role stack {config.role_stack_name} (or its StackSet) is still not deleted after "
            f"{checks} checks. "
            "Fix: open it in the CloudFormation console, read why its deletion failed (often a role changed "
            "by hand), delete it, then retry the stack delete")
    return RoleRemoval(status=status, checks=checks, stack=stack, stack_set=stack_set)


def _combined(statuses: list[RoleStatus]) -> RoleStatus:
    if RoleStatus.IN_PROGRESS in statuses:
        return RoleStatus.IN_PROGRESS
    return RoleStatus.DELETED if RoleStatus.DELETED in statuses else RoleStatus.SKIPPED
