"""Guide step 1, hardened: the trail's events in CloudWatch Logs (CIS 3.4, Security Hub CloudTrail.5), where
the CIS section 4 metric filters and alarms read them.

Optional (``CloudWatchLogsRetentionDays``, 0 = off). When on:
- a log group of the onboarding's (``naming.cloudwatch_log_group_name``), encrypted with the onboarding's key
  (the key policy lets ``logs.<region>.amazonaws.com`` use it for this group only, merged in by step 1),
  keeping events for the chosen days, tagged as ours;
- the role CloudTrail writes with is made by the template (``CloudTrailLogsRole``: trusted by CloudTrail for
  our trail only, allowed to create streams and put events in this group only), so no Lambda can create IAM
  roles; the trail is pointed at both by ``step01_trail``.

Turning it off points the trail away from our group and keeps the group with the events it holds; delivery a
person set up to a group of their own is kept as it is. Delete keeps the group with the log bucket; when the
group goes and the key stays, the key policy loses the statement added for the group.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from expel_onboarding.aws import kms_policy, logs
from expel_onboarding.drift import Converge
from expel_onboarding.models import Config, Removal
from expel_onboarding.naming import cloudwatch_log_group_name, log_group_arn, owner_tags
from expel_onboarding.ownership import is_ours
from expel_onboarding.policies import remove_statements
from expel_onboarding.policies.key_policy import CLOUDWATCH_LOGS_SID

logger = Logger(child=True)


def group_name(config: Config) -> str:
    return cloudwatch_log_group_name(config.account_id, config.trail_name)


def group_arn(config: Config) -> str:
    """The trail's CloudWatchLogsLogGroupArn for our group."""
    return log_group_arn(config.partition, config.region, config.account_id, group_name(config))


def ensure(run: Converge, config: Config, key_arn: str, found: logs.LogGroup | None) -> None:
    """The log group, encrypted with our key, keeping events ``cloud_watch_logs_retention_days``. Call after
    the key policy holds the logs statement: CloudWatch Logs checks it when the group is created."""
    name, days = group_name(config), config.cloud_watch_logs_retention_days
    resource = f"log group {name}"
    if found is None:
        run.change(run.finding(resource, "log group", None,
                               "the trail's log group, encrypted with the onboarding's key",
                               "run the onboarding again: it creates the log group (the events in it before are gone)"),
                   lambda: _create(config, name, key_arn))
        if run.checking:
            return
        found = logs.LogGroup(name=name, arn="", kms_key_id=key_arn, retention_days=0)
    elif found.kms_key_id != key_arn:
        # Our group (``existing.log_group`` refused any other), re-keyed or left unencrypted by someone: the
        # setting the onboarding vouches for converges like every other. Events already stored keep their key.
        run.change(run.finding(resource, "KMS key", found.kms_key_id or "none", key_arn,
                               f"aws logs associate-kms-key --log-group-name {name} --kms-key-id {key_arn}"),
                   lambda: logs.associate_kms_key(name, key_arn, config.region))
    if found.retention_days != days:
        run.change(run.finding(resource, "retention (days)", str(found.retention_days or "never expire"), str(days),
                               f"aws logs put-retention-policy --log-group-name {name} --retention-in-days {days} "
                               "(CloudWatchLogsRetentionDays)"),
                   lambda: logs.put_retention(name, days, config.region))


def _create(config: Config, name: str, key_arn: str) -> None:
    logs.create_log_group(name, key_arn, owner_tags(config.stack_name), config.region)
    logger.info("Created the trail's CloudWatch Logs log group", extra={"log_group": name})


def trail_delivery(config: Config, current_group_arn: str, current_role_arn: str) -> tuple[str, str]:
    """The trail's (CloudWatchLogsLogGroupArn, CloudWatchLogsRoleArn): ours when delivery is on; when off,
    none instead of ours, and a person's own delivery kept as it is."""
    if config.cloud_watch_logs_retention_days:
        return group_arn(config), config.cloud_watch_logs_role_arn
    if current_group_arn == group_arn(config):
        return "", ""
    return current_group_arn, current_role_arn


def remove(config: Config, keep: bool) -> Removal:
    """Stack delete: the log group goes only with the log bucket (``keep`` False) and only if ours. Without
    delivery the onboarding does not look (a group left by turning delivery off is kept, as documented)."""
    if not config.cloud_watch_logs_retention_days:
        return Removal.ABSENT
    name = group_name(config)
    found = logs.log_group(name, config.region)
    if found is None:
        return Removal.ABSENT
    if not is_ours(logs.tags(found.arn, config.region), config.stack_name):
        logger.warning("Leaving a log group this stack did not create", extra={"log_group": name})
        return Removal.NOT_OURS
    if keep:
        logger.info("Keeping the trail's log group and its events, as the log bucket is kept",
                    extra={"log_group": name})
        return Removal.KEPT
    logs.delete_log_group(name, config.region)
    logger.info("Deleted the trail's log group (KeepLogBucket is false)", extra={"log_group": name})
    return Removal.DELETED


def remove_key_statement(config: Config, key_arn: str, log_group: Removal) -> bool:
    """Stack delete, the key kept: take the logs statement step 1 added out of our key's policy once the
    group it served is no longer ours to keep (deleted, gone, or someone else's). True when the policy was
    written; a key that is gone or pending deletion needs nothing."""
    if not config.cloud_watch_logs_retention_days or log_group is Removal.KEPT or not key_arn:
        return False
    current = kms_policy.key_policy_if_usable(key_arn, config.region)
    if current is None:
        return False
    remaining = remove_statements(current, [CLOUDWATCH_LOGS_SID])
    if remaining == current:
        return False
    kms_policy.put_key_policy(key_arn, remaining, config.region)
    logger.info("Removed the CloudWatch Logs statement from the kept key's policy",
                extra={"kms_key": key_arn, "sid": CLOUDWATCH_LOGS_SID})
    return True
