"""The Workbench security device for AWS CloudTrail (guide step 10), as data. Pure: no I/O.

ASSUMPTION. Workbench's API for security devices is public (pyexclient documents ``name``,
``location``, ``device_type``, ``device_spec``, ``plugin_slug``, ``properties`` and the
``organization``/``vendor`` relationships), but what an *AWS CloudTrail* device holds is not:
the plugin slug, the vendor's name and the ``device_spec`` keys below are our best reading of the
Workbench form the guide describes, not a documented contract. They all live in ``DEFAULT_PROFILE``
and nowhere else, and a person who knows better overrides any of them without a code change through
the ``WorkbenchDeviceOverrides`` parameter: a JSON object deep-merged over ``DEFAULT_PROFILE``, e.g.
``{"plugin_slug": "aws_cloudtrail", "device_spec_keys": {"sqs_url": "queue_url"}}``. A setting
mapped to ``null`` or ``""`` is left out of ``device_spec``.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from expel_onboarding.errors import InvalidParameter

OVERRIDES_PARAMETER = "WorkbenchDeviceOverrides"
BASE_URL_PARAMETER = "WorkbenchBaseUrl"

# Restricted by Workbench (pyexclient's SecurityDevices docs).
DEVICE_TYPES = ("ENDPOINT", "NETWORK", "SIEM", "OTHER", "CLOUD")

# The guide's step 10 form, one entry per field or question, in the guide's order.
SETTINGS = (
    "name",
    "location",
    "organization_mode",  # "Are you using AWS organizations?"
    "existing_trail",  # "Do you have an existing CloudTrail that you want Expel to reuse?" (ExistingTrailName)
    "connection",  # "How would you like to connect?" (always Manual connection here)
    "role_arn",
    "role_session_name",
    "region",
    "sqs_url",
    "account_id",  # "If you use AWS Organizations, input your AWS account number"
)

# ASSUMED (see the module docstring). name and location are device attributes; everything else the
# form asks goes into device_spec under these keys.
DEFAULT_PROFILE: dict[str, Any] = {
    "device_type": "CLOUD",
    "plugin_slug": "aws-cloudtrail",
    # Looked up with GET /api/v2/vendors?filter[name]=...; "" sends no vendor relationship.
    "vendor_name": "Amazon Web Services",
    "device_spec_keys": {
        "organization_mode": "aws_organization",
        "existing_trail": "existing_trail",
        "connection": "connection_type",
        "role_arn": "role_arn",
        "role_session_name": "role_session_name",
        "region": "region",
        "sqs_url": "sqs_url",
        "account_id": "aws_account_id",
    },
    # Constant device_spec entries, merged over the mapped settings.
    "device_spec": {},
    # Constant device properties.
    "properties": {},
    # The property that marks a device as made by one onboarding stack, so a rerun may update it and
    # a stack delete may remove it, and nothing else is ever touched. "" turns the marker off (then the
    # onboarding only creates, or leaves alone a device that already matches).
    "owner_property": "expel_onboarding_owner",
}

# ASSUMED as well: the query parameters the Workbench "Add Security Device" page reads to prefill
# the form. Harmless if ignored: the page still opens on the AWS CloudTrail integration.
MANUAL_REGISTRATION_PATH = "/settings/security-devices"
_MANUAL_QUERY_NAMES = {
    "name": "name",
    "location": "location",
    "organization_mode": "awsOrganizations",
    "existing_trail": "existingTrail",
    "connection": "connection",
    "role_arn": "roleArn",
    "role_session_name": "roleSessionName",
    "region": "region",
    "sqs_url": "sqsUrl",
    "account_id": "accountNumber",
}

_FIX = (
    "give a JSON object with any of the keys device_type, plugin_slug, vendor_name, device_spec_keys, "
    "device_spec, properties, owner_property (or leave the parameter empty for the defaults)"
)


@dataclass(frozen=True)
class DeviceSettings:
    """What a person types into Workbench's form in guide step 10."""

    name: str
    location: str
    role_arn: str
    role_session_name: str
    region: str
    sqs_url: str
    organization_mode: bool = False
    account_id: str = ""  # only sent in Organizations mode, as the guide says
    existing_trail: bool = False
    connection: str = "manual"

    def values(self) -> dict[str, Any]:
        values = asdict(self)
        if not self.organization_mode:
            values["account_id"] = ""
        return values


