"""Small patches to moto 5.2.5 so it behaves like AWS where the onboarding depends on it.

Each patch says what moto does and why we need otherwise. ``apply`` applies every one of them, in the
process that runs the moto server (``local serve``) and, through an autouse fixture in tests/conftest.py,
in every test's in-memory moto: the tests and the local cloud obey the same rules. Numbers 1, 5 and the
arrival of custom resource answers concern only a running server (``apply_server_wiring``).

1. Custom resources: moto posts the ResponseURL as ``http://host.docker.internal:<port>/...`` (for Lambda
   in Docker); our Lambdas run on this host, so the URL must say 127.0.0.1.
2. Custom resources: moto accepts only a SUCCESS response, ignores FAILED (the stack would wait forever),
   ignores the PhysicalResourceId, and caches Outputs read while the resource was pending. Here a
   response is handled as CloudFormation does: SUCCESS completes the resource (Data feeds Fn::GetAtt and
   Outputs), FAILED fails it with the Reason, and the stack fails, rolls back or is deleted as its failure
   policy says (``cloudformation_rollback``).
3. ``AWS::CloudFormation::CustomResource`` is unknown to moto (only ``Custom::*`` is): map it too.
4. A resource that raises while moto creates it leaves the stack CREATE_IN_PROGRESS for ever and the
   create_stack call fails with HTTP 500: here the stack fails (and rolls back) with the reason instead, every
   resource gets CREATE_IN_PROGRESS / CREATE_COMPLETE / CREATE_FAILED events as on AWS, and DELETE_IN_PROGRESS /
   DELETE_COMPLETE when a delete or rollback removes it.
5. ``AWS::StepFunctions::StateMachine`` from CloudFormation lands in moto's non-executing Step Functions
   backend while the API (with ``execute_state_machine``) reads the executing one: point CloudFormation
   at the executing backend.
6. ``AWS::Lambda::LayerVersion`` has no physical id in moto, so ``!Ref Layer`` yields a Python object:
   make it the version ARN. ``AWS::Lambda::Function`` from CloudFormation drops ``Layers`` (and
   ``Architectures``): the function is created with them, as CreateFunction is, so whatever sees a new
   function (the Lambda runner's proactive Init) sees its whole configuration.
7. ``StartExecution`` without a name gets the name ``None`` (ARN ``...:None``, and a second start is
   "already exists"); AWS generates a UUID: do that.
8. ``AWS::SecretsManager::Secret`` has no CloudFormation support in moto (skipped, ``!Ref`` is empty):
   a minimal model creates the secret (SecretString or a generated one), ``!Ref`` is its ARN.
9. Step Functions JSONPath: moto returns a one-element *list* for a definite path through an array
   index (``"$[0].Trail"`` in a Parallel state's ResultSelector yields ``[{...}]``); AWS returns the
   value; and ``"$[*].A.k"`` matching once yields the value, where AWS yields a list. Here a definite
   path (no wildcard, slice, filter or ``..``) yields its match, any other path a list of matches.
10. S3 bucket policies: moto ignores condition operators it does not know (``Bool``...), so a
    TLS-only statement (Deny ``s3:*`` when ``aws:SecureTransport`` is false) denies every request.
    Here a statement's conditions are evaluated where the local cloud knows the value (requests
    count as TLS, as they are on AWS); a Deny whose condition cannot be evaluated does not apply
    (moto cannot know the request context), an Allow keeps moto's lenient reading.
11. Update/Delete of custom resources (see ``custom_resources``).
12. ``DescribeStacks`` masks a NoEcho parameter only when its *value* equals a NoEcho parameter's
    *name* (moto compares the wrong side), so the Workbench API key was shown in plain text: mask by
    name, as CloudFormation does.
13. ``SetQueueAttributes`` without ``Policy`` wipes the queue's policy in moto; SQS keeps it. Our step 5
    sets only what differs, so a rerun that fixed the retention would silently open the queue's policy.
14. ``DescribeStackResources``/``ListStackResources``/``DescribeStackResource`` list a resource whose
    Condition is false (and one moto does not emulate) as a record without type or logical id; the first
    two break any reader (``status``), the last answers HTTP 500. CloudFormation lists only what it
    created: so does the local cloud.
15. CloudTrail's logging settings (event selectors): see ``logging_patches``.
16. A stack update of an ``AWS::IAM::Role`` changed only its description (and its maximum session from the
    wrong property) and dropped the role from the stack: a new trust policy (the Workbench GUID as external
    id), inline policies or permissions boundary never reached IAM, and a later stack delete left the role
    behind. Here the role is updated as CloudFormation does (a new RoleName replaces it).
17. Service-managed StackSets (``stacksets.py``): operations in the background, one at a time, nested OUs,
    never the management account, automatic deployment, failure tolerance, paging.
18. What AWS services check and do for one another, each in its own module and installed from
    ``apply``: S3's notification validation and events (``s3_notifications``), SNS delivery to SQS and
    its metrics (``sns_delivery``), KMS's key policy rules (``kms_key_policies``), S3's bucket policy rules
    (``s3_bucket_policies``), and Lambda's refusals of
    a Task named ``Lambda.<code>`` (``stepfunctions_lambda_errors``).
19. ``!Ref AWS::NoValue`` inside a list (a statement under ``!If``) stays in the list as ``null`` in moto;
    CloudFormation removes the item. A role policy holding ``null`` is one IAM would have refused, and the
    IAM enforcement reads such a document as granting nothing.
20. An account Organizations creates has ``OrganizationAccountAccessRole`` (or the requested ``RoleName``) with
    the ``AdministratorAccess`` managed policy attached; moto made the role without it, so under IAM
    enforcement the management account could assume it and do nothing.
21. CloudFormation takes the SAM CLI's requests as AWS does (TemplateURL, the Serverless transform, change sets):
    see ``cloudformation_changesets`` and ``cloudformation_templates``.
22. A stack update with a changed parameter updated only the resources naming it in a ``Ref``; one naming it
    only in ``Fn::Sub`` (``"${BucketArn}/${LogObjectPrefix}*"``) kept its old value. CloudFormation updates
    every resource whose resolved properties change: ``${Name}`` in a ``Fn::Sub`` is a reference too.
    So is the parameter behind a condition a resource's ``Fn::If`` names: a grant under ``!If [HasX, ...]``
    appears or goes when the parameter that decides ``HasX`` changes.
23. A member account reads the organization (ListRoots, ListAccountsForParent, ListDelegatedAdministrators, ...)
    as AWS lets it: as a delegated administrator for any service, else AccessDeniedException
    (``organizations_members``).
24. A stack update deleted the resources its new template no longer has before making the new ones;
    CloudFormation deletes them last, in the update's cleanup (``cloudformation_cleanup``).
25. moto's request recorder (``MOTO_ENABLE_RECORDING``) appends each request to its file from whichever server
    thread answers it; a request over the file buffer's size is written in several pieces, so two requests at
    once could share a line. Here one request is recorded at a time: every line is one request.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from contextvars import ContextVar
from typing import Any

from local_cloud import (
    backend_snapshots,
    cfn_stacks,
    cloudformation_changesets,
    cloudformation_cleanup,
    cloudformation_events,
    cloudformation_iam,
    cloudformation_rollback,
    cloudtrail_checks,
    cloudwatch_alarms,
    custom_resources,
    kms_key_pairs,
    kms_key_policies,
    logging_patches,
    organizations_members,
    s3_bucket_policies,
    s3_notifications,
    sns_delivery,
    stacksets,
    stepfunctions_history,
    stepfunctions_lambda_errors,
    stepfunctions_redrive,
)
from local_cloud.once import once

log = logging.getLogger(__name__)


def _physical_id(resource: Any) -> str:
    value = getattr(resource, "physical_resource_id", None)
    return value if isinstance(value, str) else ""


def _patch_response_url_host() -> None:
    from moto import settings

    settings.moto_server_host = lambda: "http://127.0.0.1"


def _patch_stepfunctions_backend() -> None:
    import moto.stepfunctions.models as sfn_models
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    sfn_models.stepfunctions_backends = stepfunctions_parser_backends


# The CreateFunction spec entries an ``AWS::Lambda::Function`` being created by CloudFormation adds (patch 6).
_CLOUDFORMATION_SPEC: ContextVar[dict[str, Any] | None] = ContextVar("lambda_cloudformation_spec", default=None)


def _patch_lambda_models() -> None:
    from moto.awslambda.models import LambdaFunction, LayerVersion

    LayerVersion.physical_resource_id = property(lambda self: self.arn)  # type: ignore[attr-defined]

    original_create = LambdaFunction.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]
    original_init = LambdaFunction.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        """moto's, with what CloudFormation's properties add to the spec moto makes of them."""
        added = _CLOUDFORMATION_SPEC.get()
        if added:
            if "spec" in kwargs:
                kwargs["spec"] = {**kwargs["spec"], **added}
            else:
                args = (args[0], {**args[1], **added}, *args[2:])
        original_init(self, *args, **kwargs)

    def create_from_cloudformation_json(
        cls: Any, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str, **kw: Any
    ) -> Any:
        properties = cloudformation_json["Properties"]
        # In CreateFunction's own spec, not set afterwards: the function exists (and the hooks on its creation
        # run) from within moto's create_function.
        added = {name: properties[name] for name in ("Layers", "Architectures") if properties.get(name)}
        token = _CLOUDFORMATION_SPEC.set(added)
        try:
            fn = original_create(cls, resource_name, cloudformation_json, account_id, region_name, **kw)
        finally:
            _CLOUDFORMATION_SPEC.reset(token)
        if properties.get("Tags"):
            fn.tags = {tag["Key"]: tag["Value"] for tag in properties["Tags"]}
        return fn

    LambdaFunction.__init__ = __init__  # type: ignore[method-assign]
    LambdaFunction.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)  # type: ignore[assignment]

    original_layer_create = LayerVersion.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def layer_create(
        cls: Any, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str, **kw: Any
    ) -> Any:
        name = cloudformation_json["Properties"].get("LayerName") or resource_name
        return original_layer_create(cls, name, cloudformation_json, account_id, region_name, **kw)

    LayerVersion.create_from_cloudformation_json = classmethod(layer_create)  # type: ignore[assignment]


def _patch_execution_name() -> None:
    import uuid

    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]


def _add_secret_model() -> None:
    import secrets as random_source
    import string

    from moto.core.common_models import CloudFormationModel
    from moto.secretsmanager.models import secretsmanager_backends

    from local_cloud.cloudformation_models import ResourceModel, register, registered

    if registered("AWS::SecretsManager::Secret"):
        return

    class CfnSecret(ResourceModel, CloudFormationModel):
        """AWS::SecretsManager::Secret for moto's CloudFormation (Ref = ARN)."""

        TYPE, NAME_PROPERTY, ATTRIBUTES = "AWS::SecretsManager::Secret", "Name", {"Id": "physical_id"}

        def __init__(self, arn: str, name: str, account_id: str, region: str) -> None:
            super().__init__(arn)
            self.arn, self.name, self.account_id, self.region = arn, name, account_id, region

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str, **kwargs: Any
        ) -> Any:
            props = cloudformation_json.get("Properties", {})
            value = props.get("SecretString")
            if value is None:
                spec = props.get("GenerateSecretString", {})
                alphabet = string.ascii_letters + string.digits
                value = "".join(random_source.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
                if spec.get("SecretStringTemplate") and spec.get("GenerateStringKey"):
                    document = json.loads(spec["SecretStringTemplate"])
                    document[spec["GenerateStringKey"]] = value
                    value = json.dumps(document)
            backend = secretsmanager_backends[account_id][region_name]
            created = json.loads(
                backend.create_secret(
                    name=resource_name,
                    secret_string=value,
                    secret_binary=None,
                    description=props.get("Description"),
                    tags=props.get("Tags"),
                    kms_key_id=props.get("KmsKeyId"),
                    client_request_token=None,
                    replica_regions=[],
                    force_overwrite=False,
                )
            )
            return cls(created["ARN"], created["Name"], account_id, region_name)

        @classmethod
        def delete_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str
        ) -> None:
            backend = secretsmanager_backends[account_id][region_name]
            backend.delete_secret(resource_name, None, True)

    register(CfnSecret)


