"""Audit resource policies offline: parliament, plus the two checks it cannot make on them.

parliament lints IAM *identity* policies. On resource policies it (a) rejects any Sid outside
``[0-9A-Za-z]`` and then stops analysing that statement and every later check, and (b) does not look
at principals at all: ``{"Service": ...}`` is passed unchecked and ``{"AWS": "*"}`` is fine to it.
So ``audit`` runs it twice (as written, for the Sid finding; with neutral Sids, for everything
else) and adds the resource-policy checks itself. Moto does not evaluate these policies, so this
is the only place their content is judged.
"""

from __future__ import annotations

import copy
import functools
import json
import warnings
from typing import Any

import jsoncfg
from jsoncfg.config_classes import ConfigJSONArray, ConfigJSONObject, ConfigJSONScalar, ConfigNode

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # parliament imports the deprecated pkg_resources
    from parliament import statement
    from parliament.policy import Policy



def _once_per_policy(method: Any) -> Any:
    """``method`` answered once per policy and arguments. Parliament asks the same questions of a policy again
    and again (each community auditor expands every allowed action and resolves its resources anew), which
    took four fifths of an audit; the answers depend only on the policy's statements, complete by then."""

    @functools.wraps(method)
    def once(self: Policy, *args: Any, **kwargs: Any) -> Any:
        answers = self.__dict__.setdefault("_answers", {})
        key = (method.__name__, args, tuple(sorted(kwargs.items())))
        if key not in answers:
            answers[key] = method(self, *args, **kwargs)
        return answers[key]

    return once


Policy.get_allowed_actions = _once_per_policy(Policy.get_allowed_actions)
Policy.get_allowed_resources = _once_per_policy(Policy.get_allowed_resources)
# A linear search of AWS's whole IAM reference per call; it returns the same entry for the same action.
statement.get_privilege_info = functools.cache(statement.get_privilege_info)


def _in_actions(self: statement.Statement, privilege_prefix: str, privilege_name: str) -> bool:
    """``Statement.in_actions`` with the statement's actions expanded once: parliament expanded every action of
    the statement again for each privilege it asked about (a third of an audit). Same answer: an Action list
    covers the privilege when it holds '*' or an action that expands to it; a NotAction list when none does."""
    cached = self.__dict__.get("_expanded_actions")
    if cached is None:
        allow_list = "Action" in self.stmt
        star, covered = False, set()
        for action in statement.make_list(self.stmt["Action" if allow_list else "NotAction"]):
            if (action.value if allow_list else action) in ("*", "*:*"):
                star = True
                continue
            covered.update((expanded["service"], expanded["action"])
                           for expanded in statement.expand_action(action.value, raise_exceptions=False))
        cached = self.__dict__["_expanded_actions"] = (allow_list, star, frozenset(covered))
    allow_list, star, covered = cached
    found = star or (privilege_prefix, privilege_name) in covered
    return found if allow_list else not found


statement.Statement.in_actions = _in_actions

RESOURCE_KINDS = ("kms", "s3", "sns", "sqs")
# The templates' own policies (tests/unit/test_template_policies.py): identity policies and role trust policies.
IDENTITY_KINDS = ("identity", "trust")
KINDS = RESOURCE_KINDS + IDENTITY_KINDS

