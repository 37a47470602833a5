"""What CloudTrail checks before it accepts a bucket and a key for a trail (moto accepts any).

CreateTrail, UpdateTrail and StartLogging test, as ``cloudtrail.amazonaws.com`` and with the request
context CloudTrail's own calls carry (``aws:SourceArn`` = the trail's ARN, ``aws:SourceAccount``, TLS,
``s3:x-amz-acl`` = ``bucket-owner-full-control``, SSE-KMS with the trail's key), that:

- the bucket policy lets it call ``s3:GetBucketAcl`` on the bucket and ``s3:PutObject`` on the log and
  digest files it writes under ``[<S3KeyPrefix>/]AWSLogs/<account>/`` (an organization trail also under
  ``AWSLogs/<organization id>/``), else ``InsufficientS3BucketPolicyException`` "Incorrect S3 bucket
  policy is detected for bucket: <bucket>";
- with a ``KmsKeyId``: the key exists in the trail's region (else ``KmsKeyNotFoundException``) and its key
  policy lets it call ``kms:GenerateDataKey`` with the trail's ARN as encryption context
  (``kms:EncryptionContext:aws:cloudtrail:arn``), else ``InsufficientEncryptionPolicyException``
  "Insufficient permissions to access S3 bucket <bucket> or KMS key <key ARN>.".

Nothing is stored when a check fails. The policy questions are the IAM evaluator's
(``local_cloud.iam.resource_policy_allows``), so statement conditions are evaluated as IAM does.
The same checks run before each log file delivery (``delivery_refusal``): a policy changed after the
trail was created stops delivery, and GetTrailStatus shows ``LatestDeliveryError`` as on AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moto.core.exceptions import JsonRESTError

from local_cloud.once import once

SERVICE = "cloudtrail.amazonaws.com"
BUCKET_POLICY = "InsufficientS3BucketPolicyException"
ENCRYPTION_POLICY = "InsufficientEncryptionPolicyException"
KEY_NOT_FOUND = "KmsKeyNotFoundException"


class CloudTrailRefusal(JsonRESTError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


@dataclass(frozen=True)
class TrailTarget:
    """Where a trail writes: what the checks need from CreateTrail's parameters or a stored trail."""

    account: str
    region: str
    partition: str
    trail_name: str
    bucket: str
    prefix: str
    kms_key_id: str
    organization_trail: bool
    log_validation: bool

    @property
    def trail_arn(self) -> str:
        return f"arn:{self.partition}:cloudtrail:{self.region}:{self.account}:trail/{self.trail_name}"

    @classmethod
    def of(cls, trail: Any) -> TrailTarget:
        return cls(trail.account_id, trail.region_name, trail.partition, trail.trail_name, trail.bucket_name,
                   trail.s3_key_prefix or "", trail.kms_key_id or "", bool(trail.is_org_trail),
                   bool(trail.log_validation))


def _organization_id(account: str) -> str | None:
    from local_cloud.cloudtrail_logs import _organization

    backend = _organization(account)
    return str(backend.org.id) if backend is not None else None


def log_keys(target: TrailTarget) -> list[str]:
    """A log file key (and a digest key with validation on) in each place the trail writes to."""
    roots = [f"AWSLogs/{target.account}"]
    organization = _organization_id(target.account) if target.organization_trail else None
    if organization:
        roots.append(f"AWSLogs/{organization}/{target.account}")
    prefix = f"{target.prefix}/" if target.prefix else ""
    kinds = ["CloudTrail", "CloudTrail-Digest"] if target.log_validation else ["CloudTrail"]
    return [f"{prefix}{root}/{kind}/{target.region}/2026/01/01/{target.account}_{kind}_{target.region}_probe.json.gz"
            for root in roots for kind in kinds]


def _context(target: TrailTarget, extra: dict[str, tuple[str, ...]] | None = None) -> Any:
    from local_cloud.iam import Values

    return Values({
        "aws:sourcearn": (target.trail_arn,),
        "aws:sourceaccount": (target.account,),
        "aws:securetransport": ("true",),
        "aws:principalisawsservice": ("true",),
        "aws:principalservicename": (SERVICE,),
        **(extra or {}),
    })


def key_arn(target: TrailTarget) -> str | None:
    """The ARN of the trail's key in the trail's region (by id, ARN or alias), None when there is none."""
    from moto.kms.models import kms_backends

    if target.kms_key_id.startswith("arn:") and target.kms_key_id.split(":")[3] != target.region:
        return None
    try:
        return str(kms_backends[target.account][target.region].describe_key(target.kms_key_id).arn)
    except Exception:
        return None