@dataclass(frozen=True)
class DeviceRequest:
    """The device we want: attributes to compare/send, plus how to find the vendor and mark ownership."""

    attributes: dict[str, Any]
    vendor_name: str
    owner_property: str

    def create_attributes(self, owner: str) -> dict[str, Any]:
        """Attributes for a POST: the desired ones plus our ownership marker."""
        attributes = copy.deepcopy(self.attributes)
        if self.owner_property:
            attributes["properties"] = {**attributes.get("properties", {}), self.owner_property: owner}
        return attributes


def owner_marker(account_id: str, region: str, stack_name: str) -> str:
    """Stack names are unique per account and region, so this names one onboarding stack."""
    return f"{account_id}/{region}/{stack_name}"


def device_profile(overrides_json: str = "") -> dict[str, Any]:
    """``DEFAULT_PROFILE`` with the validated ``WorkbenchDeviceOverrides`` deep-merged over it."""
    return dict(deep_merge(DEFAULT_PROFILE, parse_overrides(overrides_json)))


def parse_overrides(overrides_json: str) -> dict[str, Any]:
    if not overrides_json or not overrides_json.strip():
        return {}
    try:
        overrides = json.loads(overrides_json)
    except json.JSONDecodeError as exc:
        raise InvalidParameter(
            OVERRIDES_PARAMETER, f"is not valid JSON ({exc.msg} at character {exc.pos})", _FIX
        ) from None
    if not isinstance(overrides, dict):
        raise InvalidParameter(OVERRIDES_PARAMETER, "must be a JSON object", _FIX)
    unknown = sorted(set(overrides) - set(DEFAULT_PROFILE))
    if unknown:
        raise InvalidParameter(OVERRIDES_PARAMETER, f"has unknown keys {', '.join(unknown)}", _FIX)
    if "device_type" in overrides and overrides["device_type"] not in DEVICE_TYPES:
        raise InvalidParameter(
            OVERRIDES_PARAMETER,
            f"device_type {overrides['device_type']!r} is not one of {', '.join(DEVICE_TYPES)}",
            "use one of Workbench's device types",
        )
    if "plugin_slug" in overrides and not (isinstance(overrides["plugin_slug"], str) and overrides["plugin_slug"]):
        raise InvalidParameter(OVERRIDES_PARAMETER, "plugin_slug must be a non-empty string", _FIX)
    for key in ("vendor_name", "owner_property"):
        if key in overrides and not isinstance(overrides[key], str):
            raise InvalidParameter(OVERRIDES_PARAMETER, f"{key} must be a string", _FIX)
    for key in ("device_spec_keys", "device_spec", "properties"):
        if key in overrides and not isinstance(overrides[key], dict):
            raise InvalidParameter(OVERRIDES_PARAMETER, f"{key} must be a JSON object", _FIX)
    keys = overrides.get("device_spec_keys", {})
    unknown = sorted(set(keys) - set(SETTINGS))
    if unknown:
        raise InvalidParameter(
            OVERRIDES_PARAMETER,
            f"device_spec_keys has unknown settings {', '.join(unknown)}",
            f"map only these settings: {', '.join(SETTINGS)}",
        )
    bad = sorted(k for k, v in keys.items() if v is not None and not isinstance(v, str))
    if bad:
        raise InvalidParameter(
            OVERRIDES_PARAMETER,
            f"device_spec_keys maps {', '.join(bad)} to something other than a key name",
            "give each setting a device_spec key name (a string), or null to leave it out",
        )
    return overrides


