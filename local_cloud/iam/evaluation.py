"""IAM's policy evaluation logic for requests within one account.

Inputs are plain data (who asks, for what action on which resource, with which condition values, under
which identity policies, permissions boundary and resource policy), so the logic is tested without moto.

The rules (IAM User Guide, "Policy evaluation logic", same-account case):
1. An explicit Deny in any applicable policy (identity, boundary, resource) refuses the request.
2. A resource policy that names the caller (its ARN, its role, or ``*``) allows by itself; one that names
   the account delegates to IAM: the identity policies must allow too.
3. Otherwise the identity policies must allow and, when the caller has a permissions boundary, so must
   the boundary. The account's root user has every identity permission.
4. KMS key policies and role trust policies are required: without an Allow there (directly or by
   delegation to the account) nothing else can grant access.
5. Nothing allows: implicit deny.
Across accounts (a caller of another account than the resource policy's owner, e.g. Expel's user assuming
the customer's role), both sides must allow: the resource policy (naming the caller or its account) and the
caller's own identity policies.
A condition key or operator the evaluator does not know refuses the request (``Reason.UNSUPPORTED``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from local_cloud.iam import conditions
from local_cloud.iam.arn import action_matches, arn_matches
from local_cloud.iam.policy import NamedPolicy, Principals, Statement


class Kind(enum.StrEnum):
    ROOT = "root"
    USER = "user"
    ASSUMED_ROLE = "assumed-role"
    SERVICE = "service"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    """Who makes the request, as AWS names it in ``User: <arn> is not authorized ...``."""

    arn: str
    account: str
    kind: Kind
    role_arn: str | None = None  # an assumed-role session's role
    service: str | None = None  # a service principal, e.g. "cloudtrail.amazonaws.com"
    session_name: str | None = None

    @classmethod
    def root(cls, account: str, partition: str = "aws") -> Principal:
        return cls(f"arn:{partition}:iam::{account}:root", account, Kind.ROOT)

    @classmethod
    def of_service(cls, service: str) -> Principal:
        return cls(service, "", Kind.SERVICE, service=service)

    @classmethod
    def session(cls, role_arn: str, session_name: str) -> Principal:
        partition, account, path_name = role_arn.split(":")[1], role_arn.split(":")[4], role_arn.split(":role/", 1)[1]
        name = path_name.rsplit("/", 1)[-1]
        arn = f"arn:{partition}:sts::{account}:assumed-role/{name}/{session_name}"
        return cls(arn, account, Kind.ASSUMED_ROLE, role_arn=role_arn, session_name=session_name)

    @property
    def name(self) -> str:
        """The role (or user) name: the report groups calls by it."""
        if self.kind == Kind.ASSUMED_ROLE and self.role_arn:
            return self.role_arn.rsplit("/", 1)[-1]
        return self.arn.rsplit("/", 1)[-1] if "/" in self.arn else self.arn


@dataclass(frozen=True)
class Identity:
    """A principal with the policies IAM holds for it (inline and managed) and its boundary."""

    principal: Principal
    policies: tuple[NamedPolicy, ...] = ()
    boundary: NamedPolicy | None = None


class ResourcePolicyKind(enum.Enum):
    """How AWS combines a resource's own policy with the caller's identity policies."""

    OPTIONAL = "optional"  # S3 bucket, SQS queue, SNS topic, Lambda function, secret: either may allow
    REQUIRED = "required"  # KMS key policy, role trust policy: must allow (directly or by delegation)


@dataclass(frozen=True)
class ResourcePolicy:
    policy: NamedPolicy
    kind: ResourcePolicyKind = ResourcePolicyKind.OPTIONAL
    owner_account: str = ""


@dataclass(frozen=True)
class Request:
    action: str  # "kms:CreateKey"
    resource: str  # an ARN or "*"
    context: conditions.Context = field(default_factory=conditions.Values)


class Reason(enum.StrEnum):
    ALLOWED_BY_IDENTITY = "allowed by an identity-based policy"
    ALLOWED_BY_RESOURCE = "allowed by a resource-based policy"
    ALLOWED_AS_ROOT = "allowed: the account's root user"
    EXPLICIT_DENY_IDENTITY = "explicit deny in an identity-based policy"
    EXPLICIT_DENY_RESOURCE = "explicit deny in a resource-based policy"
    EXPLICIT_DENY_BOUNDARY = "explicit deny in a permissions boundary"
    NO_IDENTITY_ALLOW = "no identity-based policy allows"
    NO_RESOURCE_ALLOW = "no resource-based policy allows"
    NO_BOUNDARY_ALLOW = "no permissions boundary allows"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class Matched:
    """The statement that decided, and its policy (for the report and messages)."""

    source: str
    statement: Statement

    def describe(self) -> str:
        return f"{self.source} {self.statement.label}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: Reason
    principal: Principal
    action: str
    resource: str
    matched: Matched | None = None
    detail: str = ""  # why an unsupported request was refused

    def message(self) -> str:
        """AWS's wording: ``User: <arn> is not authorized to perform: <action> on resource: <arn> because ...``."""
        who = "Anonymous" if self.principal.kind == Kind.ANONYMOUS else f"User: {self.principal.arn}"
        head = f"{who} is not authorized to perform: {self.action} on resource: {self.resource}"
        if self.reason == Reason.UNSUPPORTED:
            return f"{head} because the local cloud cannot evaluate it: {self.detail}"
        if self.reason.name.startswith("EXPLICIT_DENY"):
            return f"{head} with an {self.reason.value}"
        if self.reason in (Reason.NO_IDENTITY_ALLOW, Reason.NO_RESOURCE_ALLOW, Reason.NO_BOUNDARY_ALLOW):
            return f"{head} because {self.reason.value} the {self.action} action"
        return head


