"""Typed inputs and outputs of the steps.

The state machine carries one JSON document: ``{"Config": {...}, "<StepOutput>": {...}, ...}``.
Each handler parses the parts it needs with ``from_dict`` and returns its own output with
``to_dict``; the ASL stores it under the output's ``KEY`` (``ResultPath: $.<KEY>``).
Keys are PascalCase like AWS's own, so the execution history reads like the guide.
Secrets never travel here: the Workbench API key is referenced by secret ARN only.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any, ClassVar, Self


class RoleStatus(StrEnum):
    """The Expel role's stack (and StackSet): steps 8 and 9, and their teardown. The ASL's Choice
    states compare these strings."""

    IN_PROGRESS = "IN_PROGRESS"  # call again after a wait
    COMPLETE = "COMPLETE"
    DELETED = "DELETED"  # teardown: gone
    SKIPPED = "SKIPPED"  # teardown: not this stack's, left as it is


class Removal(StrEnum):
    """What a teardown did with one resource."""

    DELETED = "DELETED"
    ABSENT = "ABSENT"  # already gone: counts as done
    KEPT = "KEPT"  # kept as the person chose (KeepLogBucket, ScheduleKeyDeletion)
    NOT_OURS = "KEPT_NOT_CREATED_BY_THIS_STACK"
    SCHEDULED = "SCHEDULED_FOR_DELETION"  # the KMS key: deleted by KMS after the waiting period


class DeviceStatus(StrEnum):
    """The Workbench device of guide step 10 (the ASL's Choice states compare these strings), and its teardown."""

    HEALTHY = "healthy"  # Workbench's own word
    NOT_YET_HEALTHY = "not yet healthy"
    MANUAL_REGISTRATION_REQUIRED = "MANUAL_REGISTRATION_REQUIRED"  # no API key: the output holds a link
    DELETED = Removal.DELETED.value
    ABSENT = Removal.ABSENT.value
    NOT_OURS = Removal.NOT_OURS.value


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


_ENUM_FIELDS: dict[type, dict[str, type[Enum]]] = {}


def _enum_fields(cls: type) -> dict[str, type[Enum]]:
    """Fields typed with an Enum (also ``X | None``): their JSON strings become members on reading."""
    if cls in _ENUM_FIELDS:
        return _ENUM_FIELDS[cls]
    found: dict[str, type[Enum]] = _ENUM_FIELDS.setdefault(cls, {})
    for name, hint in typing.get_type_hints(cls).items():
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        for option in options:
            if isinstance(option, type) and issubclass(option, Enum):
                found[name] = option
    return found


def _read(kind: type[Enum] | None, value: Any) -> Any:
    if kind is None or isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        return value  # not one of ours (a hand-made state document): kept as given


@dataclass(frozen=True)
class Model:
    """Converts between snake_case attributes and the PascalCase JSON of the state machine."""

    KEY: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        enums = _enum_fields(cls)
        known = {f.name: _read(enums.get(f.name), data[_pascal(f.name)]) for f in fields(cls)
                 if _pascal(f.name) in data}
        return cls(**known)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """Read this model from the whole state document, where it sits under ``KEY``."""
        return cls.from_dict(state[cls.KEY])

    def to_dict(self) -> dict[str, Any]:
        return {_pascal(f.name): _written(getattr(self, f.name)) for f in fields(self)}


def _written(value: Any) -> Any:
    return value.to_dict() if isinstance(value, Model) else value


@dataclass(frozen=True)
class Config(Model):
    """What the person chose (template parameters), resolved by the template into concrete names."""

    KEY: ClassVar[str] = "Config"

    stack_name: str
    region: str
    account_id: str
    partition: str
    workbench_guid: str
    trail_name: str
    bucket_name: str
    kms_alias: str
    topic_name: str
    queue_name: str
    role_name: str
    role_stack_name: str
    organization_mode: bool = False
    # The managed policy that bounds the Expel role in this account (see roles/expel-role.yaml).
    role_permissions_boundary_arn: str = ""
    # Workbench (guide step 10). The key itself lives in Secrets Manager; "" = manual fallback.
    workbench_api_key_secret_arn: str = ""
    workbench_base_url: str = "https://workbench.expel.io"
    workbench_device_name: str = ""
    workbench_location: str = "AWS cloud"
    role_session_name: str = "expel-cloudtrail-session"
    workbench_device_overrides: str = ""
    # Organizations mode (issue: AWS Organizations)
    organization_target_ou_ids: list[str] = field(default_factory=list)
    # StackSet rollout: accounts deployed at once, and accounts that may fail before CloudFormation stops.
    stack_set_max_concurrent_percentage: int = 25
    stack_set_failure_tolerance_percentage: int = 10
    # Teardown choices
    keep_log_bucket: bool = True
    schedule_key_deletion: bool = False
    # Existing-trail mode: the trail to adopt ("" = guide step 1 creates a new trail), a customer's SNS topic
    # to use on purpose, and the organization id whose log folder (AWSLogs/<id>/) the notification is
    # narrowed to in a bucket that collects several organizations' logs.
    existing_trail_name: str = ""
    existing_topic_arn: str = ""
    log_prefix_organization_id: str = ""
    # An existing organization trail only: the OU whose member accounts' folders (AWSLogs/<org>/<account>/)
    # get one notification entry each ("" = the organization's whole folder).
    log_filter_organizational_unit_id: str = ""
    # The log bucket's protection (README "CIS and Security Hub"): server access logs into a bucket of their
    # own, lifecycle retention, Object Lock (governance mode; only on a bucket the onboarding creates).
    access_logging: bool = True
    access_log_bucket_name: str = ""
    log_retention_days: int = 0  # 0: keep every log
    object_lock_retention_days: int = 0  # 0: no Object Lock
    # The trail's CloudWatch Logs delivery (CIS 3.4): days the log group keeps events (0: no delivery), and the
    # role CloudTrail writes with (made by the template only when delivery is on).
    cloud_watch_logs_retention_days: int = 0
    cloud_watch_logs_role_arn: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        data = dict(data)
        # CloudFormation hands every custom resource property over as a string.
        for name in ("OrganizationMode", "KeepLogBucket", "ScheduleKeyDeletion", "AccessLogging"):
            if isinstance(data.get(name), str):
                data[name] = data[name].strip().lower() == "true"
        ous = data.get("OrganizationTargetOuIds")
        if isinstance(ous, str):
            data["OrganizationTargetOuIds"] = [o.strip() for o in ous.split(",") if o.strip()]
        for name in ("StackSetMaxConcurrentPercentage", "StackSetFailureTolerancePercentage", "LogRetentionDays",
                     "ObjectLockRetentionDays", "CloudWatchLogsRetentionDays"):
            if isinstance(data.get(name), str) and data[name].strip().isdigit():
                data[name] = int(data[name])
        return super().from_dict(data)


@dataclass(frozen=True)
class TrailOutput(Model):
    """Guide step 1: the trail, its S3 bucket and its KMS key."""

    KEY: ClassVar[str] = "Trail"

    trail_arn: str
    bucket_name: str
    bucket_arn: str
    kms_key_arn: str  # the key of the topic and queue (steps 3-5); a new trail's log files too
    kms_alias: str
    # Existing-trail mode: the trail's log folder (our notification's filter), the key of its log files
    # ("" = not KMS-encrypted), and where it differs from the guide's best practice ("; "-separated).
    existing_trail: bool = False
    log_prefix: str = ""
    log_kms_key_arn: str = ""
    findings: str = ""


@dataclass(frozen=True)
class BucketEncryptionOutput(Model):
    """Guide step 2."""

    KEY: ClassVar[str] = "BucketEncryption"

    sse_algorithm: str
    kms_key_arn: str
    bucket_key_enabled: bool


@dataclass(frozen=True)
class TopicOutput(Model):
    """Guide step 3."""

    KEY: ClassVar[str] = "Topic"

    topic_arn: str
    # The key the topic is encrypted with ("" = the trail output's key) and whether the topic is a customer's
    # (an existing trail's: ExistingTopicArn, or the topic their bucket already notifies).
    kms_key_arn: str = ""
    customers: bool = False


@dataclass(frozen=True)
class KeyPolicyOutput(Model):
    """Guide step 4."""

    KEY: ClassVar[str] = "KeyPolicy"

    kms_key_arn: str
    statement_ids: list[str]
    topic_kms_key_arn: str = ""  # a customer's topic encrypted with another key: its policy got the S3 statement


@dataclass(frozen=True)
class QueueOutput(Model):
    """Guide step 5."""

    KEY: ClassVar[str] = "Queue"

    queue_arn: str
    queue_url: str


@dataclass(frozen=True)
class SubscriptionOutput(Model):
    """Guide step 6."""

    KEY: ClassVar[str] = "Subscription"

    subscription_arn: str


@dataclass(frozen=True)
class BucketNotificationOutput(Model):
    """Guide step 7."""

    KEY: ClassVar[str] = "BucketNotification"

    configuration_id: str
    customers: bool = False  # the customer's entry already sends the log files to the topic: none of ours added
    # Where a canary object raises one of our entries' events (an OU filter: the first member account's folder);
    # "" = the trail's log folder.
    canary_prefix: str = ""


@dataclass(frozen=True)
class RoleOutput(Model):
    """Guide steps 8 and 9: the Expel role's stack (and StackSet in Organizations mode)."""

    KEY: ClassVar[str] = "Role"

    stack_id: str
    status: RoleStatus  # IN_PROGRESS or COMPLETE (a failure raises)
    role_arn: str = ""
    stack_set_id: str = ""
    operation_id: str = ""  # the StackSet operation waited for, or the latest one once COMPLETE
    # While IN_PROGRESS: whether this run started that operation, and which differences its operations
    # were started for (after one SUCCEEDED, the same difference again is an error, never another operation).
    operation_ours: bool = False
    addressed: list[str] = field(default_factory=list)
    # Member accounts this run's operations failed within the failure tolerance: Account, Region, Reason.
    failed_accounts: list[dict[str, str]] = field(default_factory=list)
    # Single account: the drift-aware change set this run created to put the role back (status() executes it).
    change_set_id: str = ""


@dataclass(frozen=True)
class DeliveryOutput(Model):
    """Verification (not in the guide): a canary object travelled bucket -> topic -> queue."""

    KEY: ClassVar[str] = "Delivery"

    canary_key: str
    confirmed: bool
    attempts: int = 0  # checks made so far; the check gives up after a limit (DeliveryNotConfirmed)
    skipped: str = ""  # why no canary was sent (a customer's topic: their other subscribers would get it)


@dataclass(frozen=True)
class DeviceOutput(Model):
    """Guide step 10: the Workbench security device, or the manual-registration fallback."""

    KEY: ClassVar[str] = "Device"

    device_id: str
    status: DeviceStatus
    registration_url: str = ""


@dataclass(frozen=True)
class Removed(Model):
    """Teardown of guide steps 3 to 7: whether this stack's part was removed (False: none was there)."""

    removed: bool


@dataclass(frozen=True)
class TrailRemoval(Model):
    """Teardown of guide step 1, per resource."""

    trail: Removal
    bucket: Removal
    key: Removal
    access_log_bucket: Removal = Removal.ABSENT
    log_group: Removal = Removal.ABSENT


@dataclass(frozen=True)
class RoleRemoval(Model):
    """Teardown of guide steps 8 and 9, kept under ``$.Teardown.Role``: one look at the role stack (and the
    StackSet); the state machine waits and calls again until the status is DELETED or SKIPPED."""

    status: RoleStatus | None = None  # None before the first call
    checks: int = 0
    stack: RoleStatus | None = None
    stack_set: RoleStatus | None = None  # AWS Organizations mode only

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in super().to_dict().items() if value is not None}


@dataclass(frozen=True)
class Found(Model):
    """Teardown discovery's summary: which of the resources named in Config exist and are this stack's."""

    trail: bool
    bucket: bool
    key: bool
    topic: bool
    queue: bool


@dataclass(frozen=True)
class Discovery(Model):
    """Teardown discovery: the outputs the teardown steps need, in the shape the create path stores them
    (empty fields for what is absent or not ours), and what was found."""

    trail: TrailOutput
    topic: TopicOutput
    queue: QueueOutput
    found: Found


def replace(model: Model, **changes: Any) -> Any:
    return dataclasses.replace(model, **changes)
