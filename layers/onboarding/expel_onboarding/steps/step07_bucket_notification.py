"""Guide step 7: the bucket notifies the topic of every new object ("All object create events").

S3's PutBucketNotificationConfiguration replaces the bucket's whole configuration, so we read it,
merge our one entry in and write it back only when ours is missing or differs: other teams'
notifications on the bucket survive (terraform-provider-aws #501 is what happens otherwise).

An existing trail's bucket: our entry (its Id names this stack) is filtered to the trail's log folder,
and when an entry of the customer's already sends every log file to the topic step 3 subscribed Expel's
queue to, nothing is added at all. With an OU filter (``LogFilterOrganizationalUnitId``) our entries are one
per member account of the OU, each for that account's folder: read from Organizations on every run, so an
account that joined the OU gets its entry and one that left loses it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from expel_onboarding.aws import s3
from expel_onboarding.drift import Converge, Mode, StepCheck, not_ready, run_check
from expel_onboarding.errors import OnboardingError
from expel_onboarding.models import BucketNotificationOutput, Config, TopicOutput, TrailOutput
from expel_onboarding.policies.notification import (
    NOTIFICATION_ID,
    account_prefixes,
    choose_destination,
    current_entries,
    entry_differences,
    key_filter,
    merge_entries,
    merge_notification_configuration,
    notification_id,
    notification_present,
    overlapping,
    remove_notification,
    wanted_entries,
    wanted_entry,
)
from expel_onboarding.steps import step01_existing_trail

logger = Logger(child=True)

STEP = 7


def apply(config: Config, trail: TrailOutput, topic: TopicOutput) -> BucketNotificationOutput:
    return converge(Converge(STEP), config, trail, topic)


def check(config: Config, trail: TrailOutput, topic: TopicOutput) -> StepCheck:
    """Drift check: what ``apply`` would change, written nowhere."""
    if unready := not_ready(STEP, [("the bucket", trail.bucket_name, 1), ("the topic", topic.topic_arn, 3)]):
        return unready
    if trail.existing_trail and not trail.log_prefix:
        return StepCheck.not_checked(STEP, "the existing trail's log folder could not be read (guide step 1)")
    return run_check(Converge(STEP, Mode.CHECK), lambda run: converge(run, config, trail, topic))


def converge(run: Converge, config: Config, trail: TrailOutput, topic: TopicOutput) -> BucketNotificationOutput:
    """The end state: our entry (every object-created event to the topic) among the bucket's notifications,
    every other entry as it is."""
    bucket = trail.bucket_name
    current = s3.notification_configuration(bucket, config.account_id)
    configuration_id, prefix = _our_entry(config, trail)
    if trail.existing_trail:
        accounts = step01_existing_trail.filter_accounts(config, prefix)
        chosen = choose_destination(current, prefix, configuration_id, config.existing_topic_arn,
                                    None if accounts is None else account_prefixes(prefix, accounts))
        if chosen.entry_id:
            if chosen.topic_arn != topic.topic_arn:
                raise OnboardingError(
                    f"Step 7: bucket {bucket}'s notification {chosen.entry_id} now sends the trail's log files to "
                    f"{chosen.topic_arn}, not to {topic.topic_arn} as when step 3 ran: the bucket's notifications "
                    "changed during the onboarding. Fix: run the onboarding again")
            logger.info("The bucket already sends the log files to the topic; no entry of ours is needed",
                        extra={"bucket": bucket, "entry": chosen.entry_id, "topic": topic.topic_arn})
            return BucketNotificationOutput(configuration_id=chosen.entry_id, customers=True)
        return _converge_entries(run, config, trail, topic, current, accounts)
    if not notification_present(current, topic.topic_arn, configuration_id, prefix=prefix):
        _refuse_overlap(bucket, current)
        merged = merge_notification_configuration(current, topic.topic_arn, configuration_id, prefix=prefix)
        there = current_entries(current, configuration_id)
        run.change(run.finding(
            f"bucket {bucket}", f"event notification {configuration_id!r}",
            there[0] if len(there) == 1 else there or None,
            wanted_entry(topic.topic_arn, configuration_id, prefix=prefix),
            f"in the S3 console, bucket {bucket} > Properties > Event notifications: create {configuration_id!r}, all "
            f"object create events, destination SNS topic {config.topic_name} (guide step 7)"),
            lambda: s3.put_notification_configuration(bucket, merged, config.account_id))
    return BucketNotificationOutput(configuration_id=configuration_id)


def _converge_entries(run: Converge, config: Config, trail: TrailOutput, topic: TopicOutput,
                      current: dict[str, Any], accounts: list[str] | None) -> BucketNotificationOutput:
    """An existing trail's bucket: our entries (one, or one per account of the OU filter) exactly as wanted,
    ours no longer wanted taken out, every other entry as it is; one write when anything differs."""
    bucket, (base_id, folder) = trail.bucket_name, _our_entry(config, trail)
    wanted = wanted_entries(topic.topic_arn, base_id, folder, accounts)
    differences = entry_differences(current, wanted, base_id)
    if differences:
        merged = merge_entries(current, wanted, base_id)
        run.change([run.finding(f"bucket {bucket}", f"event notification {entry_id!r}", there, ours,
                                _hand_fix(config, bucket, entry_id, ours))
                    for entry_id, there, ours in differences],
                   lambda: s3.put_notification_configuration(bucket, merged, config.account_id))
    return BucketNotificationOutput(configuration_id=base_id, canary_prefix=key_filter(wanted[0])[0])


def _hand_fix(config: Config, bucket: str, entry_id: str, ours: dict[str, Any] | None) -> str:
    where = f"in the S3 console, bucket {bucket} > Properties > Event notifications"
    if ours is None:
        return (f"{where}: delete {entry_id!r} (its account is no longer in OU "
                f"{config.log_filter_organizational_unit_id or '(no OU filter)'})")
    return (f"{where}: create {entry_id!r}, all object create events, prefix {key_filter(ours)[0]!r}, destination SNS "
            f"topic {ours['TopicArn']} (guide step 7)")


def remove(config: Config, trail: TrailOutput) -> bool:
    """Teardown: drop only our entry (or entries: one per account of an OU filter); True when something was
    written. A missing bucket is done."""
    head = s3.head_bucket(trail.bucket_name, config.account_id)
    if not head.exists or not head.owned:
        return False
    current = s3.notification_configuration(trail.bucket_name, config.account_id)
    remaining = remove_notification(current, _our_entry(config, trail)[0])
    if remaining == current:
        return False
    s3.put_notification_configuration(trail.bucket_name, remaining, config.account_id)
    logger.info("Removed the object-created notification", extra={"bucket": trail.bucket_name})
    return True


def _our_entry(config: Config, trail: TrailOutput) -> tuple[str, str]:
    """(Id, key prefix) of our entry: the guide's on our own bucket; on an existing trail's bucket one
    naming this stack, filtered to the trail's log folder."""
    if trail.existing_trail:
        return notification_id(config.stack_name), trail.log_prefix
    return NOTIFICATION_ID, ""


def _refuse_overlap(bucket: str, current: dict[str, Any]) -> None:
    """S3 rejects two entries sharing an event type with overlapping prefixes; ours covers every key,
    so any other object-created entry collides. Say so plainly instead of S3's "Configurations overlap"."""
    for clash in overlapping(current):
        raise OnboardingError(
            f"Bucket {bucket} already sends object-created events to {clash.destination} "
            f"(notification {clash.id}), and S3 allows only one destination per event "
            "type and key prefix. Fix: subscribe that destination to the onboarding's SNS topic "
            "instead and remove its entry from the bucket's event notifications, then retry")
