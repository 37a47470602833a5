"""What CloudFormation does with a template before it creates anything, done by the local cloud server-side.

moto 5.2.5 reads a TemplateURL only in a few URL forms, does not expand the ``AWS::Serverless-2016-10-31``
transform, asks for no capabilities, checks no parameter constraints, and ignores a state machine's
``DefinitionSubstitutions``, ``Definition`` and ``DefinitionS3Location``. So a template that deploys on moto
proved little, and the SAM CLI's own requests failed. Here, as CloudFormation does it:

- **TemplateURL** is read from the local S3: path-style (``https://s3.amazonaws.com/b/k``,
  ``https://s3.<region>.amazonaws.com/b/k``, ``https://s3-<region>...``), virtual-hosted
  (``https://b.s3.amazonaws.com/k``, ``https://b.s3.<region>.amazonaws.com/k``) and the local S3 endpoint itself
  (``http://127.0.0.1:<port>/b/k``, which is what ``sam deploy`` sends with ``AWS_ENDPOINT_URL`` set), each with
  an optional ``?versionId=``. Refusals as AWS words them: an ``s3://`` URI ("S3 error: Domain name specified in
  <bucket> is not a valid S3 domain"), any other URL ("TemplateURL must be a supported URL."), a missing object
  or bucket ("S3 error: The specified key does not exist. ...").
- **The Serverless transform** is expanded with samtranslator (the version the SAM CLI pins), managed policy
  names resolved to ARNs from the AWS managed policies the local IAM knows (moto's copy of AWS's list), never by
  calling real IAM. A failure reads "Transform AWS::Serverless-2016-10-31 failed with: ...".
- **Capabilities**: IAM resources need CAPABILITY_IAM, named ones CAPABILITY_NAMED_IAM, and a transform run by
  CreateStack/UpdateStack (not by a change set) CAPABILITY_AUTO_EXPAND; otherwise
  ``InsufficientCapabilitiesException: Requires capabilities : [...]``.
- **Parameters**: unknown keys, missing values, AllowedPattern/AllowedValues/Min*/Max* as CloudFormation refuses
  them (ValidationError), UsePreviousValue taken from the stack.
- **State machines** (``AWS::StepFunctions::StateMachine``): ``Definition`` (an object) and
  ``DefinitionS3Location`` (read from the local S3) become the definition string, and
  ``DefinitionSubstitutions`` replace ``${key}`` for the keys of the map (nothing else), with the values
  CloudFormation resolved.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from local_cloud.once import once

SERVERLESS_TRANSFORM = "AWS::Serverless-2016-10-31"
S3_ERROR_HELP = "For more information check http://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html"
_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d"
# Path-style S3 hosts (bucket in the path) and virtual-hosted ones (bucket in the host name).
_PATH_STYLE = re.compile(rf"^s3(?:[.-]{_REGION}|\.dualstack\.{_REGION}|-external-1)?\.amazonaws\.com(?:\.cn)?$")
_VIRTUAL_HOSTED = re.compile(rf"^(?P<bucket>.+)\.s3(?:[.-]{_REGION}|\.dualstack\.{_REGION})?\.amazonaws\.com(?:\.cn)?$")
# The resource types that need an IAM capability, and the property that names each one.
IAM_RESOURCE_NAMES = {
    "AWS::IAM::AccessKey": None,
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Policy": None,
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::UserToGroupAddition": None,
}


class TemplateError(Exception):
    """A refusal CloudFormation answers with ``code`` (a 400 error); the message is AWS's wording."""

    def __init__(self, message: str, code: str = "ValidationError") -> None:
        super().__init__(message)
        self.code = code


def _error(message: str, code: str = "ValidationError") -> Exception:
    """The refusal as moto's server answers it (a CloudFormation error document, HTTP 400)."""
    from moto.cloudformation.exceptions import CloudFormationError

    class Refused(CloudFormationError):
        pass

    Refused.code = code
    return Refused(message)


def refuse(exc: TemplateError) -> Exception:
    return _error(str(exc), exc.code)


