"""``make lint`` type-checks every boto3 call: a wrong parameter name fails mypy, with the project's own
settings and the pinned stubs (the typed accessors of ``aws/clients.py``)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]

WRONG_CALLS = [
    ('clients.sns("us-east-1").delete_topic(TopicARN="arn")', 'Unexpected keyword argument "TopicARN"'),
    ('clients.s3().put_bucket_versioning(Bucket="b", VersioningConfiguration={"Status": "On"})', "Status"),
    ('clients.kms().create_keys(Description="d")', 'has no attribute "create_keys"'),
]
RIGHT_CALL = 'clients.sns("us-east-1").delete_topic(TopicArn="arn")'


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each call in a module of its own, all type-checked by one mypy run (a run takes a second even with its
    cache): call -> what mypy said about that module."""
    directory = tmp_path_factory.mktemp("typing")
    modules = {}
    for number, call in enumerate([call for call, _ in WRONG_CALLS] + [RIGHT_CALL]):
        module = modules[call] = directory / f"probe{number}.py"
        module.write_text(f"from expel_onboarding.aws import clients\n\n\ndef probe() -> None:\n    {call}\n")
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    try:
        stdout, stderr, status = api.run([
            "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(ROOT / ".mypy_cache"),
            "--no-error-summary", *map(str, modules.values())])
    finally:
        # mypy tunes the garbage collector of the process it runs in (its own threshold, disabled while it loads its
        # graph, and gc.unfreeze(), which would hand what this process froze after collection, tests/conftest.py,
        # back to every full collection): the process's own settings back.
        gc.set_threshold(*threshold)
        gc.freeze()
        gc.enable() if enabled else gc.disable()
    assert status in (0, 1), stdout + stderr  # 2: mypy itself failed, it checked nothing
    # By file name: for a module the cache holds unchanged (same name, same text), mypy repeats what it said then,
    # with the directory of that run.
    lines = (stdout + stderr).splitlines()
    return {call: "\n".join(line for line in lines if Path(line.split(":", 1)[0]).name == module.name)
            for call, module in modules.items()}


@pytest.mark.parametrize(("call", "complaint"), WRONG_CALLS)
def test_a_wrong_operation_or_parameter_fails_the_type_check(checked: dict[str, str], call: str,
                                                             complaint: str) -> None:
    assert ": error: " in checked[call] and complaint in checked[call], checked[call]


def test_a_right_call_passes_the_type_check(checked: dict[str, str]) -> None:
    assert checked[RIGHT_CALL] == ""
    assert all(": error: " in checked[call] for call, _ in WRONG_CALLS)  # the same run did find errors
