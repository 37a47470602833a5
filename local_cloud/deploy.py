"""``local deploy``: the ``sam build`` output, packaged and transformed here, deployed to the local cloud.

What ``sam deploy`` and CloudFormation do, done locally: zip each function's and layer's build
directory, upload them to an artifacts bucket in the emulator's S3, apply the SAM transform with
samtranslator (managed policies from a static map: no IAM call), then resolve what moto's CloudFormation
lacks before handing the template over:

- ``DefinitionSubstitutions`` of ``AWS::StepFunctions::StateMachine`` (moto ignores them): substituted
  into the definition string as CloudFormation does (only ``${key}`` for keys in the map), the values
  being left to CloudFormation as ``Fn::Join`` parts so references resolve at create time;
- ``Definition`` objects and ``DefinitionS3Location`` (moto reads only ``DefinitionString``) become
  ``DefinitionString``.

The template on disk is never edited.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import re
import shlex
import subprocess
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from local_cloud import api_calls

ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_BUILD_TEMPLATE = Path(".aws-sam/build/template.yaml")
SOURCE_PATHS = ("template.yaml", "samconfig.toml", "functions", "layers", "statemachine", "roles")
TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
# The AWS managed policies SAM templates name most; any other name maps to arn:aws:iam::aws:policy/<name>.
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSLambdaExecute": "arn:aws:iam::aws:policy/AWSLambdaExecute",
    "AWSLambdaRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaRole",
    "AWSLambdaVPCAccessExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
    "CloudWatchLogsFullAccess": "arn:aws:iam::aws:policy/CloudWatchLogsFullAccess",
    "AWSStepFunctionsFullAccess": "arn:aws:iam::aws:policy/AWSStepFunctionsFullAccess",
    "ReadOnlyAccess": "arn:aws:iam::aws:policy/ReadOnlyAccess",
}


class DeployError(Exception):
    """Deployment could not be done; the message is one line a person can act on."""


class StaticManagedPolicies:
    """samtranslator's managed-policy loader interface, without calling IAM."""

    def load(self) -> dict[str, str]:
        return _PolicyMap(MANAGED_POLICIES)


class _PolicyMap(dict):
    def get(self, key: Any, default: Any = None) -> Any:
        if key in self:
            return self[key]
        if isinstance(key, str) and re.fullmatch(r"[\w+=,.@/-]+", key) and not key.startswith("arn:"):
            return f"arn:aws:iam::aws:policy/{key}"
        return default


