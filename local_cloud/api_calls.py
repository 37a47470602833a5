"""Which AWS API call an HTTP request to the local cloud is: service, operation, region, caller's key.

What sits in front of moto in the request path (injected faults, CloudTrail's record of calls, IAM
authorization) needs to know the call the way AWS sees it. The service comes from the SigV4 credential
scope (``Credential=AKID/date/region/service/aws4_request``, or ``X-Amz-Credential`` of a presigned URL);
the operation from the request as botocore's service model describes it: ``X-Amz-Target`` (JSON
protocols), ``Action`` (query protocol), ``/service/X/operation/Op`` (RPC v2 CBOR), or the HTTP method and
path matched against the operations' ``requestUri`` (REST protocols: S3, Lambda). The body is read only
for the JSON and query protocols (small documents) and put back, so moto reads it as sent.
"""

from __future__ import annotations

import io
import json
import re
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qs, unquote

# SigV4 signing names that differ from botocore's service names.
_SIGNING_ALIASES = {"states": "stepfunctions", "monitoring": "cloudwatch", "tagging": "resourcegroupstaggingapi",
                    "email": "ses", "eventbridge": "events"}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_PRESIGNED = re.compile(r"^([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request$")
_model_lock = threading.Lock()
TOOLING_APP_ID = "local-cloud-tooling"  # the User-Agent app id of the local cloud's own deploy tooling
# Operations that change nothing begin with one of these (CloudTrail's readOnly, the storm's "writes").
READ_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "Check", "Search", "Select", "Receive", "BatchGet",
                 "Query", "Scan", "Decrypt", "Encrypt", "GenerateDataKey", "Verify", "AssumeRole")


@dataclass(frozen=True)
class ApiCall:
    """One AWS API request as the local cloud received it."""

    service: str  # botocore's name: "kms", "s3", "stepfunctions"
    operation: str  # "CreateKey", "PutBucketNotificationConfiguration"
    region: str
    access_key: str
    protocol: str  # "json", "query", "rest-xml", "rest-json", "smithy-rpc-v2-cbor"
    method: str = "POST"
    path: str = "/"
    params: dict[str, Any] = field(default_factory=dict, compare=False)  # JSON/query parameters, else {}
    source_ip: str = "127.0.0.1"
    user_agent: str = ""

    @property
    def from_tooling(self) -> bool:
        """Made by the local cloud's own deploy tooling (``local deploy``, ``demo``), which stands in for
        the person and ``sam deploy``; botocore puts the app id in the User-Agent as ``app/<id>``."""
        return f"app/{TOOLING_APP_ID}" in self.user_agent

    @property
    def event_source(self) -> str:
        """The service's host name as CloudTrail names it (``kms.amazonaws.com``)."""
        return f"{_endpoint_prefix(self.service)}.amazonaws.com"


def identify(environ: dict[str, Any]) -> ApiCall | None:
    """The API call ``environ`` carries, or None for anything that is not a signed AWS API request
    (the custom resource ResponseURL, moto's own ``/moto-api``, an unknown operation). Kept in the
    environ, so each layer in front of moto names the request once."""
    if "local_cloud.call" not in environ:
        environ["local_cloud.call"] = _identify(environ)
    return environ["local_cloud.call"]  # type: ignore[no-any-return]


def _identify(environ: dict[str, Any]) -> ApiCall | None:
    scope = _credential_scope(environ)
    if scope is None:
        return None
    access_key, region, signing_name = scope
    service = s3_control_or(_SIGNING_ALIASES.get(signing_name, signing_name), environ)
    model = _service_model(service)
    if model is None:
        return None
    method = environ.get("REQUEST_METHOD", "GET").upper()
    path = environ.get("PATH_INFO", "/") or "/"
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    protocol, operation, params = _operation(environ, model, method, path, query)
    if not operation:
        return None
    return ApiCall(service=service, operation=operation, region=region, access_key=access_key, protocol=protocol,
                   method=method, path=path, params=params,
                   source_ip=str(environ.get("REMOTE_ADDR") or "127.0.0.1"),
                   user_agent=str(environ.get("HTTP_USER_AGENT", "")))


def s3_control_or(service: str, environ: dict[str, Any]) -> str:
    """S3 Control signs its requests as ``s3``; its paths tell it apart (they begin with its API version)."""
    return "s3control" if service == "s3" and str(environ.get("PATH_INFO", "")).startswith("/v20180820/") else service


