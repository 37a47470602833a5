"""Guide step 1: create a new trail with a new S3 bucket and a new KMS key.

What the console's "Create trail" does, made explicit and idempotent: each resource is found first
(key by its alias, bucket by HeadBucket, trail by GetTrail) and only settings that differ are written,
so a second run makes no change. Policies are merged, never replaced: a customer's statements stay.

``remove`` is the stack-delete half: the trail goes, the bucket and key stay unless the person chose
otherwise, and nothing without this stack's ownership tag is touched.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from expel_onboarding.aws import cloudtrail, kms, kms_policy, organizations, s3
from expel_onboarding.drift import Converge, Mode, StepCheck, applied, run_check, statement_findings
from expel_onboarding.errors import TransientError
from expel_onboarding.models import Config, Removal, TrailOutput, TrailRemoval
from expel_onboarding.naming import bucket_arn, full_alias, owner_tags, trail_arn
from expel_onboarding.ownership import is_ours
from expel_onboarding.policies import add_missing_statements, event_selectors, missing_statements
from expel_onboarding.policies.bucket_policy import cloudtrail_bucket_statements
from expel_onboarding.policies.key_policy import cloudtrail_key_policy, cloudwatch_logs_key_statement
from expel_onboarding.policies.lifecycle import log_retention_rule
from expel_onboarding.steps import (
    existing,
    lifecycle_rules,
    private_bucket,
    step01_access_logs,
    step01_cloudwatch_logs,
    step01_existing_trail,
)

logger = Logger(child=True)

STEP = 1
# The longest wait KMS allows: a month in which a person can still cancel (logs stay readable).
KEY_DELETION_WINDOW_DAYS = 30
# Emptying the log bucket stops this long before the invocation ends: room for one more batch under
# boto3's retries, DeleteBucket and the key's removal.
EMPTYING_RESERVE_SECONDS = 30.0


def apply(config: Config) -> TrailOutput:
    if config.existing_trail_name:
        return step01_existing_trail.adopt(config)  # the customer's trail, bucket and key, left as they are
    run = Converge(STEP)
    return applied(run, converge(run, config), "a trail")


def check(config: Config) -> StepCheck:
    """Drift check: what ``apply`` would change, written nowhere."""
    if config.existing_trail_name:
        # The customer's trail is never changed, so nothing here is ours to repair: what the check reports is
        # a trail that can no longer serve Expel (logging stopped, one region, no write management events,
        # validation off, its bucket gone), each with the person's fix.
        return run_check(Converge(STEP, Mode.CHECK), lambda run: step01_existing_trail.read(config),
                         note=lambda: "an existing trail: compared with what Expel needs, never changed")
    return run_check(Converge(STEP, Mode.CHECK), lambda run: converge(run, config))


def converge(run: Converge, config: Config) -> TrailOutput | None:
    """The end state of guide step 1: the key, the bucket and the trail. None only when checking finds a
    part missing (its settings cannot be compared then)."""
    # Look everything up before writing anything: a name taken by someone else fails with nothing created.
    key = existing.key(config)
    bucket_exists = existing.bucket(config)
    existing.object_lock_choosable(config, bucket_exists)
    access_log_bucket_exists = existing.access_log_bucket(config) if config.access_logging else False
    trail = existing.trail(config)
    log_group = existing.log_group(config) if config.cloud_watch_logs_retention_days else None
    key_arn = ensure_key(run, config, key)
    if config.access_logging:  # the target first: S3 checks its policy when logging is turned on
        step01_access_logs.ensure_bucket(run, config, access_log_bucket_exists)
    bucket_ready = ensure_bucket(run, config, bucket_exists)
    if bucket_ready:
        step01_access_logs.ensure_logging(run, config)
    if key_arn is None or not bucket_ready:
        return None
    if config.cloud_watch_logs_retention_days:
        step01_cloudwatch_logs.ensure(run, config, key_arn, log_group)
    arn = ensure_trail(run, config, key_arn, trail)
    if arn is None:
        return None
    return TrailOutput(
        trail_arn=arn,
        bucket_name=config.bucket_name,
        bucket_arn=bucket_arn(config.partition, config.bucket_name),
        kms_key_arn=key_arn,
        kms_alias=full_alias(config.kms_alias),
    )


def ensure_key(run: Converge, config: Config, key: dict[str, Any] | None) -> str | None:
    """Symmetric key with rotation on and CloudTrail's key policy, reachable by the alias. Returns its ARN
    (None when checking finds no key)."""
    alias = full_alias(config.kms_alias)
    ours = cloudtrail_key_policy(config.partition, config.region, config.account_id, config.trail_name)
    if config.cloud_watch_logs_retention_days:
        ours = {**ours, "Statement": [*ours["Statement"], cloudwatch_logs_key_statement(
            config.partition, config.region, config.account_id, step01_cloudwatch_logs.group_name(config))]}
    if key is None:
        key = run.change(run.finding(
            alias, "KMS key", None, "a symmetric encryption key with rotation on, behind this alias",
            "run the onboarding again: it creates a new key and alias (the trail, bucket, topic and queue then "
            "use the new key)"), lambda: _create_key(config, ours))
        if key is None:
            return None
    else:
        # Step 4 appends to this policy, and people harden keys (the root statement first): put back only
        # a CloudTrail statement that is missing, never rewrite one that is there.
        current = kms_policy.key_policy(str(key["Arn"]), config.region)
        missing = missing_statements(current, ours["Statement"])
        if missing:
            key_arn = str(key["Arn"])
            run.change(statement_findings(
                STEP, str(key["Arn"]), "key policy", current, [(s["Sid"], None, s) for s in missing],
                f"add CloudTrail's statement {{sid!r}} back to the policy of key {alias} (guide step 1 created "
                "the key with it)"),
                lambda: kms_policy.put_key_policy(key_arn, add_missing_statements(current, ours["Statement"]),
                                                  config.region))
    if not kms.rotation_enabled(key["KeyId"], config.region):
        key_id = key["KeyId"]
        run.change(run.finding(str(key["Arn"]), "automatic key rotation", "disabled", "enabled",
                               f"aws kms enable-key-rotation --key-id {key_id}"),
                   lambda: kms.enable_rotation(key_id, config.region))
    return str(key["Arn"])


def _create_alias_or_discard(alias: str, key: dict[str, Any], region: str) -> bool:
    """Point the alias at the new key. If that fails (throttled past the SDK's retries, say), schedule the
    key's deletion before the step fails: only the alias finds it, so the retry would make a second one
    and leave this one enabled and billed."""
    try:
        return kms.create_alias(alias, key["KeyId"], region)
    except Exception:
        try:
            kms.schedule_deletion(key["KeyId"], region)
            logger.warning("Scheduled the deletion of a key whose alias could not be created",
                           extra={"key_arn": key["Arn"], "alias": alias})
        except Exception:
            logger.exception("Could not schedule the deletion of a key without alias; delete it by hand",
                             extra={"key_arn": key["Arn"]})
        raise


def _create_key(config: Config, policy: dict[str, Any]) -> dict[str, Any]:
    alias = full_alias(config.kms_alias)
    key = kms.create_key(
        f"Encrypts CloudTrail logs of trail {config.trail_name} for Expel (stack {config.stack_name})",
        policy, owner_tags(config.stack_name), config.region)
    logger.info("Created KMS key", extra={"key_arn": key["Arn"]})
    if not _create_alias_or_discard(alias, key, config.region):
        # A concurrent run created the alias first: keep its key, do not leave a second one behind.
        kms.schedule_deletion(key["KeyId"], config.region)
        found = existing.key(config)
        if found is None:
            raise TransientError(f"KMS alias {alias} was taken by a concurrent run and is gone again; retrying")
        return found
    logger.info("Created KMS alias", extra={"alias": alias})
    return key


def ensure_bucket(run: Converge, config: Config, exists: bool) -> bool:
    """Private, versioned, ACL-less bucket whose policy lets only our trail write (merged into any policy),
    keeping logs as long as the person chose (lifecycle rule, Object Lock). False when checking finds no
    bucket."""
    days = config.object_lock_retention_days
    if not private_bucket.ensure(run, config, config.bucket_name, exists, parameter="BucketName",
                                 object_lock=days > 0):
        return False
    if exists or days:
        _ensure_object_lock(run, config)
    lifecycle_rules.ensure_rule(run, config.bucket_name, config.account_id,
                                log_retention_rule(config.log_retention_days))
    _ensure_bucket_policy(run, config)
    return True


def _ensure_object_lock(run: Converge, config: Config) -> None:
    """Default retention in governance mode for ObjectLockRetentionDays (none when 0) on a bucket that has
    Object Lock; a bucket without it gets it only at creation (``existing.object_lock_choosable``)."""
    bucket, owner, days = config.bucket_name, config.account_id, config.object_lock_retention_days
    lock = s3.object_lock(bucket, owner)
    if not lock.enabled:
        existing.object_lock_choosable(config, bucket_exists=True)  # raises when Object Lock was asked for
        return
    if (lock.mode, lock.days) != ((s3.OBJECT_LOCK_MODE, days) if days else ("", 0)):
        run.change(run.finding(
            f"bucket {bucket}", "default Object Lock retention",
            f"{lock.mode} {lock.days} days" if lock.mode else "none",
            f"{s3.OBJECT_LOCK_MODE} {days} days" if days else "none",
            f"in the S3 console, bucket {bucket} > Properties > Object Lock > Default retention: "
            + (f"{s3.OBJECT_LOCK_MODE.title()} mode, {days} days (ObjectLockRetentionDays)" if days else "off")),
            lambda: s3.put_object_lock_retention(bucket, days, owner))


def _ensure_bucket_policy(run: Converge, config: Config) -> None:
    organization_id = organizations.describe_organization()["Id"] if config.organization_mode else None
    statements = cloudtrail_bucket_statements(
        config.partition, config.bucket_name, config.account_id,
        trail_arn(config.partition, config.region, config.account_id, config.trail_name),
        organization_id=organization_id)
    private_bucket.ensure_policy_statements(run, config.bucket_name, config.account_id, statements,
                                            "CloudTrail writes the logs with it")


def trail_settings(config: Config, key_arn: str, delivery: tuple[str, str] = ("", "")) -> cloudtrail.TrailSettings:
    """CreateTrail/UpdateTrail parameters: the guide's defaults, spelled out; ``delivery`` is the CloudWatch
    Logs (log group ARN, role ARN), empty for none."""
    return {
        "Name": config.trail_name,
        "S3BucketName": config.bucket_name,
        "IsMultiRegionTrail": True,
        "IncludeGlobalServiceEvents": True,
        "EnableLogFileValidation": True,
        "KmsKeyId": key_arn,
        "IsOrganizationTrail": config.organization_mode,
        "CloudWatchLogsLogGroupArn": delivery[0],
        "CloudWatchLogsRoleArn": delivery[1],
    }


def _current_settings(trail: dict[str, Any]) -> dict[str, object]:
    """GetTrail's answer in CreateTrail's vocabulary, so the two compare directly."""
    return {
        "Name": trail.get("Name"),
        "S3BucketName": trail.get("S3BucketName"),
        "IsMultiRegionTrail": bool(trail.get("IsMultiRegionTrail")),
        "IncludeGlobalServiceEvents": bool(trail.get("IncludeGlobalServiceEvents")),
        "EnableLogFileValidation": bool(trail.get("LogFileValidationEnabled")),
        "KmsKeyId": trail.get("KmsKeyId"),
        "IsOrganizationTrail": bool(trail.get("IsOrganizationTrail")),
        "CloudWatchLogsLogGroupArn": trail.get("CloudWatchLogsLogGroupArn") or "",
        "CloudWatchLogsRoleArn": trail.get("CloudWatchLogsRoleArn") or "",
    }


def ensure_trail(run: Converge, config: Config, key_arn: str, trail: dict[str, Any] | None) -> str | None:
    """Multi-region, validated, KMS-encrypted trail into our bucket, logging every management event.
    Returns its ARN (None when checking finds no trail)."""
    current = _current_settings(trail) if trail is not None else {}
    delivery = step01_cloudwatch_logs.trail_delivery(config, str(current.get("CloudWatchLogsLogGroupArn", "")),
                                                     str(current.get("CloudWatchLogsRoleArn", "")))
    wanted = trail_settings(config, key_arn, delivery)
    name = config.trail_name
    if trail is None:
        arn = run.change(run.finding(
            f"trail {name}", "trail", None, "a multi-region trail, log file validation on, KMS-encrypted, logging",
            "run the onboarding again: it creates the trail"),
            lambda: _create_trail(config, wanted))
        if arn is None:
            return None
    else:
        arn = str(trail["TrailARN"])
        if current != wanted:
            run.change([run.finding(arn, setting, current.get(setting), value,
                                    f"in the CloudTrail console, trail {name} > Edit: set {setting} back "
                                    "(guide step 1's defaults)")
                        for setting, value in wanted.items() if current.get(setting) != value],
                       lambda: cloudtrail.update_trail(wanted, config.region))
        _ensure_event_selectors(run, config, arn)
    if not cloudtrail.is_logging(name, config.region):
        run.change(run.finding(arn, "logging (IsLogging)", "stopped", "logging",
                               f"aws cloudtrail start-logging --name {name}, or Start logging in the CloudTrail "
                               "console"),
                   lambda: cloudtrail.start_logging(name, config.region))
    return arn


def _create_trail(config: Config, wanted: cloudtrail.TrailSettings) -> str:
    arn = str(cloudtrail.create_trail(wanted, owner_tags(config.stack_name), config.region)["TrailARN"])
    logger.info("Created trail", extra={"trail_arn": arn})
    # Set, not left to the API's default: what the trail logs is part of what we vouch for.
    cloudtrail.put_event_selectors(config.trail_name, event_selectors.EventSelectors(
        basic=[event_selectors.MANAGEMENT_EVENTS], advanced=[]), config.region)
    return arn


def _ensure_event_selectors(run: Converge, config: Config, arn: str) -> None:
    """Put back read and write management events without exclusions, keeping any data-event selector."""
    current = cloudtrail.event_selectors(config.trail_name, config.region)
    wanted = event_selectors.converge(current)
    if wanted is not None:
        run.change(run.finding(
            arn, "event selectors", current.advanced or current.basic, wanted.advanced or wanted.basic,
            f"in the CloudTrail console, trail {config.trail_name} > Management events: Read and Write, no "
            "exclusions"),
            lambda: cloudtrail.put_event_selectors(config.trail_name, wanted, config.region))


def remove(config: Config, trail: TrailOutput, deadline: float | None = None) -> TrailRemoval:
    """Stack delete, after every other step's teardown: delete our trail; empty and delete our bucket
    only when KeepLogBucket is false; schedule our key's deletion (and drop our alias) only when
    ScheduleKeyDeletion is true. ``trail`` is what teardown discovery found (empty fields = none of
    ours). Ownership is checked again here, right before each delete. Already gone counts as done.

    ``deadline`` is when the invocation ends, on the ``time.monotonic()`` clock (None: no limit). A
    bucket with more versions than fit before it raises StillInProgress after a part; the state
    machine calls again and the next call carries on (the trail, already gone, then reads ABSENT)."""
    if config.existing_trail_name:
        # The trail, its bucket and its key are the customer's. A key of ours encrypted only the topic and
        # queue, both gone by now: it is scheduled for deletion whatever ScheduleKeyDeletion says.
        return TrailRemoval(trail=Removal.NOT_OURS, bucket=Removal.NOT_OURS,
                            key=_remove_key(config, trail, schedule=True))
    stop_at = None if deadline is None else deadline - EMPTYING_RESERVE_SECONDS
    removed_trail = _remove_trail(config)
    bucket = _remove_bucket(config, trail, stop_at)
    access_log_bucket = step01_access_logs.remove(config, bucket, stop_at)
    log_group = step01_cloudwatch_logs.remove(config, keep=bucket is not Removal.DELETED)
    key = _remove_key(config, trail, schedule=config.schedule_key_deletion)
    if key is Removal.KEPT:
        step01_cloudwatch_logs.remove_key_statement(config, trail.kms_key_arn, log_group)
    return TrailRemoval(trail=removed_trail, bucket=bucket, key=key,
                        access_log_bucket=access_log_bucket, log_group=log_group)


def _remove_trail(config: Config) -> Removal:
    found = cloudtrail.get_trail(config.trail_name, config.region)
    if found is None:
        return Removal.ABSENT
    arn = str(found["TrailARN"])
    # A trail of that name from another account (an organization trail) or without our tag is not ours.
    if (arn.split(":")[4] != config.account_id
            or not is_ours(cloudtrail.trail_tags(arn, config.region), config.stack_name)):
        logger.warning("Leaving a trail this stack did not create", extra={"trail_arn": arn})
        return Removal.NOT_OURS
    if not cloudtrail.delete_trail(config.trail_name, config.region):
        return Removal.ABSENT
    logger.info("Deleted the trail", extra={"trail_arn": arn})
    return Removal.DELETED


def _remove_bucket(config: Config, trail: TrailOutput, stop_at: float | None) -> Removal:
    bucket = config.bucket_name
    if config.keep_log_bucket:
        logger.info("Keeping the log bucket and its logs (KeepLogBucket)", extra={"bucket": bucket})
        return Removal.KEPT
    head = s3.head_bucket(bucket, config.account_id)
    if not head.exists:
        return Removal.ABSENT
    if not head.owned or not trail.bucket_name or not is_ours(s3.tags(bucket, config.account_id), config.stack_name):
        logger.warning("Leaving a bucket this stack did not create", extra={"bucket": bucket})
        return Removal.NOT_OURS
    if s3.object_lock(bucket, config.account_id).enabled:
        # Locked versions cannot be deleted before their retention ends (validation refuses KeepLogBucket
        # false with ObjectLockRetentionDays, but a bucket can outlive the setting that chose Object Lock).
        logger.warning("Keeping the log bucket: it has S3 Object Lock. Delete it once its retention has ended",
                       extra={"bucket": bucket})
        return Removal.KEPT
    count = s3.delete_bucket_with_all_versions(bucket, config.account_id, stop_at)
    logger.info("Deleted the log bucket and every object version in it (KeepLogBucket is false)",
                extra={"bucket": bucket, "object_versions": count})
    return Removal.DELETED


def _remove_key(config: Config, trail: TrailOutput, *, schedule: bool) -> Removal:
    if not trail.kms_key_arn:
        return Removal.ABSENT  # discovery found no key of ours behind the alias
    if not schedule:
        logger.info("Keeping the KMS key and its alias (ScheduleKeyDeletion is false)",
                    extra={"kms_key": trail.kms_key_arn})
        return Removal.KEPT
    alias = full_alias(config.kms_alias)
    key = kms.describe_alias_target(alias, config.region)
    if key is None or key["Arn"] != trail.kms_key_arn:
        return Removal.ABSENT  # the alias was deleted (or moved) since discovery: nothing of ours behind it
    if not is_ours(kms.key_tags(key["KeyId"], config.region), config.stack_name):
        logger.warning("Leaving a KMS key this stack did not create", extra={"kms_key": key["Arn"]})
        return Removal.NOT_OURS
    # Schedule first, alias second: a run cut off in between still finds the key by its alias next time.
    if key.get("KeyState") != "PendingDeletion":
        when = kms.schedule_deletion(key["KeyId"], config.region, KEY_DELETION_WINDOW_DAYS)
        logger.warning(
            f"Scheduled the KMS key for deletion in {KEY_DELETION_WINDOW_DAYS} days (ScheduleKeyDeletion). "
            "Logs encrypted with it become unreadable then; to keep it, run "
            f"'aws kms cancel-key-deletion --key-id {key['KeyId']}' before that date",
            extra={"kms_key": key["Arn"], "deletion_date": when})
    if kms.delete_alias(alias, config.region):
        logger.info("Deleted the KMS alias", extra={"alias": alias})
    return Removal.SCHEDULED
