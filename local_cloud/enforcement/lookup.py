"""``local_cloud.iam.requests.Lookup`` on moto's backends: what the local cloud holds, as IAM reads it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from local_cloud.iam.requests import RoleInfo

_NOBODY = '{"Version": "2012-10-17", "Statement": []}'


def _partition(arn: str) -> str:
    return arn.split(":")[1] if arn.startswith("arn:") else "aws"


def _tag_list(tags: Any, key: str = "Key", value: str = "Value") -> dict[str, str]:
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t[key]): str(t.get(value, "")) for t in tags or [] if key in t}


class MotoLookup:
    def __init__(self, account: str) -> None:
        self.account = account

    # -- KMS
    def _kms(self, region: str) -> Any:
        from moto.kms.models import kms_backends

        return kms_backends[self.account][region]

    def kms_key_id(self, ref: str, region: str) -> str | None:
        if ref.startswith("arn:"):
            region = ref.split(":")[3]
        backend = self._kms(region)
        try:
            key_id = backend.any_id_to_key_id(ref)
        except Exception:
            return None
        return key_id if key_id in backend.keys else None

    def _key(self, key_arn: str) -> Any:
        backend = self._kms(key_arn.split(":")[3])
        return backend.keys.get(key_arn.rsplit("/", 1)[-1])

    def kms_key_metadata(self, key_arn: str) -> Mapping[str, str] | None:
        key = self._key(key_arn)
        if key is None:
            return None
        return {"KeySpec": key.key_spec, "KeyUsage": key.key_usage, "Origin": key.origin}

    # -- tags of any resource the onboarding touches
    def tags(self, arn: str) -> Mapping[str, str] | None:
        try:
            return self._tags(arn)
        except Exception:
            return None

    def _tags(self, arn: str) -> Mapping[str, str] | None:
        _arn, partition, service, region, _account, resource = arn.split(":", 5)
        if service == "kms":
            key = self._key(arn)
            return (
                _tag_list(self._kms(region).tagger.list_tags_for_resource(key.id)["Tags"], "TagKey", "TagValue")
                if key
                else None
            )
        if service == "s3":
            from moto.s3.models import s3_backends

            backend = s3_backends[self.account][partition]
            bucket = backend.get_bucket(resource.split("/", 1)[0])
            return _tag_list(backend.tagger.list_tags_for_resource(bucket.arn)["Tags"])
        if service == "sqs":
            from moto.sqs.models import sqs_backends

            queue = sqs_backends[self.account][region].queues.get(resource)
            return dict(queue.tags) if queue else None
        if service == "sns":
            from moto.sns.models import sns_backends

            return dict(sns_backends[self.account][region].list_tags_for_resource(arn))
        if service == "iam" and resource.startswith("role/"):
            role = self._role(resource.rsplit("/", 1)[-1])
            return _tag_list(role.tags) if role else None
        if service == "cloudtrail":
            from moto.cloudtrail.models import cloudtrail_backends

            backend = cloudtrail_backends[self.account][region]
            found = backend.list_tags([arn])
            return _tag_list(found[0]["TagsList"]) if found else None
        if service == "cloudformation":
            from moto.cloudformation.models import cloudformation_backends

            backend = cloudformation_backends[self.account][region]
            stack = backend.stacks.get(arn) or backend.stacksets.get(resource.split("/", 1)[-1].split(":")[0])
            return dict(stack.tags or {}) if stack else None
        if service == "events":
            from moto.events.models import events_backends

            return _tag_list(events_backends[self.account][region].list_tags_for_resource(arn)["Tags"])
        if service == "secretsmanager":
            from moto.secretsmanager.models import secretsmanager_backends

            secret = secretsmanager_backends[self.account][region].secrets.get(arn)
            return _tag_list(getattr(secret, "tags", None)) if secret else None
        return None

    # -- resource policies
    def resource_policy(self, arn: str) -> str | None:
        _arn, partition, service, region, _account, resource = arn.split(":", 5)
        try:
            if service == "kms":
                key = self._key(arn)
                return key.policy if key else None
            if service == "s3":
                from moto.s3.models import s3_backends

                bucket = s3_backends[self.account][partition].buckets.get(resource)
                policy = bucket.policy if bucket else None
                return policy.decode() if isinstance(policy, bytes) else policy
            if service == "sqs":
                from moto.sqs.models import sqs_backends

                queue = sqs_backends[self.account][region].queues.get(resource)
                return queue.policy if queue and queue.policy else None
            if service == "sns":
                from moto.sns.models import sns_backends

                topic = sns_backends[self.account][region].topics.get(arn)
                return topic.policy if topic else None
            if service == "lambda":
                from moto.awslambda.utils import get_backend

                fn = get_backend(self.account, region).get_function(arn)
                policy = fn.policy.wire_format() if fn.policy else None
                return policy if policy and json.loads(policy).get("Statement") else None
        except Exception:
            return None
        return None

    # -- IAM
    def _iam(self, partition: str = "aws") -> Any:
        from moto.iam.models import iam_backends

        return iam_backends[self.account][partition]

    def _role(self, name: str, account: str | None = None) -> Any:
        from moto.iam.models import iam_backends

        try:
            return iam_backends[account or self.account]["aws"].get_role(name)
        except Exception:
            return None

    def role(self, name_or_arn: str, assuming: bool = False) -> RoleInfo | None:
        from local_cloud import iam_propagation

        # A role ARN names its account: the caller may be of another one (Expel assuming the customer's role).
        account = name_or_arn.split(":")[4] if name_or_arn.startswith("arn:") else None
        found = self._role(name_or_arn.rsplit("/", 1)[-1], account)
        if found is None:
            return None
        role = iam_propagation.view(found, by_service=assuming)
        if role is None:  # IAM has not propagated it yet: it trusts nobody so far
            return RoleInfo(found.arn, found.path, found.permissions_boundary_arn, _NOBODY, _tag_list(found.tags))
        return RoleInfo(
            role.arn, role.path, role.permissions_boundary_arn, role.assume_role_policy_document, _tag_list(role.tags)
        )

    # -- CloudFormation
    def stack_id(self, name_or_arn: str, region: str) -> str | None:
        from moto.cloudformation.models import cloudformation_backends

        backend = cloudformation_backends[self.account][region]
        if name_or_arn in backend.stacks:
            return name_or_arn
        for stack in list(backend.stacks.values()):
            if stack.name == name_or_arn and not stack.status.startswith("DELETE_COMPLETE"):
                return str(stack.stack_id)
        return None

    def _stack_set(self, name: str, region: str) -> Any:
        from moto.cloudformation.models import cloudformation_backends

        backend = cloudformation_backends[self.account][region]
        return next((s for s in list(backend.stacksets.values()) if s.name == name), None)

    def stack_set_id(self, name: str, region: str) -> str | None:
        stack_set = self._stack_set(name, region)
        return None if stack_set is None else str(stack_set.id)

    def stack_set_template(self, name: str, region: str) -> str | None:
        stack_set = self._stack_set(name, region)
        return None if stack_set is None else str(stack_set.template)

    def secret_id(self, ref: str, region: str) -> str | None:
        from moto.secretsmanager.models import secretsmanager_backends

        backend = secretsmanager_backends[self.account][region]
        for secret in list(backend.secrets.values()):
            arn = str(getattr(secret, "arn", ""))
            if ref in (arn, getattr(secret, "name", None)) and ":secret:" in arn:
                return arn.split(":secret:", 1)[1]
        return None

    def organization(self) -> tuple[str, str] | None:
        from moto.organizations.models import organizations_backends

        from local_cloud.organizations_members import management_backend

        backend = organizations_backends[self.account]["aws"]
        org = backend.org or getattr(management_backend(backend), "org", None)  # a member's: its management's
        return (str(org.id), str(org.master_account_id)) if org else None

    # -- SSE-KMS
    def bucket_account(self, bucket: str) -> str | None:
        from moto.s3.models import s3_backends

        found = s3_backends.bucket_accounts.get(bucket)
        return found[1] if found else None

    def bucket_kms_key(self, bucket: str) -> str | None:
        from moto.s3.models import s3_backends

        found = s3_backends[self.account]["aws"].buckets.get(bucket)
        rules = (found.encryption or {}).get("Rule", {}) if found else {}
        rules = rules if isinstance(rules, list) else [rules]
        for rule in rules:
            default = rule.get("ApplyServerSideEncryptionByDefault", {})
            if default.get("SSEAlgorithm") == "aws:kms":
                return str(default.get("KMSMasterKeyID") or "alias/aws/s3")
        return None

    def object_kms_key(self, bucket: str, key: str, version_id: str | None) -> str | None:
        from moto.s3.models import s3_backends

        try:
            found = s3_backends[self.account]["aws"].get_object(bucket, key, version_id=version_id)
        except Exception:
            return None
        if found is None or getattr(found, "encryption", None) != "aws:kms":
            return None
        return found.kms_key_id or "alias/aws/s3"

    def queue_kms_key(self, queue_arn: str) -> str | None:
        from moto.sqs.models import sqs_backends

        _arn, _p, _s, region, _a, name = queue_arn.split(":", 5)
        queue = sqs_backends[self.account][region].queues.get(name)
        return getattr(queue, "kms_master_key_id", None) if queue else None
