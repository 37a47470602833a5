"""A Workbench emulator for the local cloud and the tests (dev only, never deployed).

It speaks the part of Workbench's JSON:API that pyexclient uses for guide step 10:

    GET/POST            /api/v2/security_devices        (filter[name], filter[organization][id], page[...])
    GET/PATCH/DELETE    /api/v2/security_devices/<id>
    GET                 /api/v2/vendors[/<id>]          (filter[name])
    GET                 /api/v2/organizations/<id>

with Bearer authentication against one configured key (401 otherwise) and JSON:API validation (422
with ``errors[0].detail``). Devices live as long as the server. A new device starts "unhealthy" (not
polled yet) and turns "healthy" after ``healthy_after_reads`` reads of it, so the status loop can be
shown. Test switches, unauthenticated (the server binds to 127.0.0.1 only):

    POST /_emulator/faults    {"status": 429|500|401|..., "count": n, "retry_after": s?, "detail": "..."?,
                               "method": "POST"?, "processed": false?}
                              the next n API requests (of that method, if given) answer that status;
                              with "processed": true the request is carried out first (a lost answer)
    GET  /_emulator/requests  the API requests so far (method, path, query, body, status; no
                              Authorization header)
    POST /_emulator/reset     forget devices, faults and the request log
    GET  /_emulator/devices   the devices as stored
    GET  /_emulator/expel-principal   access key of arn:aws:iam::012205512454:user/ExpelCloudService in the
                              local cloud's IAM, to act as Expel (``local_cloud.expel_account``)
"""

from __future__ import annotations

import copy
import hmac
import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from local_cloud.background import serve, stop_serving

logger = logging.getLogger(__name__)

DEVICE_TYPES = ("ENDPOINT", "NETWORK", "SIEM", "OTHER", "CLOUD")
DEFAULT_ORGANIZATION_ID = "4f9c2a1e-7b3d-4e5f-9a8b-1c2d3e4f5a6b"
VENDORS = (
    ("b1a1e1d0-0000-4000-8000-000000000001", "Amazon Web Services"),
    ("b1a1e1d0-0000-4000-8000-000000000002", "CrowdStrike"),
    ("b1a1e1d0-0000-4000-8000-000000000003", "Microsoft"),
    ("b1a1e1d0-0000-4000-8000-000000000004", "Okta"),
)
_READ_ONLY = {
    "created_at",
    "updated_at",
    "deleted_at",
    "status",
    "status_details",
    "status_updated_at",
    "is_verifying_status",
    "has_console_credentials",
    "has_two_factor_secret",
}
_WRITABLE = {
    "name",
    "location",
    "device_type",
    "device_spec",
    "plugin_slug",
    "properties",
    "task_source",
    "no_alert_threshold_hours",
}
_LOOPBACK = ("127.0.0.1", "localhost")
_HIDDEN_HEADERS = {"authorization", "cookie", "proxy-authorization"}


class _ApiError(Exception):
    def __init__(self, status: int, detail: str, title: str = "") -> None:
        self.status = status
        self.detail = detail
        self.title = title or {401: "Unauthorized", 404: "Not Found", 422: "Unprocessable Entity"}.get(status, "Error")
        super().__init__(detail)


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: int | None = None
    detail: str = ""
    method: str = ""  # "" = any method
    processed: bool = False


@dataclass
class _State:
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[_Fault] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)


