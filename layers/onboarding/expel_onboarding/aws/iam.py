"""IAM, read only: whether a role of the Expel role's name already exists (preflight), and the Expel role as
IAM holds it (guide steps 8 and 9, read by the drift check). The role itself is created by CloudFormation
(guide step 8), never by the onboarding's own functions."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import unquote

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import ACCESS_DENIED, REFUSED, Rule, aws_errors, suppress_codes
from expel_onboarding.errors import OnboardingError


def _errors(what: str) -> AbstractContextManager[None]:
    return aws_errors("IAM", what, Rule(ACCESS_DENIED, OnboardingError, REFUSED))


def _document(value: Any) -> dict[str, Any]:
    """botocore decodes IAM's URL-encoded policy documents; a plain client may hand back the text."""
    return dict(value) if isinstance(value, dict) else dict(json.loads(unquote(str(value))))


def role(name: str) -> dict[str, Any] | None:
    """GetRole's Role, trust policy decoded; None when there is no role of that name."""
    with _errors(f"reading role {name}"), suppress_codes("NoSuchEntity"):
        found = dict(clients.iam().get_role(RoleName=name)["Role"])
        found["AssumeRolePolicyDocument"] = _document(found.get("AssumeRolePolicyDocument", "{}"))
        return found
    return None


def role_policy(role_name: str, policy_name: str) -> dict[str, Any] | None:
    """The role's inline policy of that name, decoded; None when it has none."""
    with _errors(f"reading policy {policy_name} of role {role_name}"), suppress_codes("NoSuchEntity"):
        response = clients.iam().get_role_policy(RoleName=role_name, PolicyName=policy_name)
        return _document(response["PolicyDocument"])
    return None
