"""Pure parts of ``local deploy``: DefinitionSubstitutions, parameter overrides, samconfig."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local_cloud.deploy import DeployError, parse_overrides, read_samconfig, resolve_for_moto, substitute_definition


def test_substitution_replaces_only_keys_of_the_map() -> None:
    definition = '{"A": "${Fn}", "B": "${NotMine}", "C": "${Flag}-${Count}"}'
    result = substitute_definition(definition, {"Fn": {"Fn::GetAtt": ["F", "Arn"]}, "Flag": True, "Count": 3})
    assert result == {
        "Fn::Join": ["", ['{"A": "', {"Fn::GetAtt": ["F", "Arn"]}, '", "B": "${NotMine}", "C": "true-3"}']]
    }


def test_literal_substitutions_leave_a_plain_string() -> None:
    assert substitute_definition('{"R": "arn:${Partition}:states"}', {"Partition": "aws"}) == '{"R": "arn:aws:states"}'


def test_resolve_turns_sam_output_into_a_definition_string_moto_reads() -> None:
    template = {
        "Resources": {
            "Flow": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "DefinitionString": {"Fn::Join": ["\n", ["{", '"StartAt": "${Start}"', "}"]]},
                    "DefinitionSubstitutions": {"Start": "Go"},
                },
            },
            "Other": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {"Definition": {"StartAt": "X"}}},
        }
    }
    resolved = resolve_for_moto(template)["Resources"]
    assert resolved["Flow"]["Properties"] == {"DefinitionString": '{\n"StartAt": "Go"\n}'}
    assert json.loads(resolved["Other"]["Properties"]["DefinitionString"]) == {"StartAt": "X"}
    assert "DefinitionSubstitutions" in template["Resources"]["Flow"]["Properties"]  # input untouched


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
