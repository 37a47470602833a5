"""``make lint`` type-checks every boto3 call: a wrong parameter name fails mypy, with the project's own
settings and the pinned stubs (the typed accessors of ``aws/clients.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]


def _mypy(tmp_path: Path, body: str) -> tuple[str, int]:
    module = tmp_path / "probe.py"
    module.write_text("from expel_onboarding.aws import clients\n\n\n" + body)
    stdout, stderr, status = api.run([
        "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(ROOT / ".mypy_cache"),
        "--no-error-summary", str(module)])
    return stdout + stderr, status


@pytest.mark.parametrize(("call", "complaint"), [
    ('clients.sns("us-east-1").delete_topic(TopicARN="arn")', 'Unexpected keyword argument "TopicARN"'),
    ('clients.s3().put_bucket_versioning(Bucket="b", VersioningConfiguration={"Status": "On"})', "Status"),
    ('clients.kms().create_keys(Description="d")', 'has no attribute "create_keys"'),
])
def test_a_wrong_operation_or_parameter_fails_the_type_check(tmp_path: Path, call: str, complaint: str) -> None:
    output, status = _mypy(tmp_path, f"def probe() -> None:\n    {call}\n")
    assert status == 1 and complaint in output, output


def test_a_right_call_passes_the_type_check(tmp_path: Path) -> None:
    call = 'clients.sns("us-east-1").delete_topic(TopicArn="arn")'
    output, status = _mypy(tmp_path, f"def probe() -> None:\n    {call}\n")
    assert status == 0, output
