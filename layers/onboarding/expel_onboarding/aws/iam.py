"""IAM, read only: whether a role of the Expel role's name already exists (preflight). The role itself
is created by CloudFormation (guide step 8), never by the onboarding's own functions."""

from __future__ import annotations

from typing import Any

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import ACCESS_DENIED, REFUSED, Rule, aws_errors, suppress_codes
from expel_onboarding.errors import OnboardingError


def role(name: str) -> dict[str, Any] | None:
    """The role (GetRole's ``Role``), or None when no role has that name in this account."""
    with (aws_errors("IAM", f"reading role {name}", Rule(ACCESS_DENIED, OnboardingError, REFUSED)),
          suppress_codes("NoSuchEntity")):
        return dict(clients.iam().get_role(RoleName=name)["Role"])
    return None
