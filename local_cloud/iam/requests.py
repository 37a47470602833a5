"""From an API call to what IAM authorizes: action(s), resource ARN(s), condition values, resource policy.

``checks(call, lookup)`` turns one parsed API call (service prefix, operation, botocore parameters) into
the ``Check``s AWS makes for it. Actions and ARN formats come from the Service Authorization Reference
(``sar``); what is per service here is only where a request names its resource (``KeyId``, ``QueueUrl``,
``TopicArn``...) and the documented extra permissions some requests need:

- PassRole: a role handed to a service (CloudFormation's RoleARN, Lambda's Role, Step Functions'
  roleArn...) needs ``iam:PassRole`` on it with ``iam:PassedToService`` naming that service;
- tag on create: tags given to a create call need the service's tagging action too (kms:TagResource,
  sqs:TagQueue, iam:TagRole, cloudtrail:AddTags, cloudformation:TagResource, s3:TagResource...);
- KMS through a service: S3 and SQS encrypt and decrypt with the caller's permissions, so writing to an
  SSE-KMS bucket or queue needs ``kms:GenerateDataKey`` on its key and reading needs ``kms:Decrypt``, with
  ``kms:ViaService`` = ``<service>.<region>.amazonaws.com``.

What the local cloud holds (tags of a resource, a key's metadata, a role's boundary, resource policies)
is asked through the ``Lookup`` protocol, implemented on moto's backends by ``local_cloud.enforcement``.
A request whose resource cannot be told refuses with ``Unresolvable`` (fail closed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

from local_cloud.iam import sar
from local_cloud.iam.conditions import Values
from local_cloud.iam.evaluation import ResourcePolicy, ResourcePolicyKind
from local_cloud.iam.policy import NamedPolicy, PolicyError


class Unresolvable(LookupError):
    """The local cloud cannot tell what IAM would authorize for this request (it is refused)."""


class ResourceMissing(Unresolvable):
    """The request names a resource that does not exist: the service answers "not found" itself."""


@dataclass(frozen=True)
class RoleInfo:
    arn: str
    path: str
    boundary_arn: str | None
    trust_policy: str
    tags: Mapping[str, str]


class Lookup(Protocol):
    """What the local cloud holds, as IAM needs it to decide."""

    def kms_key_id(self, ref: str, region: str) -> str | None: ...
    def kms_key_metadata(self, key_arn: str) -> Mapping[str, str] | None: ...
    def tags(self, arn: str) -> Mapping[str, str] | None: ...
    def resource_policy(self, arn: str) -> str | None: ...
    # ``assuming``: for sts:AssumeRole (a use of the role, as IAM's propagation counts one), not IAM's own API.
    def role(self, name_or_arn: str, assuming: bool = False) -> RoleInfo | None: ...
    def stack_id(self, name_or_arn: str, region: str) -> str | None: ...
    def stack_set_id(self, name: str, region: str) -> str | None: ...
    def stack_set_template(self, name: str, region: str) -> str | None: ...
    def secret_id(self, ref: str, region: str) -> str | None: ...
    # (organization id, management account id) of the caller's organization, a member account's too.
    def organization(self) -> tuple[str, str] | None: ...
    def bucket_kms_key(self, bucket: str) -> str | None: ...
    def bucket_account(self, bucket: str) -> str | None: ...
    def object_kms_key(self, bucket: str, key: str, version_id: str | None) -> str | None: ...
    def queue_kms_key(self, queue_arn: str) -> str | None: ...


@dataclass(frozen=True)
class ApiCall:
    service: str  # IAM prefix: "s3", "kms", "states", ...
    operation: str  # botocore operation name
    params: Mapping[str, Any]
    region: str
    account: str
    partition: str = "aws"


@dataclass(frozen=True)
class Check:
    """One authorization IAM makes for a call: action on resource, with the request's condition values
    (principal keys are added by the caller) and the resource's own policy when AWS evaluates one."""

    action: str
    resource: str
    context: Values = field(default_factory=Values)
    resource_policy: ResourcePolicy | None = None


