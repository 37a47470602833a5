"""CloudFormation's stack requests and change sets in the local cloud, as the SAM CLI and the console use them.

``sam deploy`` creates a change set (CREATE for a new stack, UPDATE for an existing one) from a TemplateURL,
waits for it, describes its Changes, executes it, follows the stack events and reads the Outputs;
``--resolve-s3`` first does the same for its managed bucket stack (``aws-sam-cli-managed-default``), which it
trusts only with its Tags and Outputs. moto 5.2.5's change sets did not read such a template, apply no
transform, executed outside the code path that creates resources (so no custom resources, no events, no
Outputs), and knew no empty change set. Here, as CloudFormation does:

- CreateChangeSet reads the template (``cloudformation_templates``: TemplateBody, TemplateURL,
  UsePreviousTemplate), resolves the parameters (UsePreviousValue, defaults, constraints), expands the
  transform and checks the capabilities at once (``InsufficientCapabilitiesException``); a stack that does not
  exist yet appears in REVIEW_IN_PROGRESS. A transform that fails leaves the change set FAILED with the reason;
  an UPDATE that changes nothing leaves it FAILED with "The submitted information didn't contain changes.
  Submit different information to create a change set." Otherwise it is CREATE_COMPLETE / AVAILABLE with its
  Changes (Add, Modify with Replacement, Remove).
- ExecuteChangeSet runs what CreateStack / UpdateStack run (resource events, custom resources, Outputs, tags on
  the stack); the change set goes EXECUTE_COMPLETE and the stack's other change sets are deleted. A change set
  that is not AVAILABLE is refused (``InvalidChangeSetStatus``).
- CreateStack / UpdateStack take the same template path (a transform there needs CAPABILITY_AUTO_EXPAND);
  GetTemplate answers the template as submitted (``Original``) or after the transform (``Processed``), also for
  a change set; ListChangeSets lists one stack's change sets.

A stack whose create or update fails rolls back, is deleted or stays as it failed, as CreateStack's OnFailure /
DisableRollback, CreateChangeSet's OnStackFailure, ExecuteChangeSet's and UpdateStack's DisableRollback say
(``cloudformation_rollback``); a stack in ROLLBACK_COMPLETE can only be deleted.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local_cloud import cfn_stacks
from local_cloud import cloudformation_revert_drift as revert_drift
from local_cloud import cloudformation_rollback as rollback
from local_cloud import cloudformation_templates as templates
from local_cloud.cloudformation_templates import ParameterValue, TemplateError
from local_cloud.once import once
from local_cloud.resource_schemas import resource_schema

EMPTY_CHANGE_SET = (
    "The submitted information didn't contain changes. Submit different information to create a change set."
)
_lock = threading.RLock()


@dataclass
class ResourceChange:
    action: str
    logical_resource_id: str
    resource_type: str
    physical_resource_id: str | None = None
    replacement: str | None = None
    scope: list[str] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    resource_drift_status: str | None = None  # drift-aware change sets only


@dataclass
class LocalChangeSet:
    """A change set as DescribeChangeSet and ListChangeSets show it (attribute names for moto's serializer)."""

    change_set_id: str
    change_set_name: str
    stack_id: str
    stack_name: str
    change_set_type: str
    description: str | None
    parameters: dict[str, str]  # as DescribeChangeSet shows them: NoEcho values masked
    capabilities: list[str]
    tags: list[dict[str, str]]
    notification_arns: list[str]
    role_arn: str | None
    template_body: str  # as submitted
    processed: dict[str, Any] | None  # after the transform
    changes: list[ResourceChange] = field(default_factory=list)
    status: str = "CREATE_COMPLETE"
    execution_status: str = "AVAILABLE"
    status_reason: str | None = None
    creation_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    include_nested_stacks: bool = False
    on_stack_failure: str | None = None
    parameter_values: dict[str, str] = field(default_factory=dict)  # what the stack gets
    deployment_mode: str | None = None  # REVERT_DRIFT: a drift-aware change set (``cloudformation_revert_drift``)
    stack_drift_status: str | None = None
    drifted: dict[str, dict[str, Any]] = field(default_factory=dict)  # what its execution puts back

    @property
    def template_dict(self) -> dict[str, Any]:  # moto's code reads this on its own change sets
        return self.processed or {}


# ------------------------------------------------------------------------------------ request helpers
def _local_hosts(response: Any) -> tuple[str, ...]:
    hosts = {str(response.headers.get("Host", ""))}
    port = os.environ.get("MOTO_PORT")
    if port:
        hosts |= {f"127.0.0.1:{port}", f"localhost:{port}"}
    return tuple(h for h in hosts if h)


def _given_parameters(response: Any) -> list[ParameterValue]:
    given = []
    for item in response._get_param("Parameters", []) or []:
        use_previous = str(item.get("UsePreviousValue", "false")).lower() == "true"
        given.append(ParameterValue(item["ParameterKey"], item.get("ParameterValue"), use_previous))
    return given


def _tags(response: Any) -> dict[str, str]:
    return {item["Key"]: item["Value"] for item in response._get_param("Tags", []) or []}


def _template_body(response: Any, stack: Any | None, operation: str) -> str:
    body = response._get_param("TemplateBody")
    url = response._get_param("TemplateURL")
    previous = str(response._get_param("UsePreviousTemplate", "false")).lower() == "true"
    if previous and (body or url):
        raise TemplateError("You cannot specify both usePreviousTemplate and Template Body/Template URL.")
    if previous:
        if stack is None:
            raise TemplateError(f"{operation}: usePreviousTemplate requires an existing stack")
        return str(getattr(stack, "original_template", stack.template))
    if body and url:
        raise TemplateError("Specify exactly one of TemplateBody and TemplateURL.")
    if url:
        return templates.read_template_url(url, response.current_account, response.partition, _local_hosts(response))
    if body:
        return str(body)
    raise TemplateError("Either Template URL or Template Body must be specified.")


@dataclass
class Prepared:
    body: str
    original: dict[str, Any]
    processed: dict[str, Any] | None  # None: the transform failed (reason in ``failure``)
    parameters: dict[str, str]
    transformed: bool
    failure: str | None = None

    @property
    def moto_template(self) -> str:
        """What moto's Stack is given: the processed template, or the body as submitted when nothing changed."""
        return json.dumps(self.processed) if self.transformed else self.body


def prepare(response: Any, stack: Any | None, stack_name: str, operation: str, change_set: bool) -> Prepared:
    """Template, parameters, transform and capabilities of a request, refused as CloudFormation refuses them."""
    body = _template_body(response, stack, operation)
    original = templates.parse_template(body)
    previous = dict(stack.stack_parameters) if stack is not None and hasattr(stack, "stack_parameters") else None
    if previous is not None:
        previous = {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in previous.items()}
    parameters = templates.resolve_parameters(original, _given_parameters(response), previous)
    transformed = bool(templates.transforms_of(original))
    region = response.region
    try:
        processed = templates.process(original, parameters, response.current_account, region, response.partition,
                                      stack_name)
    except TemplateError as exc:
        if not change_set:
            raise
        return Prepared(body, original, None, parameters, transformed, str(exc))
    capabilities = list(response._get_param("Capabilities", []) or [])
    templates.check_capabilities(processed, transformed, change_set, capabilities)
    return Prepared(body, original, processed, parameters, transformed)


def _masked(prepared: Prepared) -> dict[str, str]:
    declared = prepared.original.get("Parameters") or {}
    return {k: "****" if str((declared.get(k) or {}).get("NoEcho", "")).lower() == "true" else v
            for k, v in prepared.parameters.items()}


def _check_policy(name: str, value: str | None) -> None:
    if value is not None and value not in rollback.POLICIES:
        raise templates.refuse(TemplateError(
            f"1 validation error detected: Value '{value}' at '{name[0].lower() + name[1:]}' failed to satisfy "
            f"constraint: Member must satisfy enum value set: [{', '.join(sorted(rollback.POLICIES))}]"))


def _find_stack(backend: Any, name_or_id: str) -> Any | None:
    for stack in list(backend.stacks.values()):
        if name_or_id in (stack.name, stack.stack_id):
            return stack
    return None


def _updatable(stack: Any) -> None:
    status = stack.status
    if status.endswith("_IN_PROGRESS") or status in ("CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED",
                                                   "DELETE_FAILED", "CREATE_PENDING", "UPDATE_ROLLBACK_FAILED"):
        raise TemplateError(f"Stack:{stack.stack_id} is in {status} state and can not be updated.")


def _changes(stack: Any | None, processed: dict[str, Any], parameters: dict[str, str],
             region: str = "us-east-1") -> list[ResourceChange]:
    resources = processed.get("Resources") or {}
    if stack is None or not getattr(stack, "template_dict", None):
        return [ResourceChange("Add", name, r.get("Type", "")) for name, r in resources.items()]
    diff = stack.resource_map.build_resource_diff(processed, parameters)
    old = stack.template_dict.get("Resources") or {}
    previous = {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in stack.stack_parameters.items()}
    changed_parameters = {k for k, v in parameters.items() if previous.get(k) != v}
    changes = [ResourceChange("Add", name, resources[name].get("Type", "")) for name in diff["Add"]]
    for name in diff["Modify"]:
        kind = resources[name].get("Type", "")
        details = property_changes(old[name], resources[name], changed_parameters, region)
        needs = {d["Target"].get("RequiresRecreation") for d in details}
        replacement = ("True" if "Always" in needs or old[name].get("Type") != kind
                       else "Conditional" if "Conditionally" in needs else "False")
        scope = list(dict.fromkeys(d["Target"]["Attribute"] for d in details)) or ["Properties"]
        changes.append(ResourceChange("Modify", name, kind, _physical(stack, name), replacement, scope, details))
    changes += [ResourceChange("Remove", name, old[name].get("Type", ""), _physical(stack, name))
                for name in diff["Remove"]]
    return changes


def property_changes(before: dict[str, Any], after: dict[str, Any], changed_parameters: set[str],
                     region: str) -> list[dict[str, Any]]:
    """DescribeChangeSet's Details of one modified resource: each property changed in the template
    (DirectModification, with its values) or through a parameter it references (ParameterReference), and whether
    it requires recreation, from the resource type's registry schema (its createOnlyProperties)."""
    kind = after.get("Type", "")
    old, new = before.get("Properties") or {}, after.get("Properties") or {}
    details: list[dict[str, Any]] = []
    for prop in [*new, *(p for p in old if p not in new)]:
        # Resource tags are their own attribute (and Scope) in a change set.
        target = {"Attribute": "Tags" if prop == "Tags" else "Properties", "Name": prop, "Path": f"/Properties/{prop}",
                  "RequiresRecreation": requires_recreation(kind, prop, region)}
        if old.get(prop) != new.get(prop):
            change_type = "Add" if prop not in old else "Remove" if prop not in new else "Modify"
            target.update(AttributeChangeType=change_type)
            if prop in old:
                target["BeforeValue"] = _text(old[prop])
            if prop in new:
                target["AfterValue"] = _text(new[prop])
            details.append({"Target": target, "Evaluation": "Static", "ChangeSource": "DirectModification"})
            continue
        for parameter in sorted(_referenced(new[prop]) & changed_parameters):
            details.append({"Target": dict(target, AttributeChangeType="Modify"), "Evaluation": "Static",
                            "ChangeSource": "ParameterReference", "CausingEntity": parameter})
    if before.get("Metadata") != after.get("Metadata"):
        details.append({"Target": {"Attribute": "Metadata", "RequiresRecreation": "Never"}, "Evaluation": "Static",
                        "ChangeSource": "DirectModification"})
    return details


def requires_recreation(resource_type: str, prop: str, region: str) -> str:
    """Always (a create-only property), Conditionally (part of it, or conditionally create-only), else Never."""
    create_only, conditional = _create_only(resource_type, region)
    path = f"/properties/{prop}"
    if path in create_only:
        return "Always"
    if path in conditional or any(p.startswith(path + "/") for p in (*create_only, *conditional)):
        return "Conditionally"
    return "Never"


def _create_only(resource_type: str, region: str) -> tuple[frozenset[str], frozenset[str]]:
    """The CloudFormation registry schema's create-only properties (none for a custom resource)."""
    schema = resource_schema(resource_type, region)
    return (frozenset(schema.get("createOnlyProperties") or ()),
            frozenset(schema.get("conditionalCreateOnlyProperties") or ()))


def _referenced(value: Any) -> set[str]:
    """The names a template value refers to: ``Ref`` targets and ``Fn::Sub`` variables."""
    found: set[str] = set()
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            found.add(value["Ref"])
        sub = value.get("Fn::Sub")
        text = sub[0] if isinstance(sub, list) and sub else sub
        if isinstance(text, str):
            found |= {name.split(".")[0] for name in re.findall(r"\$\{([^!}][^}]*)}", text)}
        for item in value.values():
            found |= _referenced(item)
    elif isinstance(value, list):
        for item in value:
            found |= _referenced(item)
    return found


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _physical(stack: Any, logical_id: str) -> str | None:
    resource = stack.resource_map._parsed_resources.get(logical_id)
    value = getattr(resource, "physical_resource_id", None)
    return value if isinstance(value, str) else None


def _unchanged(stack: Any, prepared: Prepared, tags: dict[str, str]) -> bool:
    current = getattr(stack, "processed_template", None) or stack.template_dict
    params = {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in stack.stack_parameters.items()}
    return current == prepared.processed and params == prepared.parameters and (not tags or tags == stack.tags)


# --------------------------------------------------------------------------------------------- the API
def _responses() -> Any:
    from moto.cloudformation.responses import CloudFormationResponse

    return CloudFormationResponse


def create_change_set(self: Any) -> Any:
    from moto.cloudformation.models import Stack
    from moto.cloudformation.utils import generate_changeset_id, generate_stack_id, validate_create_change_set
    from moto.core.responses import ActionResult

    backend = self.cloudformation_backend
    stack_name = self._get_param("StackName")
    name = self._get_param("ChangeSetName")
    kind = self._get_param("ChangeSetType") or "UPDATE"  # CloudFormation's default
    validate_create_change_set(name)
    on_stack_failure = self._get_param("OnStackFailure")
    _check_policy("OnStackFailure", on_stack_failure)
    if on_stack_failure == "DELETE" and kind != "CREATE":
        raise templates.refuse(TemplateError(
            "OnStackFailure DELETE is only valid when ChangeSetType is CREATE."))
    tags = _tags(self)
    mode = self._get_param("DeploymentMode")
    with _lock:
        stack = _find_stack(backend, stack_name)
        try:
            revert_drift.check_mode(mode, kind)
            if kind == "CREATE":
                if stack is not None and stack.status != "REVIEW_IN_PROGRESS":
                    raise TemplateError(
                        f"Stack [{stack_name}] already exists and cannot be created again with the changeSet [{name}].")
                prepared = prepare(self, None, stack_name, "CreateChangeSet", change_set=True)
            elif kind == "UPDATE":
                if stack is None:
                    raise TemplateError(f"Stack [{stack_name}] does not exist")
                if stack.status == "REVIEW_IN_PROGRESS":
                    raise TemplateError(f"Stack [{stack_name}] does not exist")
                _updatable(stack)
                prepared = prepare(self, stack, stack_name, "CreateChangeSet", change_set=True)
            else:
                raise TemplateError(f"ChangeSetType {kind} is not available in the local cloud")
        except TemplateError as exc:
            raise templates.refuse(exc) from None
        if kind == "CREATE" and stack is None:
            stack = Stack(
                stack_id=generate_stack_id(stack_name, self.region, self.current_account),
                name=stack_name, template={}, parameters={}, account_id=self.current_account,
                region_name=self.region, notification_arns=self._get_param("NotificationARNs", []), tags=tags,
                role_arn=self._get_param("RoleARN"),
            )
            backend.stacks[stack.stack_id] = stack
            stack.status = "REVIEW_IN_PROGRESS"
            stack._add_stack_event("REVIEW_IN_PROGRESS", resource_status_reason="User Initiated")
        change_set = LocalChangeSet(
            change_set_id=generate_changeset_id(name, self.region, self.current_account),
            change_set_name=name, stack_id=stack.stack_id, stack_name=stack.name, change_set_type=kind,
            description=self._get_param("Description"), parameters=_masked(prepared),
            parameter_values=prepared.parameters,
            capabilities=list(self._get_param("Capabilities", []) or []),
            tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            notification_arns=list(self._get_param("NotificationARNs", []) or []),
            role_arn=self._get_param("RoleARN"), template_body=prepared.body, processed=prepared.processed,
            on_stack_failure=on_stack_failure, deployment_mode=mode,
        )
        if mode == revert_drift.REVERT_DRIFT:
            # CloudFormation reads the resources as they are now, when the change set is created.
            change_set.drifted = revert_drift.drifts(stack)
            change_set.stack_drift_status = "DRIFTED" if change_set.drifted else "IN_SYNC"
        if prepared.failure:
            change_set.status, change_set.execution_status = "FAILED", "UNAVAILABLE"
            change_set.status_reason = prepared.failure
        elif kind == "UPDATE" and _unchanged(stack, prepared, tags) and not change_set.drifted:
            change_set.status, change_set.execution_status = "FAILED", "UNAVAILABLE"
            change_set.status_reason = EMPTY_CHANGE_SET
        else:
            assert prepared.processed is not None
            change_set.changes = _changes(stack if kind == "UPDATE" else None, prepared.processed,
                                          prepared.parameters, self.region)
            if mode == revert_drift.REVERT_DRIFT:
                _with_drift(change_set, self.region)
        change_set.moto_template = prepared.moto_template  # type: ignore[attr-defined]
        backend.change_sets[change_set.change_set_id] = change_set
    return ActionResult({"Id": change_set.change_set_id, "StackId": stack.stack_id})


def _with_drift(change_set: LocalChangeSet, region: str) -> None:
    """A drift-aware change set's Changes: each drifted resource as what its execution puts back, every other
    change with its resource's drift status."""
    listed = {c.logical_resource_id for c in change_set.changes}
    for change in change_set.changes:
        change.resource_drift_status = "IN_SYNC" if change.action != "Add" else None
    for logical_id, drift in sorted(change_set.drifted.items()):
        if logical_id in listed:
            continue  # the template changes it too: that change puts the template's values back
        change_set.changes.append(ResourceChange(**revert_drift.resource_change(
            drift, lambda kind, prop: requires_recreation(kind, prop, region))))


def _change_set(backend: Any, name: str, stack_name: str | None) -> LocalChangeSet:
    found = backend.change_sets.get(name)
    if found is None:
        for candidate in list(backend.change_sets.values()):
            if candidate.change_set_name == name and (not stack_name or stack_name in (
                    candidate.stack_name, candidate.stack_id)):
                found = candidate
    if not isinstance(found, LocalChangeSet):
        raise templates.refuse(TemplateError(f"ChangeSet [{name}] does not exist", "ChangeSetNotFound"))
    return found


def describe_change_set(self: Any) -> Any:
    from moto.core.responses import ActionResult

    return ActionResult(_change_set(self.cloudformation_backend, self._get_param("ChangeSetName"),
                                    self._get_param("StackName")))


def list_change_sets(self: Any) -> Any:
    from moto.core.responses import ActionResult

    stack_name = self._get_param("StackName")
    found = [c for c in list(self.cloudformation_backend.change_sets.values())
             if isinstance(c, LocalChangeSet) and stack_name in (c.stack_name, c.stack_id)]
    return ActionResult({"Summaries": found})


def delete_change_set(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    backend = self.cloudformation_backend
    change_set = _change_set(backend, self._get_param("ChangeSetName"), self._get_param("StackName"))
    if change_set.execution_status == "EXECUTE_IN_PROGRESS":
        raise templates.refuse(TemplateError(
            f"ChangeSet [{change_set.change_set_id}] cannot be deleted in its current status of "
            "[EXECUTE_IN_PROGRESS]", "InvalidChangeSetStatus"))
    backend.change_sets.pop(change_set.change_set_id, None)
    return EmptyResult()


def execute_change_set(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    backend = self.cloudformation_backend
    with _lock:
        change_set = _change_set(backend, self._get_param("ChangeSetName"), self._get_param("StackName"))
        if change_set.execution_status != "AVAILABLE":
            raise templates.refuse(TemplateError(
                f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current execution status of "
                f"[{change_set.execution_status}]", "InvalidChangeSetStatus"))
        stack = backend.stacks.get(change_set.stack_id)
        if stack is None:
            raise templates.refuse(TemplateError(f"Stack [{change_set.stack_name}] does not exist"))
        disable_rollback = self._get_param("DisableRollback")
        if disable_rollback is not None and change_set.on_stack_failure:
            raise templates.refuse(TemplateError(
                "DisableRollback cannot be specified when the change set was created with OnStackFailure."))
        disabled = str(disable_rollback).lower() == "true"
        policy = change_set.on_stack_failure or ("DO_NOTHING" if disabled else "ROLLBACK")
        change_set.execution_status = "EXECUTE_IN_PROGRESS"
        # After an execution CloudFormation deletes the stack's other change sets.
        for other in [c for c in list(backend.change_sets.values())
                      if isinstance(c, LocalChangeSet) and c.stack_id == stack.stack_id and c is not change_set]:
            backend.change_sets.pop(other.change_set_id, None)
    template = change_set.moto_template  # type: ignore[attr-defined]
    if change_set.change_set_type == "CREATE":
        stack = _create_in_place(backend, stack, change_set, template, policy)
    else:
        stack.update_rollback_disabled = policy == "DO_NOTHING"
        # Held until the new templates are recorded: a rollback (it takes the lock) restores the previous ones.
        with cfn_stacks.stack_lock(stack.stack_id):
            revert_drift.prepare_execution(stack, change_set.drifted)
            try:
                backend.update_stack(
                    name=stack.name, template=template, role_arn=change_set.role_arn,
                    parameters=[{"ParameterKey": k, "ParameterValue": v}
                                for k, v in change_set.parameter_values.items()],
                    tags={t["Key"]: t["Value"] for t in change_set.tags} or None,
                )
            finally:
                revert_drift.done(stack)
            _remember_templates(stack, change_set.template_body, change_set.processed)
    change_set.execution_status = "EXECUTE_COMPLETE"
    return EmptyResult()


def _create_in_place(backend: Any, review: Any, change_set: LocalChangeSet, template: str, policy: str) -> Any:
    """What CreateStack does, for the stack the change set made in REVIEW_IN_PROGRESS (same id, its events kept)."""
    from moto.cloudformation.models import Stack

    stack = Stack(
        stack_id=review.stack_id, name=review.name, template=template, parameters=change_set.parameter_values,
        account_id=review.account_id, region_name=review.region_name,
        notification_arns=change_set.notification_arns, tags={t["Key"]: t["Value"] for t in change_set.tags},
        role_arn=change_set.role_arn, cross_stack_resources=backend.exports,
    )
    stack.events = review.events
    stack.creation_time = review.creation_time
    stack.on_failure, stack.disable_rollback = policy, policy == "DO_NOTHING"
    backend.stacks[stack.stack_id] = stack
    backend._validate_export_uniqueness(stack)
    for export in stack.exports:
        backend.exports[export.name] = export
    stack._add_stack_event("CREATE_IN_PROGRESS", resource_status_reason="User Initiated")
    _remember_templates(stack, change_set.template_body, change_set.processed)
    stack.create_resources()
    return stack


def _remember_templates(stack: Any, body: str, processed: dict[str, Any] | None) -> None:
    stack.original_template = body
    stack.processed_template = processed


def create_stack(self: Any) -> Any:
    from moto.core.responses import ActionResult

    backend = self.cloudformation_backend
    name = self._get_param("StackName")
    if _find_stack(backend, name) is not None:
        raise templates.refuse(TemplateError(f"Stack [{name}] already exists", "AlreadyExistsException"))
    on_failure, disable_rollback = self._get_param("OnFailure"), self._get_param("DisableRollback")
    try:
        _check_policy("OnFailure", on_failure)
        if on_failure and disable_rollback is not None:
            raise TemplateError("You can specify either DisableRollback or OnFailure, but not both.")
        prepared = prepare(self, None, name, "CreateStack", change_set=False)
    except TemplateError as exc:
        raise templates.refuse(exc) from None
    policy = on_failure or ("DO_NOTHING" if str(disable_rollback).lower() == "true" else "ROLLBACK")
    with rollback.requested_policy(policy):  # a resource may fail inside this request
        stack = backend.create_stack(
            name=name, template=prepared.moto_template, parameters=prepared.parameters,
            notification_arns=self._get_param("NotificationARNs", []), tags=_tags(self),
            role_arn=self._get_param("RoleARN"),
            enable_termination_protection=self._get_param("EnableTerminationProtection"),
            timeout_in_mins=self._get_param("TimeoutInMinutes"),
            stack_policy_body=self._get_param("StackPolicyBody"),
        )
    stack.on_failure, stack.disable_rollback = policy, policy == "DO_NOTHING"
    _remember_templates(stack, prepared.body, prepared.processed)
    return ActionResult({"StackId": stack.stack_id})


def update_stack(self: Any) -> Any:
    from moto.core.responses import ActionResult

    backend = self.cloudformation_backend
    name = self._get_param("StackName")
    stack = _find_stack(backend, name)
    try:
        if stack is None:
            raise TemplateError(f"Stack [{name}] does not exist")
        _updatable(stack)
        prepared = prepare(self, stack, stack.name, "UpdateStack", change_set=False)
        tags = _tags(self)
        if _unchanged(stack, prepared, tags):
            raise TemplateError("No updates are to be performed.")
    except TemplateError as exc:
        raise templates.refuse(exc) from None
    stack.update_rollback_disabled = str(self._get_param("DisableRollback")).lower() == "true"
    with cfn_stacks.stack_lock(stack.stack_id):  # as in execute_change_set
        backend.update_stack(
            name=stack.name, template=prepared.moto_template, role_arn=self._get_param("RoleARN"),
            parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in prepared.parameters.items()],
            tags=tags or None,
        )
        _remember_templates(stack, prepared.body, prepared.processed)
    return ActionResult({"StackId": stack.stack_id})


def get_template(self: Any) -> Any:
    from moto.core.responses import ActionResult

    backend = self.cloudformation_backend
    stage = self._get_param("TemplateStage") or "Original"
    change_set_name = self._get_param("ChangeSetName")
    if change_set_name:
        change_set = _change_set(backend, change_set_name, self._get_param("StackName"))
        body, processed = change_set.template_body, change_set.processed
    else:
        stack = backend.get_stack(self._get_param("StackName"))
        body = getattr(stack, "original_template", stack.template)
        processed = getattr(stack, "processed_template", None)
    if stage == "Processed":
        body = json.dumps(processed) if processed is not None else body
    return ActionResult({"TemplateBody": body, "StagesAvailable": ["Original", "Processed"]})


@once
def install() -> None:
    """Patch moto's CloudFormation API (idempotent); ``local serve`` applies it with the other patches."""
    templates.patch_state_machine_model()
    templates.patch_bucket_model()
    templates.add_bucket_policy_model()
    revert_drift.install()
    responses = _responses()
    for handler in (create_change_set, describe_change_set, list_change_sets, delete_change_set,
                    execute_change_set, create_stack, update_stack, get_template):
        setattr(responses, handler.__name__, handler)
