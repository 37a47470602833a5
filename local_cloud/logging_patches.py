"""Where moto 5.2.5's CloudTrail logging settings and the log buckets' protection differ from AWS, made to
behave like AWS.

Used by ``local serve`` (through ``moto_patches.apply``) and by the in-process moto tests
(tests/conftest.py), so both see the same AWS.

Event selectors (CloudTrail API reference, PutEventSelectors / GetEventSelectors):
- A new trail logs read and write management events: GetEventSelectors answers one basic selector
  saying so (moto: none).
- A trail holds basic or advanced selectors, never both: putting one form replaces the other (moto kept
  the advanced ones under new basic ones).
- Basic selectors come back with every field (ReadWriteType, IncludeManagementEvents, DataResources,
  ExcludeManagementEventSources), defaults filled in.
- More than five basic selectors, or both forms in one request: InvalidEventSelectorsException.

S3 Object Lock (S3 API reference, GetObjectLockConfiguration): a default retention holds Days or Years, and
S3 answers only the one that is set (moto answered ``Years: 0`` beside ``Days``).

CloudTrail's delivery to CloudWatch Logs (CreateTrail / UpdateTrail; moto stored any two strings):
- a log group without a role, or a role without a log group: InvalidCloudWatchLogsRoleArnException /
  InvalidCloudWatchLogsLogGroupArnException;
- a log group ARN that is malformed or names no log group of the trail's account and region:
  InvalidCloudWatchLogsLogGroupArnException "Check the log group ARN: CloudTrail can't validate it.";
- a role that does not exist or whose trust policy does not let cloudtrail.amazonaws.com assume it for this
  trail (aws:SourceArn, aws:SourceAccount): InvalidCloudWatchLogsRoleArnException "Access denied. Check the
  trust relationships for your role.";
- a role whose policies do not allow logs:CreateLogStream and logs:PutLogEvents on the trail's stream in that
  group: InvalidCloudWatchLogsLogGroupArnException "Access denied. Check the permissions for your role.";
- UpdateTrail with both empty turns delivery off.

CloudWatch Logs encryption (CreateLogGroup with kmsKeyId; moto accepted any string): the key must exist, be
enabled, and its key policy must let ``logs.<region>.amazonaws.com`` generate data keys and decrypt with the
log group's ARN as encryption context, or AccessDeniedException "The specified KMS key does not exist or is
not allowed to be used with Arn '<log group ARN>'". AssociateKmsKey (which moto lacks) checks the key the same
way; it and DisassociateKmsKey answer ResourceNotFoundException for a group that does not exist.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from moto.core.exceptions import JsonRESTError

from local_cloud.once import once

MAX_BASIC_SELECTORS = 5
_DEFAULT_SELECTOR = {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [],
                     "ExcludeManagementEventSources": []}


class InvalidEventSelectorsException(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidEventSelectorsException", message)


def _basic(selector: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(_DEFAULT_SELECTOR), **copy.deepcopy(selector)}


def patch_event_selectors() -> None:
    from moto.cloudtrail.models import Trail

    original_init = Trail.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.event_selectors = [copy.deepcopy(_DEFAULT_SELECTOR)]

    def put_event_selectors(self: Any, event_selectors: list[dict[str, Any]] | None,
                            advanced_event_selectors: list[dict[str, Any]] | None) -> None:
        if event_selectors and advanced_event_selectors:
            raise InvalidEventSelectorsException(
                "You can use either EventSelectors or AdvancedEventSelectors in a PutEventSelectors request, "
                "but not both.")
        if event_selectors is not None and len(event_selectors) > MAX_BASIC_SELECTORS:
            raise InvalidEventSelectorsException(
                f"The number of event selectors ({len(event_selectors)}) exceeds the limit of "
                f"{MAX_BASIC_SELECTORS}.")
        if advanced_event_selectors:
            self.event_selectors, self.advanced_event_selectors = [], copy.deepcopy(advanced_event_selectors)
        else:
            self.event_selectors = [_basic(s) for s in event_selectors or []]
            self.advanced_event_selectors = []

    Trail.__init__ = __init__  # type: ignore[method-assign]
    Trail.put_event_selectors = put_event_selectors  # type: ignore[method-assign]


def patch_object_lock_retention() -> None:
    from moto.s3.models import S3Backend

    original = S3Backend.get_object_lock_configuration

    def get_object_lock_configuration(self: Any, bucket_name: str) -> tuple[bool, str | None, int | None, int | None]:
        enabled, mode, days, years = original(self, bucket_name)
        return enabled, mode, days or None, years or None

    S3Backend.get_object_lock_configuration = get_object_lock_configuration  # type: ignore[method-assign]


class _CloudTrailRefusal(JsonRESTError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


_ROLE_CODE = "InvalidCloudWatchLogsRoleArnException"
_GROUP_CODE = "InvalidCloudWatchLogsLogGroupArnException"
_LOG_GROUP_ARN = re.compile(r"arn:(?P<partition>[\w-]+):logs:(?P<region>[\w-]+):(?P<account>\d{12}):"
                            r"log-group:(?P<name>[\w./#-]+):\*")


def check_cloudwatch_logs_delivery(account: str, region: str, trail_name: str, group_arn: str, role_arn: str) -> None:
    """What CloudTrail checks before it accepts a CloudWatch Logs delivery (module docstring)."""
    from moto.iam.models import iam_backends
    from moto.logs.models import logs_backends

    from local_cloud.enforcement.credentials import trust_allows
    from local_cloud.enforcement.identity import role_identity
    from local_cloud.iam import Principal, Request, Values, evaluate

    if not group_arn and not role_arn:
        return
    if not role_arn:
        raise _CloudTrailRefusal(_ROLE_CODE, "You must specify a role ARN as well as a log group.")
    if not group_arn:
        raise _CloudTrailRefusal(_GROUP_CODE, "You must specify a log group as well as a role ARN.")
    match = _LOG_GROUP_ARN.fullmatch(group_arn)
    if (match is None or match["account"] != account or match["region"] != region
            or match["name"] not in logs_backends[account][region].groups):
        raise _CloudTrailRefusal(_GROUP_CODE, "Check the log group ARN: CloudTrail can't validate it.")
    partition = match["partition"]
    trail_arn = f"arn:{partition}:cloudtrail:{region}:{account}:trail/{trail_name}"
    trusted, _ = trust_allows(role_arn, "cloudtrail.amazonaws.com", account, trail_arn)
    if not trusted:
        raise _CloudTrailRefusal(_ROLE_CODE, "Access denied. Check the trust relationships for your role.")
    backend = iam_backends[account][partition]
    role = backend.get_role_by_arn(role_arn)
    identity = role_identity(Principal.session(role_arn, "CloudTrail"), role, backend)
    # CloudTrail names each stream <account>_CloudTrail_<region>.
    stream = (f"arn:{partition}:logs:{region}:{account}:log-group:{match['name']}:log-stream:"
              f"{account}_CloudTrail_{region}")
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        if not evaluate(identity, Request(action, stream, Values())).allowed:
            raise _CloudTrailRefusal(_GROUP_CODE, "Access denied. Check the permissions for your role.")


def patch_cloudwatch_logs_delivery() -> None:
    from moto.cloudtrail.models import CloudTrailBackend

    original_create, original_update = CloudTrailBackend.create_trail, CloudTrailBackend.update_trail

    def create_trail(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        names = ("cw_log_group_arn", "cw_role_arn")
        given = dict(zip(names, args[7:9], strict=False)) | {k: kwargs[k] for k in names if k in kwargs}
        check_cloudwatch_logs_delivery(self.account_id, self.region_name, name, given.get("cw_log_group_arn") or "",
                                       given.get("cw_role_arn") or "")
        return original_create(self, name, *args, **kwargs)

    def update_trail(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        trail = self.get_trail(name)
        group, role = kwargs.get("cw_log_group_arn"), kwargs.get("cw_role_arn")
        group = trail.cw_log_group_arn if group is None else group
        role = trail.cw_role_arn if role is None else role
        check_cloudwatch_logs_delivery(self.account_id, self.region_name, trail.trail_name, group or "", role or "")
        return original_update(self, name, *args, **kwargs)

    CloudTrailBackend.create_trail = create_trail  # type: ignore[method-assign]
    CloudTrailBackend.update_trail = update_trail  # type: ignore[method-assign]


class _LogsAccessDenied(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("AccessDeniedException", message)


def check_log_group_key(account: str, region: str, group_name: str, key_id: str) -> None:
    """What CloudWatch Logs checks before it encrypts a log group with a customer managed key."""
    from moto.kms.models import kms_backends
    from moto.utilities.utils import get_partition

    from local_cloud.iam import Principal, Values, resource_policy_allows

    partition = get_partition(region)
    group_arn = f"arn:{partition}:logs:{region}:{account}:log-group:{group_name}"
    refusal = _LogsAccessDenied(f"The specified KMS key does not exist or is not allowed to be used with Arn "
                                f"'{group_arn}'")
    try:
        key = kms_backends[account][region].describe_key(key_id)
    except Exception as exc:
        raise refusal from exc
    if key.key_state != "Enabled":
        raise refusal
    logs_service = Principal.of_service(f"logs.{region}.amazonaws.com")
    context = Values({"kms:encryptioncontext:aws:logs:arn": (group_arn,)})
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        if not resource_policy_allows(key.policy, logs_service, action, key.arn, context).allowed:
            raise refusal


def patch_log_group_encryption() -> None:
    from moto.logs.models import LogsBackend

    original = LogsBackend.create_log_group

    def create_log_group(self: Any, log_group_name: str, tags: dict[str, str], **kwargs: Any) -> Any:
        if kwargs.get("kmsKeyId"):
            check_log_group_key(self.account_id, self.region_name, log_group_name, str(kwargs["kmsKeyId"]))
        return original(self, log_group_name, tags, **kwargs)

    LogsBackend.create_log_group = create_log_group  # type: ignore[method-assign]


def add_kms_key_association() -> None:
    """AssociateKmsKey and DisassociateKmsKey, which moto lacks: a group that does not exist is
    ResourceNotFoundException; AssociateKmsKey checks the key as CreateLogGroup does; events already stored
    keep the key they were written with (nothing to emulate: moto stores them in clear)."""
    from moto.logs.exceptions import ResourceNotFoundException
    from moto.logs.responses import LogsResponse

    def group(response: Any) -> Any:
        found = response.logs_backend.groups.get(response._get_param("logGroupName"))
        if found is None:
            raise ResourceNotFoundException()
        return found

    def associate_kms_key(self: Any) -> str:
        found, key_id = group(self), str(self._get_param("kmsKeyId"))
        check_log_group_key(self.logs_backend.account_id, self.logs_backend.region_name, found.name, key_id)
        found.kms_key_id = key_id
        return ""

    def disassociate_kms_key(self: Any) -> str:
        group(self).kms_key_id = None
        return ""

    LogsResponse.associate_kms_key = associate_kms_key  # type: ignore[attr-defined]
    LogsResponse.disassociate_kms_key = disassociate_kms_key  # type: ignore[attr-defined]


@once
def apply() -> None:
    """Every patch of this module (idempotent)."""
    patch_event_selectors()
    patch_object_lock_retention()
    patch_cloudwatch_logs_delivery()
    patch_log_group_encryption()
    add_kms_key_association()
