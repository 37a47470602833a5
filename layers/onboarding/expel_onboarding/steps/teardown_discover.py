"""Stack delete, first state: find what the onboarding left, without writing anything.

A Delete execution starts with the configuration only (it may follow a Create that failed half way,
or a state document long gone), so the outputs the teardown steps need are rebuilt from the names in
Config. Only the ids that cannot be derived from a name are looked up: the key behind the alias and the
queue's URL. A field is left empty for anything that is absent or does not carry this stack's owner
tag, a customer's own (untagged) topic or queue included: the create path never writes to a topic or
queue it did not make (steps 3 and 5 refuse them), so nothing on them is ours to remove, not even a
subscription between them. Each step's ``remove`` checks ownership again before it writes.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from expel_onboarding import naming
from expel_onboarding.aws import cloudtrail, kms, s3, sns, sqs
from expel_onboarding.models import Config, Discovery, Found, QueueOutput, TopicOutput, TrailOutput
from expel_onboarding.naming import full_alias
from expel_onboarding.ownership import is_ours

logger = Logger(child=True)


def discover(config: Config) -> Discovery:
    """The outputs in the shape the create path stores them, plus a summary of what exists and is ours,
    for the execution history."""
    key_arn = _our_key(config)
    bucket_ours = _bucket_ours(config)
    trail_ours = _trail_ours(config)
    topic_arn = _topic(config)
    queue_url = _queue_url(config)
    alias = full_alias(config.kms_alias)
    trail = TrailOutput(
        trail_arn=naming.trail_arn(config.partition, config.region, config.account_id, config.trail_name)
        if trail_ours else "",
        bucket_name=config.bucket_name if bucket_ours else "",
        bucket_arn=naming.bucket_arn(config.partition, config.bucket_name) if bucket_ours else "",
        kms_key_arn=key_arn,
        kms_alias=alias if key_arn else "",
    )
    queue_arn = naming.queue_arn(config.partition, config.region, config.account_id, config.queue_name)
    found = Found(trail=trail_ours, bucket=bucket_ours, key=bool(key_arn), topic=bool(topic_arn),
                  queue=bool(queue_url))
    logger.info("Teardown: found", extra={"found": found.to_dict()})
    return Discovery(trail=trail, topic=TopicOutput(topic_arn=topic_arn),
                     queue=QueueOutput(queue_arn=queue_arn if queue_url else "", queue_url=queue_url), found=found)


def _our_key(config: Config) -> str:
    """The ARN of the key our alias points to, if it carries our tag (also when already pending deletion)."""
    key = kms.describe_alias_target(full_alias(config.kms_alias), config.region)
    if key is None or not is_ours(kms.key_tags(key["KeyId"], config.region), config.stack_name):
        return ""
    return str(key["Arn"])


def _bucket_ours(config: Config) -> bool:
    head = s3.head_bucket(config.bucket_name, config.account_id)
    return head.exists and head.owned and is_ours(s3.tags(config.bucket_name, config.account_id), config.stack_name)


def _trail_ours(config: Config) -> bool:
    trail = cloudtrail.get_trail(config.trail_name, config.region)
    if trail is None or str(trail["TrailARN"]).split(":")[4] != config.account_id:
        return False
    return is_ours(cloudtrail.trail_tags(str(trail["TrailARN"]), config.region), config.stack_name)


def _topic(config: Config) -> str:
    """The topic's ARN if it exists and carries this stack's tag; a customer's or another stack's: ""."""
    arn = naming.topic_arn(config.partition, config.region, config.account_id, config.topic_name)
    if sns.topic_attributes(arn, config.region) is None:
        return ""
    return arn if is_ours(sns.topic_tags(arn, config.region), config.stack_name) else ""


def _queue_url(config: Config) -> str:
    """The queue's URL if it exists and carries this stack's tag; a customer's or another stack's: ""."""
    url = sqs.queue_url(config.queue_name, config.account_id, config.region)
    if url is None:
        return ""
    return url if is_ours(sqs.queue_tags(url, config.region), config.stack_name) else ""