# (prefix, operation) -> (parameter holding the role, service it is passed to)
PASS_ROLE: dict[tuple[str, str], tuple[str, str]] = {
    ("cloudformation", "CreateStack"): ("RoleARN", "cloudformation.amazonaws.com"),
    ("cloudformation", "UpdateStack"): ("RoleARN", "cloudformation.amazonaws.com"),
    ("cloudformation", "CreateChangeSet"): ("RoleARN", "cloudformation.amazonaws.com"),
    ("cloudformation", "DeleteStack"): ("RoleARN", "cloudformation.amazonaws.com"),
    ("cloudformation", "CreateStackSet"): ("AdministrationRoleARN", "cloudformation.amazonaws.com"),
    ("cloudformation", "UpdateStackSet"): ("AdministrationRoleARN", "cloudformation.amazonaws.com"),
    ("lambda", "CreateFunction"): ("Role", "lambda.amazonaws.com"),
    ("lambda", "UpdateFunctionConfiguration"): ("Role", "lambda.amazonaws.com"),
    ("states", "CreateStateMachine"): ("roleArn", "states.amazonaws.com"),
    ("states", "UpdateStateMachine"): ("roleArn", "states.amazonaws.com"),
    ("cloudtrail", "CreateTrail"): ("CloudWatchLogsRoleArn", "cloudtrail.amazonaws.com"),
    ("cloudtrail", "UpdateTrail"): ("CloudWatchLogsRoleArn", "cloudtrail.amazonaws.com"),
}
# (prefix, operation) -> the tagging action its tags need ("tag on create")
TAG_ON_CREATE: dict[tuple[str, str], str] = {
    ("kms", "CreateKey"): "kms:TagResource",
    ("sqs", "CreateQueue"): "sqs:TagQueue",
    ("sns", "CreateTopic"): "sns:TagResource",
    ("iam", "CreateRole"): "iam:TagRole",
    ("iam", "CreatePolicy"): "iam:TagPolicy",
    ("cloudformation", "CreateStack"): "cloudformation:TagResource",
    ("cloudformation", "UpdateStack"): "cloudformation:TagResource",
    ("cloudformation", "CreateStackSet"): "cloudformation:TagResource",
    ("cloudtrail", "CreateTrail"): "cloudtrail:AddTags",
    ("logs", "CreateLogGroup"): "logs:TagResource",
    ("s3", "CreateBucket"): "s3:TagResource",
    ("events", "PutRule"): "events:TagResource",
    ("lambda", "CreateFunction"): "lambda:TagResource",
    ("states", "CreateStateMachine"): "states:TagResource",
    ("secretsmanager", "CreateSecret"): "secretsmanager:TagResource",
}
# Actions whose request carries tags (aws:RequestTag / aws:TagKeys) although they are not creates.
_TAGGING_OPERATIONS = {"TagResource", "TagQueue", "TagRole", "AddTags", "TagPolicy", "TagUser"}
# Resource types whose own policy AWS evaluates, and how.
_POLICY_KINDS = {
    ("kms", "key"): ResourcePolicyKind.REQUIRED,
    ("s3", "bucket"): ResourcePolicyKind.OPTIONAL,
    ("s3", "object"): ResourcePolicyKind.OPTIONAL,
    ("sqs", "queue"): ResourcePolicyKind.OPTIONAL,
    ("sns", "topic"): ResourcePolicyKind.OPTIONAL,
    ("lambda", "function"): ResourcePolicyKind.OPTIONAL,
    ("secretsmanager", "secret"): ResourcePolicyKind.OPTIONAL,
}


def request_tags(params: Mapping[str, Any]) -> dict[str, str] | None:
    """Tags given in a request, in any of the shapes AWS APIs use; None when the request gives none."""
    raw: Any = None
    for name in ("Tags", "tags", "TagsList", "TagList"):
        if params.get(name) is not None:
            raw = params[name]
            break
    if raw is None and isinstance(params.get("CreateBucketConfiguration"), Mapping):
        raw = params["CreateBucketConfiguration"].get("Tags")
    if raw is None and isinstance(params.get("Tagging"), Mapping):
        raw = params["Tagging"].get("TagSet")
    if raw is None:
        return None
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    tags: dict[str, str] = {}
    for item in raw:
        key = item.get("Key", item.get("TagKey", item.get("key")))
        value = item.get("Value", item.get("TagValue", item.get("value", "")))
        if key is not None:
            tags[str(key)] = str(value)
    return tags


