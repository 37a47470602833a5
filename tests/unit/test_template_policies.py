"""Every IAM policy the templates declare, audited offline with the intrinsics resolved.

template.yaml's function and state-machine ``Policies`` (SAM policy templates expanded by samtranslator),
RoleStackExecutionRole's trust and inline policy, and roles/expel-role.yaml's trust and policies are
turned into concrete documents by a small resolver (sample account, region, stack and parameter values;
``Fn::If`` yields every combination of its conditions; ``AWS::NoValue`` disappears), then go through
``tests.policy_audit.audit`` (parliament) and the least-privilege rules a reviewer checks by hand:
no service-wide actions, ``Resource: "*"`` only where AWS offers no resource-level permission (or, listed
below with the reason, where a condition or the design pins it), and every KMS write on ``key/*``
conditioned on the ownership tag.
"""

from __future__ import annotations

import fnmatch
import functools
import itertools
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from samtranslator.policy_template_processor.processor import PolicyTemplatesProcessor

from local_cloud.cloudformation_templates import read_template
from tests.policy_audit import ACCEPTED_FINDINGS, IDENTITY_KINDS, all_findings, audit

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = {"template.yaml": ROOT / "template.yaml", "roles/expel-role.yaml": ROOT / "roles" / "expel-role.yaml"}

PARTITION, REGION, ACCOUNT, STACK = "aws", "us-east-1", "123456789012", "expel-onboarding"
PSEUDO = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": STACK,
          "AWS::URLSuffix": "amazonaws.com"}
# Parameters whose default is empty or absent get a value a real deploy could pass.
SAMPLE_PARAMETERS = {
    "WorkbenchGuid": "4f9c2a1e-7b3d-4e5f-9a8b-1c2d3e4f5a6b",
    "ExpelWorkbenchGuid": "4f9c2a1e-7b3d-4e5f-9a8b-1c2d3e4f5a6b",
    "BucketName": "expel-logs-sample",
    "AccessLogBucketName": "expel-access-logs-sample",
    "WorkbenchApiKey": "sample-api-key",
    "WorkbenchApiKeySecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:expel-workbench-AbCdEf",
    "OrganizationTargetOuIds": "ou-ab12-cdef3456",
    "WorkbenchDeviceName": "sample CloudTrail",
    "WorkbenchDeviceOverrides": "{}",
    "DriftAlertEmail": "security@example.com",
    "BucketArn": "arn:aws:s3:::expel-logs-sample",
    "QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:ExpelCloudTrailQueue",
    "KmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "PermissionsBoundaryArn": f"arn:aws:iam::{ACCOUNT}:policy/expel-onboarding-ExpelRoleBoundary-AbCdEf012345",
    "ExistingTrailName": "CustomersTrail",
    "ExistingTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:CustomersTopic",
    "LogPrefixOrganizationId": "o-a1b2c3d4e5",
    "LogFilterOrganizationalUnitId": "ou-ab12-cd34ef56",
    "LogKmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/5678abcd-12ab-34cd-56ef-1234567890ab",
    "LogObjectPrefix": f"AWSLogs/{ACCOUNT}/",
}


def _ref_value(logical: str, resource: dict[str, Any]) -> str:
    """What ``Ref`` returns for the resource types the templates reference."""
    kind = resource["Type"]
    if kind == "AWS::Serverless::Function":
        return f"{STACK}-{logical}-AbCdEf012345"
    if kind == "AWS::Serverless::StateMachine":
        return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STACK}-onboarding"
    if kind == "AWS::SecretsManager::Secret":
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{logical}-AbCdEf"
    if kind == "AWS::IAM::ManagedPolicy":
        return f"arn:aws:iam::{ACCOUNT}:policy/{STACK}-{logical}-AbCdEf012345"
    if kind == "AWS::SNS::Topic":
        return f"arn:aws:sns:{REGION}:{ACCOUNT}:{STACK}-{logical}-AbCdEf012345"
    if kind in ("AWS::IAM::Role", "AWS::Serverless::LayerVersion", "AWS::Logs::LogGroup"):
        return f"{STACK}-{logical}-AbCdEf012345"
    raise AssertionError(f"no sample Ref value for {logical} ({kind}): add one")


