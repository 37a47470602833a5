"""Workbench's security devices, through Expel's own client ``pyexclient``.

pyexclient's defaults suit a person at a terminal, not a Lambda, so ``_Client`` changes three:
- it asks on stdin before every DELETE (``prompt_on_delete``): turned off;
- its urllib3 Retry (3 retries, backoff factor 2, honours any Retry-After) can wait for minutes and
  retries POST on 5xx, which may create a device twice: replaced by a bounded one (below), and every
  client has a time budget after which it stops and lets the state machine retry;
- it turns error responses into a bare ``HTTPError(detail)`` that has lost the status code: we ask it
  for the raw response (``skip_raise=True``) and map the status ourselves.
Everything else (URLs, JSON:API bodies, filters, pagination, PATCH of changed fields) is pyexclient's.

The API key is only ever in the client's session header. Messages carry Workbench's ``detail`` with
the key masked, never a header.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from aws_lambda_powertools import Logger
from pyexclient.workbench import SecurityDevices, WorkbenchClient, relationship
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from expel_onboarding.drift import refuse_write
from expel_onboarding.errors import TransientError, WorkbenchError

logger = Logger(child=True)

# A Lambda must answer well within its timeout: at most 2 retries, short sleeps, Retry-After capped.
RETRIES = 2
BACKOFF_FACTOR = 0.5
BACKOFF_MAX_SECONDS = 4.0
TIMEOUT_SECONDS = (3.05, 10.0)  # (connect, read) per request
BUDGET_SECONDS = 45.0  # no new request starts after this; the state machine retries the step

UNAUTHORIZED = (
    "Workbench rejected the API key (HTTP 401) — create one under Organization Settings → Service "
    "Accounts and update the secret named in WorkbenchApiKeySecretArn"
)
FORBIDDEN = (
    "Workbench refused the request (HTTP 403): the key's role cannot create security devices. Give the "
    "service account a role that may manage security devices (Organization Settings → Service Accounts), "
    "or leave WorkbenchApiKeySecretArn empty and register the device by hand"
)


class WorkbenchHttpError(WorkbenchError):
    """Workbench answered with an error status; ``status`` lets callers treat 404 as "gone"."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class _BoundedRetry(Retry):
    """pyexclient's retry on 429/500/503/504, bounded, and safe for POST: a POST is retried only on 429
    (Workbench did not process it); after a 5xx or a read timeout the device may exist, so the step
    fails transiently and its rerun looks the device up before creating anything."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if method.upper() == "POST":
            return status_code == 429 and bool(self.total)
        return super().is_retry(method, status_code, has_retry_after)

    def get_retry_after(self, response: Any) -> float | None:
        # A Retry-After of an hour would outlive the Lambda; cap it like the backoff.
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, BACKOFF_MAX_SECONDS)


def _retry(retries: int, backoff_factor: float) -> Retry:
    return _BoundedRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        status_forcelist=(429, 500, 503, 504),
        # PATCH is safe to repeat here: it sets absolute values.
        allowed_methods=frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PATCH"}),
        backoff_factor=backoff_factor,
        backoff_max=BACKOFF_MAX_SECONDS,
        raise_on_status=False,
    )


class _Client(WorkbenchClient):  # type: ignore[misc]  # pyexclient ships no type information
    """pyexclient's WorkbenchClient with the Lambda-friendly defaults described in the module docstring."""

    def __init__(self, base_url: str, token: str, retries: int, backoff_factor: float, budget: float) -> None:
        self._retries = _retry(retries, backoff_factor)
        self._deadline = time.monotonic() + budget
        self._secret = token
        super().__init__(base_url, token=token, prompt_on_delete=False)
        self.default_request_kwargs = {"timeout": TIMEOUT_SECONDS}

    def make_session(self) -> None:
        super().make_session()
        adapter = HTTPAdapter(max_retries=self._retries)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def request(self, method: str, url: str, data: Any = None, skip_raise: bool = False, **kwargs: Any) -> Any:
        if time.monotonic() > self._deadline:
            raise TransientError(
                f"Workbench at {self.base_url} is answering slowly; stopped before the Lambda times out. "
                "The state machine retries this step."
            )
        kwargs["prompt_on_delete"] = False
        if method.upper() != "GET":
            refuse_write(f"Workbench {method.upper()} {url.split('?', 1)[0]}")
        try:
            resp = super().request(method, url, data=data, skip_raise=True, **kwargs)
        except requests.exceptions.RequestException as exc:
            # `from None`: a requests exception holds the prepared request, headers included.
            raise TransientError(
                f"Could not reach Workbench at {self.base_url} ({type(exc).__name__}). Check "
                "WorkbenchBaseUrl and the Lambda's outbound network; the state machine retries this step."
            ) from None
        if resp.status_code >= 400 and not skip_raise:
            raise self._error(method, url, resp)
        return resp

    def _error(self, method: str, url: str, resp: requests.Response) -> Exception:
        status = resp.status_code
        detail = self._mask(_detail(resp))
        path = url.split("?", 1)[0]
        if status == 401:
            return WorkbenchHttpError(401, UNAUTHORIZED)
        if status == 403:
            return WorkbenchHttpError(403, FORBIDDEN)
        if status in (429, 500, 502, 503, 504):
            return TransientError(
                f"Workbench is busy or unavailable (HTTP {status} to {method.upper()} {path}): {detail}. "
                "The state machine retries this step."
            )
        if status == 404:
            return WorkbenchHttpError(404, f"Workbench found nothing at {method.upper()} {path} (HTTP 404): {detail}")
        if status in (400, 409, 422):
            return WorkbenchHttpError(
                status,
                f"Workbench rejected the security device (HTTP {status}): {detail}. Check the values "
                "above and the WorkbenchDeviceOverrides parameter, or register the device by hand.",
            )
        return WorkbenchHttpError(status, f"Workbench answered HTTP {status} to {method.upper()} {path}: {detail}")

    def _mask(self, text: str) -> str:
        return text.replace(self._secret, "[redacted]") if self._secret else text