def _tag_values(tags: Mapping[str, str] | None) -> dict[str, tuple[str, ...]]:
    if tags is None:
        return {}
    values: dict[str, tuple[str, ...]] = {f"aws:requesttag/{k.lower()}": (v,) for k, v in tags.items()}
    values["aws:tagkeys"] = tuple(tags)
    return values


def _name_from_arn(value: str, separator: str) -> str:
    return value.rsplit(separator, 1)[-1] if value.startswith("arn:") else value


# ------------------------------------------------------------------------------------ per-service parts
@dataclass
class _Parts:
    """What a service's resolver found: ARN variables, request condition values, overrides."""

    variables: dict[str, str] = field(default_factory=dict)
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    actions: tuple[str, ...] | None = None  # instead of the operation's own
    extra: list[Check] = field(default_factory=list)
    resources: dict[str, str] = field(default_factory=dict)  # explicit ARNs by resource type
    many: dict[str, tuple[str, ...]] = field(default_factory=dict)  # a resource type the request names several of


def _kms(call: ApiCall, lookup: Lookup, parts: _Parts) -> None:
    p = call.params
    ref = p.get("KeyId") or p.get("TargetKeyId") or p.get("SourceKeyId")
    if ref:
        key_id = lookup.kms_key_id(str(ref), call.region)
        if key_id is None:
            raise ResourceMissing(f"KMS key {ref} not found")
        parts.variables["KeyId"] = key_id
    if p.get("AliasName"):
        parts.variables["Alias"] = str(p["AliasName"]).removeprefix("alias/")
    if call.operation == "CreateKey":
        parts.values["kms:keyspec"] = (str(p.get("KeySpec") or p.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"),)
        parts.values["kms:keyusage"] = (str(p.get("KeyUsage") or "ENCRYPT_DECRYPT"),)
        parts.values["kms:keyorigin"] = (str(p.get("Origin") or "AWS_KMS"),)
        parts.values["kms:multiregion"] = ("true" if p.get("MultiRegion") else "false",)
    if "BypassPolicyLockoutSafetyCheck" in p:
        parts.values["kms:bypasspolicylockoutsafetycheck"] = (
            "true" if p["BypassPolicyLockoutSafetyCheck"] else "false",
        )
    context = p.get("EncryptionContext")
    if isinstance(context, Mapping):
        for k, v in context.items():
            parts.values[f"kms:encryptioncontext:{k.lower()}"] = (str(v),)
        parts.values["kms:encryptioncontextkeys"] = tuple(context)


def _s3(call: ApiCall, lookup: Lookup, parts: _Parts) -> None:
    p = call.params
    op = call.operation
    if p.get("Bucket"):
        parts.variables["BucketName"] = str(p["Bucket"])
    if p.get("Key") is not None:
        parts.variables["ObjectName"] = str(p["Key"])
    versioned = p.get("VersionId") is not None
    if op == "DeleteObject" and versioned:
        parts.actions = ("s3:DeleteObjectVersion",)
    elif op in ("GetObject", "HeadObject") and versioned:
        parts.actions = ("s3:GetObjectVersion",)
    for name, key in (("Prefix", "s3:prefix"), ("Delimiter", "s3:delimiter"), ("MaxKeys", "s3:max-keys")):
        if p.get(name) is not None:
            parts.values[key] = (str(p[name]),)
    if op in ("ListObjects", "ListObjectsV2", "ListObjectVersions") and "s3:prefix" not in parts.values:
        parts.values["s3:prefix"] = ("",)  # S3 sends an empty prefix when none is given
    if p.get("VersionId") is not None:
        parts.values["s3:versionid"] = (str(p["VersionId"]),)
    if p.get("ServerSideEncryption"):
        parts.values["s3:x-amz-server-side-encryption"] = (str(p["ServerSideEncryption"]),)
    if p.get("SSEKMSKeyId"):
        parts.values["s3:x-amz-server-side-encryption-aws-kms-key-id"] = (str(p["SSEKMSKeyId"]),)
    if p.get("ACL"):
        parts.values["s3:x-amz-acl"] = (str(p["ACL"]),)
    if p.get("Bucket"):
        # S3's own ARNs carry no account: AWS fills s3:ResourceAccount and aws:ResourceAccount with the
        # bucket owner's, so a policy can keep a wildcard bucket grant to one account's buckets.
        owner = lookup.bucket_account(str(p["Bucket"]))
        if owner:
            parts.values["s3:resourceaccount"] = (owner,)
            parts.values["aws:resourceaccount"] = (owner,)
    parts.values["s3:authtype"] = ("REST-HEADER",)
    parts.values["s3:signatureversion"] = ("AWS4-HMAC-SHA256",)
    parts.values["s3:tlsversion"] = ("1.3",)
    if op == "DeleteObjects":
        parts.actions = ()
        for item in (p.get("Delete") or {}).get("Objects", []):
            action = "s3:DeleteObjectVersion" if item.get("VersionId") else "s3:DeleteObject"
            variables = {**parts.variables, "ObjectName": str(item["Key"])}
            arn = sar.fill("arn:${Partition}:s3:::${BucketName}/${ObjectName}", _common(call, variables))
            assert arn is not None
            parts.extra.append(Check(action, arn, Values(parts.values)))
    bucket = parts.variables.get("BucketName")
    if bucket and op in ("PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        key = str(p.get("SSEKMSKeyId") or "") if p.get("ServerSideEncryption") == "aws:kms" else ""
        key = key or (lookup.bucket_kms_key(bucket) or "") if not p.get("ServerSideEncryption") else key
        if key:
            parts.extra.append(
                _via_kms(call, lookup, key, "kms:GenerateDataKey", "s3", f"arn:{call.partition}:s3:::{bucket}")
            )
    if bucket and op in ("GetObject",) and p.get("Key") is not None:
        key = lookup.object_kms_key(bucket, str(p["Key"]), p.get("VersionId"))
        if key:
            parts.extra.append(_via_kms(call, lookup, key, "kms:Decrypt", "s3", f"arn:{call.partition}:s3:::{bucket}"))


def _via_kms(call: ApiCall, lookup: Lookup, key_ref: str, action: str, service: str, source_arn: str) -> Check:
    """A KMS call a service makes with the caller's permissions (SSE-KMS)."""
    key_id = lookup.kms_key_id(key_ref, call.region)
    if key_id is None:
        raise ResourceMissing(f"KMS key {key_ref} not found")
    arn = f"arn:{call.partition}:kms:{call.region}:{call.account}:key/{key_id}"
    values: dict[str, tuple[str, ...]] = {
        "kms:viaservice": (f"{service}.{call.region}.amazonaws.com",),
        "aws:calledvia": (f"{service}.amazonaws.com",),
        "aws:calledviafirst": (f"{service}.amazonaws.com",),
        "aws:calledvialast": (f"{service}.amazonaws.com",),
    }
    if service == "s3":
        values["kms:encryptioncontext:aws:s3:arn"] = (source_arn,)
        values["kms:encryptioncontextkeys"] = ("aws:s3:arn",)
    elif service == "sqs":
        values["kms:encryptioncontext:aws:sqs:arn"] = (source_arn,)
        values["kms:encryptioncontextkeys"] = ("aws:sqs:arn",)
    return Check(
        action,
        arn,
        _resource_context(Values(values), lookup, "kms", "key", arn),
        _resource_policy(lookup, "kms", "key", arn),
    )


def _queue_name(p: Mapping[str, Any]) -> str | None:
    if p.get("QueueUrl"):
        return urlparse(str(p["QueueUrl"])).path.rstrip("/").rsplit("/", 1)[-1]
    if p.get("QueueName"):
        return str(p["QueueName"])
    return None


def _sqs(call: ApiCall, lookup: Lookup, parts: _Parts) -> None:
    name = _queue_name(call.params)
    if name:
        parts.variables["QueueName"] = name
        arn = f"arn:{call.partition}:sqs:{call.region}:{call.account}:{name}"
        via = {
            "SendMessage": "kms:GenerateDataKey",
            "SendMessageBatch": "kms:GenerateDataKey",
            "ReceiveMessage": "kms:Decrypt",
        }.get(call.operation)
        key = lookup.queue_kms_key(arn) if via else None
        if via and key:
            parts.extra.append(_via_kms(call, lookup, key, via, "sqs", arn))


def _sns(call: ApiCall, lookup: Lookup, parts: _Parts) -> None:
    p = call.params
    arn = p.get("TopicArn") or p.get("ResourceArn") or p.get("SubscriptionArn") or p.get("TargetArn")
    if arn and str(arn).startswith("arn:"):
        resource = str(arn).split(":", 5)[5]
        parts.variables["TopicName"] = resource.split(":", 1)[0]  # a subscription ARN is topic:<id>
    elif p.get("Name"):
        parts.variables["TopicName"] = str(p["Name"])
    if call.operation in ("GetSubscriptionAttributes", "SetSubscriptionAttributes", "Unsubscribe"):
        # The reference's newer editions authorize these on the subscription's topic (parliament's
        # copy predates it and names no resource).
        topic = sar.fill("arn:${Partition}:sns:${Region}:${Account}:${TopicName}", _common(call, parts.variables))
        if topic:
            parts.resources["topic"] = topic
    if p.get("Protocol"):
        parts.values["sns:protocol"] = (str(p["Protocol"]),)
    if p.get("Endpoint"):
        parts.values["sns:endpoint"] = (str(p["Endpoint"]),)


def _iam(call: ApiCall, lookup: Lookup, parts: _Parts) -> None:
    p = call.params
    op = call.operation
    name = p.get("RoleName")
    if op == "CreateServiceLinkedRole":
        service = str(p.get("AWSServiceName", ""))
        parts.values["iam:awsservicename"] = (service,)
        parts.variables["RoleNameWithPath"] = f"aws-service-role/{service}/*"
    elif name:
        role = lookup.role(str(name))
        path = role.path if role else str(p.get("Path") or "/")
        parts.variables["RoleNameWithPath"] = f"{path.strip('/')}/{name}".lstrip("/")
        if op in ("CreateRole", "PutRolePermissionsBoundary"):
            if p.get("PermissionsBoundary"):
                parts.values["iam:permissionsboundary"] = (str(p["PermissionsBoundary"]),)
        elif role and role.boundary_arn:
            parts.values["iam:permissionsboundary"] = (role.boundary_arn,)
    if p.get("PolicyArn"):
        parts.values["iam:policyarn"] = (str(p["PolicyArn"]),)
        parts.variables["PolicyNameWithPath"] = str(p["PolicyArn"]).split(":policy/", 1)[-1]
    if op == "CreatePolicy" and p.get("PolicyName"):
        parts.variables["PolicyNameWithPath"] = f"{str(p.get('Path') or '/').strip('/')}/{p['PolicyName']}".lstrip("/")


def _sts(call: ApiCall, lookup: Lookup, parts: _Parts) -> None:
    p = call.params
    if p.get("RoleArn"):
        parts.resources["role"] = str(p["RoleArn"])
    if p.get("ExternalId") is not None:
        parts.values["sts:externalid"] = (str(p["ExternalId"]),)
    if p.get("RoleSessionName"):
        parts.values["sts:rolesessionname"] = (str(p["RoleSessionName"]),)
    if p.get("SourceIdentity"):
        parts.values["sts:sourceidentity"] = (str(p["SourceIdentity"]),)


def _cloudformation(call: ApiCall, lookup: Lookup, parts: _Parts) -> None:
    p = call.params
    name = p.get("StackName")
    if name:
        name = str(name)
        stack_id = lookup.stack_id(name, call.region)
        parts.variables["StackName"] = name.split(":stack/", 1)[1].split("/")[0] if name.startswith("arn:") else name
        parts.variables["Id"] = stack_id.rsplit("/", 1)[-1] if stack_id else "*"
    if p.get("StackSetName"):
        set_name = str(p["StackSetName"]).split(":")[0]
        set_id = lookup.stack_set_id(set_name, call.region)
        parts.variables["StackSetName"] = set_name
        parts.variables["Id"] = set_id.split(":", 1)[-1] if set_id else "*"
        parts.variables["StackSetTarget"] = f"{set_name}:*"
        if call.operation in _STACK_SET_TYPE_OPERATIONS:
            # AWS authorizes these on every resource type the StackSet's template (a new one an update gives)
            # deploys, as well as on the StackSet: arn:...:type/resource/AWS-IAM-Role. A public type's ARN has
            # no account (DescribeType's Arn); a private one's is the account's.
            template = p.get("TemplateBody") or lookup.stack_set_template(set_name, call.region)
            parts.many["type"] = tuple(
                f"arn:{call.partition}:cloudformation:{call.region}:"
                f"{'' if name.startswith('AWS::') else call.account}:type/resource/{name.replace('::', '-')}"
                for name in template_resource_types(str(template or ""))
            )
    if p.get("RoleARN"):
        parts.values["cloudformation:rolearn"] = (str(p["RoleARN"]),)
    if p.get("ChangeSetName"):
        parts.variables["ChangeSetName"] = (
            str(p["ChangeSetName"]).rsplit("/", 2)[-2]
            if str(p["ChangeSetName"]).startswith("arn:")
            else str(p["ChangeSetName"])
        )
        parts.variables.setdefault("Id", "*")


# StackSet operations the Service Authorization Reference authorizes on the template's resource types too.
_STACK_SET_TYPE_OPERATIONS = frozenset({"CreateStackInstances", "UpdateStackInstances", "DeleteStackInstances",
                                        "UpdateStackSet"})


def template_resource_types(text: str) -> list[str]:
    """The distinct resource types (``AWS::IAM::Role``) a CloudFormation template in JSON or YAML declares,
    in order; none for a template that cannot be read (the service refuses it itself)."""
    import yaml

    class _Loader(yaml.SafeLoader):
        """YAML with CloudFormation's short-form tags (``!Sub``), read as plain values."""

    def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)  # type: ignore[arg-type]

    _Loader.add_multi_constructor("!", _any_tag)
    if not text.strip():
        return []
    try:
        document = json.loads(text)
    except ValueError:
        try:
            document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader plus inert tags
        except yaml.YAMLError:
            return []
    resources = document.get("Resources") if isinstance(document, Mapping) else None
    found: list[str] = []
    for resource in (resources or {}).values():
        kind = resource.get("Type") if isinstance(resource, Mapping) else None
        if isinstance(kind, str) and kind not in found:
            found.append(kind)
    return found


def _cloudtrail(call: ApiCall, lookup: Lookup, parts: _Parts) -> None:
    p = call.params
    name = p.get("Name") or p.get("TrailName")
    if name:
        parts.variables["TrailName"] = _name_from_arn(str(name), "/")
    if call.operation in ("ListTags", "AddTags", "RemoveTags"):
        ids = p.get("ResourceIdList") or ([p["ResourceId"]] if p.get("ResourceId") else [])
        if ids:
            parts.variables["TrailName"] = _name_from_arn(str(ids[0]), "/")


def _lambda(call: ApiCall, lookup: Lookup, parts: _Parts) -> None:
    name = call.params.get("FunctionName")
    if name:
        name = str(name)
        parts.variables["FunctionName"] = (
            name.split(":function:", 1)[1].split(":")[0] if name.startswith("arn:") else name.split(":")[0]
        )


def _states(call: ApiCall, lookup: Lookup, parts: _Parts) -> None:
    p = call.params
    if p.get("stateMachineArn"):
        parts.variables["StateMachineName"] = str(p["stateMachineArn"]).split(":stateMachine:", 1)[-1].split(":")[0]
    if p.get("executionArn"):
        machine, _, execution = str(p["executionArn"]).split(":execution:", 1)[-1].partition(":")
        parts.variables["StateMachineName"] = machine
        parts.variables["ExecutionId"] = execution
    if p.get("name") and call.operation == "CreateStateMachine":
        parts.variables["StateMachineName"] = str(p["name"])


def _events(call: ApiCall, lookup: Lookup, parts: _Parts) -> None:
    p = call.params
    rule = p.get("Name") or p.get("Rule")
    bus = p.get("EventBusName")
    if rule:
        parts.variables["RuleName"] = _name_from_arn(str(rule), "/")
        if bus and bus != "default":
            parts.variables["EventBusName"] = _name_from_arn(str(bus), "/")


def _organizations(call: ApiCall, lookup: Lookup, parts: _Parts) -> None:
    p = call.params
    if p.get("ServicePrincipal"):
        parts.values["organizations:serviceprincipal"] = (str(p["ServicePrincipal"]),)
    organization = lookup.organization()
    if organization:
        parts.variables["OrganizationId"] = organization[0].removeprefix("o-")
        # The organization's resources (roots, OUs, accounts) carry its management account's id in their ARNs,
        # whoever asks: a delegated administrator's grant must name that account, not its own.
        parts.variables["Account"] = organization[1]
    if p.get("OrganizationalUnitId"):
        parts.variables["OrganizationalUnitId"] = str(p["OrganizationalUnitId"]).removeprefix("ou-")
    # ListChildren, ListAccountsForParent, ...: the parent is a root or an OU, each its own resource type.
    parent = str(p.get("ParentId") or "")
    if parent.startswith("r-"):
        parts.variables["RootId"] = parent.removeprefix("r-")
    elif parent.startswith("ou-"):
        parts.variables["OrganizationalUnitId"] = parent.removeprefix("ou-")


def _secretsmanager(call: ApiCall, lookup: Lookup, parts: _Parts) -> None:
    ref = call.params.get("SecretId") or call.params.get("Name")
    if ref:
        found = lookup.secret_id(str(ref), call.region)
        if found is None:  # an ARN names the secret with its suffix; a name is matched as name-??????
            found = str(ref).split(":secret:", 1)[1] if ":secret:" in str(ref) else f"{ref}-??????"
        parts.variables["SecretId"] = found


def _logs(call: ApiCall, lookup: Lookup, parts: _Parts) -> None:
    p = call.params
    if p.get("logGroupName"):
        parts.variables["LogGroupName"] = str(p["logGroupName"])
    if p.get("logStreamName"):
        parts.variables["LogStreamName"] = str(p["logStreamName"])
    # Tagging calls name the group by ARN (with or without the ":*" of the stream form).
    arn = str(p.get("resourceArn") or "")
    if ":log-group:" in arn:
        parts.variables["LogGroupName"] = arn.split(":log-group:", 1)[1].removesuffix(":*")


_SERVICES: dict[str, Callable[[ApiCall, Lookup, _Parts], None]] = {
    "kms": _kms,
    "s3": _s3,
    "sqs": _sqs,
    "sns": _sns,
    "iam": _iam,
    "sts": _sts,
    "cloudformation": _cloudformation,
    "cloudtrail": _cloudtrail,
    "lambda": _lambda,
    "states": _states,
    "events": _events,
    "organizations": _organizations,
    "secretsmanager": _secretsmanager,
    "logs": _logs,
}


def _common(call: ApiCall, variables: Mapping[str, str]) -> dict[str, str]:
    return {"Partition": call.partition, "Region": call.region, "Account": call.account, **variables}


def _resource_policy(lookup: Lookup, prefix: str, resource_type: str, arn: str) -> ResourcePolicy | None:
    kind = _POLICY_KINDS.get((prefix, resource_type.lower()))
    if kind is None:
        return None
    target = arn.split("/", 1)[0] if (prefix, resource_type.lower()) == ("s3", "object") else arn
    text = lookup.resource_policy(target)
    if text is None:
        return None
    try:
        return ResourcePolicy(NamedPolicy.of(f"resource policy of {target}", text), kind, arn.split(":")[4])
    except PolicyError as exc:
        raise Unresolvable(f"the resource policy of {target} cannot be read: {exc}") from exc


def _resource_context(base: Values, lookup: Lookup, prefix: str, resource_type: str, arn: str) -> Values:
    """Request values plus the resource's own keys (its tags, a key's spec), looked up only when asked."""
    target = arn.split("/", 1)[0] if (prefix, resource_type.lower()) == ("s3", "object") else arn
    cache: dict[str, Mapping[str, str] | None] = {}

    def tag(key: str) -> tuple[str, ...] | None:
        if "tags" not in cache:
            cache["tags"] = lookup.tags(target) if "*" not in target else None
        tags = cache["tags"] or {}
        for name, value in tags.items():
            if name.lower() == key:
                return (value,)
        return None

    values = dict(base.values)
    families = dict(base.families)
    families["aws:resourcetag/"] = tag
    if prefix == "iam":
        families["iam:resourcetag/"] = tag
    if prefix == "kms" and resource_type == "key" and "*" not in arn:
        metadata = lookup.kms_key_metadata(arn) or {}
        for key, name in (("kms:keyspec", "KeySpec"), ("kms:keyusage", "KeyUsage"), ("kms:keyorigin", "Origin")):
            if key not in values and metadata.get(name):
                values[key] = (metadata[name],)
    values.setdefault(
        "aws:resourceaccount", (arn.split(":")[4],) if arn.startswith("arn:") and arn.split(":")[4] else ()
    )
    if not values["aws:resourceaccount"]:
        del values["aws:resourceaccount"]
    return Values(values, families)


def checks(call: ApiCall, lookup: Lookup) -> list[Check]:
    """Every authorization AWS makes for ``call`` (empty for calls IAM never authorizes)."""
    resolver = _SERVICES.get(call.service)
    parts = _Parts()
    if resolver is not None:
        resolver(call, lookup, parts)
    actions = parts.actions if parts.actions is not None else sar.actions_for(call.service, call.operation)
    tags = request_tags(call.params)
    tag_values = (
        _tag_values(tags)
        if (
            tags is not None
            and ((call.service, call.operation) in TAG_ON_CREATE or call.operation in _TAGGING_OPERATIONS)
        )
        else {}
    )
    base = Values({**parts.values, **tag_values})
    variables = _common(call, parts.variables)
    result: list[Check] = []
    for name in actions:
        result.extend(_action_checks(call, lookup, name, variables, parts.resources, base, parts.many))
    result.extend(parts.extra)
    pass_role = PASS_ROLE.get((call.service, call.operation))
    if pass_role and call.params.get(pass_role[0]):
        role_arn = str(call.params[pass_role[0]])
        values = Values({"iam:passedtoservice": (pass_role[1],)})
        result.append(Check("iam:PassRole", role_arn, _resource_context(values, lookup, "iam", "role", role_arn)))
    tag_action = TAG_ON_CREATE.get((call.service, call.operation))
    if tag_action and tags:
        created = next((c.resource for c in result if c.action in actions), None)
        resource = created or "*"
        if call.service == "kms":
            resource = f"arn:{call.partition}:kms:{call.region}:{call.account}:key/*"
        result.append(Check(tag_action, resource, Values(tag_values)))
    return result


def _action_checks(
    call: ApiCall, lookup: Lookup, name: str, variables: Mapping[str, str], explicit: Mapping[str, str], base: Values,
    many: Mapping[str, tuple[str, ...]],
) -> list[Check]:
    info = sar.action(name)
    if info is None:
        raise Unresolvable(f"{name} is not in the Service Authorization Reference")
    prefix = name.split(":")[0]
    found: list[tuple[str, str]] = []
    unresolved_required: list[str] = []
    for rt in info.resource_types:
        if rt.name in many:
            found.extend((rt.name, arn) for arn in many[rt.name])
            continue
        arn = explicit.get(rt.name) or sar.fill(rt.arn_format, dict(variables))
        if arn is None:
            if rt.required:
                unresolved_required.append(rt.name)
            continue
        found.append((rt.name, arn))
    if not found:
        if "topic" in explicit and prefix == "sns":
            found.append(("topic", explicit["topic"]))
        elif unresolved_required:
            raise Unresolvable(f"cannot tell the {'/'.join(unresolved_required)} {name} acts on from the request")
        else:
            return [Check(info.name, "*", _resource_context(base, lookup, prefix, "", "*"))]
    checks_: list[Check] = []
    for resource_type, arn in found:
        if name == "sts:AssumeRole":
            role = lookup.role(arn, assuming=True)
            if role is None:
                raise ResourceMissing(f"role {arn} not found")
            trust = ResourcePolicy(
                NamedPolicy.of(f"trust policy of {arn}", role.trust_policy),
                ResourcePolicyKind.REQUIRED,
                arn.split(":")[4],
            )
            checks_.append(Check(info.name, arn, _resource_context(base, lookup, "iam", "role", arn), trust))
            continue
        checks_.append(
            Check(
                info.name,
                arn,
                _resource_context(base, lookup, prefix, resource_type, arn),
                _resource_policy(lookup, prefix, resource_type, arn),
            )
        )
    return checks_


def policy_text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)