_JSON_PATH_USERS = (
    "moto.stepfunctions.parser.asl.utils.json_path",
    "moto.stepfunctions.parser.asl.component.common.string.string_expression",
    "moto.stepfunctions.parser.asl.component.intrinsic.argument.argument",
    "moto.stepfunctions.parser.asl.eval.states",
    "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.timestamp_operators",
    "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.boolean_equals",
    "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.numeric",
    "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.string_operators",
)
_INDEFINITE_PATH = re.compile(r"\*|\.\.|\?\(|\[[^\]]*[:,][^\]]*\]")


@functools.lru_cache(maxsize=1024)
def parsed_path(path: str) -> Any:
    """A JSONPath expression parsed once per text: jsonpath_ng builds a new parser (PLY's tables, by reflection)
    for every parse, about half a millisecond, and an execution reads the same few paths in every state it
    runs. A parsed expression only reads the data it is matched against, so one serves every caller; a path
    that does not parse raises each time, as before."""
    from moto.stepfunctions.parser.asl.utils import json_path

    return json_path.parse(path)


def _patch_definite_json_paths() -> None:
    import importlib

    from moto.stepfunctions.parser.asl.utils import json_path

    original = json_path.extract_json

    def extract_json(path: str, data: Any) -> Any:
        matches = parsed_path(path).find(data)
        if matches and _INDEFINITE_PATH.search(path):
            return [match.value for match in matches]  # a wildcard/slice/filter always yields a list
        if len(matches) == 1:
            return matches[0].value
        return original(path, data)  # no match (error or []), several matches

    for name in _JSON_PATH_USERS:
        module = importlib.import_module(name)
        if getattr(module, "extract_json", None) is original:
            module.extract_json = extract_json  # type: ignore[attr-defined]