def _credential_scope(environ: dict[str, Any]) -> tuple[str, str, str] | None:
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1), match.group(2), match.group(3).lower()
    credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
    presigned = _PRESIGNED.match(credential)
    if presigned:
        return presigned.group(1), presigned.group(2), presigned.group(3).lower()
    return None


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back so the application behind reads the same bytes."""
    cached = environ.get("local_cloud.body")
    if cached is not None:
        return bytes(cached)
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    if stream is None:
        body = b""
    elif length > 0:
        body = stream.read(length)
    elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        body = stream.read()
        environ["CONTENT_LENGTH"] = str(len(body))
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["local_cloud.body"] = body
    return body


def _operation(environ: dict[str, Any], model: Any, method: str, path: str,
               query: dict[str, list[str]]) -> tuple[str, str, dict[str, Any]]:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target and "." in target:
        params = _json(read_body(environ))
        return "json", target.rsplit(".", 1)[1], params
    cbor = re.match(r"^/service/[^/]+/operation/([A-Za-z0-9]+)$", path)
    if cbor and environ.get("HTTP_SMITHY_PROTOCOL", "").lower() == "rpc-v2-cbor":
        return "smithy-rpc-v2-cbor", cbor.group(1), {}
    protocol = str(model.metadata.get("protocol", ""))
    if protocol in ("query", "ec2"):
        form = dict(query)
        if "form-urlencoded" in environ.get("CONTENT_TYPE", ""):
            form.update(parse_qs(read_body(environ).decode("utf-8", "replace"), keep_blank_values=True))
        params = {key: values[0] if len(values) == 1 else values for key, values in form.items()}
        return protocol, str(params.get("Action", "")), params
    if protocol.startswith("rest"):
        operation, path_params = _rest_operation(model, method, path, query, environ)
        return protocol, operation, path_params
    return protocol, "", {}


def _rest_operation(model: Any, method: str, path: str, query: dict[str, list[str]],
                    environ: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The most specific operation whose method, path template, query keys and required headers all match
    (PutObject and CopyObject differ only in CopyObject's required ``x-amz-copy-source``); a deprecated
    operation (S3's PutBucketNotification) loses a tie to its successor. Also its path parameters
    (``{"Bucket": ..., "Key": ...}``)."""
    best, best_score, best_params = "", -1, {}
    for route in _rest_routes(model.service_name).get(method, ()):
        matched = route.pattern.match(path)
        if not matched:
            continue
        if any(key not in query or (value is not None and query[key][0] != value)
               for key, value in route.query):
            continue
        if any(_environ_key(header) not in environ for header in route.headers):
            continue
        score = len(route.query) * 100 + len(route.headers) * 10 + route.pattern.pattern.count("/") * 2
        score += 0 if route.deprecated else 1
        if score > best_score:
            best, best_score, best_params = route.operation, score, {k: unquote(v) for k, v in
                                                                     matched.groupdict().items()}
    return best, best_params


def _environ_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


@dataclass(frozen=True)
class _Route:
    operation: str
    pattern: re.Pattern[str]
    query: tuple[tuple[str, str | None], ...]
    headers: tuple[str, ...]
    deprecated: bool


@cache
def _rest_routes(service: str) -> dict[str, list[_Route]]:
    model = _service_model(service)
    routes: dict[str, list[_Route]] = {}
    assert model is not None
    for name in model.operation_names:
        operation = model.operation_model(name)
        uri = str(operation.http.get("requestUri", "/"))
        template, _, raw_query = uri.partition("?")
        required: list[tuple[str, str | None]] = []
        for part in filter(None, raw_query.split("&")):
            key, equals, value = part.partition("=")
            if key != "x-id":  # botocore's own marker, not sent by every client
                required.append((key, value if equals else None))
        headers: list[str] = []
        shape = operation.input_shape
        if shape is not None:
            for member in shape.required_members:
                serialization = shape.members[member].serialization
                if serialization.get("location") == "header":
                    headers.append(str(serialization["name"]))
        regex = re.escape(template.rstrip("/") or "/")
        regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\+\\\}", r"(?P<\1>.+)", regex)
        regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", regex)
        routes.setdefault(str(operation.http.get("method", "GET")).upper(), []).append(
            _Route(name, re.compile(f"^{regex}/?$"), tuple(required), tuple(headers), bool(operation.deprecated)))
    return routes


@cache
def _service_model(service: str) -> Any:
    from botocore.exceptions import DataNotFoundError
    from moto.core.utils import get_service_model

    # moto's model of the service, which it parses for its own request parsing and responses anyway (a second
    # parse of each model was a third of the local cloud's warm-up). Not a client's: botocore's S3 client
    # rewrites the request URIs of the model its session's loader handed out ("/{Bucket}/{Key+}" becomes
    # "/{Key+}"), and a model shared with clients would route ``PUT /bucket`` to PutObject.
    with _model_lock:
        try:
            return get_service_model(service)
        except DataNotFoundError:
            return None


def _endpoint_prefix(service: str) -> str:
    model = _service_model(service)
    return str(model.metadata.get("endpointPrefix", service)) if model is not None else service


def protocol_of(service: str) -> str:
    model = _service_model(service)
    return str(model.metadata.get("protocol", "")) if model is not None else ""


def query_compatible(service: str) -> bool:
    """JSON services that answer query-protocol error codes in ``x-amzn-query-error`` (SQS)."""
    model = _service_model(service)
    return model is not None and "awsQueryCompatible" in model.metadata


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_only(operation: str) -> bool:
    """A call that changes nothing (CloudTrail's ``readOnly``): reads, lists, look-ups and receives."""
    return operation.startswith(READ_PREFIXES)
