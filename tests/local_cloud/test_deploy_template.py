"""Pure parts of ``local deploy`` and of the local cloud's template handling: the ``sam deploy`` command,
parameter overrides, samconfig, and a state machine's definition as CloudFormation hands it over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from samcli.cli.types import CfnParameterOverridesType

from local_cloud.cloudformation_templates import TemplateError, definition_string, object_location
from local_cloud.deploy import (
    DeployError,
    parse_overrides,
    read_samconfig,
    sam_delete_command,
    sam_deploy_command,
    sam_parameter_overrides,
)


def test_substitutions_replace_only_keys_of_the_map() -> None:
    properties = {"DefinitionString": '{"A": "${Fn}", "B": "${NotMine}", "C": "${Flag}-${Count}"}',
                  "DefinitionSubstitutions": {"Fn": "arn:aws:lambda:us-east-1:1:function:f", "Flag": True, "Count": 3}}
    assert definition_string(properties, "1", "aws") == (
        '{"A": "arn:aws:lambda:us-east-1:1:function:f", "B": "${NotMine}", "C": "true-3"}')


def test_a_definition_object_becomes_the_definition_string_with_its_substitutions() -> None:
    properties = {"Definition": {"StartAt": "${Start}"}, "DefinitionSubstitutions": {"Start": "Go"}}
    assert json.loads(definition_string(properties, "1", "aws")) == {"StartAt": "Go"}


@pytest.mark.parametrize(("url", "location"), [
    ("https://s3.amazonaws.com/b/k/t.yaml", ("b", "k/t.yaml", None)),
    ("https://s3.eu-west-1.amazonaws.com/b/t.yaml?versionId=v1", ("b", "t.yaml", "v1")),
    ("https://s3-eu-west-1.amazonaws.com/b/t.yaml", ("b", "t.yaml", None)),
    ("https://b.s3.amazonaws.com/t.yaml", ("b", "t.yaml", None)),
    ("https://my.dotted.bucket.s3.eu-west-1.amazonaws.com/t.yaml", ("my.dotted.bucket", "t.yaml", None)),
    ("http://127.0.0.1:4566/b/t.yaml", ("b", "t.yaml", None)),
])
def test_template_url_forms_name_their_bucket_key_and_version(url: str, location: tuple) -> None:
    assert object_location(url, ("127.0.0.1:4566",)) == location


@pytest.mark.parametrize("url", ["http://s3.amazonaws.com/b/t.yaml", "https://b.s3.example.com/t.yaml",
                                 "http://127.0.0.1:9999/b/t.yaml", "https://s3.amazonaws.com/b", "ftp://x/y"])
def test_other_urls_are_not_template_urls(url: str) -> None:
    with pytest.raises(TemplateError, match="TemplateURL must be a supported URL."):
        object_location(url, ("127.0.0.1:4566",))


def test_parameter_overrides_reach_sam_exactly_as_given() -> None:
    values = {"A": "two words", "B": "x=y", "C": "http://127.0.0.1:4567", "D": '{"a": "b c"}', "E": "",
              "F": r"back\slash", "G": "it's"}
    assert CfnParameterOverridesType().convert(tuple(sam_parameter_overrides(values)), None, None) == values


def test_the_sam_deploy_command_is_the_one_a_person_types(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text("version = 0.1\n")
    command = sam_deploy_command(Path("build/template.yaml"), "stack", "eu-west-1", {"A": "1"}, config, "dev")
    assert command[1:] == [
        "deploy", "--template-file", "build/template.yaml", "--stack-name", "stack", "--region", "eu-west-1",
        "--capabilities", "CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "--no-confirm-changeset",
        "--no-fail-on-empty-changeset", "--no-progressbar", "--resolve-s3", "--config-file", str(config.resolve()),
        "--config-env", "dev", "--parameter-overrides", 'A="1"']
    with_bucket = sam_deploy_command(Path("t.yaml"), "s", "us-east-1", {}, s3_bucket="artifacts")
    assert "--resolve-s3" not in with_bucket and with_bucket[-2:] == ["--s3-bucket", "artifacts"]


def test_the_sam_delete_command_is_the_one_a_person_types() -> None:
    assert sam_delete_command("stack", "eu-west-1")[1:] == [
        "delete", "--stack-name", "stack", "--region", "eu-west-1", "--no-prompts"]


def test_overrides_accept_separate_items_and_sam_style_strings() -> None:
    assert parse_overrides(["A=1", "B='two words' C=3", "D=x=y", "E=three words here"]) == {
        "A": "1",
        "B": "two words",
        "C": "3",
        "D": "x=y",
        "E": "three words here",
    }
    with pytest.raises(DeployError):
        parse_overrides(["nonsense"])


def test_samconfig_parameter_overrides_are_the_defaults(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text('version = 0.1\n[default.deploy.parameters]\nparameter_overrides = "Greeting=hi Fail=false"\n')
    assert read_samconfig(config) == {"Greeting": "hi", "Fail": "false"}
    assert read_samconfig(tmp_path / "missing.toml") == {}


def test_build_is_stale_when_missing_or_older_than_a_source(tmp_path: Path) -> None:
    import os

    from local_cloud.deploy import build_is_stale

    built = tmp_path / ".aws-sam" / "build" / "template.yaml"
    (tmp_path / "functions" / "step").mkdir(parents=True)
    source = tmp_path / "functions" / "step" / "app.py"
    source.write_text("x = 1\n")
    assert build_is_stale(built, tmp_path)
    built.parent.mkdir(parents=True)
    built.write_text("{}")
    os.utime(source, (1, 1))
    assert not build_is_stale(built, tmp_path)
    os.utime(source, None)
    os.utime(built, (2, 2))
    assert build_is_stale(built, tmp_path)


def test_sam_runs_against_the_local_cloud_with_made_up_credentials_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from local_cloud.api_calls import TOOLING_APP_ID
    from local_cloud.deploy import FAKE_CREDENTIALS, sam_environment

    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "a-real-session")
    env = sam_environment("http://127.0.0.1:4566", "eu-west-1")

    assert {k: v for k, v in env.items() if k.startswith("AWS_")} == {
        **FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1", "AWS_SDK_UA_APP_ID": TOOLING_APP_ID}


def test_a_noecho_value_is_masked_wherever_the_command_is_shown() -> None:
    from local_cloud.deploy import masked

    declared = {"WorkbenchApiKey": {"Type": "String", "NoEcho": True}, "Guid": {"Type": "String"},
                "Empty": {"Type": "String", "NoEcho": "true"}}
    assert masked({"WorkbenchApiKey": "secret", "Guid": "g", "Empty": ""}, declared) == {
        "WorkbenchApiKey": "****", "Guid": "g", "Empty": ""}


def test_sam_checks_the_local_stack_twice_a_second_unless_the_person_set_how_often(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from local_cloud.deploy import sam_environment

    monkeypatch.delenv("SAM_CLI_POLL_DELAY", raising=False)
    assert sam_environment("http://127.0.0.1:4566", "us-east-1")["SAM_CLI_POLL_DELAY"] == "0.5"
    monkeypatch.setenv("SAM_CLI_POLL_DELAY", "3")
    assert sam_environment("http://127.0.0.1:4566", "us-east-1")["SAM_CLI_POLL_DELAY"] == "3"
