"""CloudFormation's IAM resources as AWS makes them, where moto 5.2.5 differs.

- ``AWS::IAM::Role``: the stack's tags reach the role (CloudFormation propagates stack-level tags to every
  resource that takes tags; a tag of the resource's own wins), so an ownership tag on the stack is on the
  role and a tag-conditioned grant (``aws:ResourceTag``, ``aws:RequestTag``) sees it; on every update too
  (moto tagged only at create), including an update that changes only the stack's tags: the tags the stack
  gave are re-synced (changed ones tagged, dropped ones untagged; a tag put by hand stays). Inline ``Policies``
  are put with PutRolePolicy and removed with DeleteRolePolicy, as the resource handler does (moto wrote them
  on the role object, past the IAM API, so a service role's grant was never asked for them).
  ``ManagedPolicyArns`` are attached (moto ignored them: a SAM function's role lacked
  ``AWSLambdaBasicExecutionRole``), and on update detached and attached as they change; an ARN that is no policy
  fails the resource with IAM's "Policy <arn> does not exist or is not attachable.". AWS managed policies are
  in every account: the first attachment brings one in from moto's copy of AWS's list. Deleting the role
  detaches only those: a managed policy attached by hand fails the delete with IAM's DeleteConflict (moto
  detached every policy).
- ``AWS::IAM::Policy``: a policy that could not be put on its role is not left half made (moto kept it, so
  CloudFormation's next try answered ``EntityAlreadyExists``).
"""

from __future__ import annotations

import functools
import json
from typing import Any

_SYSTEM_TAG_PREFIX = "aws:"


def _stack_tags(stack_id: str | None) -> dict[str, str]:
    from local_cloud import cfn_stacks

    stack = cfn_stacks.find_stack(stack_id) if stack_id else None
    tags = getattr(stack, "tags", None) or {}
    return {str(k): str(v) for k, v in tags.items() if not str(k).startswith(_SYSTEM_TAG_PREFIX)}


def role_tags(properties: dict[str, Any], stack_id: str | None) -> list[dict[str, str]]:
    """The tags CloudFormation gives a role it creates: the stack's, then the resource's own (which win)."""
    merged = _stack_tags(stack_id)
    for tag in properties.get("Tags") or []:
        merged[str(tag["Key"])] = str(tag["Value"])
    return [{"Key": key, "Value": value} for key, value in merged.items()]


def sync_role_tags(backend: Any, role: Any, properties: dict[str, Any], stack_id: str | None) -> None:
    """The role's tags as the stack and the resource now give them: changed ones tagged, ones the stack gave
    before and gives no more untagged, any other tag (put by hand) left alone."""
    wanted = {tag["Key"]: tag["Value"] for tag in role_tags(properties, stack_id)}
    current = {tag["Key"]: tag["Value"] for tag in role.tags}
    dropped = sorted(set(getattr(role, "cfn_tag_keys", ())) - set(wanted))
    if dropped:
        backend.untag_role(role.name, dropped)
    changed = [{"Key": key, "Value": value} for key, value in wanted.items() if current.get(key) != value]
    if changed:
        backend.tag_role(role.name, changed)
    role.cfn_tag_keys = list(wanted)
    role.cfn_own_tags = list(properties.get("Tags") or [])
    role.cfn_stack_id = stack_id


