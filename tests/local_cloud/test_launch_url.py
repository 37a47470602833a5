"""The quick-create link: only declared parameters, never NoEcho ones, every value percent-encoded."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from local_cloud.deploy import load_template
from local_cloud.launch_url import LaunchError, check_names, check_parameters, quick_create_url, template_url
from tests.local_cloud.harness import REPO

DECLARED = load_template(REPO / "template.yaml")["Parameters"]
GUID = "4f9c2a1e-7b3d-4e5f-9a8b-1c2d3e4f5a6b"


def fragment_query(url: str) -> dict[str, str]:
    fragment = urlsplit(url).fragment
    path, _, query = fragment.partition("?")
    assert path == "/stacks/quickcreate"
    return dict(parse_qsl(query, keep_blank_values=True, strict_parsing=True))


def test_link_opens_quick_create_in_the_region_with_template_stack_and_parameters() -> None:
    template = template_url("my-artifacts", "eu-west-1", "onboarding/template-abc.yaml")
    url = quick_create_url("eu-west-1", template, "expel-onboarding", {"WorkbenchGuid": GUID, "TrailName": "T1"})
    assert url.startswith("https://eu-west-1.console.aws.amazon.com/cloudformation/home?region=eu-west-1#/stacks/")
    assert fragment_query(url) == {
        "templateURL": "https://my-artifacts.s3.eu-west-1.amazonaws.com/onboarding/template-abc.yaml",
        "stackName": "expel-onboarding",
        "param_WorkbenchGuid": GUID,
        "param_TrailName": "T1",
    }


def test_values_with_reserved_characters_are_percent_encoded_and_read_back_unchanged() -> None:
    value = 'AWS cloud & more/#?=+%{"a": 1}'
    url = quick_create_url(
        "us-east-1", "https://b.s3.us-east-1.amazonaws.com/k.yaml", "s", {"WorkbenchLocation": value}
    )
    query = urlsplit(url).fragment.partition("?")[2]
    assert query.count("&") == 2 and query.count("=") == 3  # nothing of the value leaks into the structure
    assert " " not in url and "#" not in url.split("#", 1)[1]
    assert fragment_query(url)["param_WorkbenchLocation"] == value
    assert "templateURL=https%3A%2F%2Fb.s3.us-east-1.amazonaws.com%2Fk.yaml" in url


def test_template_url_uses_path_style_for_bucket_names_with_dots_and_encodes_the_key() -> None:
    assert (
        template_url("my.bucket", "us-east-2", "a b/t.yaml")
        == "https://s3.us-east-2.amazonaws.com/my.bucket/a%20b/t.yaml"
    )
    assert unquote(template_url("plain", "us-east-2", "a b/t.yaml")).endswith("/a b/t.yaml")


def test_noecho_parameter_is_refused_with_a_message_naming_it() -> None:
    with pytest.raises(LaunchError, match="WorkbenchApiKey is NoEcho"):
        check_parameters(DECLARED, {"WorkbenchGuid": GUID, "WorkbenchApiKey": "secret-key"})


def test_every_noecho_parameter_of_the_template_is_refused() -> None:
    secret = [name for name, spec in DECLARED.items() if str(spec.get("NoEcho", "")).lower() == "true"]
    assert secret == ["WorkbenchApiKey"]
    for name in secret:
        with pytest.raises(LaunchError, match="NoEcho"):
            check_parameters(DECLARED, {name: ""})


def test_unknown_parameter_is_rejected_naming_it() -> None:
    with pytest.raises(LaunchError, match="no parameter WorkbenchGuld"):
        check_parameters(DECLARED, {"WorkbenchGuld": GUID})


def test_value_outside_the_templates_constraints_is_rejected_before_the_console() -> None:
    with pytest.raises(LaunchError, match="WorkbenchGuid='not-a-guid': must be the Workbench organization GUID"):
        check_parameters(DECLARED, {"WorkbenchGuid": "not-a-guid"})
    with pytest.raises(LaunchError, match="must be one of true, false"):
        check_parameters(DECLARED, {"OrganizationMode": "yes"})
    assert check_parameters(DECLARED, {"WorkbenchGuid": GUID, "OrganizationMode": "true"})


@pytest.mark.parametrize(
    ("bucket", "region", "stack", "problem"),
    [
        ("Bad_Bucket", "us-east-1", "s", "--bucket"),
        ("b-1", "mars", "s", "--region"),
        ("b-1", "us-east-1", "1x", "--stack-name"),
    ],
)
def test_names_that_aws_would_refuse_are_rejected(bucket: str, region: str, stack: str, problem: str) -> None:
    with pytest.raises(LaunchError, match=problem):
        check_names(bucket, region, stack)
