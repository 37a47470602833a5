"""ClientError codes mapped to our errors: the one mechanism every caller of AWS uses.

``TRANSIENT_CODES`` is the one table of codes that mean "try again later": the codes every service
answers when throttled or failing on its side (after botocore's own retries), plus the few a single
service adds. ``aws_errors`` raises ``TransientError`` for them before any other rule, so the state
machine retries them (the ASL's ``Retry`` lists every ``TransientError`` class by name).

Everything else a module maps itself, as ``Rule``s; the wording stays with the module, because each
message names the fix for that service. A rule's message is a ``str.format`` template with the fields
``{service}``, ``{what}``, ``{code}``, ``{exc}`` (the exception as text), ``{message}`` (AWS's own
message), ``{reason}`` (when the rule's codes are a mapping: the text for that code) and whatever
keyword fields the module passes to ``aws_errors``. "Not found" answers that mean "absent" end a
look-up quietly with ``suppress_codes``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from expel_onboarding.errors import TransientError

# Any service: throttling, and AWS's own failures (HTTP 5xx) that outlasted botocore's standard retries.
EVERY_SERVICE = "*"
TRANSIENT_CODES: Mapping[str, frozenset[str]] = {
    EVERY_SERVICE: frozenset({
        "Throttling", "ThrottlingException", "Throttled", "TooManyRequestsException", "RequestThrottled",
        "InternalError", "InternalFailure", "InternalServerError", "InternalServiceError", "ServiceException",
        "ServiceUnavailable", "ServiceUnavailableException",
    }),
    # S3: "slow down", a timed-out upload, "a conflicting operation is in progress" (common right after
    # a bucket is created), and the bare HTTP status HeadBucket answers with.
    "S3": frozenset({"SlowDown", "RequestTimeout", "OperationAborted", "500", "503"}),
    "KMS": frozenset({"KMSInternalException", "DependencyTimeoutException"}),
    # SNS and SQS throttled by the KMS key they encrypt with.
    "SNS": frozenset({"ConcurrentAccess", "KMSThrottling"}),
    "SQS": frozenset({"KmsThrottled", "KMS.ThrottlingException"}),
    # CloudTrail: another update of the same trail is running.
    "CloudTrail": frozenset({"ConflictException"}),
    "AWS Organizations": frozenset({"ConcurrentModificationException"}),
    # CloudWatch Logs: another change of the same log group is running.
    "CloudWatch Logs": frozenset({"OperationAbortedException"}),
    "CloudFormation": frozenset(),
    "CloudWatch": frozenset(),
    # StackSets: too many operations at once, or one based on a stale read.
    "CloudFormation StackSets": frozenset({"LimitExceededException", "StaleRequestException"}),
    "Secrets Manager": frozenset(),
    "Step Functions": frozenset(),
    "STS": frozenset(),
    "IAM": frozenset(),
}
ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
BUSY = "{service} is busy ({code}) on {what}; retrying"
# AWS's own message names the caller (the step's role and function), the action and the resource.
REFUSED = ("{service} refused {what} ({code}): {message}. The step's Lambda role lacks that permission, or a "
           "service control policy denies it. Fix the role (see template.yaml) and retry")


def transient_codes(service: str) -> frozenset[str]:
    """The codes after which a call to ``service`` (a key of ``TRANSIENT_CODES``) is worth retrying."""
    return TRANSIENT_CODES[EVERY_SERVICE] | TRANSIENT_CODES[service]


def error_code(exc: BaseException | None) -> str:
    """The AWS error code of a botocore ClientError, or "" for anything else."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_message(exc: BaseException) -> str:
    """AWS's own message of a botocore ClientError (the exception's text for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Message", exc))


def has_code(exc: BaseException | None, *codes: str, contains: str = "") -> bool:
    """Whether ``exc`` is an AWS error with one of ``codes`` (and ``contains`` in its message, ignoring case)."""
    return (exc is not None and error_code(exc) in codes
            and contains.lower() in error_message(exc).lower())


@dataclass(frozen=True)
class Rule:
    """An error whose code is in ``codes`` (``"KMS.*"`` matches every code with that prefix) and whose AWS
    message contains ``contains`` (ignoring case) becomes ``error(message.format(...))``."""

    codes: Collection[str] | Mapping[str, str]
    error: Callable[[str], Exception]
    message: str
    contains: str = ""

    def matches(self, code: str, exc: BaseException) -> bool:
        known = code in self.codes or any(
            c.endswith("*") and code.startswith(c[:-1]) for c in self.codes)
        return bool(code) and known and self.contains.lower() in error_message(exc).lower()


def mapped_error(service: str, what: str, exc: BaseException, *rules: Rule, busy: str = BUSY,
                 **fields: Any) -> Exception | None:
    """Our error for the AWS error ``exc`` (transient codes first, then the first matching rule), or None."""
    code = error_code(exc)
    values = {"service": service, "what": what, "code": code, "exc": exc, "message": error_message(exc), **fields}
    if code in transient_codes(service):
        return TransientError(busy.format(reason="", **values))
    for rule in rules:
        if rule.matches(code, exc):
            reason = rule.codes[code] if isinstance(rule.codes, Mapping) and code in rule.codes else ""
            return rule.error(rule.message.format(reason=reason, **values))
    return None


@contextmanager
def aws_errors(service: str, what: str, *rules: Rule, busy: str = BUSY, **fields: Any) -> Iterator[None]:
    """Raise our error for an AWS error (``mapped_error``); anything else passes unchanged."""
    try:
        yield
    except Exception as exc:
        mapped = mapped_error(service, what, exc, *rules, busy=busy, **fields)
        if mapped is None:
            raise
        raise mapped from exc


class suppress_codes(AbstractContextManager[None]):  # lower case: used like contextlib.suppress
    """``contextlib.suppress`` for AWS error codes: the look-up's "not found" ends the ``with`` block
    quietly, so the line after it returns the "absent" answer (None, False, an empty dict...)."""

    def __init__(self, *codes: str, contains: str = "") -> None:
        self.codes = frozenset(codes)
        self.contains = contains

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> bool:
        return isinstance(exc, Exception) and has_code(exc, *self.codes, contains=self.contains)
