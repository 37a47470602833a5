"""Injected faults: AWS calls that fail the way AWS fails them under load or on a refusal.

``local serve --fault SERVICE:Operation=ErrorCode[:N]`` fails the first N calls (default 1) of that
operation with that error; ``--throttle-writes N`` fails every write call (anything but Get/List/
Describe/Head/...) N times with the service's own throttling error before letting it through, a
throttling storm. "The same call" is the same request sent again (same operation, path, query and body),
whoever retries it: the SDK's own retries and a state machine's Retry of a Task alike, so a storm of 2
costs each distinct write exactly two retries.

The answer is what the service sends: the status code, the error code and message in the service's
protocol (JSON ``__type`` with ``x-amzn-ErrorType``; query ``<ErrorResponse>``; S3's ``<Error>`` with
``x-amz-request-id``; SQS's ``x-amzn-query-error``), and the retry headers the service models on that
error (Lambda's ``Retry-After``). SDKs then retry or raise exactly as against AWS.

Faults sit in front of authorization: AWS throttles at the front door, before a request is evaluated,
so a throttled call is throttled whoever makes it and never reaches IAM (nor counts as an authorized
call in its report). The local cloud's own deploy tooling (``local deploy``, ``demo``: the person's
CreateStack and `sam deploy`'s uploads) is never faulted: faults are for the code under test.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from local_cloud import api_calls

log = logging.getLogger(__name__)

# The error each service answers when it throttles (what --throttle-writes sends). SNS also models a
# "Throttled" (429) that botocore does not retry; what it sends under load is the query "Throttling".
THROTTLING_CODES = {"s3": "SlowDown", "sns": "Throttling", "sqs": "RequestThrottled",
                    "lambda": "TooManyRequestsException", "iam": "Throttling", "sts": "Throttling",
                    "cloudformation": "Throttling"}
DEFAULT_THROTTLING_CODE = "ThrottlingException"

# Status and message AWS sends for errors botocore's models do not describe (they are common to
# every service, so no model lists them); per service where the wording differs.
_KNOWN: dict[str, tuple[int, str]] = {
    "ThrottlingException": (400, "Rate exceeded"),
    "Throttling": (400, "Rate exceeded"),
    "Throttled": (429, "Rate exceeded"),
    "RequestThrottled": (400, "Rate exceeded"),
    "TooManyRequestsException": (429, "Rate exceeded"),
    "SlowDown": (503, "Please reduce your request rate."),
    "RequestLimitExceeded": (503, "Request limit exceeded."),
    "ServiceUnavailable": (503, "Service is unable to handle request."),
    "ServiceUnavailableException": (503, "Service is unable to handle request."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InternalFailure": (500, "The request processing has failed because of an unknown error, exception or failure."),
    "KMSInternalException": (500, "KMS internal error."),
    "AccessDenied": (403, "Access Denied"),
    "AccessDeniedException": (400, "Access Denied"),
    "AuthorizationError": (403, "Access Denied"),
}
# Access-denied messages name the caller and the action, as IAM's do.
_DENIED = {"AccessDenied", "AccessDeniedException", "AuthorizationError"}


class FaultSpecError(ValueError):
    """A --fault value that cannot be used; the message says what to write instead."""


@dataclass
class Fault:
    """Fail the first ``count`` calls of ``service:operation`` with ``code``."""

    service: str
    operation: str
    code: str
    count: int = 1
    failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def take(self) -> bool:
        """True (and counted) while fewer than ``count`` calls have failed."""
        with self._lock:
            if self.failed >= self.count:
                return False
            self.failed += 1
            return True

    def __str__(self) -> str:
        return f"{self.service}:{self.operation}={self.code}:{self.count}"


def parse_fault(spec: str) -> Fault:
    """``SERVICE:Operation=ErrorCode[:N]``, e.g. ``kms:CreateKey=ThrottlingException:2``."""
    usage = "write SERVICE:Operation=ErrorCode[:N], e.g. kms:CreateKey=ThrottlingException:2"
    target, equals, failure = spec.partition("=")
    service, colon, operation = target.partition(":")
    code, _, raw_count = failure.partition(":")
    if not (equals and colon and service and operation and code):
        raise FaultSpecError(f"--fault {spec!r}: {usage}")
    service = service.strip().lower()
    service = {"states": "stepfunctions", "monitoring": "cloudwatch"}.get(service, service)
    model = api_calls._service_model(service)
    if model is None:
        raise FaultSpecError(f"--fault {spec!r}: unknown service {service!r} (use botocore's name: s3, kms, sns, ...)")
    if operation not in model.operation_names:
        raise FaultSpecError(f"--fault {spec!r}: {service} has no operation {operation!r} (names as in the API "
                             f"reference, e.g. {sorted(model.operation_names)[0]})")
    try:
        count = int(raw_count) if raw_count else 1
    except ValueError:
        count = -1
    if count < 1:
        raise FaultSpecError(f"--fault {spec!r}: N must be a whole number of calls, 1 or more")
    return Fault(service=service, operation=operation, code=code.strip(), count=count)


@dataclass(frozen=True)
class AwsError:
    """An error as a service sends it over the wire."""

    status: int
    code: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()


def aws_error(call: api_calls.ApiCall, code: str, message: str | None = None, caller_arn: str = "") -> AwsError:
    """``code`` as ``call``'s service answers it: status and headers from botocore's model of the error where
    it has one, else what AWS sends for the common codes every service shares."""
    status, default_message = _KNOWN.get(code, (0, ""))
    headers: list[tuple[str, str]] = []
    shape = _error_shape(call.service, code)
    if shape is not None:
        status = int(shape.metadata.get("error", {}).get("httpStatusCode", 0)) or status
        for member in shape.members.values():
            if member.serialization.get("location") == "header":
                headers.append((member.serialization["name"], "1"))  # Retry-After: seconds
    if not status:
        status = 500 if "Internal" in code else 400
    if message is None:
        if code in _DENIED:
            who = caller_arn or "the caller"
            default_message = (f"User: {who} is not authorized to perform: "
                               f"{call.event_source.split('.')[0]}:{call.operation}")
        message = default_message or f"{code} (injected by the local cloud)"
    return AwsError(status=status, code=code, message=message, headers=tuple(headers))


def _error_shape(service: str, code: str) -> Any:
    model = api_calls._service_model(service)
    if model is None:
        return None
    for shape in model.error_shapes:
        if code in (shape.name, shape.metadata.get("error", {}).get("code")):
            return shape
    return None


def render(call: api_calls.ApiCall, error: AwsError) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, headers and body of ``error`` in the protocol of ``call``'s service."""
    request_id = str(uuid.uuid4())
    status = f"{error.status} {_REASONS.get(error.status, 'Error')}"
    fault = "Receiver" if error.status >= 500 else "Sender"
    headers = list(error.headers)
    if call.protocol in ("json", "rest-json"):
        version = api_calls._service_model(call.service).metadata.get("jsonVersion", "1.1")
        body = json.dumps({"__type": error.code, "message": error.message}).encode()
        headers += [("Content-Type", f"application/x-amz-json-{version}" if call.protocol == "json"
                     else "application/json"),
                    ("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", error.code)]
        if api_calls.query_compatible(call.service):
            headers.append(("x-amzn-query-error", f"{error.code};{fault}"))
    elif call.protocol == "rest-xml":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(error.code)}</Code>'
                f"<Message>{escape(error.message)}</Message><RequestId>{request_id[:16].upper()}</RequestId>"
                f"<HostId>{uuid.uuid4().hex}</HostId></Error>").encode()
        headers += [("Content-Type", "application/xml"), ("x-amz-request-id", request_id[:16].upper()),
                    ("x-amz-id-2", uuid.uuid4().hex)]
        if call.method == "HEAD":
            body = b""  # S3 answers HEAD with the status alone
    else:  # query
        model = api_calls._service_model(call.service)
        namespace = f"https://{call.event_source.split('.')[0]}.amazonaws.com/doc/{model.metadata.get('apiVersion')}/"
        body = (f'<ErrorResponse xmlns="{namespace}"><Error><Type>{fault}</Type><Code>{escape(error.code)}</Code>'
                f"<Message>{escape(error.message)}</Message></Error><RequestId>{request_id}</RequestId>"
                "</ErrorResponse>").encode()
        headers += [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body


_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass
class FaultPlan:
    """What to fail: named faults, and a throttling storm on every write."""

    faults: list[Fault] = field(default_factory=list)
    throttle_writes: int = 0
    _storm: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __bool__(self) -> bool:
        return bool(self.faults or self.throttle_writes)

    def due(self, call: api_calls.ApiCall, request_digest: str) -> str | None:
        """The error code this call must fail with now, or None."""
        for fault in self.faults:
            if fault.service == call.service and fault.operation == call.operation and fault.take():
                return fault.code
        if self.throttle_writes and not api_calls.read_only(call.operation):
            with self._lock:
                seen = self._storm.get(request_digest, 0)
                if seen < self.throttle_writes:
                    self._storm[request_digest] = seen + 1
                    return THROTTLING_CODES.get(call.service, DEFAULT_THROTTLING_CODE)
        return None


def _request_digest(environ: dict[str, Any], call: api_calls.ApiCall) -> str:
    """What makes a request "the same call" when it is sent again: operation, path, query and body (never the
    signature or its date, which change on every attempt)."""
    digest = hashlib.sha256(f"{call.service}:{call.operation} {call.method} {call.path}?"
                            f"{environ.get('QUERY_STRING', '')}\n".encode())
    digest.update(api_calls.read_body(environ))
    return digest.hexdigest()


class FaultInjector:
    """WSGI middleware: answers a call that is due to fail with the service's error, else passes it on."""

    def __init__(self, app: Callable[..., Iterable[bytes]], plan: FaultPlan,
                 caller_arn: Callable[[api_calls.ApiCall], str] | None = None) -> None:
        self.app = app
        self.plan = plan
        self.caller_arn = caller_arn or (lambda call: "")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.plan:
            call = api_calls.identify(environ)
            if call is not None and not call.from_tooling:
                digest = _request_digest(environ, call) if self.plan.throttle_writes else ""
                code = self.plan.due(call, digest)
                if code is not None:
                    status, headers, body = render(call, aws_error(call, code, caller_arn=self.caller_arn(call)))
                    environ["local_cloud.fault"] = code
                    log.warning("injected fault: %s:%s answered %s", call.service, call.operation, code)
                    start_response(status, headers)
                    return [body]
        return self.app(environ, start_response)