# What the local cloud knows of every request's context: clients reach AWS over HTTPS.
_KNOWN_CONTEXT = {"aws:securetransport": "true"}


def _condition_holds(condition: dict) -> bool | None:
    """True/False when every key is known and every operator understood, None when unknown."""
    result = True
    for operator, tests in condition.items():
        base = operator.removesuffix("IfExists")
        for key, expected in tests.items():
            actual = _KNOWN_CONTEXT.get(key.lower())
            if actual is None or base not in ("Bool", "StringEquals", "StringNotEquals"):
                return None
            values = [str(v).lower() for v in (expected if isinstance(expected, list) else [expected])]
            matched = actual in values
            result = result and (not matched if base == "StringNotEquals" else matched)
    return result


def _patch_bucket_policy_conditions() -> None:
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = json.loads(self.policy)
        statements = policy.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        applicable = []
        for statement in statements:
            condition = statement.get("Condition")
            if not condition:
                applicable.append(statement)
                continue
            holds = _condition_holds(condition)
            if holds or (holds is None and statement.get("Effect") == "Allow"):
                applicable.append({k: v for k, v in statement.items() if k != "Condition"})
        return IAMPolicy(json.dumps({**policy, "Statement": applicable})).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def _patch_custom_resource_type() -> None:
    import moto.cloudformation.parsing as parsing
    from moto.cloudformation.custom_model import CustomModel

    original = parsing.resource_class_from_type

    def resource_class_from_type(resource_type: str) -> Any:
        if resource_type == "AWS::CloudFormation::CustomResource":
            return CustomModel
        return original(resource_type)

    parsing.resource_class_from_type = resource_class_from_type