# ------------------------------------------------------------------------------------------ reading
def object_location(url: str, local_hosts: tuple[str, ...] = ()) -> tuple[str, str, str | None]:
    """Bucket, key and version of an S3 object URL CloudFormation accepts as TemplateURL."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        raise TemplateError(f"S3 error: Domain name specified in {parts.netloc} is not a valid S3 domain")
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise TemplateError("TemplateURL must be a supported URL.")
    host = parts.hostname or ""
    path = unquote(parts.path.lstrip("/"))
    version = (parse_qs(parts.query).get("versionId") or [None])[0]
    hosted = _VIRTUAL_HOSTED.match(host)
    if parts.scheme == "https" and hosted:
        bucket, key = hosted.group("bucket"), path
    elif (parts.scheme == "https" and _PATH_STYLE.match(host)) or parts.netloc in local_hosts:
        bucket, _, key = path.partition("/")
    else:
        raise TemplateError("TemplateURL must be a supported URL.")
    if not bucket or not key:
        raise TemplateError("TemplateURL must be a supported URL.")
    return bucket, key, version


def read_template_url(url: str, account_id: str, partition: str, local_hosts: tuple[str, ...] = ()) -> str:
    """The template body an S3 TemplateURL points at, from the local S3."""
    from moto.s3.exceptions import MissingBucket, MissingKey, MissingVersion
    from moto.s3.models import s3_backends

    bucket, key, version = object_location(url, local_hosts)
    try:
        found = s3_backends[account_id][partition].get_object(bucket, key, version_id=version)
    except MissingBucket:
        raise TemplateError(f"S3 error: The specified bucket does not exist\n{S3_ERROR_HELP}") from None
    except (MissingKey, MissingVersion):
        found = None
    if found is None:
        raise TemplateError(f"S3 error: The specified key does not exist.\n{S3_ERROR_HELP}")
    return bytes(found.value).decode("utf-8")


@functools.cache
def _template_loader() -> type:
    """libyaml's safe loader reading CloudFormation's short-form tags (``!Ref x``, ``!GetAtt a.b``, ``!Sub ...``)
    as their long forms, as the SAM CLI's and samtranslator's parsers do, and a date as the text written
    (``AWSTemplateFormatVersion: 2010-09-09`` is a string to CloudFormation). libyaml, not PyYAML's pure-Python
    parser: a SAM template of 2,500 lines takes a tenth of the time, and the local cloud and ``local deploy``
    read every template at least once per deploy."""
    import yaml

    def intrinsic(loader: Any, tag_suffix: str, node: Any) -> dict[str, Any]:
        name = node.tag[1:]
        value: Any
        if name == "GetAtt" and isinstance(node.value, str):
            value = node.value.split(".", 1)
        elif isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node)
        else:
            value = loader.construct_mapping(node)
        return {name if name in ("Ref", "Condition") else f"Fn::{name}": value}

    class TemplateLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    TemplateLoader.add_multi_constructor("!", intrinsic)
    TemplateLoader.add_constructor("tag:yaml.org,2002:timestamp", TemplateLoader.construct_yaml_str)
    return TemplateLoader


def read_template(body: str) -> Any:
    """A template's text as data: JSON, or YAML with short-form tags. Raises json.JSONDecodeError or
    yaml.YAMLError."""
    import yaml

    text = body.lstrip()
    return json.loads(text) if text.startswith("{") else yaml.load(body, Loader=_template_loader())  # noqa: S506


@functools.cache
def _moto_loader() -> type:
    import yaml
    from moto.cloudformation.utils import yaml_tag_constructor

    class MotoTemplateLoader(getattr(yaml, "CLoader", yaml.Loader)):  # type: ignore[misc]
        pass

    def condition(loader: Any, node: Any) -> dict[str, Any]:
        # ``!Condition Name`` is ``{"Condition": "Name"}``; moto read it as ``Fn::Condition``, which its condition
        # evaluation does not know, so ``!And [!Condition A, ...]`` was false whatever A and the rest held.
        return {"Condition": loader.construct_scalar(node)}

    MotoTemplateLoader.add_multi_constructor("", yaml_tag_constructor)
    MotoTemplateLoader.add_constructor("!Condition", condition)
    return MotoTemplateLoader


def parse_as_moto(template: str) -> dict[str, Any]:
    """moto's ``Stack.parse_template`` (its own reading of short-form tags, which its resource code expects: a
    JSON template too is read as YAML first), with libyaml instead of PyYAML's pure-Python parser."""
    import yaml
    from yaml.parser import ParserError
    from yaml.scanner import ScannerError

    try:
        return yaml.load(template, Loader=_moto_loader())  # type: ignore[no-any-return]  # noqa: S506
    except (ParserError, ScannerError):
        return json.loads(template)  # type: ignore[no-any-return]


def parse_template(body: str) -> dict[str, Any]:
    """JSON or YAML (short-form tags like ``!Ref``), as CloudFormation reads a template."""
    try:
        parsed = read_template(body)
    except json.JSONDecodeError as exc:
        raise TemplateError(
            f"Template format error: JSON not well-formed. (line {exc.lineno}, column {exc.colno})") from None
    except Exception as exc:
        raise TemplateError(f"Template format error: YAML not well-formed. {' '.join(str(exc).split())}") from None
    if not isinstance(parsed, dict):
        raise TemplateError("Template format error: unsupported structure.")
    parsed = json.loads(json.dumps(parsed, default=str))
    if not parsed.get("Resources"):
        raise TemplateError("Template format error: At least one Resources member must be defined.")
    return parsed


