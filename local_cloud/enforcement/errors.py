"""AccessDenied as each service answers it: its own error code, status and body format.

The code comes from the service's botocore model when it declares an access-denied error
(``AccessDeniedException`` for KMS/Step Functions/Organizations/..., ``AuthorizationError`` for SNS);
otherwise AWS's protocol-wide default (``AccessDenied`` for query and REST-XML services).
"""

from __future__ import annotations

import json
import uuid
from functools import cache
from xml.sax.saxutils import escape


@cache
def _model(service: str) -> object:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


@cache
def access_denied_code(service: str) -> tuple[str, int]:
    """(error code, HTTP status) of the service's access-denied error."""
    model = _model(service)
    protocol = model.protocol  # type: ignore[attr-defined]
    names = set(model.shape_names)  # type: ignore[attr-defined]
    for candidate in ("AuthorizationErrorException", "AccessDeniedException", "AccessDenied"):
        if candidate in names:
            shape = model.shape_for(candidate)  # type: ignore[attr-defined]
            error = shape.metadata.get("error", {})
            code = error.get("code") or candidate
            status = int(error.get("httpStatusCode") or (400 if protocol == "json" else 403))
            return code, status
    if protocol == "json":
        return "AccessDeniedException", 400
    if protocol == "rest-json":
        return "AccessDeniedException", 403
    return "AccessDenied", 403


def render(service: str, protocol: str, message: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the service's AccessDenied answer."""
    code, status = access_denied_code(service)
    request_id = str(uuid.uuid4())
    if service == "sqs":
        code, status = "AccessDenied", 403
        body = json.dumps({"__type": "com.amazonaws.sqs#AccessDenied", "message": message}).encode()
        return (
            status,
            {
                "Content-Type": "application/x-amz-json-1.0",
                "x-amzn-RequestId": request_id,
                "x-amzn-query-error": "AccessDenied;Sender",
            },
            body,
        )
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": request_id}, body
    if protocol == "rest-json":
        body = json.dumps({"Type": "User", "message": message, "Message": message}).encode()
        return (
            status,
            {"Content-Type": "application/json", "x-amzn-RequestId": request_id, "x-amzn-ErrorType": code},
            body,
        )
    if protocol == "rest-xml":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message><RequestId>{request_id}</RequestId>"
            f"<HostId>local</HostId></Error>"
        ).encode()
        return status, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, body
    body = (
        f'<ErrorResponse xmlns="https://{service}.amazonaws.com/doc/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body