def _patch_resource_events() -> None:
    import moto.cloudformation.parsing as parsing
    from moto.cloudformation.custom_model import CustomModel
    from moto.cloudformation.models import Stack

    original_create = parsing.parse_and_create_resource

    def parse_and_create_resource(
        logical_id: str, resource_json: dict, resources_map: Any, account_id: str, region_name: str
    ) -> Any:
        stack = cfn_stacks.find_stack(resources_map.stack_id)
        condition = resource_json.get("Condition")
        if stack is None or (condition and not resources_map.lazy_condition_map[condition]):
            return original_create(logical_id, resource_json, resources_map, account_id, region_name)
        if stack.status.endswith("_FAILED") or stack.status.startswith(("ROLLBACK_", "DELETE_")):
            # CloudFormation creates nothing more once a create failed or a delete began; moto would, lazily,
            # for any describe call that reads a resource the rollback or delete has removed.
            return None
        resource_type = resource_json["Type"]
        cfn_stacks.resource_event(stack, logical_id, resource_type, "CREATE_IN_PROGRESS")
        try:
            resource = original_create(logical_id, resource_json, resources_map, account_id, region_name)
        except cfn_stacks.ResourceFailed:
            raise  # a resource this one references failed: that one's event says why
        except Exception as exc:
            reason = cfn_stacks.failure_reason(exc)
            cfn_stacks.resource_event(stack, logical_id, resource_type, "CREATE_FAILED", reason=reason)
            raise cfn_stacks.ResourceFailed(f"{logical_id} ({resource_type}): {reason}") from exc
        if resource is None:
            cfn_stacks.resource_event(stack, logical_id, resource_type, "CREATE_COMPLETE",
                                      reason="not emulated by moto")
        elif isinstance(resource, CustomModel):
            cfn_stacks.resource_event(
                stack,
                logical_id,
                resource_type,
                "CREATE_IN_PROGRESS",
                reason="Resource creation Initiated",
            )
        else:
            cfn_stacks.resource_event(stack, logical_id, resource_type, "CREATE_COMPLETE", _physical_id(resource))
        return resource

    parsing.parse_and_create_resource = parse_and_create_resource

    original_delete_resource = parsing.ResourceMap._delete_resource

    def _delete_resource(self: Any, parsed_resource: Any, resource_json: dict[str, Any]) -> None:
        """DELETE_IN_PROGRESS / DELETE_COMPLETE for each resource a delete or rollback removes, as on AWS (a custom
        resource's come from its provider's answer). moto retries what fails in a later pass: no event then."""
        stack = cfn_stacks.find_stack(self.stack_id)
        if stack is None or isinstance(parsed_resource, CustomModel):
            return original_delete_resource(self, parsed_resource, resource_json)
        logical_id = getattr(parsed_resource, "logical_resource_id", None) or ""
        resource_type, physical = resource_json.get("Type", ""), _physical_id(parsed_resource)
        announced = getattr(self, "_announced_deletes", set())
        if logical_id not in announced:
            cfn_stacks.resource_event(stack, logical_id, resource_type, "DELETE_IN_PROGRESS", physical)
            self._announced_deletes = announced | {logical_id}
        original_delete_resource(self, parsed_resource, resource_json)
        cfn_stacks.resource_event(stack, logical_id, resource_type, "DELETE_COMPLETE", physical)
        return None

    parsing.ResourceMap._delete_resource = _delete_resource  # type: ignore[method-assign]

    original_create_resources = Stack.create_resources

    def create_resources(self: Any) -> None:
        with cfn_stacks.stack_lock(self.stack_id):
            try:
                original_create_resources(self)
            except Exception as exc:
                log.info("stack %s failed: %s", self.name, exc)
                cfn_stacks.fail_stack(self, cfn_stacks.failure_reason(exc))

    Stack.create_resources = create_resources  # type: ignore[method-assign]

    from moto.cloudformation.models import CloudFormationBackend

    original_create_stack = CloudFormationBackend.create_stack

    def create_stack(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        # Outputs (exports) are evaluated before create_resources, creating what they reference.
        try:
            return original_create_stack(self, name, *args, **kwargs)
        except Exception as exc:
            stack = next((s for s in list(self.stacks.values()) if s.name == name), None)
            if stack is None:
                raise
            cfn_stacks.fail_stack(stack, cfn_stacks.failure_reason(exc))
            return stack

    CloudFormationBackend.create_stack = create_stack  # type: ignore[method-assign]

    # Outputs are evaluated on every describe_stacks; one referencing a resource that failed raised
    # (HTTP 500 for every later describe). CloudFormation shows no Outputs until the stack completes.
    for name in ("outputs", "exports"):
        original_property = getattr(Stack, name)

        def guarded(self: Any, _original: property = original_property, _name: str = name) -> Any:
            try:
                return _original.fget(self)  # type: ignore[misc]
            except Exception:
                if self.status.endswith("_COMPLETE") and not self.status.startswith("ROLLBACK"):
                    raise
                return None if _name == "outputs" else []

        setattr(Stack, name, property(guarded))


def _patch_cfn_response() -> None:
    from moto.cloudformation.responses import CloudFormationResponse

    def process_cfn_response(self: Any) -> tuple[int, dict, str]:
        try:
            body = json.loads(self.body or "{}")
        except ValueError:
            return 400, {"status": 400}, json.dumps({"error": "response body is not JSON"})
        stack_id = (self.querystring.get("stack") or [body.get("StackId", "")])[0]
        custom_resources.handle_response(stack_id, body)
        return 200, {"status": 200}, ""

    CloudFormationResponse.process_cfn_response = process_cfn_response  # type: ignore[method-assign]


def _patch_no_echo_parameters() -> None:
    from moto.cloudformation.models import Stack

    def parameter_list(self: Any) -> list[dict[str, Any]]:
        hidden = set(self.resource_map.no_echo_parameter_keys)
        return [{"ParameterKey": key, "ParameterValue": "****" if key in hidden else value}
                for key, value in self.resource_map.resolved_parameters.items()]

    Stack.parameter_list = property(parameter_list)  # type: ignore[assignment,method-assign]


def _patch_queue_policy_kept() -> None:
    from moto.sqs.models import Queue

    original = Queue._set_attributes
    if getattr(original, "_keeps_policy", False):
        return

    def _set_attributes(self: Any, attributes: dict[str, Any], now: Any = None) -> None:
        policy = getattr(self, "policy", None)
        original(self, attributes, now)
        if "Policy" not in attributes:
            self.policy = policy

    _set_attributes._keeps_policy = True  # type: ignore[attr-defined]
    Queue._set_attributes = _set_attributes  # type: ignore[method-assign]


def _patch_standard_queue_send() -> None:
    """moto's SendMessage builds every attribute of the queue to read ContentBasedDeduplication, counting its
    messages three times over (each count checks every message's visibility and delay): a queue nobody reads,
    as a trail's SQS feed in the local cloud, made each send slower than the last (6 % of the suite's CPU).
    A standard queue has no such attribute, so for one the read is answered without building the rest."""
    from moto.sqs.models import Queue, SQSBackend

    original_send = SQSBackend.send_message
    if getattr(original_send, "_standard_queue_send", False):
        return
    attributes = Queue.attributes
    sending = threading.local()

    def queue_attributes(self: Any) -> dict[str, Any]:
        if getattr(sending, "queue", None) is self and not self.fifo_queue:
            return {}  # send_message's only read: ContentBasedDeduplication, absent from a standard queue's
        return attributes.fget(self)  # type: ignore[attr-defined,no-any-return]

    def send_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        sending.queue = self.get_queue(queue_name)
        try:
            return original_send(self, queue_name, *args, **kwargs)
        finally:
            sending.queue = None

    send_message._standard_queue_send = True  # type: ignore[attr-defined]
    Queue.attributes = property(queue_attributes)  # type: ignore[assignment,method-assign]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]


def _patch_listed_resources() -> None:
    from moto.cloudformation.models import Stack

    def stack_resources(self: Any) -> list[Any]:
        # Only what was created, in template order; never a lookup that would create a missing one.
        created = self.resource_map._parsed_resources
        return [created[name] for name in self.resource_map.resources if created.get(name) is not None]

    Stack.stack_resources = property(stack_resources)  # type: ignore[assignment,method-assign]


def _patch_role_updates() -> None:
    from moto.iam.models import Role, iam_backends
    from moto.utilities.utils import get_partition

    original_create = Role.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]
    if getattr(original_create, "_remembers_policies", False):
        return

    def create(cls: Any, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str,
               **kwargs: Any) -> Any:
        role = original_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        # The role's own Policies, told apart from those an AWS::IAM::Policy resource puts on it.
        role.cfn_policy_names = [p["PolicyName"] for p in cloudformation_json["Properties"].get("Policies", [])]
        return role

    def update(cls: Any, original_resource: Any, new_resource_name: str, cloudformation_json: dict,
               account_id: str, region_name: str) -> Any:
        properties = cloudformation_json["Properties"]
        name = properties.get("RoleName", original_resource.name)
        if name != original_resource.name:  # a new name is a new role: create it, then delete the old one
            role = create(cls, new_resource_name, cloudformation_json, account_id, region_name,
                          StackId=getattr(original_resource, "cfn_stack_id", None))
            cls.delete_from_cloudformation_json(original_resource.name, cloudformation_json, account_id, region_name)
            return role
        backend = iam_backends[account_id][get_partition(region_name)]
        trust = properties["AssumeRolePolicyDocument"]
        backend.update_assume_role_policy(name, trust if isinstance(trust, str) else json.dumps(trust))
        role = backend.update_role(name, properties.get("Description", ""), properties.get("MaxSessionDuration", 3600))
        if properties.get("PermissionsBoundary"):
            backend.put_role_permissions_boundary(name, properties["PermissionsBoundary"])
        else:
            backend.delete_role_permissions_boundary(name)
        wanted = {p["PolicyName"]: p["PolicyDocument"] for p in properties.get("Policies", [])}
        for stale in set(getattr(original_resource, "cfn_policy_names", [])) - set(wanted):
            backend.delete_role_policy(name, stale)
        for policy_name, document in wanted.items():  # through the IAM API, as the handler (service role's grant)
            cloudformation_iam.put_role_policy(backend, role, policy_name, document)
        role.cfn_policy_names = list(wanted)
        cloudformation_iam.sync_managed_policies(backend, role, properties)
        cloudformation_iam.sync_role_tags(backend, role, properties, getattr(original_resource, "cfn_stack_id", None))
        return role

    create._remembers_policies = True  # type: ignore[attr-defined]
    Role.create_from_cloudformation_json = classmethod(create)  # type: ignore[assignment]
    Role.update_from_cloudformation_json = classmethod(update)  # type: ignore[assignment]


