"""KMS CreateKey and PutKeyPolicy refuse the key policies KMS refuses (moto stores any string).

- over 32 KB (32768 bytes): ``LimitExceededException``, as KMS answers a policy past its length quota;
- not a JSON policy document: ``MalformedPolicyDocumentException``;
- one that would lock the caller out, i.e. would not let the principal making the request call
  PutKeyPolicy on the key afterwards: ``MalformedPolicyDocumentException`` "The new key policy will not
  allow you to update the key policy in the future.", unless ``BypassPolicyLockoutSafetyCheck`` is true.
  Whether a policy allows a principal an action is IAM's evaluator's question (``PolicyChecks``); until
  one is installed no policy counts as a lockout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local_cloud.once import once

MAX_POLICY_BYTES = 32 * 1024
LOCKOUT = "The new key policy will not allow you to update the key policy in the future."


@dataclass
class PolicyChecks:
    """``allows_put_key_policy(policy, caller_access_key, account, key_arn) -> bool``: whether the new
    policy (with the caller's IAM policies where the key policy delegates to IAM) lets the caller change it."""

    allows_put_key_policy: Callable[[dict[str, Any], str, str, str], bool] = \
        lambda policy, access_key, account, key_arn: True


checks = PolicyChecks()


def _error(code: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError(code, message)


def refusal(policy: str | None, bypass: bool, access_key: str, account: str, key_arn: str) -> Exception | None:
    """The error KMS answers for this new key policy, or None when it takes it."""
    if policy is None:
        return None
    if len(policy.encode("utf-8")) > MAX_POLICY_BYTES:
        return _error("LimitExceededException",
                      f"The key policy exceeds the maximum size of {MAX_POLICY_BYTES} bytes.")
    try:
        document = json.loads(policy)
    except ValueError:
        return _error("MalformedPolicyDocumentException", "The key policy is not a valid JSON document.")
    if not isinstance(document, dict) or "Statement" not in document:
        return _error("MalformedPolicyDocumentException", "The key policy has no Statement.")
    if not bypass and not checks.allows_put_key_policy(document, access_key, account, key_arn):
        return _error("MalformedPolicyDocumentException", LOCKOUT)
    return None


@once
def install() -> None:
    """The checks in moto's KMS responses, where the request's caller and bypass flag are known."""
    from moto.kms.responses import KmsResponse

    original_create, original_put = KmsResponse.create_key, KmsResponse.put_key_policy

    def create_key(self: Any) -> str:
        error = refusal(self._get_param("Policy"), bool(self._get_param("BypassPolicyLockoutSafetyCheck")),
                        self.get_access_key(), self.current_account, "")
        if error:
            raise error
        return str(original_create(self))

    def put_key_policy(self: Any) -> str:
        key_id = self._get_param("KeyId")
        try:
            key_arn = self.kms_backend.describe_key(key_id).arn
        except Exception:
            key_arn = ""  # moto's own handler answers NotFoundException
        error = refusal(self._get_param("Policy"), bool(self._get_param("BypassPolicyLockoutSafetyCheck")),
                        self.get_access_key(), self.current_account, key_arn) if key_arn else None
        if error:
            raise error
        return str(original_put(self))

    KmsResponse.create_key = create_key  # type: ignore[method-assign]
    KmsResponse.put_key_policy = put_key_policy  # type: ignore[method-assign]
