"""Every request to the local cloud authorized as IAM would, in front of moto's WSGI app.

For each request: the service from the SigV4 credential scope, the operation and its parameters from
the service's botocore model (moto's own router and parsers: X-Amz-Target, ``Action=``, REST routes),
the caller from the access key (``identity``), then ``local_cloud.iam.requests.checks`` for what IAM
authorizes and ``local_cloud.iam.evaluate`` for each. A refusal is answered as the service answers
(``errors``); an allowed call goes on to moto and, for a role, into the report.

What the local cloud cannot tell (an operation without an IAM action, a resource it cannot find) is
refused for IAM users and roles, with the reason in the message; the root user (dummy credentials)
is not held up by the local cloud's own gaps.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from local_cloud.api_calls import s3_control_or
from local_cloud.enforcement import cloudformation, errors
from local_cloud.enforcement.authorization import Enforcer, principal_values
from local_cloud.enforcement.identity import resolve
from local_cloud.iam import Kind, sar
from local_cloud.iam.requests import ApiCall, ResourceMissing, Unresolvable

__all__ = ["Enforcer", "IamMiddleware", "principal_values"]
log = logging.getLogger(__name__)
# Signing names whose botocore service name differs.
_SIGNING_TO_SERVICE = {"states": "stepfunctions", "monitoring": "cloudwatch", "email": "ses"}
# Paths that are not AWS API calls: moto's own API, and custom resources' answers (a presigned URL on AWS).
_EXEMPT = ("/moto-api", "/cloudformation_")


@cache
def service_model(service: str) -> Any:
    """moto's botocore model of ``service``, as its request parsers read it."""
    from moto.core.utils import get_service_model

    return get_service_model(service)


# botocore services whose IAM prefix is neither their signing name nor their endpoint prefix: CloudWatch signs
# as "monitoring", but IAM names its actions cloudwatch:* (GetMetricStatistics, PutMetricData, ...).
_IAM_PREFIXES = {"cloudwatch": "cloudwatch"}


def iam_prefix(service: str) -> str:
    if service in _IAM_PREFIXES:
        return _IAM_PREFIXES[service]
    metadata = service_model(service).metadata
    return str(metadata.get("signingName") or metadata.get("endpointPrefix") or service)


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        body = stream.read(int(length))
    elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _credential_scope(environ: dict[str, Any]) -> tuple[str, str, str] | None:
    """(access key, region, signing name) of a SigV4 request."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
        parts = scope.split("/")
        if len(parts) >= 5:
            return parts[0], parts[2], parts[3]
    return None


def parse_call(
    environ: dict[str, Any], body: bytes, signing_name: str, region: str, account: str
) -> tuple[str, str, ApiCall]:
    """(botocore service, protocol, ApiCall) of a request, from the service's botocore model."""
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.request import Request, determine_request_protocol
    from moto.core.routing import get_service_router

    service = s3_control_or(_SIGNING_TO_SERVICE.get(signing_name, signing_name), environ)
    request = Request(environ, populate_request=False)
    model = service_model(service)
    operation, uri_params = get_service_router(service).match(request)
    protocol = determine_request_protocol(model, request.content_type)
    parser = PROTOCOL_PARSERS[protocol](operation)
    params = parser.parse(
        {
            "method": request.method,
            "values": request.values,
            "headers": request.headers,
            "body": body,
            "url_path": request.path,
            "url_params": uri_params,
        }
    )
    environ["wsgi.input"] = io.BytesIO(body)
    return (
        service,
        protocol,
        ApiCall(
            # S3 Control signs as s3 and its actions are s3's, named otherwise than its operations (sar).
            "s3control" if service == "s3control" else iam_prefix(service),
            operation.name,
            params,
            region,
            account,
            "aws-cn" if region.startswith("cn-") else "aws",
        ),
    )


class IamMiddleware:
    """WSGI middleware: authorize, then hand the request to moto (or answer AccessDenied)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], enforcer: Enforcer) -> None:
        self.app = app
        self.enforcer = enforcer

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(_EXEMPT):
            return self.app(environ, start_response)
        started = time.perf_counter()
        try:
            refusal = self._refusal(environ)
        finally:
            self.enforcer.seconds += time.perf_counter() - started
            self.enforcer.decided += 1
        if refusal is None:
            return self.app(environ, start_response)
        status, headers, body = refusal
        start_response(
            f"{status} {'Forbidden' if status == 403 else 'Bad Request'}",
            [*headers.items(), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _refusal(self, environ: dict[str, Any]) -> tuple[int, dict[str, str], bytes] | None:
        scope = _credential_scope(environ)
        body = _read_body(environ)
        if scope is None:
            return None  # unsigned (moto's own clients, presigned URLs): not an IAM principal's call
        access_key, region, signing_name = scope
        identity = resolve(access_key)
        account = identity.principal.account or "123456789012"
        try:
            service, protocol, call = parse_call(environ, body, signing_name, region, account)
        except Exception as exc:
            environ["wsgi.input"] = io.BytesIO(body)
            if identity.principal.kind == Kind.ROOT:
                return None
            log.info(
                "cannot tell the operation of %s %s: %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), exc
            )
            return errors.render(
                _SIGNING_TO_SERVICE.get(signing_name, signing_name),
                "query",
                f"User: {identity.principal.arn} is not authorized: the local cloud cannot "
                f"tell which {signing_name} operation this request is ({exc})",
            )
        try:
            decision = self.enforcer.authorize(identity, call)
        except ResourceMissing:
            return None  # the service itself answers that the resource does not exist
        except Exception as exc:  # the local cloud's own gap: refuse (fail closed), never let it through
            if not isinstance(exc, sar.UnknownAction | Unresolvable):
                log.exception("authorizing %s:%s failed", call.service, call.operation)
            if identity.principal.kind == Kind.ROOT:
                return None
            message = (
                f"User: {identity.principal.arn} is not authorized to perform: {call.service}:"
                f"{call.operation} because the local cloud cannot evaluate it: {exc}"
            )
            log.info("refused %s: %s", call.operation, message)
            return errors.render(service, protocol, message)
        if decision is None:
            if call.service == "cloudformation":
                refused = cloudformation.role_not_assumable(call)
                if refused:
                    return cloudformation.validation_error(refused)
                cloudformation.record_caller(identity, call)
            return None
        log.info("AccessDenied: %s", decision.message())
        return errors.render(service, protocol, decision.message())
