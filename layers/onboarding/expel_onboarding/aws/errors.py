"""ClientError codes mapped to our errors: the one mechanism every wrapper module in ``aws/`` uses.

A module lists which of its service's codes mean what, as ``Rule``s; the wording stays with the module,
because each message names the fix for that service. A rule's message is a ``str.format`` template with
the fields ``{service}``, ``{what}``, ``{code}``, ``{exc}`` (the exception as text), ``{message}`` (AWS's
own message), ``{reason}`` (when the rule's codes are a mapping: the text for that code) and whatever
keyword fields the module passes to ``aws_errors``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from expel_onboarding.aws.clients import error_code

ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
BUSY = "{service} is busy ({code}) on {what}; retrying"
# AWS's own message names the caller (the step's role and function), the action and the resource.
REFUSED = ("{service} refused {what} ({code}): {message}. The step's Lambda role lacks that permission, or a "
           "service control policy denies it. Fix the role (see template.yaml) and retry")


def error_message(exc: BaseException) -> str:
    """AWS's own message of a botocore ClientError (the exception's text for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Message", exc))


@dataclass(frozen=True)
class Rule:
    """An error whose code is in ``codes`` (and whose AWS message contains ``contains``, ignoring case)
    becomes ``error(message.format(...))``."""

    codes: Collection[str] | Mapping[str, str]
    error: type[Exception]
    message: str
    contains: str = ""

    def matches(self, code: str, exc: Exception) -> bool:
        return code in self.codes and self.contains.lower() in error_message(exc).lower()


@contextmanager
def aws_errors(service: str, what: str, *rules: Rule, **fields: Any) -> Iterator[None]:
    """Raise the first matching rule's error from the ClientError; anything else passes unchanged."""
    try:
        yield
    except Exception as exc:
        code = error_code(exc)
        for rule in rules:
            if rule.matches(code, exc):
                reason = rule.codes[code] if isinstance(rule.codes, Mapping) else ""
                raise rule.error(rule.message.format(
                    service=service, what=what, code=code, exc=exc, message=error_message(exc), reason=reason,
                    **fields)) from exc
        raise


class suppress_codes(AbstractContextManager[None]):  # lower case: used like contextlib.suppress
    """``contextlib.suppress`` for AWS error codes: the look-up's "not found" ends the ``with`` block
    quietly, so the line after it returns the "absent" answer (None, False, an empty dict...)."""

    def __init__(self, *codes: str) -> None:
        self.codes = frozenset(codes)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> bool:
        return isinstance(exc, Exception) and error_code(exc) in self.codes
