"""CloudFormation's IAM resources as AWS makes them, where moto 5.2.5 differs.

- ``AWS::IAM::Role``: the stack's tags reach the role (CloudFormation propagates stack-level tags to every
  resource that takes tags; a tag of the resource's own wins), so an ownership tag on the stack is on the
  role and a tag-conditioned grant (``aws:ResourceTag``, ``aws:RequestTag``) sees it. Inline ``Policies``
  are put with PutRolePolicy and removed with DeleteRolePolicy, as the resource handler does (moto wrote them
  on the role object, past the IAM API, so a service role's grant was never asked for them).
- ``AWS::IAM::Policy``: a policy that could not be put on its role is not left half made (moto kept it, so
  CloudFormation's next try answered ``EntityAlreadyExists``).
"""

from __future__ import annotations

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
        for policy in properties.get("Policies") or []:
            put_role_policy(backend, role, policy["PolicyName"], policy["PolicyDocument"])
        return role

    def delete_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> None:
        backend = iam_backends[account_id][get_partition(region_name)]
        role = next((r for r in backend.roles.values() if r.name == resource_name), None)
        if role is None:
            return  # already gone: CloudFormation's delete succeeds
        for profile in backend.instance_profiles.values():
            profile.delete_role(role_name=resource_name)
        for name in list(role.policies):
            backend.delete_role_policy(resource_name, name)
        for arn in list(role.managed_policies):
            backend.detach_role_policy(arn, resource_name)
        for policy in backend.inline_policies.values():
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
                    role = next((r for r in self.roles.values() if r.name == role_name), None)
                    if role is not None:
                        role.policies.pop(policy.policy_name, None)
            raise

    Role.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)  # type: ignore[assignment]
    Role.delete_from_cloudformation_json = classmethod(delete_from_cloudformation_json)  # type: ignore[assignment]
    IAMBackend.create_inline_policy = create_inline_policy  # type: ignore[method-assign]
    Role._local_cloud_cfn = True  # type: ignore[attr-defined]