def _detail(resp: requests.Response) -> str:
    """Workbench's own explanation: JSON:API ``errors[0].detail`` (or title/status), else a short note."""
    try:
        body = resp.json()
    except ValueError:
        return "the response was not JSON"
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        for key in ("detail", "title", "status"):
            if first.get(key):
                return str(first[key])[:500]
    if isinstance(body, dict) and (body.get("message") or body.get("error")):
        return str(body.get("message") or body.get("error"))[:500]
    return "no details given"


def _not_json_api[**P, R](method: Callable[P, R]) -> Callable[P, R]:
    """pyexclient indexes responses freely: a URL that answers 200 with HTML ends up here."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (ValueError, KeyError) as exc:
            base = getattr(args[0], "base_url", "")
            raise WorkbenchError(
                f"Workbench at {base} did not answer with JSON:API ({type(exc).__name__}); check WorkbenchBaseUrl"
            ) from None

    return wrapper


@dataclass(frozen=True)
class Device:
    """A security device as Workbench holds it."""

    id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    organization_id: str | None = None
    _resource: Any = field(default=None, repr=False, compare=False)

    @property
    def status(self) -> str:
        return str(self.attributes.get("status") or "")


class Workbench:
    """The few security-device operations guide step 10 needs. Use as a context manager."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        retries: int = RETRIES,
        backoff_factor: float = BACKOFF_FACTOR,
        budget_seconds: float = BUDGET_SECONDS,
    ) -> None:
        if not api_key:
            raise WorkbenchError("The Workbench API key is empty; put the key into the secret")
        self.base_url = base_url.rstrip("/")
        self._client = _Client(self.base_url, api_key, retries, backoff_factor, budget_seconds)

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.session.close()

    @_not_json_api
    def find_devices(self, organization_id: str, name: str) -> list[Device]:
        """Devices of this organization with exactly this name, oldest first."""
        found = self._client.security_devices.search(relationship("organization.id", organization_id), name=name)
        devices = [_device(resource) for resource in found]
        # Filter again here: the server's filter is the first line, not the only one, against duplicates.
        return [d for d in devices if d.attributes.get("name") == name and d.organization_id in (None, organization_id)]

    @_not_json_api
    def find_devices_by_plugin(self, organization_id: str, plugin_slug: str) -> list[Device]:
        """Devices of this organization made by one integration (whatever their names), oldest first."""
        found = self._client.security_devices.search(
            relationship("organization.id", organization_id), plugin_slug=plugin_slug
        )
        devices = [_device(resource) for resource in found]
        return [
            d
            for d in devices
            if d.attributes.get("plugin_slug") == plugin_slug and d.organization_id in (None, organization_id)
        ]

    @_not_json_api
    def find_vendor_id(self, name: str) -> str | None:
        for vendor in self._client.vendors.search(name=name):
            if vendor.name == name:
                return str(vendor.id)
        return None

    @_not_json_api
    def get_device(self, device_id: str) -> Device | None:
        """The device, or None when Workbench has no such device (deleted, or never there)."""
        try:
            return _device(self._client.security_devices.get(id=device_id))
        except WorkbenchHttpError as exc:
            if exc.status == 404:
                return None
            raise

    @_not_json_api
    def create_device(self, organization_id: str, attributes: dict[str, Any], vendor_id: str | None) -> Device:
        relationships = {"relationship_organization": organization_id}
        if vendor_id:
            relationships["relationship_vendor"] = vendor_id
        created = self._client.security_devices.create(**attributes, **relationships).save()
        logger.info("Created the Workbench security device", extra={"device_id": created.id})
        return _device(created)

    @_not_json_api
    def patch_device(self, device: Device, changes: dict[str, Any]) -> Device:
        """PATCH only ``changes`` (pyexclient sends just the fields that were set)."""
        resource = device._resource or self._client.security_devices.get(id=device.id)
        for key, value in changes.items():
            # pyexclient refuses to set an attribute the read did not return; declare it first.
            resource._attrs.setdefault(key, None)
            setattr(resource, key, value)
        updated = resource.save()
        logger.info("Updated the Workbench security device", extra={"device_id": device.id, "changed": sorted(changes)})
        return _device(updated)

    @_not_json_api
    def delete_device(self, device_id: str) -> bool:
        """Delete it; False when it was already gone (not found counts as done)."""
        resource = SecurityDevices({"id": device_id, "type": "security_devices", "attributes": {}}, self._client)
        try:
            resource.delete(prompt_on_delete=False)
        except WorkbenchHttpError as exc:
            if exc.status == 404:
                return False
            raise
        logger.info("Deleted the Workbench security device", extra={"device_id": device_id})
        return True

    def device_status(self, device_id: str) -> str | None:
        """Workbench's status word (healthy, unhealthy, health_checks_not_supported), None if gone."""
        device = self.get_device(device_id)
        return None if device is None else device.status


def _device(resource: Any) -> Device:
    attributes = json.loads(resource.to_json())
    attributes.pop("id", None)
    try:
        organization_id = resource.relationship.organization.id
    except (KeyError, AttributeError):
        organization_id = None
    return Device(id=str(resource.id), attributes=attributes, organization_id=organization_id, _resource=resource)