@functools.cache
def aws_managed_policies() -> dict[str, Any]:
    """moto's AWS managed policies by name, parsed once: 4.7 MB of JSON, 40 ms a parse, for every role a stack
    creates with one attached (read only: a policy is built from its entry)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return dict(json.loads(aws_managed_policies_data))


def _aws_managed_policy(backend: Any, arn: str) -> None:
    """An AWS managed policy exists in every account; moto's IAM loads none, so the first role that attaches one
    brings it in (an unknown ARN stays unknown: attaching it fails as on AWS)."""
    from moto.iam.models import AWSManagedPolicy

    if arn in {policy.arn for policy in list(backend.managed_policies.values())} or ":iam::aws:policy/" not in arn:
        return
    name = arn.rsplit("/", 1)[-1]
    data = aws_managed_policies().get(name)
    if data is None:
        return
    policy = AWSManagedPolicy.from_data(name, backend.account_id, "us-east-1", data)
    if policy.arn == arn:
        backend.managed_policies[policy.arn] = policy


def sync_managed_policies(backend: Any, role: Any, properties: dict[str, Any]) -> None:
    """AttachRolePolicy/DetachRolePolicy until the role holds the resource's ``ManagedPolicyArns``, through the
    IAM API (authorized as the stack's role), as the resource handler does."""
    wanted = [str(arn) for arn in properties.get("ManagedPolicyArns") or []]
    for arn in [arn for arn in getattr(role, "cfn_managed_policy_arns", []) if arn not in wanted]:
        if arn in role.managed_policies:
            backend.detach_role_policy(arn, role.name)
    for arn in wanted:
        if arn not in role.managed_policies:
            _aws_managed_policy(backend, arn)
            backend.attach_role_policy(arn, role.name)
    role.cfn_managed_policy_arns = wanted


def _document(policy: Any) -> str:
    return policy if isinstance(policy, str) else json.dumps(policy)


def put_role_policy(backend: Any, role: Any, name: str, document: Any) -> None:
    """PutRolePolicy through the IAM API (authorized as the stack's role). IAM takes a policy without
    ``Version`` (it defaults to 2008-10-17), which moto's validator refuses: such a policy is stored as IAM
    stores it, after the same call was authorized."""
    from moto.iam.exceptions import MalformedPolicyDocument

    text = _document(document)
    try:
        backend.put_role_policy(role.name, name, text)
    except MalformedPolicyDocument as exc:
        parsed = json.loads(text) if isinstance(text, str) else {}
        if "Version" in parsed or "version" not in str(exc).lower():
            raise
        role.put_policy(name, text)


def _propagate_stack_tag_changes() -> None:
    """An update that changes the stack's tags updates every role of the stack, as CloudFormation propagates
    stack tags to each resource that takes them. moto set the stack's new tags only after its resources were
    updated, and updated only resources whose properties changed."""
    from moto.cloudformation.models import Stack
    from moto.cloudformation.parsing import ResourceMap

    original_update, original_diff = Stack.update, ResourceMap.build_resource_diff

    def update(self: Any, template: str, role_arn: str | None = None, parameters: Any = None,
               tags: dict[str, str] | None = None) -> None:
        changed = tags is not None and dict(tags) != dict(self.tags or {})
        if changed:
            self.tags = tags  # what the resources' update handlers see
        self.resource_map.stack_tags_changed = changed
        try:
            original_update(self, template, role_arn, parameters, tags)
        finally:
            self.resource_map.stack_tags_changed = False

    def build_resource_diff(self: Any, other_template: dict[str, Any], parameters: Any = None) -> dict[str, Any]:
        diff: dict[str, Any] = original_diff(self, other_template, parameters)
        if getattr(self, "stack_tags_changed", False):
            for name, resource in other_template["Resources"].items():
                if resource.get("Type") == "AWS::IAM::Role" and name in self._resource_json_map \
                        and name not in diff["Modify"]:
                    diff["Modify"].append(name)
        return diff

    Stack.update = update  # type: ignore[method-assign]
    ResourceMap.build_resource_diff = build_resource_diff  # type: ignore[method-assign]


def apply() -> None:
    """Patch moto's IAM CloudFormation models (idempotent)."""
    from moto.iam.models import IAMBackend, Role, iam_backends
    from moto.utilities.utils import get_partition

    if getattr(Role, "_local_cloud_cfn", False):
        return

    def create_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json["Properties"]
        backend = iam_backends[account_id][get_partition(region_name)]
        role = backend.create_role(
            role_name=properties.get("RoleName", resource_name),
            assume_role_policy_document=_document(properties["AssumeRolePolicyDocument"]),
            path=properties.get("Path", "/"),
            permissions_boundary=properties.get("PermissionsBoundary", ""),
            description=properties.get("Description", ""),
            tags=role_tags(properties, kwargs.get("StackId")),
            max_session_duration=properties.get("MaxSessionDuration", 3600),
        )
        role.cfn_tag_keys = [tag["Key"] for tag in role.tags]
        role.cfn_own_tags = list(properties.get("Tags") or [])
        role.cfn_stack_id = kwargs.get("StackId")
        for policy in properties.get("Policies") or []:
            put_role_policy(backend, role, policy["PolicyName"], policy["PolicyDocument"])
        sync_managed_policies(backend, role, properties)
        return role

    def delete_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> None:
        backend = iam_backends[account_id][get_partition(region_name)]
        role = next((r for r in list(backend.roles.values()) if r.name == resource_name), None)
        if role is None:
            return  # already gone: CloudFormation's delete succeeds
        for profile in list(backend.instance_profiles.values()):
            profile.delete_role(role_name=resource_name)
        for name in list(role.policies):
            backend.delete_role_policy(resource_name, name)
        # Only what the resource attached (its ManagedPolicyArns): a policy someone else attached stays, and
        # DeleteRole then fails with IAM's DeleteConflict ("Cannot delete entity, must detach all policies
        # first."), as CloudFormation's delete of such a role does on AWS.
        for arn in [a for a in getattr(role, "cfn_managed_policy_arns", []) if a in role.managed_policies]:
            backend.detach_role_policy(arn, resource_name)
        for policy in list(backend.inline_policies.values()):
            policy.role_names = [n for n in policy.role_names if n != resource_name]
        backend.delete_role(resource_name)

    original_create_inline = IAMBackend.create_inline_policy

    def create_inline_policy(self: Any, resource_name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return original_create_inline(self, resource_name, *args, **kwargs)
        except Exception:
            if resource_name in self.inline_policies:
                # Whatever part was put is taken back, so the policy is made whole or not at all.
                policy = self.inline_policies.pop(resource_name)
                for role_name in policy.role_names or []:
                    role = next((r for r in list(self.roles.values()) if r.name == role_name), None)
                    if role is not None:
                        role.policies.pop(policy.policy_name, None)
            raise

    _propagate_stack_tag_changes()
    Role.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)  # type: ignore[assignment]
    Role.delete_from_cloudformation_json = classmethod(delete_from_cloudformation_json)  # type: ignore[assignment]
    IAMBackend.create_inline_policy = create_inline_policy  # type: ignore[method-assign]
    Role._local_cloud_cfn = True  # type: ignore[attr-defined]