def bucket_refusal(target: TrailTarget, kms_arn: str | None, bucket: Any) -> bool:
    """True when the bucket policy does not let CloudTrail check the ACL and write every file it writes."""
    from local_cloud.iam import Principal, resource_policy_allows

    policy = bucket.policy.decode() if isinstance(bucket.policy, bytes) else bucket.policy
    if not policy:
        return True
    cloudtrail = Principal.of_service(SERVICE)
    bucket_arn = f"arn:{target.partition}:s3:::{target.bucket}"
    if not resource_policy_allows(policy, cloudtrail, "s3:GetBucketAcl", bucket_arn, _context(target)).allowed:
        return True
    encryption = ({"s3:x-amz-server-side-encryption": ("aws:kms",),
                   "s3:x-amz-server-side-encryption-aws-kms-key-id": (kms_arn,)} if kms_arn else {})
    put = _context(target, {"s3:x-amz-acl": ("bucket-owner-full-control",), **encryption})
    return not all(resource_policy_allows(policy, cloudtrail, "s3:PutObject", f"{bucket_arn}/{key}", put).allowed
                   for key in log_keys(target))


def key_refusal(target: TrailTarget, kms_arn: str) -> bool:
    """True when the key policy does not let CloudTrail generate data keys for this trail's log files."""
    from moto.kms.models import kms_backends

    from local_cloud.iam import Principal, resource_policy_allows

    key = kms_backends[target.account][target.region].describe_key(kms_arn)
    context = _context(target, {"kms:encryptioncontext:aws:cloudtrail:arn": (target.trail_arn,),
                                "kms:encryptioncontextkeys": ("aws:cloudtrail:arn",)})
    return not resource_policy_allows(key.policy, Principal.of_service(SERVICE), "kms:GenerateDataKey",
                                      kms_arn, context).allowed


def check(target: TrailTarget) -> None:
    """Raise CloudTrail's refusal when it could not write this trail's files (module docstring)."""
    from moto.s3.models import s3_backends

    try:
        bucket = s3_backends[target.account][target.partition].get_bucket(target.bucket)
    except Exception:
        return  # moto's own check answers S3BucketDoesNotExistException
    kms_arn = None
    if target.kms_key_id:
        kms_arn = key_arn(target)
        if kms_arn is None:
            raise CloudTrailRefusal(KEY_NOT_FOUND, f"KMS key {target.kms_key_id} does not exist, or is not "
                                                   f"in the same Region ({target.region}) as the trail.")
    if bucket_refusal(target, kms_arn, bucket):
        raise CloudTrailRefusal(BUCKET_POLICY, f"Incorrect S3 bucket policy is detected for bucket: {target.bucket}")
    if kms_arn and key_refusal(target, kms_arn):
        raise CloudTrailRefusal(ENCRYPTION_POLICY, f"Insufficient permissions to access S3 bucket {target.bucket} "
                                                   f"or KMS key {kms_arn}.")


def delivery_refusal(trail: Any, bucket: Any, key: str, kms_key: str | None) -> str | None:
    """For ``cloudtrail_logs.Delivery``: the error GetTrailStatus shows when this delivery is refused."""
    target = TrailTarget.of(trail)
    if bucket_refusal(target, kms_key, bucket):
        return "AccessDenied"
    if kms_key and key_refusal(target, kms_key):
        return ENCRYPTION_POLICY
    return None


@once
def apply() -> None:
    """The checks in moto's CreateTrail, UpdateTrail and StartLogging (idempotent)."""
    from moto.cloudtrail.models import CloudTrailBackend
    from moto.utilities.utils import get_partition

    original_create = CloudTrailBackend.create_trail
    original_update = CloudTrailBackend.update_trail
    original_start = CloudTrailBackend.start_logging

    def create_trail(self: Any, name: str, bucket_name: str, s3_key_prefix: str, sns_topic_name: str,
                     is_global: bool, is_multi_region: bool, log_validation: bool, is_org_trail: bool,
                     *args: Any, **kwargs: Any) -> Any:
        kms_key_id = args[2] if len(args) > 2 else kwargs.get("kms_key_id")
        check(TrailTarget(self.account_id, self.region_name, get_partition(self.region_name), name,
                          bucket_name or "", s3_key_prefix or "", kms_key_id or "", bool(is_org_trail),
                          bool(log_validation)))
        return original_create(self, name, bucket_name, s3_key_prefix, sns_topic_name, is_global, is_multi_region,
                               log_validation, is_org_trail, *args, **kwargs)

    def update_trail(self: Any, name: str, **kwargs: Any) -> Any:
        trail = self.get_trail(name)
        current = TrailTarget.of(trail)

        def given(field: str, now: Any) -> Any:
            return now if kwargs.get(field) is None else kwargs[field]

        check(TrailTarget(current.account, current.region, current.partition, current.trail_name,
                          given("s3_bucket_name", current.bucket), given("s3_key_prefix", current.prefix),
                          given("kms_key_id", current.kms_key_id),
                          bool(given("is_organization_trail", current.organization_trail)),
                          bool(given("enable_log_file_validation", current.log_validation))))
        return original_update(self, name=name, **kwargs)

    def start_logging(self: Any, name: str) -> None:
        check(TrailTarget.of(self.get_trail(name)))
        original_start(self, name)

    CloudTrailBackend.create_trail = create_trail  # type: ignore[method-assign]
    CloudTrailBackend.update_trail = update_trail  # type: ignore[method-assign]
    CloudTrailBackend.start_logging = start_logging  # type: ignore[method-assign]