# ------------------------------------------------------------------------------------ statement matching
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


def _substitute(context: conditions.Context) -> Callable[[str], str | None]:
    def run(text: str) -> str | None:
        missing = False

        def value(match: re.Match[str]) -> str:
            nonlocal missing
            name = match.group(1)
            if name in _ESCAPES:
                return _ESCAPES[name]
            key, _, default = name.partition(",")
            if not conditions.supported_key(key.strip()):
                raise conditions.Unsupported(f"policy variable ${{{key.strip()}}} is not supported")
            found = context.get(key.strip().lower())
            if found:
                return found[0]
            if default:
                return default.strip().strip("'")
            missing = True
            return ""

        result = _VARIABLE.sub(value, text)
        return None if missing else result

    return run


def _principal_match(principals: Principals, who: Principal) -> str | None:
    """ "direct" when the element names the caller (or everyone), "account" when it names the caller's
    account (delegation to IAM), None when it does not cover the caller."""
    if principals.everyone:
        return "direct"
    if who.kind == Kind.SERVICE:
        return "direct" if who.service in principals.service else None
    if who.kind == Kind.ANONYMOUS:
        return None
    for value in principals.aws:
        if value == who.arn or (who.role_arn and value == who.role_arn):
            return "direct"
        account = value if re.fullmatch(r"\d{12}", value) else None
        if value.startswith("arn:") and value.endswith(":root"):
            account = value.split(":")[4]
        if account == who.account:
            return "direct" if who.kind == Kind.ROOT else "account"
    return None


def _applies(statement: Statement, request: Request, substitute: Callable[[str], str | None]) -> bool:
    if statement.actions is not None:
        if not any(action_matches(p, request.action) for p in statement.actions):
            return False
    elif statement.not_actions is not None and any(action_matches(p, request.action) for p in statement.not_actions):
        return False
    resources = statement.resources if statement.resources is not None else statement.not_resources
    if resources is not None:
        hit = False
        for pattern in resources:
            if "${" in pattern:
                resolved = substitute(pattern)
                if resolved is None:
                    continue
                pattern = resolved
            if arn_matches(pattern, request.resource) or (pattern == request.resource):
                hit = True
                break
        if hit == (statement.resources is None):
            return False
    return True


@dataclass
class _Outcome:
    allow: Matched | None = None
    allow_via_account: Matched | None = None
    deny: Matched | None = None


def _scan(policies: Iterable[NamedPolicy], request: Request, who: Principal | None) -> _Outcome:
    """Walk statements; ``who`` is given for resource policies (Principal elements are matched)."""
    outcome = _Outcome()
    substitute = _substitute(request.context)
    for named in policies:
        for statement in named.policy.statements:
            if not _applies(statement, request, substitute):
                continue
            via = "direct"
            if who is not None:
                if statement.principal is not None:
                    found = _principal_match(statement.principal, who)
                    if found is None:
                        continue
                    via = found
                elif statement.not_principal is not None:
                    if _principal_match(statement.not_principal, who) is not None:
                        continue
                else:
                    continue  # a resource policy statement without a principal grants nobody
            if statement.condition and not conditions.evaluate(statement.condition, request.context, substitute):
                continue
            matched = Matched(named.source, statement)
            if statement.effect == "Deny":
                if outcome.deny is None:
                    outcome.deny = matched
            elif via == "account":
                outcome.allow_via_account = outcome.allow_via_account or matched
            else:
                outcome.allow = outcome.allow or matched
    return outcome