_SUB_NAME = re.compile(r"\$\{(?!!)([^}.]+)(?:\.[^}]*)?\}")  # ${Name} or ${Resource.Attribute}, not ${!Literal}


# While moto compares a stack's resources with an update's template: each condition of that template -> the
# names (parameters) it depends on, through the conditions it names.
_CONDITION_REFERENCES: ContextVar[dict[str, list[str]] | None] = ContextVar("condition_references", default=None)


def _condition_references(conditions: dict[str, Any]) -> dict[str, list[str]]:
    def named(body: Any) -> list[str]:
        if isinstance(body, dict):
            inner = [str(body["Condition"])] if isinstance(body.get("Condition"), str) else []
            return inner + [n for v in body.values() for n in named(v)]
        return [n for v in body for n in named(v)] if isinstance(body, list) else []

    resolved: dict[str, list[str]] = {}

    def of(name: str, seen: frozenset[str]) -> list[str]:
        if name in resolved:
            return resolved[name]
        body = conditions.get(name)
        found = _references(body) + [n for c in named(body) if c not in seen for n in of(c, seen | {c})]
        resolved[name] = found
        return found

    for name in conditions:
        of(name, frozenset({name}))
    return resolved


def _references(template: Any) -> list[str]:
    """The names a template fragment refers to: ``Ref``, as CloudFormation reads it ``${Name}`` in ``Fn::Sub``
    (whose variable map is searched too), and the parameters deciding the condition of an ``Fn::If``."""
    found: list[str] = []
    if isinstance(template, dict):
        for key, value in template.items():
            if key == "Ref":
                found.append(value)
            elif key == "Fn::If" and isinstance(value, list) and value and isinstance(value[0], str):
                found.extend((_CONDITION_REFERENCES.get() or {}).get(value[0], []))
                found.extend(_references(value[1:]))
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) and value else value
                found.extend(_SUB_NAME.findall(text) if isinstance(text, str) else [])
                if isinstance(value, list) and len(value) > 1:
                    found.extend(_references(value[1]))
            else:
                found.extend(_references(value))
    elif isinstance(template, list):
        for item in template:
            found.extend(_references(item))
    return found


