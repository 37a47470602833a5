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
from expel_onboarding.drift import Converge, Mode, StepCheck, applied, not_ready, run_check, statement_findings
from expel_onboarding.errors import InvalidParameter
from expel_onboarding.models import Config, QueueOutput, TopicOutput, TrailOutput
from expel_onboarding.naming import refers_to_key
from expel_onboarding.ownership import is_ours, require_ours
from expel_onboarding.policies._equivalence import statement_differences
from expel_onboarding.policies.queue_policy import merge_queue_policy, queue_statements

if TYPE_CHECKING:
    from expel_onboarding.aws.sqs import QueueAttributes

logger = Logger(child=True)

STEP = 5
KIND = "SQS queue"
RETENTION_SECONDS = str(7 * 24 * 3600)  # the guide's "Message Retention period: 7 days" = 604800


def apply(config: Config, trail: TrailOutput, topic: TopicOutput) -> QueueOutput:
    if config.queue_name.endswith(".fifo"):
        # SNS delivers to FIFO queues only from FIFO topics; the guide's queue is Standard.
        raise InvalidParameter("QueueName", f"{config.queue_name} names a FIFO queue",
                               "use a name without the .fifo suffix (the guide's queue is Standard)")
    run = Converge(STEP)
    return applied(run, converge(run, config, trail, topic), "a queue")


def check(config: Config, trail: TrailOutput, topic: TopicOutput) -> StepCheck:
    """Drift check: what ``apply`` would change, written nowhere."""
    needs = [("the KMS key", trail.kms_key_arn, 1), ("the topic", topic.topic_arn, 3)]
    return not_ready(STEP, needs) or run_check(Converge(STEP, Mode.CHECK),
                                               lambda run: converge(run, config, trail, topic))


def converge(run: Converge, config: Config, trail: TrailOutput, topic: TopicOutput) -> QueueOutput | None:
    """The end state: our queue, 7-day retention, SSE-KMS with the trail's key, a policy letting the topic
    send (every other statement kept). None only when checking finds no queue."""
    region = config.region
    queue_arn = naming.queue_arn(config.partition, region, config.account_id, config.queue_name)
    statements = queue_statements(queue_arn, topic.topic_arn)
    # SSE-KMS with our key; SSE-SQS explicitly off, since a queue holds one encryption setting.
    encryption: QueueAttributes = {"KmsMasterKeyId": trail.kms_key_arn, "SqsManagedSseEnabled": "false"}

    url = sqs.queue_url(config.queue_name, config.account_id, region)
    if url is None:
        url = run.change(run.finding(
            f"SQS queue {config.queue_name}", "queue", None,
            f"a Standard queue, 7-day retention, encrypted with {trail.kms_key_arn}, that only topic "
            f"{topic.topic_arn} may send to",
            "run the onboarding again: it creates the queue, and Workbench's device must then be given its URL"),
            lambda: sqs.create_queue(config.queue_name, {
                "MessageRetentionPeriod": RETENTION_SECONDS,
                **encryption,
                "Policy": json.dumps(merge_queue_policy(None, statements)),
            }, naming.owner_tags(config.stack_name), region))
        return None if url is None else QueueOutput(queue_arn=queue_arn, queue_url=url)

    require_ours(sqs.queue_tags(url, region), config.stack_name, parameter="QueueName",
                 what=f"{KIND} {queue_arn}", fix=f"choose another QueueName, or delete that {KIND} if nothing uses it")
    current = sqs.queue_attributes(url, region)
    changes: QueueAttributes = {}
    findings = []
    if current.get("MessageRetentionPeriod") != RETENTION_SECONDS:
        changes["MessageRetentionPeriod"] = RETENTION_SECONDS
        findings.append(run.finding(queue_arn, "MessageRetentionPeriod", current.get("MessageRetentionPeriod"),
                                    RETENTION_SECONDS, "set the queue's message retention period to 7 days"))
    current_key = current.get("KmsMasterKeyId", "")
    key_is_ours = refers_to_key(current_key, trail.kms_key_arn, trail.kms_alias)
    if not key_is_ours or current.get("SqsManagedSseEnabled") == "true":
        changes.update(encryption)
        sse_sqs = current.get("SqsManagedSseEnabled", "false")
        findings.append(run.finding(
            queue_arn, "encryption (KmsMasterKeyId)", current_key or f"SSE-SQS (SqsManagedSseEnabled={sse_sqs})",
            trail.kms_key_arn, f"set the queue's encryption to SSE-KMS with {trail.kms_alias}"))
    current_policy = sqs.queue_policy(current)
    merged = merge_queue_policy(current_policy, statements)
    if merged != current_policy:
        changes["Policy"] = json.dumps(merged)
        findings += statement_findings(
            STEP, queue_arn, "queue policy", current_policy, statement_differences(current_policy, statements),
            f"add the statement {{sid!r}} back to queue {config.queue_name}'s access policy (guide step 5)")
    if changes:
        run.change(findings, lambda: sqs.set_queue_attributes(url, changes, region))
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
