"""S3 PutBucketPolicy refuses the policies S3 refuses (moto stores any bytes).

S3 answers ``MalformedPolicy`` (HTTP 400) with one of its fixed messages, and keeps the bucket's old policy:
- not JSON: "Policies must be valid JSON and the first byte must be '{'", "This policy contains invalid Json";
- a Version other than 2012-10-17 or 2008-10-17: "The policy must contain a valid version string";
- no Statement, or an empty one: "Missing required field Statement", "Could not parse the policy: Statement is
  empty!"; a statement without Effect, Principal, Action or Resource (or their Not forms): "Missing required
  field <name>"; an Effect other than Allow/Deny: "Invalid effect: <effect>";
- a Principal that is not ``*`` or a map of AWS/Service/Federated/CanonicalUser to strings: "Invalid principal in
  policy";
- an Action that is not an S3 action (wildcards allowed): "Policy has invalid action";
- a Resource that is not a string or a list of strings, or not this bucket or an object in it:
  "Policy has invalid resource";
- an action that applies to none of the statement's resources (an object action on the bucket's ARN only, a
  bucket action on objects only): "Action does not apply to any resource(s) in statement".
Which resource an action applies to comes from the Service Authorization Reference (``iam.sar``). CloudFormation's
``AWS::S3::BucketPolicy`` goes through the same backend call, so a template's malformed policy fails its resource.
"""

from __future__ import annotations

import fnmatch
import json
import re
from functools import cache
from typing import Any

from local_cloud.once import once

VERSIONS = ("2012-10-17", "2008-10-17")
PRINCIPAL_TYPES = frozenset({"AWS", "Service", "Federated", "CanonicalUser"})
_S3_ARN = re.compile(r"^arn:aws[a-z-]*:s3:::(?P<bucket>[^/]+)(?P<object>/.*)?$")


class MalformedPolicy(ValueError):
    """S3's refusal of a bucket policy: its message is S3's."""


def _strings(value: object) -> list[str] | None:
    """A policy element's values (a string or a list of strings), None when it is neither."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


@cache
def _s3_actions() -> dict[str, frozenset[str]]:
    """Every S3 action (lower case) with the kinds of resource in a bucket policy it applies to."""
    from local_cloud.iam import sar

    return {entry.name.lower(): frozenset(t.name.lower() for t in entry.resource_types) & {"bucket", "object"}
            for entry in sar.service_actions("s3")}


def _actions(patterns: list[str]) -> list[frozenset[str]]:
    """Per pattern (an action, or several with wildcards), the kinds of resource its actions apply to; refuses a
    pattern that names no S3 action."""
    known = _s3_actions()
    applies: list[frozenset[str]] = []
    for pattern in patterns:
        matched = [kinds for name, kinds in known.items() if fnmatch.fnmatchcase(name, pattern.lower())] \
            if pattern != "*" else list(known.values())
        if not matched:
            raise MalformedPolicy("Policy has invalid action")
        applies.append(frozenset().union(*matched))
    return applies


def _resource_kinds(resources: list[str], bucket: str) -> set[str]:
    """Which kinds of resource (bucket, object) the statement's ARNs may name; refuses one that names no S3
    resource of this bucket (``*`` included)."""
    kinds: set[str] = set()
    for resource in resources:
        found = _S3_ARN.match(resource)
        if not found or not fnmatch.fnmatchcase(bucket, found["bucket"]):
            raise MalformedPolicy("Policy has invalid resource")
        if found["object"]:
            kinds.add("object")
        else:
            kinds.add("bucket")
            if found["bucket"].endswith(("*", "?")):  # a wildcard at the end also matches the bucket's objects
                kinds.add("object")
    return kinds


def _principal(value: object) -> None:
    if value == "*":
        return
    if not isinstance(value, dict) or not value or not set(value) <= PRINCIPAL_TYPES \
            or any(_strings(v) is None for v in value.values()):
        raise MalformedPolicy("Invalid principal in policy")


def _statement(statement: object, bucket: str) -> None:
    if not isinstance(statement, dict):
        raise MalformedPolicy("This policy contains invalid Json")
    effect = statement.get("Effect")
    if effect is None:
        raise MalformedPolicy("Missing required field Effect")
    if effect not in ("Allow", "Deny"):
        raise MalformedPolicy(f"Invalid effect: {effect}")
    for name in ("Principal", "Action", "Resource"):
        if name not in statement and f"Not{name}" not in statement:
            raise MalformedPolicy(f"Missing required field {name}")
    _principal(statement.get("Principal", statement.get("NotPrincipal")))
    action_patterns = _strings(statement.get("Action", statement.get("NotAction")))
    if action_patterns is None:
        raise MalformedPolicy("Policy has invalid action")
    actions = _actions(action_patterns)
    resources = _strings(statement.get("Resource", statement.get("NotResource")))
    if resources is None:
        raise MalformedPolicy("Policy has invalid resource")
    kinds = _resource_kinds(resources, bucket)
    # Each action must apply to one of the resources (ListBucket to the bucket, GetObject to objects...).
    if "Action" in statement and "Resource" in statement and any(not applies & kinds for applies in actions):
        raise MalformedPolicy("Action does not apply to any resource(s) in statement")


def validate(bucket: str, policy: bytes | str) -> None:
    """Raises ``MalformedPolicy`` with S3's message when S3 refuses ``policy`` for ``bucket``."""
    text = policy.decode("utf-8") if isinstance(policy, bytes) else policy
    if not text.lstrip().startswith("{"):
        raise MalformedPolicy("Policies must be valid JSON and the first byte must be '{'")
    try:
        document: Any = json.loads(text)
    except ValueError as exc:
        raise MalformedPolicy("This policy contains invalid Json") from exc
    if "Version" in document and document["Version"] not in VERSIONS:
        raise MalformedPolicy("The policy must contain a valid version string")
    if "Statement" not in document:
        raise MalformedPolicy("Missing required field Statement")
    statements = document["Statement"]
    statements = statements if isinstance(statements, list) else [statements]
    if not statements:
        raise MalformedPolicy("Could not parse the policy: Statement is empty!")
    for statement in statements:
        _statement(statement, bucket)


@once
def install() -> None:
    """The check in moto's S3 backend, so the API and CloudFormation's bucket policies both go through it."""
    from moto.s3.exceptions import S3ClientError
    from moto.s3.models import S3Backend

    original = S3Backend.put_bucket_policy

    def put_bucket_policy(self: Any, bucket_name: str, policy: bytes) -> None:
        self.get_bucket(bucket_name)  # NoSuchBucket first, as S3 answers
        try:
            validate(bucket_name, policy)
        except MalformedPolicy as exc:
            raise S3ClientError("MalformedPolicy", str(exc)) from exc
        original(self, bucket_name, policy)

    S3Backend.put_bucket_policy = put_bucket_policy  # type: ignore[method-assign]