def _patch_sub_references() -> None:
    from moto.cloudformation import parsing

    parsing.get_references_from_template = _references
    original = parsing.ResourceMap.build_resource_diff
    if getattr(original, "_reads_conditions", False):
        return

    def build_resource_diff(self: Any, other_template: dict[str, Any], parameters: Any = None) -> Any:
        token = _CONDITION_REFERENCES.set(_condition_references(other_template.get("Conditions") or {}))
        try:
            return original(self, other_template, parameters)
        finally:
            _CONDITION_REFERENCES.reset(token)

    build_resource_diff._reads_conditions = True  # type: ignore[attr-defined]
    parsing.ResourceMap.build_resource_diff = build_resource_diff  # type: ignore[method-assign]


def _patch_organization_account_access_role() -> None:
    import json as _json

    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy, iam_backends
    from moto.organizations.models import FakeAccount

    original_init = FakeAccount.__init__
    if getattr(original_init, "_grants_admin", False):
        return
    admin = _json.loads(aws_managed_policies_data)["AdministratorAccess"]

    def init(self: Any, organization: Any, **kwargs: Any) -> None:
        original_init(self, organization, **kwargs)
        iam = iam_backends[self.id]["global"]
        arn = "arn:aws:iam::aws:policy/AdministratorAccess"
        if not any(policy.arn == arn for policy in list(iam.managed_policies.values())):
            policy = AWSManagedPolicy.from_data("AdministratorAccess", self.id, "us-east-1", admin)
            iam.managed_policies[policy.arn] = policy
        iam.attach_role_policy(arn, kwargs.get("RoleName", "OrganizationAccountAccessRole"))

    init._grants_admin = True  # type: ignore[attr-defined]
    FakeAccount.__init__ = init  # type: ignore[method-assign]