def build_device(settings: DeviceSettings, overrides_json: str = "") -> DeviceRequest:
    """The security device for these settings, shaped by the (possibly overridden) profile."""
    profile = device_profile(overrides_json)
    values = settings.values()
    spec: dict[str, Any] = {}
    for setting, key in profile["device_spec_keys"].items():
        if not key or setting in ("name", "location"):
            continue
        value = values[setting]
        if value in ("", None):
            continue
        spec[key] = value
    attributes: dict[str, Any] = {
        "name": settings.name,
        "location": settings.location,
        "device_type": profile["device_type"],
        "plugin_slug": profile["plugin_slug"],
        "device_spec": deep_merge(spec, profile["device_spec"]),
    }
    if profile["properties"]:
        attributes["properties"] = copy.deepcopy(profile["properties"])
    return DeviceRequest(attributes, profile["vendor_name"], profile["owner_property"])


def device_matches(existing_attributes: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """True when every desired attribute already holds (extra keys Workbench adds are ignored)."""
    return _contains(existing_attributes, desired)


def changed_attributes(existing_attributes: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The PATCH body's attributes: only what differs. Objects are merged into what Workbench holds,
    so keys Workbench (or a person) added to device_spec or properties survive the update."""
    changes: dict[str, Any] = {}
    for key, want in desired.items():
        have = existing_attributes.get(key)
        if _contains({key: have}, {key: want}):
            continue
        changes[key] = deep_merge(have, want) if isinstance(have, dict) and isinstance(want, dict) else want
    return changes


def is_owned(existing_attributes: Mapping[str, Any], owner_property: str, owner: str) -> bool:
    if not owner_property:
        return False
    properties = existing_attributes.get("properties") or {}
    return isinstance(properties, dict) and properties.get(owner_property) == owner


def manual_registration_url(base_url: str, values: Mapping[str, Any]) -> str:
    """Workbench's "Add Security Device" page for AWS CloudTrail with the guide's values filled in:
    the fallback when no API key is given. Empty values are left out."""
    query: list[tuple[str, str]] = [("setupIntegration", "aws")]
    for setting, name in _MANUAL_QUERY_NAMES.items():
        value = values.get(setting)
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        query.append((name, str(value)))
    return f"{base_url.rstrip('/')}{MANUAL_REGISTRATION_PATH}?{urlencode(query)}"


def validate_base_url(base_url: str) -> str:
    """https to an Expel host only, or http to this machine (the local Workbench emulator): the API key
    travels in a header, so it must never cross a network in clear nor go to a host someone with
    UpdateStack rights chose."""
    parts = urlsplit(base_url)
    fix = "use https://workbench.expel.io (or http://127.0.0.1:<port> for the local emulator)"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidParameter(BASE_URL_PARAMETER, f"{base_url!r} is not an http(s) URL", fix)
    if _is_loopback(parts.hostname):
        return base_url.rstrip("/")
    if parts.scheme == "http":
        raise InvalidParameter(BASE_URL_PARAMETER, "plain http would send the API key unencrypted", fix)
    host = parts.hostname.lower()
    if host != "expel.io" and not host.endswith(".expel.io"):
        raise InvalidParameter(BASE_URL_PARAMETER, f"{host} is not an Expel host, and the Workbench API key "
                                                   "would be sent to it", fix)
    return base_url.rstrip("/")


def deep_merge(base: Any, override: Any) -> Any:
    """``override`` over ``base``: objects merge key by key, anything else is replaced. No aliasing."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return copy.deepcopy(override)
    merged = copy.deepcopy(base)
    for key, value in override.items():
        merged[key] = deep_merge(merged.get(key), value)
    return merged


def _contains(have: Any, want: Any) -> bool:
    if isinstance(want, Mapping):
        return isinstance(have, Mapping) and all(
            key in have and _contains(have[key], value) for key, value in want.items()
        )
    return bool(have == want)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