def aws_client(service: str, endpoint_url: str, region: str) -> Any:
    """A client for the local cloud only: fake credentials, so real ones are never sent anywhere."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - fake, for the emulator
        # Marked as the local cloud's own tooling (it stands in for the person and `sam deploy`), which
        # injected faults leave alone: they are for the code under test.
        config=Config(retries={"mode": "standard", "max_attempts": 3}, user_agent_appid=api_calls.TOOLING_APP_ID),
    )


# ---------------------------------------------------------------------------------------------- build
def build_is_stale(build_template: Path, source_root: Path) -> bool:
    if not build_template.exists():
        return True
    built = build_template.stat().st_mtime
    for name in SOURCE_PATHS:
        path = source_root / name
        files: Iterable[Path] = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
        for item in files:
            if item.is_file() and "__pycache__" not in item.parts and item.stat().st_mtime > built:
                return True
    return False


def sam_build(source_root: Path, say: Callable[[str], None]) -> None:
    """``sam build --cached`` with the venv's bin first on PATH, so sam finds python3.13."""
    venv_bin = Path(__file__).resolve().parent.parent / ".venv" / "bin"
    sam = venv_bin / "sam" if (venv_bin / "sam").exists() else Path("sam")
    env = dict(os.environ, PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}", SAM_CLI_TELEMETRY="0")
    say("sam build --cached (the build output is missing or older than the sources)")
    proc = subprocess.run(
        [str(sam), "build", "--cached"], cwd=source_root, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise DeployError(f"sam build failed: {last[0]}")


# ------------------------------------------------------------------------------------------ templates
def load_template(path: Path) -> dict[str, Any]:
    """A CloudFormation/SAM template (YAML short-form tags or JSON) as plain data."""
    from samcli.yamlhelper import yaml_parse

    return json.loads(json.dumps(yaml_parse(path.read_text(encoding="utf-8"))))


def read_samconfig(path: Path, env: str = "default") -> dict[str, str]:
    """``parameter_overrides`` from samconfig.toml (deploy section, then global), as a dict."""
    if not path.exists():
        return {}
    config = tomllib.loads(path.read_text(encoding="utf-8")).get(env, {})
    for section in ("deploy", "global"):
        value = config.get(section, {}).get("parameters", {}).get("parameter_overrides")
        if value:
            return parse_overrides(value if isinstance(value, list) else shlex.split(value))
    return {}


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` items; one item may hold several, space separated, as samconfig's
    parameter_overrides (``A=1 B="two words"``), and a value may hold spaces (``A=two words``)."""
    result: dict[str, str] = {}
    for item in items:
        for token in re.split(r"\s+(?=[A-Za-z0-9]+=)", item.strip()):
            key, sep, value = token.partition("=")
            if not sep or not re.fullmatch(r"[A-Za-z0-9]+", key):
                raise DeployError(f"parameter override {token!r} is not KEY=VALUE")
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            result[key] = value
    return result


def _zip_dir(directory: Path) -> bytes:
    """A deterministic zip (sorted entries, fixed dates): same content, same key, no spurious update."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (path.stat().st_mode & 0o777 | 0o100000) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


@dataclass
class Packager:
    """Uploads local artifacts of a built SAM template to the emulator's S3 (``sam package``, locally)."""

    s3: Any
    bucket: str
    base_dir: Path
    uploaded: list[str] = field(default_factory=list)

    def ensure_bucket(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except self.s3.exceptions.ClientError:
            region = self.s3.meta.region_name
            extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            self.s3.create_bucket(Bucket=self.bucket, **extra)

    def upload_dir(self, logical_id: str, relative: str) -> tuple[str, str]:
        directory = (self.base_dir / relative).resolve()
        if not directory.is_dir():
            raise DeployError(f"{logical_id}: build directory {directory} not found: run sam build")
        data = _zip_dir(directory)
        key = f"{logical_id}/{hashlib.sha256(data).hexdigest()}.zip"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        self.uploaded.append(key)
        return self.bucket, key

    def package(self, template: dict[str, Any]) -> dict[str, Any]:
        template = copy.deepcopy(template)
        for logical_id, resource in template.get("Resources", {}).items():
            kind, props = resource.get("Type"), resource.setdefault("Properties", {})
            if kind == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
                if not props["CodeUri"].startswith("s3://"):
                    bucket, key = self.upload_dir(logical_id, props["CodeUri"])
                    props["CodeUri"] = f"s3://{bucket}/{key}"
            elif kind == "AWS::Serverless::LayerVersion" and isinstance(props.get("ContentUri"), str):
                if not props["ContentUri"].startswith("s3://"):
                    bucket, key = self.upload_dir(logical_id, props["ContentUri"])
                    props["ContentUri"] = f"s3://{bucket}/{key}"
            elif kind == "AWS::Lambda::Function" and isinstance(props.get("Code"), str):
                bucket, key = self.upload_dir(logical_id, props["Code"])
                props["Code"] = {"S3Bucket": bucket, "S3Key": key}
            elif kind == "AWS::Lambda::LayerVersion" and isinstance(props.get("Content"), str):
                bucket, key = self.upload_dir(logical_id, props["Content"])
                props["Content"] = {"S3Bucket": bucket, "S3Key": key}
            elif kind == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
                if not props["DefinitionUri"].startswith("s3://"):
                    props["Definition"] = load_template(self.base_dir / props.pop("DefinitionUri"))
            elif kind == "AWS::StepFunctions::StateMachine" and isinstance(props.get("DefinitionS3Location"), str):
                path = self.base_dir / props.pop("DefinitionS3Location")
                props["DefinitionString"] = path.read_text(encoding="utf-8")
        return template


def sam_transform(template: dict[str, Any], parameters: dict[str, str], region: str) -> dict[str, Any]:
    """The AWS::Serverless-2016-10-31 transform, applied locally.

    What ``samtranslator.translator.transform.transform`` does, with a boto session pinned to ``region``
    (the translator reads the region from it) and managed policies from a static map instead of IAM.
    """
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template

    if "Transform" not in template:
        return template
    values: dict[str, Any] = {"AWS::Region": region, "AWS::AccountId": ACCOUNT_ID, "AWS::Partition": "aws"}
    values.update(parameters)
    fragment = copy.deepcopy(template)
    to_py27_compatible_template(fragment, values)
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=region))
    policies = StaticManagedPolicies()
    try:
        translated = translator.translate(fragment, parameter_values=values, get_managed_policy_map=policies.load)
    except InvalidDocumentException as exc:
        causes = "; ".join(cause.message for cause in exc.causes)
        raise DeployError(f"SAM transform failed: {causes}") from exc
    return undo_mark_unicode_str_in_template(translated)


# ------------------------------------------------------------------------------- moto's missing parts
def _flatten_string(value: Any) -> str | None:
    """A definition that is a literal string, or an Fn::Join of literal strings, as one string."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and list(value) == ["Fn::Join"]:
        separator, parts = value["Fn::Join"]
        if all(isinstance(part, str) for part in parts):
            return separator.join(parts)
    return None


def _contains_intrinsic(value: Any) -> bool:
    if isinstance(value, dict):
        return any(key == "Ref" or key.startswith("Fn::") for key in value) or any(
            _contains_intrinsic(v) for v in value.values()
        )
    if isinstance(value, list):
        return any(_contains_intrinsic(v) for v in value)
    return False


def substitute_definition(definition: str, substitutions: dict[str, Any]) -> Any:
    """CloudFormation's DefinitionSubstitutions: replace ``${key}`` for keys of the map, nothing else.

    Literal values are replaced at once; references become parts of an ``Fn::Join`` so CloudFormation
    (moto) resolves them when it creates the state machine.
    """
    if not substitutions:
        return definition
    pattern = re.compile(r"\$\{(" + "|".join(re.escape(k) for k in substitutions) + r")\}")
    parts: list[Any] = []
    last = 0
    for match in pattern.finditer(definition):
        parts.append(definition[last : match.start()])
        value = substitutions[match.group(1)]
        parts.append(json.dumps(value)[1:-1] if isinstance(value, str) else value)
        last = match.end()
    parts.append(definition[last:])
    merged: list[Any] = []
    for part in parts:
        if isinstance(part, bool):
            part = "true" if part else "false"
        elif isinstance(part, int | float):
            part = str(part)
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    merged = [part for part in merged if part != ""]
    if len(merged) == 1 and isinstance(merged[0], str):
        return merged[0]
    return {"Fn::Join": ["", merged]}


def resolve_for_moto(template: dict[str, Any]) -> dict[str, Any]:
    """Resolve, as CloudFormation would, what moto's CloudFormation ignores or mishandles."""
    template = copy.deepcopy(template)
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        props = resource.setdefault("Properties", {})
        if "Definition" in props:
            if _contains_intrinsic(props["Definition"]):
                raise DeployError(f"{logical_id}: intrinsic functions inside Definition are not supported locally")
            props["DefinitionString"] = json.dumps(props.pop("Definition"), indent=2)
        if "DefinitionS3Location" in props:
            raise DeployError(f"{logical_id}: DefinitionS3Location is not supported locally; use DefinitionUri")
        substitutions = props.pop("DefinitionSubstitutions", None) or {}
        definition = _flatten_string(props.get("DefinitionString"))
        if definition is None:
            if substitutions:
                raise DeployError(f"{logical_id}: DefinitionSubstitutions need a literal DefinitionString")
            continue
        props["DefinitionString"] = substitute_definition(definition, substitutions)
    return template


def prepare_template(
    build_template: Path, cfn_s3: Any, bucket: str, parameters: dict[str, str], region: str
) -> dict[str, Any]:
    """Built SAM template -> CloudFormation template moto can deploy (artifacts uploaded on the way)."""
    sam_template = load_template(build_template)
    packager = Packager(cfn_s3, bucket, build_template.parent)
    packager.ensure_bucket()
    packaged = packager.package(sam_template)
    declared = {k: v for k, v in parameters.items() if k in packaged.get("Parameters", {})}
    return resolve_for_moto(sam_transform(packaged, declared, region))


# ------------------------------------------------------------------------------------------- deploy
@dataclass
class DeployResult:
    stack_name: str
    status: str
    outputs: dict[str, str]
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.status in TERMINAL_OK


def stack_status(cfn: Any, stack_name: str) -> str | None:
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stacks[0]["StackStatus"] if stacks else None


def failure_reason(cfn: Any, stack_name: str, since: float = 0.0) -> str | None:
    """The first failure CloudFormation recorded (a resource's reason beats the stack's summary)."""
    events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
    events = sorted(events, key=lambda e: e["Timestamp"])
    failed = [
        e
        for e in events
        if e["ResourceStatus"].endswith("_FAILED")
        and e.get("ResourceStatusReason")
        and e["Timestamp"].timestamp() >= since
    ]
    resource_failures = [e for e in failed if e["ResourceType"] != "AWS::CloudFormation::Stack"]
    chosen = (resource_failures or failed)[:1]
    if not chosen:
        return None
    event = chosen[0]
    return f"{event['LogicalResourceId']} {event['ResourceStatus']}: {event['ResourceStatusReason']}"


def deploy(
    endpoint_url: str,
    stack_name: str,
    build_template: Path,
    parameters: dict[str, str],
    region: str = "us-east-1",
    timeout: float = 900.0,
    on_progress: Callable[[], None] | None = None,
) -> DeployResult:
    """Create or update ``stack_name`` in the local cloud from the built template and wait for it."""
    s3 = aws_client("s3", endpoint_url, region)
    cfn = aws_client("cloudformation", endpoint_url, region)
    bucket = f"local-cloud-artifacts-{ACCOUNT_ID}-{region}"
    template = prepare_template(build_template, s3, bucket, parameters, region)
    declared = template.get("Parameters", {})
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise DeployError(f"the template has no parameter(s) {', '.join(unknown)}")
    cfn_parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    body = json.dumps(template)
    started = time.time() - 1
    status = stack_status(cfn, stack_name)
    if status in ("CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"):
        cfn.delete_stack(StackName=stack_name)
        _wait(cfn, stack_name, timeout, on_progress, deleting=True)
        status = None
    if status is not None and status.endswith("_IN_PROGRESS"):
        raise DeployError(f"stack {stack_name} is {status}: wait for it to finish")
    capabilities = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    if status is None:
        cfn.create_stack(StackName=stack_name, TemplateBody=body, Parameters=cfn_parameters, Capabilities=capabilities)
    else:
        cfn.update_stack(StackName=stack_name, TemplateBody=body, Parameters=cfn_parameters, Capabilities=capabilities)
    final = _wait(cfn, stack_name, timeout, on_progress)
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs") or []}
    reason = None if final in TERMINAL_OK else failure_reason(cfn, stack_name, started) or final
    return DeployResult(stack_name, final, outputs, reason)


def _wait(
    cfn: Any, stack_name: str, timeout: float, on_progress: Callable[[], None] | None, deleting: bool = False
) -> str:
    deadline = time.monotonic() + timeout
    while True:
        if on_progress:
            on_progress()
        status = stack_status(cfn, stack_name)
        if status is None and deleting:
            return "DELETE_COMPLETE"
        if status is not None and not status.endswith("_IN_PROGRESS") and status != "CREATE_PENDING":
            if on_progress:
                on_progress()
            return status
        if time.monotonic() > deadline:
            raise DeployError(f"stack {stack_name} still {status} after {timeout:.0f} s")
        # Local time is compressed (scheduled rules fire every second, warm Lambdas answer in milliseconds):
        # a delete's last steps and the stack's removal, which takes their history with it, can be well
        # under a second apart, so a delete is read often enough to show every step. A create or update
        # keeps its history (the last read shows all of it), and each read costs the local cloud the
        # whole event list and history again, CPU the onboarding's own Lambdas are waiting for.
        time.sleep(0.2 if deleting or status == "DELETE_IN_PROGRESS" else 0.5)


def delete(
    endpoint_url: str,
    stack_name: str,
    region: str = "us-east-1",
    timeout: float = 900.0,
    on_progress: Callable[[], None] | None = None,
) -> str:
    cfn = aws_client("cloudformation", endpoint_url, region)
    if stack_status(cfn, stack_name) is None:
        raise DeployError(f"stack {stack_name} does not exist")
    cfn.delete_stack(StackName=stack_name)
    return _wait(cfn, stack_name, timeout, on_progress, deleting=True)