def _patch_no_value_in_lists() -> None:
    import moto.cloudformation.parsing as parsing

    original = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        cleaned = original(resource_json, resources_map)
        if isinstance(resource_json, list) and isinstance(cleaned, list):
            return [item for item in cleaned if item is not None]
        return cleaned

    parsing.clean_json = clean_json


def _patch_inline_policy_documents() -> None:
    """CloudFormation's role ``Policies`` and ``AWS::IAM::Policy`` reached moto's IAM as dicts, and
    GetRolePolicy then answered their Python repr (single quotes), which is not JSON: IAM holds JSON text."""
    from moto.iam.models import Group, Role, User

    for cls in (Role, Group, User):
        original = cls.put_policy
        if getattr(original, "_json_text", False):
            continue

        def put_policy(self: Any, policy_name: str, policy_json: Any, _original: Any = original) -> None:
            _original(self, policy_name, policy_json if isinstance(policy_json, str) else json.dumps(policy_json))

        put_policy._json_text = True  # type: ignore[attr-defined]
        cls.put_policy = put_policy  # type: ignore[method-assign]


_recording = threading.Lock()


def _patch_recorder_lock() -> None:
    """One recorded request at a time (see 25)."""
    from moto.moto_api._internal.recorder.models import Recorder

    record = Recorder._record_request
    if getattr(record, "_one_at_a_time", False):
        return

    def _record_request(self: Recorder, request: Any, body: bytes | None = None) -> None:
        with _recording:
            record(self, request, body)

    _record_request._one_at_a_time = True  # type: ignore[attr-defined]
    Recorder._record_request = _record_request  # type: ignore[method-assign]


