"""The shared package's layers, read from its imports: AWS is called only from ``aws/``, pure modules stay
pure, and a guide step does not use preflight as a library."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "onboarding" / "expel_onboarding"
MODULES = {
    ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts): path
    for path in sorted(PACKAGE.rglob("*.py"))
}
FUNCTIONS = PACKAGE.parents[2] / "functions"
# What is deployed: the shared package (the layer) and each function's handler.
DEPLOYED = {str(path.relative_to(PACKAGE.parents[2])): path
            for path in [*sorted(PACKAGE.rglob("*.py")), *sorted(FUNCTIONS.glob("*/*.py"))]}
PURE = ("expel_onboarding.models", "expel_onboarding.naming", "expel_onboarding.ownership",
        "expel_onboarding.errors", "expel_onboarding.validation", "expel_onboarding.workbench_payload",
        "expel_onboarding.execution_history", "expel_onboarding.policies")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _touches_aws(imports: set[str]) -> set[str]:
    return {name for name in imports
            if name.split(".")[0] in ("boto3", "botocore") or name == "expel_onboarding.aws.clients"}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith("expel_onboarding.aws")))
def test_only_the_aws_wrappers_reach_boto3(module: str) -> None:
    """Outside ``aws/`` nothing makes a client: every AWS call goes through a typed wrapper."""
    assert _touches_aws(_imports(MODULES[module])) == set()


# The clients each wrapper may make, when it is not the service it is named after.
WRAPPER_SERVICES = {"stacks": {"cloudformation"}, "stacksets": {"cloudformation"}, "kms_policy": {"kms"},
                    "s3": {"s3", "s3control"}, "secrets": {"secretsmanager"}, "errors": set(), "__init__": set()}


@pytest.mark.parametrize("wrapper", sorted(m.rsplit(".", 1)[1] for m in MODULES if m.startswith("expel_onboarding.aws.")
                                           and m != "expel_onboarding.aws.clients"))
def test_each_aws_wrapper_calls_only_its_own_service(wrapper: str) -> None:
    """One module per service: who reads the organization is ``aws.organizations``, not ``aws.sts``."""
    made = set(re.findall(r"\bclients\.(\w+)\(", (PACKAGE / "aws" / f"{wrapper}.py").read_text()))
    assert made == WRAPPER_SERVICES.get(wrapper, {wrapper})


@pytest.mark.parametrize("handler", sorted(p for p in DEPLOYED if p.startswith("functions/")))
def test_handlers_reach_aws_only_through_the_shared_package(handler: str) -> None:
    assert _touches_aws(_imports(DEPLOYED[handler])) == set()


@pytest.mark.parametrize("source", sorted(DEPLOYED))
def test_deployed_code_states_no_assert(source: str) -> None:
    """``python -O`` removes assert statements: a condition the code relies on raises a named error instead."""
    asserts = [node.lineno for node in ast.walk(ast.parse(DEPLOYED[source].read_text()))
               if isinstance(node, ast.Assert)]
    assert asserts == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(PURE)))
def test_pure_modules_take_no_aws_and_no_environment(module: str) -> None:
    imports = _imports(MODULES[module])
    assert {name for name in imports if name.startswith("expel_onboarding.aws")} == set()
    assert "os" not in imports and "os.environ" not in imports


def test_only_the_ownership_module_reads_the_owner_tag() -> None:
    """One ownership check: every other module asks ``ownership`` (``owner_of``, ``is_ours``, ``require_ours``)
    instead of comparing the tag itself."""
    readers = [module for module, path in MODULES.items() if module != "expel_onboarding.ownership"
               and re.search(r"\.get\(\s*OWNER_TAG_KEY|\[\s*OWNER_TAG_KEY\s*\]|expel-onboarding:stack\"\s*\)",
                             path.read_text())]
    assert readers == []


def test_the_custom_resource_reaches_aws_only_through_the_step_functions_wrapper() -> None:
    """The one module that owns the custom resource: pure decisions (ids, settings, the poll's verdict, the
    answer's body) beside the crhelper resource that acts on them, which reads executions through
    ``aws.stepfunctions`` and takes its state machine from the handler, not the environment."""
    imports = _imports(MODULES["expel_onboarding.custom_resource"])
    assert {name for name in imports if name.startswith("expel_onboarding.aws")} == {
        "expel_onboarding.aws", "expel_onboarding.aws.stepfunctions"}  # from expel_onboarding.aws import stepfunctions
    assert "os" not in imports and "os.environ" not in imports


def test_no_step_uses_preflight_as_a_library() -> None:
    """Preflight is a state of its own; what it shares with step 1 (the look-ups) lives in ``steps.existing``."""
    users = [m for m, path in MODULES.items()
             if m != "expel_onboarding.steps.preflight"
             and any(i.startswith("expel_onboarding.steps.preflight") and "organizations" not in i
                     for i in _imports(path))]
    assert users == []


def test_functions_are_untraced_and_use_no_tracer_while_the_state_machine_is_traced() -> None:
    """Tracing and the Tracer go together: powertools' Tracer needs the X-Ray SDK, which the Lambda runtime lacks,
    and active tracing without it records only invocation times. The state machine's trace times every step."""
    from local_cloud.cloudformation_templates import read_template

    template = read_template((PACKAGE.parents[2] / "template.yaml").read_text())
    functions = {name: resource for name, resource in template["Resources"].items()
                 if resource["Type"] == "AWS::Serverless::Function"}
    assert "Tracing" not in template["Globals"]["Function"]
    assert [name for name, resource in functions.items() if "Tracing" in resource.get("Properties", {})] == []
    assert [source for source, path in DEPLOYED.items()
            if any(name.startswith("aws_lambda_powertools.Tracer") or name.startswith("aws_lambda_powertools.tracing")
                   for name in _imports(path))] == []
    assert template["Resources"]["OnboardingStateMachine"]["Properties"]["Tracing"] == {"Enabled": True}


# --- the local cloud -------------------------------------------------------------------------------------

LOCAL_CLOUD = Path(__file__).resolve().parents[2] / "local_cloud"


def _module_name(path: Path) -> str:
    """``local_cloud.enforcement.middleware`` for its file; a package is named by its ``__init__.py``."""
    parts = path.relative_to(LOCAL_CLOUD.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _local_cloud_imports(path: Path, modules: set[str]) -> set[str]:
    """The local_cloud modules ``path`` imports: ``from local_cloud.iam import conditions`` imports the module
    ``local_cloud.iam.conditions``, ``from local_cloud.iam import evaluate`` the package ``local_cloud.iam``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                         for alias in node.names)
    return found & modules


def _local_cloud_graph() -> dict[str, set[str]]:
    """Every module of local_cloud and its subpackages (``enforcement``, ``iam``) with the ones it imports."""
    paths = {_module_name(path): path for path in LOCAL_CLOUD.rglob("*.py") if "__pycache__" not in path.parts}
    return {name: _local_cloud_imports(path, set(paths)) - {name} for name, path in paths.items()}


def test_local_cloud_modules_import_each_other_without_cycles() -> None:
    graph = _local_cloud_graph()
    assert {"local_cloud.server", "local_cloud.enforcement", "local_cloud.enforcement.middleware",
            "local_cloud.iam", "local_cloud.iam.evaluation"} <= set(graph)
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


def test_every_tests_moto_keeps_a_queue_policy_as_sqs_does(aws: None) -> None:
    """The local cloud's patches apply to in-process moto too (tests/conftest.py): here, that
    SetQueueAttributes without ``Policy`` leaves the queue's policy alone (moto alone would wipe it)."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Theirs", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-east-1:123456789012:kept"}]})
    url = sqs.create_queue(QueueName="kept", Attributes={"Policy": policy})["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "604800"})
    kept = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"].get("Policy")
    assert kept is not None and json.loads(kept) == json.loads(policy)