def _getatt_value(logical: str, attribute: str, resource: dict[str, Any]) -> str:
    kind = resource["Type"]
    if attribute != "Arn":
        raise AssertionError(f"no sample value for {logical}.{attribute}: add one")
    if kind == "AWS::Serverless::Function":
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{_ref_value(logical, resource)}"
    if kind == "AWS::IAM::Role":
        return f"arn:aws:iam::{ACCOUNT}:role/{_ref_value(logical, resource)}"
    raise AssertionError(f"no sample Arn for {logical} ({kind}): add one")


class _NoValue:
    """``AWS::NoValue``: dropped from the list or mapping that holds it."""


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class Context:
    parameters: dict[str, str]
    resources: dict[str, dict[str, Any]]
    conditions: dict[str, bool]


def _sub(text: str, variables: dict[str, Any], context: Context) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in variables:
            return str(resolve(variables[name], context))
        if "." in name:
            logical, attribute = name.split(".", 1)
            return _getatt_value(logical, attribute, context.resources[logical])
        return str(resolve({"Ref": name}, context))

    return re.sub(r"\$\{([^}]+)\}", replace, text)


def resolve(node: Any, context: Context) -> Any:
    """A copy of ``node`` with every intrinsic replaced by a sample value (pure)."""
    if isinstance(node, list):
        return [v for v in (resolve(item, context) for item in node) if v is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (key, value), = node.items()
        if key == "Ref":
            if value == "AWS::NoValue":
                return NO_VALUE
            if value in PSEUDO:
                return PSEUDO[value]
            if value in context.parameters:
                return context.parameters[value]
            return _ref_value(value, context.resources[value])
        if key == "Fn::Sub":
            text, variables = (value, {}) if isinstance(value, str) else value
            return _sub(text, variables, context)
        if key == "Fn::If":
            name, when_true, when_false = value
            return resolve(when_true if context.conditions[name] else when_false, context)
        if key == "Fn::GetAtt":
            logical, attribute = value if isinstance(value, list) else value.split(".", 1)
            return _getatt_value(logical, attribute, context.resources[logical])
        if key == "Fn::Join":
            separator, items = value
            return separator.join(str(v) for v in resolve(items, context))
        if key.startswith("Fn::") or key == "Condition":
            raise AssertionError(f"the resolver does not know {key}: add it")
    resolved = {k: resolve(v, context) for k, v in node.items()}
    return {k: v for k, v in resolved.items() if v is not NO_VALUE}


def _if_conditions(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_if_conditions(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["Fn::If"][0]} if "Fn::If" in node else set()
    return found.union(*(_if_conditions(v) for v in node.values()))


def _parameters(template: dict[str, Any]) -> dict[str, str]:
    values = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    values.update({name: SAMPLE_PARAMETERS[name] for name in values if name in SAMPLE_PARAMETERS})
    missing = [name for name, value in values.items() if value == ""]
    assert not missing, f"give these parameters a sample value: {missing}"
    return values


# ---------------------------------------------------------------- collecting every policy

@dataclass(frozen=True)
class Declared:
    """One policy document as a template declares it (intrinsics unresolved)."""

    name: str
    kind: str  # "identity", "trust", or a resource policy's service ("kms", "sns")
    document: dict[str, Any]
    template: str


_SAM_TEMPLATES = PolicyTemplatesProcessor(PolicyTemplatesProcessor.get_default_policy_templates_json())
_SAM_RESOURCES = ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")


def _sam_policies(logical: str, policies: list[Any], template: str) -> list[Declared]:
    found = []
    for index, item in enumerate(policies):
        name = f"{template}:{logical}.Policies[{index}]"
        if isinstance(item, dict) and "Statement" in item:
            found.append(Declared(name, "identity", {"Version": "2012-10-17", **item}, template))
        elif isinstance(item, dict) and len(item) == 1 and next(iter(item)) in _SAM_TEMPLATES.policy_templates:
            (template_name, arguments), = item.items()
            expanded = _SAM_TEMPLATES.convert(template_name, arguments)
            found.append(Declared(f"{name} ({template_name})", "identity",
                                  {"Version": "2012-10-17", **expanded}, template))
        else:
            raise AssertionError(f"{name}: a managed policy or unknown SAM template; audit it here")
    return found


def role_policies(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """A role's ``Policies``, each one present under some condition (``!If [Cond, policy, !Ref AWS::NoValue]``)."""
    found = []
    for item in properties.get("Policies", []):
        branches = item["Fn::If"][1:] if isinstance(item, dict) and "Fn::If" in item else [item]
        found += [b for b in branches if b != {"Ref": "AWS::NoValue"}]
    return found


def declared_policies() -> list[Declared]:
    found: list[Declared] = []
    for template, path in TEMPLATES.items():
        for logical, resource in read_template(path.read_text())["Resources"].items():
            properties = resource.get("Properties", {})
            if resource["Type"] in _SAM_RESOURCES:
                found += _sam_policies(logical, properties.get("Policies", []), template)
            if resource["Type"] == "AWS::IAM::Role":
                found.append(Declared(f"{template}:{logical} trust", "trust",
                                      properties["AssumeRolePolicyDocument"], template))
                found += [Declared(f"{template}:{logical}.{p['PolicyName']}", "identity", p["PolicyDocument"], template)
                          for p in role_policies(properties)]
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                found.append(Declared(f"{template}:{logical}", "identity", properties["PolicyDocument"], template))
            # The template's own resource policies (the drift alert's key and topic), audited as such.
            if resource["Type"] == "AWS::KMS::Key":
                found.append(Declared(f"{template}:{logical} key policy", "kms", properties["KeyPolicy"], template))
            if resource["Type"] == "AWS::SNS::TopicPolicy":
                found.append(Declared(f"{template}:{logical}", "sns", properties["PolicyDocument"], template))
    return found


@dataclass(frozen=True)
class Resolved:
    name: str
    kind: str
    document: dict[str, Any]


def resolved_policies() -> list[Resolved]:
    """Every declared policy once per combination of the conditions its ``Fn::If``s name."""
    parsed = {name: read_template(path.read_text()) for name, path in TEMPLATES.items()}
    found: list[Resolved] = []
    for declared in declared_policies():
        template = parsed[declared.template]
        names = sorted(_if_conditions(declared.document))
        seen: set[str] = set()
        for values in itertools.product((True, False), repeat=len(names)):
            conditions = dict(zip(names, values, strict=True))
            context = Context(_parameters(template), template["Resources"], conditions)
            document = resolve(declared.document, context)
            key = json.dumps(document, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            label = ",".join(f"{n}={'T' if v else 'F'}" for n, v in conditions.items())
            found.append(Resolved(f"{declared.name}[{label}]" if label else declared.name, declared.kind, document))
    return found


RESOLVED = resolved_policies()
IDS = [policy.name for policy in RESOLVED]


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return [statements] if isinstance(statements, dict) else statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------- the collection is complete

def _statement_blocks(node: Any) -> int:
    """How many ``Statement`` lists a template holds anywhere (so nothing escapes the collection)."""
    if isinstance(node, list):
        return sum(_statement_blocks(item) for item in node)
    if not isinstance(node, dict):
        return 0
    return int("Statement" in node) + sum(_statement_blocks(v) for v in node.values())


def test_every_policy_in_the_templates_is_collected() -> None:
    declared = declared_policies()
    inline = sum(1 for d in declared if "(" not in d.name)  # SAM templates are expanded, not written out
    written = sum(_statement_blocks(read_template(path.read_text())["Resources"]) for path in TEMPLATES.values())
    assert inline == written
    assert {d.template for d in declared} == set(TEMPLATES)


def test_resolver_leaves_no_intrinsic_and_audits_both_branches() -> None:
    text = json.dumps([p.document for p in RESOLVED])
    assert "Fn::" not in text and '"Ref"' not in text and "${" not in text
    names = " ".join(IDS)
    for condition in ("IsOrganizationMode", "UseSecret", "CreateSecret", "HasBucketName", "IsExistingTrail"):
        assert f"{condition}=T" in names and f"{condition}=F" in names, condition


def test_resolver_handles_sub_variables_novalue_and_escapes() -> None:
    context = Context({"Name": "q"}, {"Fn": {"Type": "AWS::Serverless::Function"}}, {"On": False})
    node = {"A": {"Fn::Sub": ["${X}-${Name}-${!Literal}-${AWS::Region}", {"X": {"Ref": "Fn"}}]},
            "B": {"Fn::If": ["On", "yes", {"Ref": "AWS::NoValue"}]},
            "C": [{"Fn::If": ["On", 1, {"Ref": "AWS::NoValue"}]}, {"Fn::GetAtt": ["Fn", "Arn"]}]}
    assert resolve(node, context) == {
        "A": f"{STACK}-Fn-AbCdEf012345-q-${{Literal}}-{REGION}",
        "C": [f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-Fn-AbCdEf012345"],
    }


# ---------------------------------------------------------------- parliament

@pytest.mark.parametrize("policy", RESOLVED, ids=IDS)
def test_template_policy_has_no_unaccepted_findings(policy: Resolved) -> None:
    assert audit(policy.document, policy.kind) == []


def test_every_accepted_identity_finding_is_still_needed() -> None:
    """The accepted list stays minimal: each identity/trust entry matches something the templates hold
    (test_policy_audit checks the resource-policy entries against the builders)."""
    seen = {(p.kind, issue) for p in RESOLVED for issue, _ in all_findings(p.document)}
    ours = {key for key in ACCEPTED_FINDINGS if key[0] in IDENTITY_KINDS}
    assert ours <= seen, ours - seen


# ---------------------------------------------------------------- least privilege by hand

# Actions allowed on Resource "*" because AWS documents no resource type for them (checked against
# parliament's IAM data below), with why the grant is still narrow.
NO_RESOURCE_LEVEL = {
    "kms:CreateKey": "The key does not exist yet; conditioned on our request tag and a plain symmetric key.",
    "cloudformation:CreateStackSet": "No resource type (IAM authorizes it against *); conditioned on our request tag.",
    "organizations:DescribeOrganization": "Read-only; no resource type.",
    "organizations:ListRoots": "Read-only; no resource type.",
    "organizations:ListDelegatedAdministrators": "Read-only; no resource type.",
    "organizations:ListAWSServiceAccessForOrganization": "Read-only; no resource type.",
    "organizations:EnableAWSServiceAccess": "No resource type; conditioned on organizations:ServicePrincipal.",
    "organizations:ListAccounts": "Read-only; no resource type.",
    "cloudtrail:DescribeTrails": "Read-only; no resource type.",
    "cloudtrail:ListTrails": "Read-only; no resource type.",
    "config:GetDiscoveredResourceCounts": "Read-only; no resource type.",
    "config:ListDiscoveredResources": "Read-only; no resource type.",
    "ec2:DescribeInstances": "EC2 Describe* calls take no resource ARN.",
    "ec2:DescribeRegions": "EC2 Describe* calls take no resource ARN.",
    "ec2:DescribeSecurityGroups": "EC2 Describe* calls take no resource ARN.",
    "ec2:DescribeVolumes": "EC2 Describe* calls take no resource ARN.",
    "ecs:DescribeTaskDefinition": "Read-only; no resource type.",
    "ecs:ListClusters": "Read-only; no resource type.",
    "ecs:ListTaskDefinitions": "Read-only; no resource type.",
    "eks:ListClusters": "Read-only; no resource type.",
    "lambda:ListFunctions": "Read-only; no resource type.",
    "logs:DescribeLogGroups": "Read-only; no resource type (step 1 finds the trail's log group by name).",
    "lightsail:GetRegions": "Read-only; no resource type.",
    "s3:ListAllMyBuckets": "Read-only; no resource type.",
    "s3:GetAccountPublicAccessBlock": "Read-only; no resource type (an existing trail's public access finding).",
    "sns:ListSubscriptions": "Read-only; no resource type (an existing trail's teardown finds our subscriptions).",
    "cloudwatch:GetMetricStatistics": "Read-only; no resource type (the drift check: failed deliveries).",
}
# Actions that do take resource ARNs but are granted on "*" on purpose: (policy name pattern, action
# pattern) -> why. Each needs the condition key in STAR_CONDITIONS, or must be read-only (List/Read).
STAR_BY_DESIGN: dict[tuple[str, str], str] = {
    ("template.yaml:Step08ExpelRoleFunction.*", "cloudformation:TagResource"):
        "The tagging CreateStackSet does is authorized against * as CreateStackSet is; only with our request tag.",
    ("template.yaml:Step01TrailFunction.*", "iam:CreateServiceLinkedRole"):
        "Pinned by iam:AWSServiceName to cloudtrail.amazonaws.com (AWS's documented organization-trail grant).",
    ("roles/expel-role.yaml:ExpelRole.ExpelInventoryReadOnly", "*"):
        "Expel's published read-only inventory policy: Expel investigates every resource of these types.",
    ("template.yaml:ExpelRoleBoundary", "*"):
        "The Expel role's permissions boundary repeats that inventory list: a ceiling, granting nothing itself.",
}
STAR_CONDITIONS = {"iam:CreateServiceLinkedRole": "iam:awsservicename",
                   "cloudformation:TagResource": "aws:requesttag/expel-onboarding:stack"}
# KMS actions that only read and may stay unconditioned on key/* (preflight must see a foreign key to report it).
KMS_READ_ONLY = {"kms:DescribeKey", "kms:ListResourceTags", "kms:GetKeyRotationStatus", "kms:GetKeyPolicy"}
OWNERSHIP_TAG = "expel-onboarding:stack"
# An existing trail's key (and a customer topic's) carries no tag of ours and no parameter names it: these KMS
# uses are allowed on key/* without the ownership tag, only in the IsExistingTrail branch, each pinned by the
# condition key named. (policy name pattern, action) -> (condition key, why).
KMS_ADOPTED: dict[tuple[str, str], tuple[str, str]] = {
    ("template.yaml:Step04KeyPolicyFunction.*", "kms:PutKeyPolicy"):
        ("kms:bypasspolicylockoutsafetycheck", "Adds/removes statements under Sids naming the stack; lockout check."),
    ("template.yaml:VerifyDeliveryFunction.*", "kms:GenerateDataKey"):
        ("kms:viaservice", "The canary takes the bucket's default key, through S3 only."),
    ("template.yaml:VerifyDeliveryCheckFunction.*", "kms:Decrypt"):
        ("kms:viaservice", "The queue is encrypted with the trail's key: receiving decrypts through SQS only."),
    ("template.yaml:ExpelRoleBoundary", "kms:Decrypt"):
        ("kms:viaservice", "The Expel role's ceiling; the role itself names its keys exactly."),
}


@functools.cache  # read by a few tests, not at collection
def privileges() -> dict[str, dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import parliament
    data = parliament.iam_definition  # its iam_definition.json, as parliament loaded it
    privileges: dict[str, dict[str, Any]] = {}
    for service in data:  # a service may appear twice (renamed); keep the union of resource types
        for privilege in service["privileges"]:
            key = f"{service['prefix']}:{privilege['privilege']}".lower()
            entry = privileges.setdefault(key, {"access_level": privilege["access_level"], "resources": set()})
            entry["resources"] |= {r["resource_type"].rstrip("*") for r in privilege["resource_types"]} - {""}
    return privileges



def _allows(policy: Resolved) -> list[dict[str, Any]]:
    return [s for s in _statements(policy.document) if s["Effect"] == "Allow"] if policy.kind == "identity" else []


def _condition_keys(statement: dict[str, Any]) -> set[str]:
    return {key.lower() for block in statement.get("Condition", {}).values() for key in block}


def _star_reason(policy: str, action: str, statement: dict[str, Any]) -> str | None:
    if action in NO_RESOURCE_LEVEL:
        return NO_RESOURCE_LEVEL[action]
    for (policy_pattern, action_pattern), reason in STAR_BY_DESIGN.items():
        if fnmatch.fnmatchcase(policy, policy_pattern) and fnmatch.fnmatchcase(action, action_pattern):
            needed = STAR_CONDITIONS.get(action)
            return reason if needed is None or needed in _condition_keys(statement) else None
    return None


def _star_grants(policy: Resolved) -> list[tuple[str, dict[str, Any]]]:
    return [(action, s) for s in _allows(policy) if "*" in _as_list(s["Resource"]) for action in _as_list(s["Action"])]


def _delegates_to_iam(policy: Resolved, statement: dict[str, Any]) -> bool:
    """KMS's default key policy statement: kms:* for the account root hands the key's use to IAM policies
    (no one gets anything from it alone); a key without it cannot be administered at all."""
    root = f"arn:aws:iam::{ACCOUNT}:root"
    return policy.kind == "kms" and statement.get("Principal") == {"AWS": root} and statement["Action"] == "kms:*"


def test_no_action_is_a_whole_service() -> None:
    broad = [(p.name, action) for p in RESOLVED for s in _statements(p.document)
             for action in _as_list(s.get("Action", [])) + _as_list(s.get("NotAction", []))
             if (action == "*" or action.endswith(":*") or "NotAction" in s) and not _delegates_to_iam(p, s)]
    assert broad == []


@pytest.mark.parametrize("policy", RESOLVED, ids=IDS)
def test_resource_star_only_where_aws_or_the_design_leaves_no_choice(policy: Resolved) -> None:
    base = policy.name.split("[")[0]
    assert [action for action, s in _star_grants(policy) if _star_reason(base, action, s) is None] == []


@pytest.mark.parametrize("action", sorted(NO_RESOURCE_LEVEL))
def test_no_resource_level_list_matches_aws_documentation(action: str) -> None:
    assert privileges()[action.lower()]["resources"] == set(), f"{action} takes resource ARNs: scope it instead"


@functools.cache  # the same actions recur in many policies, and each is matched against all of IAM
def _matching_privileges(action: str) -> list[tuple[str, str]]:
    """(privilege, access level) of every IAM privilege the action (or pattern) names."""
    return [(privilege, entry["access_level"]) for privilege, entry in privileges().items()
            if fnmatch.fnmatchcase(privilege, action.lower())]


def test_star_by_design_grants_only_reads_or_conditioned_actions() -> None:
    writes = [(p.name, privilege, level) for p in RESOLVED for action, _ in _star_grants(p)
              if action not in NO_RESOURCE_LEVEL and action not in STAR_CONDITIONS
              for privilege, level in _matching_privileges(action) if level not in ("List", "Read")]
    assert writes == []


def test_every_star_list_entry_is_still_needed() -> None:
    grants = [(p.name.split("[")[0], action) for p in RESOLVED for action, _ in _star_grants(p)]
    used = {entry for entry in STAR_BY_DESIGN for name, action in grants
            if fnmatch.fnmatchcase(name, entry[0]) and fnmatch.fnmatchcase(action, entry[1])}
    assert used == set(STAR_BY_DESIGN)
    assert set(NO_RESOURCE_LEVEL) <= {action for _, action in grants}


@pytest.mark.parametrize("policy", RESOLVED, ids=IDS)
def test_kms_writes_on_keys_require_the_ownership_tag(policy: Resolved) -> None:
    unpinned = []
    for statement in _allows(policy):
        on_keys = any(re.fullmatch(r"arn:[^:]+:kms:[^:]+:\d+:key/\*", r) for r in _as_list(statement["Resource"]))
        keys = _condition_keys(statement)
        for action in _as_list(statement["Action"]):
            if not on_keys or not action.startswith("kms:") or action in KMS_READ_ONLY:
                continue
            if _adopted_key_grant(policy.name, action, keys):
                continue
            # Tagging at CreateKey: the new key has no tags yet, so the request must carry ours, and only ours.
            pinned = (f"aws:requesttag/{OWNERSHIP_TAG}" in keys and "aws:tagkeys" in keys
                      if action == "kms:TagResource" else f"aws:resourcetag/{OWNERSHIP_TAG}" in keys)
            if not pinned:
                unpinned.append(action)
    assert unpinned == []


def _adopted_key_grant(name: str, action: str, keys: set[str]) -> bool:
    base, branch = name.split("[")[0], name.partition("[")[2]
    return "IsExistingTrail=T" in branch and any(
        fnmatch.fnmatchcase(base, pattern) and action == granted and condition in keys
        for (pattern, granted), (condition, _why) in KMS_ADOPTED.items())


def test_existing_trail_key_grants_exist_only_in_existing_trail_mode() -> None:
    """Each KMS_ADOPTED entry is used, and nowhere outside the IsExistingTrail branch."""
    used = set()
    for policy in RESOLVED:
        for statement in _allows(policy):
            keys = _condition_keys(statement)
            for action in _as_list(statement["Action"]):
                for (pattern, granted), (condition, _why) in KMS_ADOPTED.items():
                    if (fnmatch.fnmatchcase(policy.name.split("[")[0], pattern) and action == granted
                            and condition in keys and OWNERSHIP_TAG not in " ".join(keys)):
                        assert "IsExistingTrail=T" in policy.name, policy.name
                        used.add((pattern, granted))
    assert used == set(KMS_ADOPTED)


def test_every_arn_names_the_service_of_its_actions() -> None:
    """Stands in for parliament's RESOURCE_MISMATCH (accepted above): an action on another service's ARN."""
    wrong = [(p.name, s["Action"], resource) for p in RESOLVED for s in _allows(p)
             for resource in _as_list(s["Resource"]) if resource != "*"
             for action in _as_list(s["Action"]) if resource.split(":")[2] != action.split(":")[0]]
    assert wrong == []


def test_no_grant_names_an_organizations_resource_of_the_stacks_own_account() -> None:
    """An OU's (root's, account's) ARN carries the organization's management account id, whichever account asks: a
    grant naming the stack's own account matches nothing in a delegated administrator account."""
    own = [(p.name, resource) for p in RESOLVED for s in _allows(p) for resource in _as_list(s["Resource"])
           if resource.startswith(f"arn:{PARTITION}:organizations::{ACCOUNT}:")]
    assert own == []


def test_expel_role_boundary_allows_every_action_the_role_template_grants() -> None:
    """The boundary (template.yaml) is the ceiling of the role (roles/expel-role.yaml): if they drift
    apart, Expel silently loses an action on AWS."""
    template = read_template(TEMPLATES["template.yaml"].read_text())
    boundary = template["Resources"]["ExpelRoleBoundary"]["Properties"]["PolicyDocument"]["Statement"]
    ceiling = {a for st in boundary for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    role = read_template(TEMPLATES["roles/expel-role.yaml"].read_text())["Resources"]
    granted: set[str] = set()
    for policy in role_policies(role["ExpelRole"]["Properties"]):
        for st in policy["PolicyDocument"]["Statement"]:
            granted |= set(st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
    assert {"s3:GetObject", "sqs:ReceiveMessage", "kms:Decrypt"} <= granted  # the data path is counted too
    assert granted - ceiling == set()


def test_the_drift_check_holds_only_read_grants() -> None:
    """Issue: the check runs with read-only grants. Every action its role allows, in every combination of
    conditions, is a List or Read action in AWS's reference."""
    policies = [p for p in RESOLVED if p.name.startswith("template.yaml:DriftCheckFunction.")]
    assert policies
    granted = {action for p in policies for s in _allows(p) for action in _as_list(s["Action"])}
    assert {"iam:GetRole", "sns:GetSubscriptionAttributes", "cloudwatch:GetMetricStatistics"} <= granted
    levels = {action: privileges()[action.lower()]["access_level"] for action in granted}
    assert {action: level for action, level in levels.items() if level not in ("List", "Read")} == {}