@once
def apply() -> None:
    """Make moto behave like AWS where the onboarding depends on it (idempotent).

    The one entry point: ``local serve`` calls it, and tests/conftest.py calls it for every test (an autouse
    fixture), so a rule the in-process tests rely on is a rule the local cloud enforces, and the reverse."""
    _patch_lambda_models()
    _patch_execution_name()
    _add_secret_model()
    _patch_definite_json_paths()
    _patch_bucket_policy_conditions()
    _patch_no_echo_parameters()
    _patch_queue_policy_kept()
    _patch_standard_queue_send()
    _patch_inline_policy_documents()
    _patch_listed_resources()
    _patch_no_value_in_lists()
    _patch_custom_resource_type()
    _patch_resource_events()
    cloudformation_iam.apply()
    _patch_role_updates()
    _patch_sub_references()
    _patch_organization_account_access_role()
    custom_resources.install()
    cloudformation_rollback.install()
    cloudformation_cleanup.install()
    stepfunctions_redrive.install()
    stepfunctions_history.install()
    logging_patches.apply()
    cloudtrail_checks.apply()
    stacksets.apply()
    organizations_members.apply()
    # What AWS services check and do for one another (each rule in its own module).
    kms_key_policies.install()
    kms_key_pairs.install()
    s3_bucket_policies.install()
    s3_notifications.install()
    sns_delivery.install()
    stepfunctions_lambda_errors.install()
    cloudformation_changesets.install()
    cloudformation_events.install()
    cloudwatch_alarms.install()
    backend_snapshots.install()


def apply_server_wiring() -> None:
    """What only a running emulator needs on top of ``apply``: custom resources answer to 127.0.0.1, the
    answers arrive over HTTP, and state machines run on the executing Step Functions engine."""
    _patch_response_url_host()
    _patch_stepfunctions_backend()
    _patch_cfn_response()
    _patch_recorder_lock()
