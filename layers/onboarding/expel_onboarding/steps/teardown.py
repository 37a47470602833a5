"""Stack delete: the one piece of teardown that is not a single step's ``remove`` — waiting for the
role stack to be deleted, with a bound, so a stack stuck in DELETE_FAILED fails the teardown with its
name instead of looping until the deadline. The state machine does the waiting between calls."""

from __future__ import annotations

from typing import Any

from expel_onboarding.errors import OnboardingError
from expel_onboarding.models import Config
from expel_onboarding.steps import step08_expel_role

# With the default 10 s poll: 20 minutes, far more than deleting one IAM role takes.
MAX_ROLE_CHECKS = 120


def remove_role(config: Config, previous: dict[str, Any]) -> dict[str, Any]:
    """One call of step 8's ``remove``; ``previous`` is this function's last result (or {})."""
    checks = int(previous.get("Checks", 0)) + 1
    status = step08_expel_role.remove(config)
    if status == step08_expel_role.IN_PROGRESS and checks >= MAX_ROLE_CHECKS:
        raise OnboardingError(
            f"Step 8: the Expel role stack {config.role_stack_name} is still not deleted after {checks} checks. "
            "Fix: open it in the CloudFormation console, read why its deletion failed (often a role changed "
            "by hand), delete it, then retry the stack delete")
    return {"Status": status, "Checks": checks}