class WorkbenchEmulator:
    """The emulator's state plus its HTTP server, running in a daemon thread once started."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "local-demo-key",
        organization_id: str | None = None,
        healthy_after_reads: int = 3,
    ) -> None:
        if host not in _LOOPBACK:
            raise ValueError(f"the Workbench emulator binds to 127.0.0.1 only, not {host!r}")
        self.api_key = api_key
        # None accepts any organization id (the local cloud's GUID is whatever the person typed).
        self.organization_id = organization_id
        self.healthy_after_reads = healthy_after_reads
        self._lock = threading.Lock()
        self._state = _State()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self._server.emulator = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WorkbenchEmulator:
        self._thread = serve(self._server, "workbench-emulator")
        self._thread.start()
        logger.info("Workbench emulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            stop_serving(self._server)
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> WorkbenchEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # The same switches as the /_emulator endpoints, for in-process callers.
    def inject_fault(
        self,
        status: int,
        count: int = 1,
        retry_after: int | None = None,
        detail: str = "",
        method: str = "",
        processed: bool = False,
    ) -> None:
        with self._lock:
            self._state.faults.append(_Fault(status, count, retry_after, detail, method.upper(), processed))

    def reset(self) -> None:
        with self._lock:
            self._state = _State()

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._state.requests)

    @property
    def devices(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._state.devices)

    # ---- request handling (called from the handler threads) ----

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, dict]:
        parts = urlsplit(raw_path)
        path = parts.path.rstrip("/")
        query = parse_qs(parts.query, keep_blank_values=True)
        if path.startswith("/_emulator"):
            return self._admin(method, path, body)
        parsed: Any = None
        status, extra_headers, document = 500, {}, {}
        try:
            parsed = _json_body(body)
            with self._lock:
                fault = self._next_fault(method)
            if fault is not None and fault.retry_after is not None:
                extra_headers = {"Retry-After": str(fault.retry_after)}
            if fault is not None and not fault.processed:
                raise _ApiError(fault.status, fault.detail or f"Injected fault {fault.status}")
            self._authenticate(headers)
            with self._lock:
                status, document = self._route(method, path, query, parsed)
            if fault is not None:
                raise _ApiError(fault.status, fault.detail or f"Injected fault {fault.status} (request carried out)")
        except _ApiError as exc:
            status = exc.status
            document = {"errors": [{"status": str(exc.status), "title": exc.title, "detail": exc.detail}]}
        finally:
            with self._lock:
                self._state.requests.append(
                    {
                        "method": method,
                        "path": path,
                        "query": query,
                        "body": parsed,
                        "status": status,
                        "headers": {k: v for k, v in headers.items() if k.lower() not in _HIDDEN_HEADERS},
                    }
                )
        return status, extra_headers, document

    def _next_fault(self, method: str) -> _Fault | None:
        self._state.faults = [f for f in self._state.faults if f.remaining > 0]
        for fault in self._state.faults:
            if fault.method in ("", method):
                fault.remaining -= 1
                return fault
        return None

    def _authenticate(self, headers: dict[str, str]) -> None:
        given = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = given.partition(" ")
        if scheme != "Bearer" or not hmac.compare_digest(token.encode(), self.api_key.encode()):
            raise _ApiError(401, "Invalid or missing API key")

    def _admin(self, method: str, path: str, body: bytes) -> tuple[int, dict, dict]:
        if method == "POST" and path == "/_emulator/faults":
            try:
                spec = _json_body(body) or {}
                status, count = int(spec["status"]), int(spec.get("count", 1))
            except (_ApiError, KeyError, TypeError, ValueError):
                return 400, {}, {"error": 'expected {"status": <int>, "count": <int>}'}
            if not 400 <= status <= 599 or count < 0:
                return 400, {}, {"error": "status must be 4xx/5xx and count >= 0"}
            self.inject_fault(
                status,
                count,
                spec.get("retry_after"),
                str(spec.get("detail", "")),
                str(spec.get("method", "")),
                bool(spec.get("processed", False)),
            )
            return 200, {}, {"status": status, "count": count}
        if method == "GET" and path == "/_emulator/requests":
            return 200, {}, {"requests": self.requests}
        if method == "POST" and path == "/_emulator/reset":
            self.reset()
            return 200, {}, {"reset": True}
        if method == "GET" and path == "/_emulator/devices":
            return 200, {}, {"devices": self.devices}
        if method == "GET" and path == "/_emulator/expel-principal":
            from local_cloud import expel_account  # the local cloud's IAM, in this process

            return 200, {}, expel_account.principal()
        return 404, {}, {"error": f"no admin route {method} {path}"}

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, dict]:
        segments = [s for s in path.split("/") if s]
        if segments[:2] != ["api", "v2"] or len(segments) < 3:
            raise _ApiError(404, f"No route {method} {path}")
        kind, ident = segments[2], (segments[3] if len(segments) > 3 else None)
        if len(segments) > 4:
            raise _ApiError(404, f"No route {method} {path}")
        if kind == "security_devices":
            if ident is None and method == "GET":
                return 200, self._list_devices(query)
            if ident is None and method == "POST":
                return 201, {"data": self._create_device(body)}
            if ident is not None and method == "GET":
                return 200, {"data": self._read_device(ident)}
            if ident is not None and method == "PATCH":
                return 200, {"data": self._patch_device(ident, body)}
            if ident is not None and method == "DELETE":
                self._device(ident)
                del self._state.devices[ident]
                return 204, {}
        if kind == "vendors" and method == "GET":
            vendors = [_vendor(vid, name) for vid, name in VENDORS]
            if ident is not None:
                match = [v for v in vendors if v["id"] == ident]
                if not match:
                    raise _ApiError(404, f"Vendor {ident} not found")
                return 200, {"data": match[0]}
            names = query.get("filter[name]")
            return 200, {"data": [v for v in vendors if not names or v["attributes"]["name"] in names]}
        if kind == "organizations" and method == "GET" and ident is not None:
            if self.organization_id not in (None, ident):
                raise _ApiError(404, f"Organization {ident} not found")
            return 200, {"data": {"id": ident, "type": "organizations", "attributes": {"name": "Local demo"}}}
        raise _ApiError(404, f"No route {method} {path}")

    def _list_devices(self, query: dict[str, list[str]]) -> dict:
        devices = list(self._state.devices.values())
        for key, values in query.items():
            if key == "filter[organization][id]":
                devices = [d for d in devices if d["organization_id"] in values]
            elif key.startswith("filter[") and key.endswith("]") and "][" not in key:
                attribute = key[len("filter[") : -1]
                devices = [d for d in devices if str(d["attributes"].get(attribute)) in values]
        limit = int(query.get("page[limit]", ["50"])[0])
        offset = int(query.get("page[offset]", ["0"])[0])
        page = devices[offset : offset + limit]
        document: dict[str, Any] = {
            "data": [_resource(d) for d in page],
            "meta": {"page": {"total": len(devices)}},
            "links": {},
        }
        if offset + limit < len(devices):
            rest = [(k, v) for k, vs in query.items() for v in vs if not k.startswith("page[")]
            rest += [("page[limit]", str(limit)), ("page[offset]", str(offset + limit))]
            document["links"]["next"] = "/api/v2/security_devices?" + urlencode(rest)
        return document

    def _create_device(self, body: Any) -> dict:
        data = _resource_document(body, "POST")
        attributes = data["attributes"]
        _check_attributes(attributes, creating=True)
        relationships = data.get("relationships") or {}
        organization_id = _organization(relationships)
        if organization_id is None:
            raise _ApiError(
                422, 'relationships.organization is required: {"data": {"type": "organizations", "id": ...}}'
            )
        self._check_organization(organization_id)
        vendor_id = _vendor_id(relationships)
        now = _now()
        device_id = str(uuid.uuid4())
        device = {
            "id": device_id,
            "organization_id": organization_id,
            "vendor_id": vendor_id,
            "reads": 0,
            "attributes": {
                "name": attributes["name"],
                "location": attributes.get("location", ""),
                "device_type": attributes["device_type"],
                "plugin_slug": attributes.get("plugin_slug", ""),
                "device_spec": attributes.get("device_spec") or {},
                "properties": attributes.get("properties") or {},
                "task_source": attributes.get("task_source", "CUSTOMER_PREMISE"),
                "no_alert_threshold_hours": attributes.get("no_alert_threshold_hours"),
                "status": "unhealthy",
                "status_details": {"message": "Workbench has not polled this device yet"},
                "status_updated_at": now,
                "is_verifying_status": True,
                "has_console_credentials": False,
                "has_two_factor_secret": False,
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
            },
        }
        self._state.devices[device_id] = device
        return _resource(device)

    def _read_device(self, device_id: str) -> dict:
        device = self._device(device_id)
        device["reads"] += 1
        if device["reads"] >= self.healthy_after_reads and device["attributes"]["status"] != "healthy":
            device["attributes"].update(
                status="healthy",
                status_details={"message": "Polling the queue"},
                status_updated_at=_now(),
                is_verifying_status=False,
            )
        return _resource(device)

    def _patch_device(self, device_id: str, body: Any) -> dict:
        device = self._device(device_id)
        data = _resource_document(body, "PATCH")
        for given in (data.get("id"), body.get("id")):  # pyexclient sends the id beside "data"
            if given is not None and given != device_id:
                raise _ApiError(422, f"id {given} does not match the URL's {device_id}")
        attributes = data["attributes"]
        _check_attributes(attributes, creating=False)
        relationships = data.get("relationships") or {}
        organization_id = _organization(relationships)
        if organization_id not in (None, device["organization_id"]):
            raise _ApiError(422, "A security device cannot move to another organization")
        if "vendor" in relationships:
            device["vendor_id"] = _vendor_id(relationships)
        device["attributes"].update(copy.deepcopy(attributes))
        device["attributes"]["updated_at"] = _now()
        return _resource(device)

    def _device(self, device_id: str) -> dict:
        device = self._state.devices.get(device_id)
        if device is None:
            raise _ApiError(404, f"Security device {device_id} not found")
        return device

    def _check_organization(self, organization_id: str) -> None:
        if self.organization_id is not None and organization_id != self.organization_id:
            raise _ApiError(422, f"Organization {organization_id} does not exist or this API key cannot use it")


def start_workbench_emulator(
    host: str = "127.0.0.1", port: int = 0, api_key: str = "local-demo-key", organization_id: str | None = None
) -> WorkbenchEmulator:
    """Start the emulator in a background thread; ``.url``/``.port`` say where, ``.stop()`` ends it."""
    return WorkbenchEmulator(host=host, port=port, api_key=api_key, organization_id=organization_id).start()


class _Handler(BaseHTTPRequestHandler):
    server_version = "WorkbenchEmulator/1"
    protocol_version = "HTTP/1.1"
    # The headers and the body go out in two writes: with Nagle's algorithm the body waited for the client's
    # delayed ACK of the headers, 40 ms on every answer of a kept-alive connection.
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        emulator: WorkbenchEmulator = self.server.emulator  # type: ignore[attr-defined]
        status, headers, document = emulator.handle(self.command, self.path, dict(self.headers.items()), body)
        payload = b"" if status == 204 else json.dumps(document).encode()
        self.send_response(status)
        content_type = "application/json" if self.path.startswith("/_emulator") else "application/vnd.api+json"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        # The request line only (never headers), at debug level.
        logger.debug("workbench-emulator %s", format % args)


def _json_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise _ApiError(400, "The request body is not JSON") from None


def _resource_document(body: Any, method: str) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise _ApiError(422, f'{method} needs a JSON:API document: {{"data": {{...}}}}')
    data = body["data"]
    if data.get("type") != "security_devices":
        raise _ApiError(422, f'data.type must be "security_devices", not {data.get("type")!r}')
    if not isinstance(data.get("attributes"), dict):
        raise _ApiError(422, "data.attributes must be an object")
    return data


def _check_attributes(attributes: dict, creating: bool) -> None:
    read_only = sorted(set(attributes) & _READ_ONLY)
    if read_only:
        raise _ApiError(422, f"Read-only attributes cannot be set: {', '.join(read_only)}")
    unknown = sorted(set(attributes) - _WRITABLE)
    if unknown:
        raise _ApiError(422, f"Unknown attributes: {', '.join(unknown)}")
    if creating or "name" in attributes:
        name = attributes.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _ApiError(422, "name must be a non-empty string")
    if creating or "device_type" in attributes:
        if attributes.get("device_type") not in DEVICE_TYPES:
            raise _ApiError(
                422, f"device_type {attributes.get('device_type')!r} is not one of {', '.join(DEVICE_TYPES)}"
            )
    for key in ("device_spec", "properties"):
        if key in attributes and not isinstance(attributes[key], dict | None):
            raise _ApiError(422, f"{key} must be an object")


def _organization(relationships: dict) -> str | None:
    if "organization" not in relationships:
        return None
    data = (relationships.get("organization") or {}).get("data")
    if not isinstance(data, dict) or data.get("type") != "organizations" or not data.get("id"):
        raise _ApiError(422, 'relationships.organization.data must be {"type": "organizations", "id": ...}')
    return str(data["id"])


def _vendor_id(relationships: dict) -> str | None:
    if "vendor" not in relationships:
        return None
    data = (relationships.get("vendor") or {}).get("data")
    if data is None:
        return None
    if not isinstance(data, dict) or data.get("type") != "vendors" or not data.get("id"):
        raise _ApiError(422, 'relationships.vendor.data must be {"type": "vendors", "id": ...}')
    if data["id"] not in {vid for vid, _ in VENDORS}:
        raise _ApiError(422, f"Vendor {data['id']} does not exist")
    return str(data["id"])


def _resource(device: dict) -> dict:
    device_id = device["id"]
    relationships: dict[str, Any] = {
        "organization": {
            "data": {"type": "organizations", "id": device["organization_id"]},
            "links": {"related": f"/api/v2/security_devices/{device_id}/organization"},
        },
        "vendor": {
            "data": {"type": "vendors", "id": device["vendor_id"]} if device["vendor_id"] else None,
            "links": {"related": f"/api/v2/security_devices/{device_id}/vendor"},
        },
    }
    return {
        "id": device_id,
        "type": "security_devices",
        "attributes": copy.deepcopy(device["attributes"]),
        "relationships": relationships,
        "links": {"self": f"/api/v2/security_devices/{device_id}"},
    }


def _vendor(vendor_id: str, name: str) -> dict:
    return {"id": vendor_id, "type": "vendors", "attributes": {"name": name}}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