def transforms_of(template: dict[str, Any]) -> list[str]:
    value = template.get("Transform") or []
    return [value] if isinstance(value, str) else [str(v) for v in value]


# ---------------------------------------------------------------------------------------- parameters
@dataclass
class ParameterValue:
    key: str
    value: str | None = None
    use_previous: bool = False


def resolve_parameters(
    template: dict[str, Any], given: list[ParameterValue], previous: dict[str, str] | None = None
) -> dict[str, str]:
    """The values CloudFormation uses: given, else previous (UsePreviousValue), else the Default; refusals as
    CloudFormation's ValidationErrors."""
    declared: dict[str, dict[str, Any]] = template.get("Parameters") or {}
    unknown = [p.key for p in given if p.key not in declared]
    if unknown:
        raise TemplateError(f"Parameters: [{', '.join(unknown)}] do not exist in the template")
    values: dict[str, str] = {}
    for parameter in given:
        if parameter.use_previous:
            if parameter.value:
                raise TemplateError(
                    f"Invalid input for parameter key {parameter.key}. Cannot specify usePreviousValue as true "
                    "and non empty value for a parameter"
                )
            if previous is None or parameter.key not in previous:
                raise TemplateError(f"Invalid input for parameter key {parameter.key}. Need to specify either "
                                    "usePreviousValue as true or a value for the parameter")
            values[parameter.key] = previous[parameter.key]
        else:
            values[parameter.key] = "" if parameter.value is None else str(parameter.value)
    missing = []
    for key, spec in declared.items():
        if key not in values:
            if "Default" in spec:
                default = spec["Default"]
                values[key] = ",".join(map(str, default)) if isinstance(default, list) else str(default)
            else:
                missing.append(key)
    if missing:
        raise TemplateError(f"Parameters: [{', '.join(missing)}] must have values")
    for key, spec in declared.items():
        _check_constraints(key, spec, values[key])
    return values


def _check_constraints(key: str, spec: dict[str, Any], value: str) -> None:
    kind = str(spec.get("Type", "String"))
    described = spec.get("ConstraintDescription")

    def fail(default: str) -> None:
        raise TemplateError(f"Parameter {key} failed to satisfy constraint: {described}" if described else default)

    items = [v.strip() for v in value.split(",")] if kind.startswith("List<") or kind == "CommaDelimitedList" else [
        value]
    for item in items:
        allowed = spec.get("AllowedValues")
        if allowed is not None and item not in [str(a) for a in allowed]:
            fail(f"Parameter '{key}' must be one of AllowedValues")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and not re.fullmatch(str(pattern), item):
            fail(f"Parameter '{key}' must match pattern {pattern}")
        if "MinLength" in spec and len(item) < int(spec["MinLength"]):
            fail(f"Parameter '{key}' must contain at least {spec['MinLength']} characters")
        if "MaxLength" in spec and len(item) > int(spec["MaxLength"]):
            fail(f"Parameter '{key}' must contain at most {spec['MaxLength']} characters")
        if kind in ("Number", "List<Number>"):
            try:
                number = float(item)
            except ValueError:
                raise TemplateError(f"Parameter '{key}' must be a number") from None
            if "MinValue" in spec and number < float(spec["MinValue"]):
                fail(f"Parameter '{key}' must be a number not less than {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                fail(f"Parameter '{key}' must be a number not greater than {spec['MaxValue']}")


# ------------------------------------------------------------------------------------------- transform
@functools.cache
def managed_policy_arns(partition: str = "aws") -> dict[str, str]:
    """AWS managed policy name -> ARN, from the AWS managed policies the local IAM holds."""
    from local_cloud.cloudformation_iam import aws_managed_policies

    return {
        name: f"arn:{partition}:iam::aws:policy{policy.get('Path', '/')}{name}"
        for name, policy in aws_managed_policies().items()
    }


def _quiet_translator() -> None:
    import logging

    # samtranslator warns of "unpublished metrics" after every translation: it publishes none, on AWS neither.
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)


@functools.cache
def policy_templates() -> Any:
    """The SAM translator's policy templates (``SQSPollerPolicy`` and the like), read from its package and checked
    against their schema once: the translator reads and checks the file again on every translation (about 20 ms).
    Translations only read the processor: each fills in a copy of a template's statements."""
    from samtranslator.policy_template_processor.processor import PolicyTemplatesProcessor

    return PolicyTemplatesProcessor(PolicyTemplatesProcessor.get_default_policy_templates_json())


