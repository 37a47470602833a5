"""Make moto's resource-policy evaluation follow AWS where our policies depend on it.

moto evaluates bucket policies on object writes, but (a) a statement whose Condition does not hold
is treated as a DENY instead of not applying, and (b) it knows no request context, so a
``Bool aws:SecureTransport false`` deny (the TLS-only statement every CloudTrail bucket should
carry) matched every request. On AWS the calls our Lambdas make are HTTPS; the local cloud serves
plain HTTP only because it is a loopback emulator, so requests are evaluated as secure.
"""

from __future__ import annotations

from typing import Any

from moto.iam.access_control import IAMPolicyStatement, PermissionResult

_PATCHED = "_expel_onboarding_patched"


def patch_policy_conditions() -> None:
    if getattr(IAMPolicyStatement, _PATCHED, False):
        return
    original = IAMPolicyStatement.is_action_permitted

    def is_action_permitted(self: IAMPolicyStatement, action: str, resource: str = "*",
                            principal: str | None = None,
                            incoming_condition_values: dict[str, str] | None = None) -> Any:
        incoming = {"aws:SecureTransport": "true", **(incoming_condition_values or {})}
        if not _bool_conditions_hold(self._statement.get("Condition") or {}, incoming):
            return PermissionResult.NEUTRAL  # a statement whose condition does not hold does not apply
        return original(self, action, resource, principal, incoming)

    IAMPolicyStatement.is_action_permitted = is_action_permitted  # type: ignore[method-assign]
    setattr(IAMPolicyStatement, _PATCHED, True)


def _bool_conditions_hold(conditions: dict[str, Any], incoming: dict[str, str]) -> bool:
    """moto ignores the Bool operator; evaluate it as AWS does (a missing key does not match)."""
    for key, expected in conditions.get("Bool", {}).items():
        values = expected if isinstance(expected, list) else [expected]
        if key not in incoming or str(incoming[key]).lower() not in {str(v).lower() for v in values}:
            return False
    return True