def evaluate(identity: Identity, request: Request, resource_policy: ResourcePolicy | None = None) -> Decision:
    """Decide one (principal, action, resource, context) as IAM does in one account."""
    who = identity.principal

    def decide(allowed: bool, reason: Reason, matched: Matched | None = None, detail: str = "") -> Decision:
        return Decision(allowed, reason, who, request.action, request.resource, matched, detail)

    try:
        is_root = who.kind == Kind.ROOT
        has_identity = who.kind in (Kind.ROOT, Kind.USER, Kind.ASSUMED_ROLE)
        ident = _scan(identity.policies, request, None) if has_identity and not is_root else _Outcome()
        boundary = _scan([identity.boundary], request, None) if identity.boundary and not is_root else None
        resource = _scan([resource_policy.policy], request, who) if resource_policy else _Outcome()
    except conditions.Unsupported as exc:
        return decide(False, Reason.UNSUPPORTED, detail=str(exc))

    if ident.deny:
        return decide(False, Reason.EXPLICIT_DENY_IDENTITY, ident.deny)
    if resource.deny:
        return decide(False, Reason.EXPLICIT_DENY_RESOURCE, resource.deny)
    if boundary is not None and boundary.deny:
        return decide(False, Reason.EXPLICIT_DENY_BOUNDARY, boundary.deny)

    identity_allow: Matched | None = None
    if is_root:
        identity_allowed = True
    else:
        identity_allow = ident.allow
        identity_allowed = identity_allow is not None and (boundary is None or boundary.allow is not None)

    cross_account = (resource_policy is not None and bool(resource_policy.owner_account) and bool(who.account)
                     and who.kind in (Kind.ROOT, Kind.USER, Kind.ASSUMED_ROLE)
                     and who.account != resource_policy.owner_account)
    if cross_account:
        granted = resource.allow or resource.allow_via_account
        if granted is None:
            return decide(False, Reason.NO_RESOURCE_ALLOW)
        if identity_allowed:
            return decide(True, Reason.ALLOWED_BY_RESOURCE, granted)
        if ident.allow is not None and boundary is not None and boundary.allow is None:
            return decide(False, Reason.NO_BOUNDARY_ALLOW)
        return decide(False, Reason.NO_IDENTITY_ALLOW)

    required = resource_policy is not None and resource_policy.kind == ResourcePolicyKind.REQUIRED
    if resource.allow is not None:
        return decide(True, Reason.ALLOWED_BY_RESOURCE, resource.allow)
    if required:
        if resource.allow_via_account is None:
            return decide(False, Reason.NO_RESOURCE_ALLOW)
        if identity_allowed:
            return decide(
                True,
                Reason.ALLOWED_AS_ROOT if is_root else Reason.ALLOWED_BY_IDENTITY,
                identity_allow or resource.allow_via_account,
            )
    elif identity_allowed:
        return decide(True, Reason.ALLOWED_AS_ROOT if is_root else Reason.ALLOWED_BY_IDENTITY, identity_allow)
    if not has_identity:
        return decide(False, Reason.NO_RESOURCE_ALLOW)
    if ident.allow is not None and boundary is not None and boundary.allow is None:
        return decide(False, Reason.NO_BOUNDARY_ALLOW)
    return decide(False, Reason.NO_IDENTITY_ALLOW)


def resource_policy_allows(
    policy: NamedPolicy | dict | str,
    principal: Principal,
    action: str,
    resource: str,
    context: conditions.Context | None = None,
) -> Decision:
    """Does this resource policy alone let ``principal`` (typically a service principal such as
    ``cloudtrail.amazonaws.com``) do ``action`` on ``resource``? For the cross-service checks AWS makes
    (CloudTrail on a bucket policy, S3 on a topic policy, SNS on a queue policy and key policy)."""
    named = policy if isinstance(policy, NamedPolicy) else NamedPolicy.of("resource policy", policy)
    request = Request(action, resource, context or conditions.Values())
    return evaluate(Identity(principal), request, ResourcePolicy(named, ResourcePolicyKind.REQUIRED))