@once
def share_policy_templates() -> None:
    """The translator's policy-template plugin, over the processor read once (``policy_templates``)."""
    from samtranslator.plugins.policies.policy_templates_plugin import PolicyTemplatesForResourcePlugin
    from samtranslator.translator import translator

    def make_policy_template_for_function_plugin() -> PolicyTemplatesForResourcePlugin:
        return PolicyTemplatesForResourcePlugin(policy_templates())

    translator.make_policy_template_for_function_plugin = make_policy_template_for_function_plugin


@dataclass(frozen=True)
class _TranslatorSession:
    """All the translator reads of its boto3 session: the region (a boto3 Session takes about 12 ms to make)."""

    region_name: str


def expand_serverless(
    template: dict[str, Any], parameters: dict[str, str], account_id: str, region: str, partition: str,
    stack_name: str,
) -> dict[str, Any]:
    """The AWS::Serverless-2016-10-31 transform, as CloudFormation runs it (the SAM translator)."""
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template

    _quiet_translator()
    share_policy_templates()
    values: dict[str, Any] = {
        "AWS::Region": region, "AWS::AccountId": account_id, "AWS::Partition": partition,
        "AWS::StackName": stack_name, "AWS::URLSuffix": "amazonaws.com",
    }
    values.update(parameters)
    fragment = copy.deepcopy(template)
    to_py27_compatible_template(fragment, values)
    # The translator reads the region from its session and nothing else: no request leaves this process.
    translator = Translator(None, Parser(), boto_session=cast(Any, _TranslatorSession(region)))
    policies = managed_policy_arns(partition)
    try:
        translated = translator.translate(fragment, parameter_values=values, get_managed_policy_map=lambda: policies)
    except InvalidDocumentException as exc:
        causes = " ".join(cause.message for cause in exc.causes)
        raise TemplateError(f"Transform {SERVERLESS_TRANSFORM} failed with: {exc.message} {causes}".strip()) from None
    except Exception as exc:  # the translator's own failures read the same way on AWS
        raise TemplateError(f"Transform {SERVERLESS_TRANSFORM} failed with: {exc}") from None
    return json.loads(json.dumps(undo_mark_unicode_str_in_template(translated)))


def process(
    template: dict[str, Any], parameters: dict[str, str], account_id: str, region: str, partition: str,
    stack_name: str,
) -> dict[str, Any]:
    """The processed template: every transform the template declares, expanded."""
    names = transforms_of(template)
    unsupported = [n for n in names if n != SERVERLESS_TRANSFORM]
    if unsupported:
        raise TemplateError(f"Transform {unsupported[0]} is not available in the local cloud")
    if not names:
        return template
    return expand_serverless(template, parameters, account_id, region, partition, stack_name)


# ----------------------------------------------------------------------------------------- capabilities
def required_capabilities(processed: dict[str, Any], transformed: bool, change_set: bool) -> list[str]:
    needed: list[str] = []
    iam = [(r.get("Type"), r.get("Properties") or {}) for r in (processed.get("Resources") or {}).values()
           if r.get("Type") in IAM_RESOURCE_NAMES]
    if any(IAM_RESOURCE_NAMES[kind] and IAM_RESOURCE_NAMES[kind] in props for kind, props in iam):
        needed.append("CAPABILITY_NAMED_IAM")
    elif iam:
        needed.append("CAPABILITY_IAM")
    if transformed and not change_set:
        needed.append("CAPABILITY_AUTO_EXPAND")
    return needed


def check_capabilities(processed: dict[str, Any], transformed: bool, change_set: bool, given: list[str]) -> None:
    missing = [c for c in required_capabilities(processed, transformed, change_set) if c not in given]
    if missing:
        raise TemplateError(f"Requires capabilities : [{', '.join(missing)}]", "InsufficientCapabilitiesException")


