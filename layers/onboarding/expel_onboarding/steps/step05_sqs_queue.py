"""Guide step 5: a Standard SQS queue, 7-day retention, SSE-KMS with the trail's key (data key
reuse left at its default), that only the topic may send to.

Looked up first: CreateQueue fails on a name that exists with other attributes, and a second run
must not write anything. An existing queue gets only the attributes that differ, in one call, and
its policy is merged (statements someone else wrote stay).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from expel_onboarding import naming
from expel_onboarding.aws import sqs
from expel_onboarding.errors import InvalidParameter
from expel_onboarding.models import Config, QueueOutput, TopicOutput, TrailOutput
from expel_onboarding.naming import refers_to_key
from expel_onboarding.ownership import is_ours, require_ours
from expel_onboarding.policies.queue_policy import merge_queue_policy, queue_statements

if TYPE_CHECKING:
    from expel_onboarding.aws.sqs import QueueAttributes

logger = Logger(child=True)

KIND = "SQS queue"
RETENTION_SECONDS = str(7 * 24 * 3600)  # the guide's "Message Retention period: 7 days" = 604800


def apply(config: Config, trail: TrailOutput, topic: TopicOutput) -> QueueOutput:
    if config.queue_name.endswith(".fifo"):
        # SNS delivers to FIFO queues only from FIFO topics; the guide's queue is Standard.
        raise InvalidParameter("QueueName", f"{config.queue_name} names a FIFO queue",
                               "use a name without the .fifo suffix (the guide's queue is Standard)")
    region = config.region
    queue_arn = naming.queue_arn(config.partition, region, config.account_id, config.queue_name)
    statements = queue_statements(queue_arn, topic.topic_arn)
    # SSE-KMS with our key; SSE-SQS explicitly off, since a queue holds one encryption setting.
    encryption: QueueAttributes = {"KmsMasterKeyId": trail.kms_key_arn, "SqsManagedSseEnabled": "false"}

    url = sqs.queue_url(config.queue_name, config.account_id, region)
    if url is None:
        url = sqs.create_queue(config.queue_name, {
            "MessageRetentionPeriod": RETENTION_SECONDS,
            **encryption,
            "Policy": json.dumps(merge_queue_policy(None, statements)),
        }, naming.owner_tags(config.stack_name), region)
        logger.info("Created the SQS queue", extra={"queue": queue_arn, "kms_key": trail.kms_key_arn})
        return QueueOutput(queue_arn=queue_arn, queue_url=url)

    require_ours(sqs.queue_tags(url, region), config.stack_name, parameter="QueueName",
                 what=f"{KIND} {queue_arn}", fix=f"choose another QueueName, or delete that {KIND} if nothing uses it")
    current = sqs.queue_attributes(url, region)
    changes: QueueAttributes = {}
    if current.get("MessageRetentionPeriod") != RETENTION_SECONDS:
        changes["MessageRetentionPeriod"] = RETENTION_SECONDS
    current_key = current.get("KmsMasterKeyId", "")
    key_is_ours = refers_to_key(current_key, trail.kms_key_arn, trail.kms_alias)
    if not key_is_ours or current.get("SqsManagedSseEnabled") == "true":
        changes.update(encryption)
    current_policy = sqs.queue_policy(current)
    merged = merge_queue_policy(current_policy, statements)
    if merged != current_policy:
        changes["Policy"] = json.dumps(merged)
    if changes:
        sqs.set_queue_attributes(url, changes, region)
        logger.info("Updated the SQS queue", extra={"queue": queue_arn, "attributes": sorted(changes),
                                                     "previous_kms_key": current_key or None})
    return QueueOutput(queue_arn=queue_arn, queue_url=url)


def remove(config: Config) -> bool:
    """Teardown: delete the queue if this stack created it. Anything else is left as it is, even
    statements with the guide's Sid (a person may have pasted them by hand). True when deleted."""
    region = config.region
    url = sqs.queue_url(config.queue_name, config.account_id, region)
    if url is None:
        return False
    queue_arn = naming.queue_arn(config.partition, region, config.account_id, config.queue_name)
    if not is_ours(sqs.queue_tags(url, region), config.stack_name):
        logger.info("SQS queue not created by this stack: left as it is", extra={"queue": queue_arn})
        return False
    sqs.delete_queue(url, region)
    logger.info("Deleted the SQS queue", extra={"queue": queue_arn})
    return True
