"""The Workbench device payload (guide step 10): mapping, overrides, comparison, manual link."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from expel_onboarding import workbench_payload as payload
from expel_onboarding.errors import InvalidParameter

ROLE_ARN = "arn:aws:iam::123456789012:role/ExpelAssumeRole"
SQS_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/ExpelCloudTrailQueue"


def settings(**changes: object) -> payload.DeviceSettings:
    values: dict = {
        "name": "123456789012 CloudTrail",
        "location": "AWS cloud",
        "role_arn": ROLE_ARN,
        "role_session_name": "expel-cloudtrail-session",
        "region": "us-east-1",
        "sqs_url": SQS_URL,
        "account_id": "123456789012",
    }
    values.update(changes)
    return payload.DeviceSettings(**values)


def test_build_device_single_account_maps_guide_settings_and_leaves_account_number_out() -> None:
    request = payload.build_device(settings())

    assert request.attributes == {
        "name": "123456789012 CloudTrail",
        "location": "AWS cloud",
        "device_type": "CLOUD",
        "plugin_slug": "aws-cloudtrail",
        "device_spec": {
            "aws_organization": False,
            "existing_trail": False,
            "connection_type": "manual",
            "role_arn": ROLE_ARN,
            "role_session_name": "expel-cloudtrail-session",
            "region": "us-east-1",
            "sqs_url": SQS_URL,
        },
    }
    assert request.vendor_name == "Amazon Web Services"
    assert request.owner_property == "expel_onboarding_owner"


def test_build_device_organizations_mode_includes_account_number() -> None:
    spec = payload.build_device(settings(organization_mode=True)).attributes["device_spec"]

    assert spec["aws_organization"] is True
    assert spec["aws_account_id"] == "123456789012"


def test_build_device_does_not_share_state_with_the_default_profile() -> None:
    request = payload.build_device(settings(), '{"device_spec": {"extra": {"a": 1}}}')
    request.attributes["device_spec"]["extra"]["a"] = 2

    assert payload.DEFAULT_PROFILE["device_spec"] == {}
    assert payload.build_device(settings(), '{"device_spec": {"extra": {"a": 1}}}').attributes["device_spec"][
        "extra"
    ] == {"a": 1}


def test_overrides_rename_drop_and_add_keys_and_change_slug() -> None:
    overrides = json.dumps(
        {
            "plugin_slug": "aws_cloudtrail_v2",
            "device_type": "OTHER",
            "device_spec_keys": {"sqs_url": "queue_url", "existing_trail": None, "connection": ""},
            "device_spec": {"poll": {"enabled": True}},
            "properties": {"team": "secops"},
        }
    )

    request = payload.build_device(settings(), overrides)

    assert request.attributes["plugin_slug"] == "aws_cloudtrail_v2"
    assert request.attributes["device_type"] == "OTHER"
    assert request.attributes["device_spec"] == {
        "aws_organization": False,
        "role_arn": ROLE_ARN,
        "role_session_name": "expel-cloudtrail-session",
        "region": "us-east-1",
        "queue_url": SQS_URL,
        "poll": {"enabled": True},
    }
    assert request.attributes["properties"] == {"team": "secops"}


def test_empty_overrides_give_the_defaults() -> None:
    assert payload.device_profile("") == payload.DEFAULT_PROFILE
    assert payload.device_profile("  ") == payload.DEFAULT_PROFILE


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"plugin": "x"}', "unknown keys plugin"),
        ('{"device_type": "CLOUDY"}', "device_type 'CLOUDY' is not one of"),
        ('{"plugin_slug": ""}', "plugin_slug must be a non-empty string"),
        ('{"vendor_name": 3}', "vendor_name must be a string"),
        ('{"device_spec": []}', "device_spec must be a JSON object"),
        ('{"device_spec_keys": {"sqs": "queue"}}', "unknown settings sqs"),
        ('{"device_spec_keys": {"sqs_url": 5}}', "maps sqs_url to something other than a key name"),
    ],
)
def test_bad_overrides_raise_invalid_parameter_naming_it(overrides: str, problem: str) -> None:
    with pytest.raises(InvalidParameter) as raised:
        payload.build_device(settings(), overrides)

    assert raised.value.parameter == "WorkbenchDeviceOverrides"
    assert problem in str(raised.value)
    assert "Fix:" in str(raised.value)


def test_create_attributes_add_the_owner_marker_to_properties() -> None:
    request = payload.build_device(settings(), '{"properties": {"team": "secops"}}')

    attributes = request.create_attributes("123456789012/us-east-1/expel-onboarding")

    assert attributes["properties"] == {
        "team": "secops",
        "expel_onboarding_owner": "123456789012/us-east-1/expel-onboarding",
    }
    assert "expel_onboarding_owner" not in request.attributes.get("properties", {})


def test_create_attributes_without_owner_property_add_no_marker() -> None:
    request = payload.build_device(settings(), '{"owner_property": ""}')

    assert "properties" not in request.create_attributes("owner")
    assert payload.is_owned({"properties": {"": "owner"}}, "", "owner") is False


def test_is_owned_only_for_the_same_stack() -> None:
    attributes = {"properties": {"expel_onboarding_owner": "1/us-east-1/a"}}

    assert payload.is_owned(attributes, "expel_onboarding_owner", "1/us-east-1/a")
    assert not payload.is_owned(attributes, "expel_onboarding_owner", "1/us-east-1/b")
    assert not payload.is_owned({"properties": None}, "expel_onboarding_owner", "1/us-east-1/a")
    assert not payload.is_owned({}, "expel_onboarding_owner", "1/us-east-1/a")


def test_device_matches_ignores_what_workbench_adds() -> None:
    desired = payload.build_device(settings()).attributes
    existing = json.loads(json.dumps(desired))
    existing.update(status="healthy", created_at="2026-01-01T00:00:00Z", properties={"x": 1})
    existing["device_spec"]["added_by_workbench"] = "yes"

    assert payload.device_matches(existing, desired)


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a.update(location="on prem"),
        lambda a: a["device_spec"].update(sqs_url="https://sqs.us-east-1.amazonaws.com/1/other"),
        lambda a: a["device_spec"].pop("role_arn"),
        lambda a: a.pop("plugin_slug"),
        lambda a: a.update(device_spec=None),
    ],
)
def test_device_matches_false_when_a_desired_value_differs_or_is_missing(change) -> None:
    desired = payload.build_device(settings()).attributes
    existing = json.loads(json.dumps(desired))
    change(existing)

    assert not payload.device_matches(existing, desired)


def test_changed_attributes_lists_only_differences_and_keeps_foreign_spec_keys() -> None:
    desired = payload.build_device(settings(location="on prem")).attributes
    existing = payload.build_device(settings()).attributes
    existing["device_spec"]["added_by_workbench"] = "keep me"
    existing["device_spec"]["region"] = "eu-west-1"

    changes = payload.changed_attributes(existing, desired)

    assert set(changes) == {"location", "device_spec"}
    assert changes["location"] == "on prem"
    assert changes["device_spec"]["region"] == "us-east-1"
    assert changes["device_spec"]["added_by_workbench"] == "keep me"


def test_changed_attributes_empty_when_equal() -> None:
    desired = payload.build_device(settings()).attributes

    assert payload.changed_attributes(json.loads(json.dumps(desired)), desired) == {}


def test_manual_registration_url_prefills_the_guide_values() -> None:
    url = payload.manual_registration_url("https://workbench.expel.io/", settings().values())

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://workbench.expel.io/settings/security-devices"
    assert query == {
        "setupIntegration": ["aws"],
        "name": ["123456789012 CloudTrail"],
        "location": ["AWS cloud"],
        "awsOrganizations": ["no"],
        "existingTrail": ["no"],
        "connection": ["manual"],
        "roleArn": [ROLE_ARN],
        "roleSessionName": ["expel-cloudtrail-session"],
        "region": ["us-east-1"],
        "sqsUrl": [SQS_URL],
    }
    assert url.startswith("https://workbench.expel.io/settings/security-devices?setupIntegration=aws&")


def test_manual_registration_url_organizations_mode_carries_account_number() -> None:
    url = payload.manual_registration_url("https://wb", settings(organization_mode=True).values())

    query = parse_qs(urlsplit(url).query)
    assert query["accountNumber"] == ["123456789012"]
    assert query["awsOrganizations"] == ["yes"]


def test_owner_marker_names_account_region_and_stack() -> None:
    assert payload.owner_marker("123456789012", "us-east-1", "expel") == "123456789012/us-east-1/expel"


@pytest.mark.parametrize(
    "url", ["https://workbench.expel.io", "https://workbench.expel.io/", "http://127.0.0.1:8123", "http://localhost:1"]
)
def test_validate_base_url_accepts_https_and_local_http(url: str) -> None:
    assert payload.validate_base_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://workbench.expel.io", "ftp://x", "workbench.expel.io", "",
                                 "https://workbench.expel.io.attacker.example", "https://notexpel.io"])
def test_validate_base_url_refuses_clear_text_or_garbage(url: str) -> None:
    with pytest.raises(InvalidParameter) as raised:
        payload.validate_base_url(url)

    assert raised.value.parameter == "WorkbenchBaseUrl"


def test_deep_merge_merges_objects_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": [1]}, "d": 1}

    merged = payload.deep_merge(base, {"a": {"c": [2], "e": None}, "d": {"x": 1}})

    assert merged == {"a": {"b": 1, "c": [2], "e": None}, "d": {"x": 1}}
    assert base == {"a": {"b": 1, "c": [1]}, "d": 1}