# --------------------------------------------------------------------------------------- state machines
def definition_string(properties: dict[str, Any], account_id: str, partition: str) -> str:
    """A state machine's definition as CloudFormation hands it to Step Functions (properties already resolved)."""
    if "DefinitionString" in properties:
        definition = str(properties["DefinitionString"])
    elif "Definition" in properties:
        definition = json.dumps(properties["Definition"], indent=2)
    elif "DefinitionS3Location" in properties:
        location = properties["DefinitionS3Location"]
        from moto.s3.models import s3_backends

        found = s3_backends[account_id][partition].get_object(
            location["Bucket"], location["Key"], version_id=location.get("Version")
        )
        if found is None:
            raise ValueError(f"DefinitionS3Location s3://{location['Bucket']}/{location['Key']} does not exist")
        definition = bytes(found.value).decode("utf-8")
    else:
        definition = ""
    substitutions = properties.get("DefinitionSubstitutions") or {}
    if substitutions:
        pattern = re.compile(r"\$\{(" + "|".join(re.escape(str(k)) for k in substitutions) + r")\}")

        def value(match: re.Match[str]) -> str:
            found = substitutions[match.group(1)]
            if isinstance(found, bool):
                return "true" if found else "false"
            return str(found)

        definition = pattern.sub(value, definition)
    return definition


def patch_bucket_model() -> None:
    """``AWS::S3::Bucket``: moto applies BucketEncryption and Tags only; VersioningConfiguration and
    PublicAccessBlockConfiguration (the SAM CLI's managed bucket has both) are applied too."""
    from moto.s3.models import FakeBucket, s3_backends
    from moto.utilities.utils import get_partition

    original = FakeBucket.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]
    if getattr(original, "_applies_settings", False):
        return

    def create(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str,
               **kwargs: Any) -> Any:
        bucket = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties = cloudformation_json.get("Properties", {})
        backend = s3_backends[account_id][get_partition(region_name)]
        versioning = (properties.get("VersioningConfiguration") or {}).get("Status")
        if versioning:
            backend.put_bucket_versioning(bucket.name, versioning)
        block = properties.get("PublicAccessBlockConfiguration")
        if block:
            backend.put_public_access_block(bucket.name, {k: str(v).lower() == "true" for k, v in block.items()})
        return bucket

    create._applies_settings = True  # type: ignore[attr-defined]
    FakeBucket.create_from_cloudformation_json = classmethod(create)  # type: ignore[assignment]


def add_bucket_policy_model() -> None:
    """``AWS::S3::BucketPolicy``, unknown to moto's CloudFormation (it skipped the resource): the SAM CLI's
    managed bucket stack has one. Ref is the bucket name, as in CloudFormation."""
    from moto.core.common_models import CloudFormationModel
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    from local_cloud.cloudformation_models import ResourceModel, UpdatedInPlace, register, registered

    if registered("AWS::S3::BucketPolicy"):
        return

    class CfnBucketPolicy(ResourceModel, UpdatedInPlace, CloudFormationModel):
        TYPE = "AWS::S3::BucketPolicy"

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str, **kwargs: Any
        ) -> Any:
            properties = cloudformation_json["Properties"]
            document = properties["PolicyDocument"]
            policy = json.dumps(document) if not isinstance(document, str) else document
            s3_backends[account_id][get_partition(region_name)].put_bucket_policy(properties["Bucket"],
                                                                                  policy.encode())
            return cls(properties["Bucket"])

        @classmethod
        def update(cls, original: Any, properties: dict[str, Any], account_id: str, region_name: str) -> Any:
            return cls.create_from_cloudformation_json(original.physical_id, {"Properties": properties}, account_id,
                                                       region_name)

        @classmethod
        def delete_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str
        ) -> None:
            backend = s3_backends[account_id][get_partition(region_name)]
            bucket = cloudformation_json["Properties"]["Bucket"]
            if bucket in backend.buckets:
                backend.delete_bucket_policy(bucket)

    register(CfnBucketPolicy)


def patch_state_machine_model() -> None:
    """``AWS::StepFunctions::StateMachine`` gets the definition string CloudFormation hands Step Functions, on
    create and on update (moto calls create positionally and update by keyword)."""
    import inspect

    from moto.stepfunctions.models import StateMachine
    from moto.utilities.utils import get_partition

    for name in ("create_from_cloudformation_json", "update_from_cloudformation_json"):
        original = getattr(StateMachine, name).__func__
        if getattr(original, "_resolves_definitions", False):
            continue
        signature = inspect.signature(original)

        def wrapper(cls: Any, *args: Any, _original: Any = original, _signature: Any = signature,
                    **kwargs: Any) -> Any:
            bound = _signature.bind(cls, *args, **kwargs).arguments
            properties = bound["cloudformation_json"].setdefault("Properties", {})
            properties["DefinitionString"] = definition_string(
                properties, bound["account_id"], get_partition(bound["region_name"]))
            for key in ("Definition", "DefinitionS3Location", "DefinitionSubstitutions"):
                properties.pop(key, None)
            return _original(cls, *args, **kwargs)

        wrapper._resolves_definitions = True  # type: ignore[attr-defined]
        setattr(StateMachine, name, classmethod(wrapper))