# (kind, parliament issue) -> why it is not a problem there. Listed once; keep it short.
ACCEPTED_FINDINGS: dict[tuple[str, str], str] = {
    ("kms", "RESOURCE_STAR"):
        "In a key policy Resource '*' means the key the policy is attached to; it can name nothing else.",
    ("kms", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "The account-root kms:* statement is what lets IAM policies govern the key; KMS's lockout "
        "safety check refuses a policy without it.",
    ("kms", "INVALID_SID"):
        "The guide's and the CloudTrail console's Sids contain spaces and '/'; key policies accept them "
        "(parliament applies the IAM identity-policy grammar).",
    ("sns", "INVALID_SID"):
        "The guide's topic Sid 'expel-statement-ID' has hyphens; SNS policies accept them.",
    ("sns", "OLD_VERSION"):
        "2008-10-17 is the guide's and SNS's own default; it only lacks policy variables, unused here.",
    ("identity", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "Writing the guide's key, bucket, topic and queue policies and the Expel role is the job; each grant "
        "names its one resource (keys: our ownership tag).",
    ("identity", "RESOURCE_POLICY_PRIVILEGE_ESCALATION"):
        "Step 1 writes the bucket's CloudTrail policy (guide step 1); the grant names only the onboarding's bucket.",
    ("identity", "PRIVILEGE_ESCALATION"):
        "Step 8 passes RoleStackExecutionRole to CloudFormation to deploy the Expel role; that role may create "
        "or change only role/${RoleName}, and only under the ExpelRoleBoundary permissions boundary.",
    ("identity", "RESOURCE_STAR"):
        "parliament flags even conditioned grants and Expel's published inventory; test_template_policies "
        "judges every Resource '*' per action against its own documented lists.",
    ("identity", "RESOURCE_MISMATCH"):
        "parliament's IAM data lags AWS for actions on two resources (kms alias+key, states execution, sns "
        "subscription, stackset); test_template_policies checks each ARN names the action's service.",
    ("trust", "MALFORMED"):
        "A trust policy has no Resource element (the role is the resource); parliament expects one.",
}

# Conditions that tie a grant to our account or our resources.
_CALLER_PINS = ("kms:calleraccount", "aws:sourcearn", "aws:sourceaccount", "aws:principalaccount",
                "aws:principalorgid")
_SOURCE_PINS = ("aws:sourcearn", "aws:sourceaccount")
# Judged on the document as written; the neutral copy has unique, plain Sids by construction.
_SID_ISSUES = ("INVALID_SID", "DUPLICATE_SID")


def _condition_keys(statement: dict[str, Any]) -> set[str]:
    return {key.lower() for block in statement.get("Condition", {}).values() for key in block}


def _principals(statement: dict[str, Any]) -> tuple[bool, list[str]]:
    """(grants to everyone, service principals)."""
    principal = statement.get("Principal", {})
    if principal == "*":
        return True, []
    aws = principal.get("AWS", [])
    services = principal.get("Service", [])
    everyone = "*" in ([aws] if isinstance(aws, str) else aws)
    return everyone, [services] if isinstance(services, str) else list(services)


def _resource_policy_findings(document: dict[str, Any]) -> list[tuple[str, str]]:
    findings = []
    for statement in document["Statement"]:
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid", "?")
        keys = _condition_keys(statement)
        everyone, services = _principals(statement)
        if everyone and not keys & set(_CALLER_PINS):
            findings.append(("PUBLIC_ALLOW", f"{sid} grants to '*' without pinning the caller's account"))
        if services and not keys & set(_SOURCE_PINS):
            findings.append(("CONFUSED_DEPUTY", f"{sid} grants to {services} without a source condition"))
    return findings


def _parliament(document: dict[str, Any]) -> list[tuple[str, str]]:
    return list(_parliament_of(json.dumps(document, sort_keys=True)))


# Parliament takes most of a second per policy and the audit tests ask about the same documents more than
# once (each policy's own test, then whether each accepted finding is still needed): one analysis each.
@functools.cache
def _parliament_of(document: str) -> tuple[tuple[str, str], ...]:
    """What parliament's ``analyze_policy_string`` finds in ``document``, which json.dumps wrote."""
    policy = Policy(config_tree(document))
    policy.analyze(ignore_private_auditors=True, include_community_auditors=True)
    return tuple((finding.issue, str(finding.detail)) for finding in policy.findings)


def config_tree(text: str) -> ConfigNode:
    """jsoncfg's tree of ``text`` (what parliament analyses: each node with the line and column it starts at), made
    from json's parse when ``text`` is json.dumps's own single-line output of it, where every node's place follows
    from the lengths of what precedes it. jsoncfg's parser reads a character at a time in Python: it took half of
    each analysis. Any other text goes to jsoncfg."""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or json.dumps(parsed) != text:  # also a repeated key: json keeps the last
        return jsoncfg.loads_config(text)
    return _config_node(parsed, 0)[0]


def _config_node(value: Any, offset: int) -> tuple[ConfigNode, int]:
    """The node of ``value``, which json.dumps writes from ``offset`` on (jsoncfg: line 1, column offset + 1), and
    the offset after it."""
    node: ConfigNode
    if isinstance(value, dict):
        node, offset = ConfigJSONObject(1, offset + 1), offset + 1  # "{"
        for index, (key, item) in enumerate(value.items()):
            offset += (2 if index else 0) + len(json.dumps(key)) + 2  # ", " before all but the first; '"key": '
            child, offset = _config_node(item, offset)
            node._insert(key, child)
        return node, offset + 1  # "}"
    if isinstance(value, list):
        node, offset = ConfigJSONArray(1, offset + 1), offset + 1  # "["
        for index, item in enumerate(value):
            child, offset = _config_node(item, offset + (2 if index else 0))
            node._append(child)
        return node, offset + 1  # "]"
    return ConfigJSONScalar(value, 1, offset + 1), offset + len(json.dumps(value))


def all_findings(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(issue, detail) for everything parliament and the resource-policy checks report."""
    neutral = copy.deepcopy(document)
    for index, statement in enumerate(neutral["Statement"]):
        if "Sid" in statement:
            statement["Sid"] = f"S{index}"
    raw = [f for f in _parliament(document) if f[0] in _SID_ISSUES] + _parliament(neutral)
    return raw + _resource_policy_findings(document)


def audit(document: dict[str, Any], kind: str) -> list[str]:
    """Every finding on ``document`` (a resource policy of ``kind``) that is not accepted above."""
    assert kind in KINDS, kind
    return [f"{issue}: {detail}" for issue, detail in all_findings(document)
            if (kind, issue) not in ACCEPTED_FINDINGS]
