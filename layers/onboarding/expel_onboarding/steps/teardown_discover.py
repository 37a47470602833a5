"""Stack delete, first state: find what the onboarding left, without writing anything.

A Delete execution starts with the configuration only (it may follow a Create that failed half way,
or a state document long gone), so the outputs the teardown steps need are rebuilt from the names in
Config. Only the ids that cannot be derived from a name are looked up: the key behind the alias and the
queue's URL. A field is left empty for anything that is absent or does not carry this stack's owner
tag, a customer's own (untagged) topic or queue included: the create path never writes to a topic or
queue it did not make (steps 3 and 5 refuse them), so nothing on them is ours to remove, not even a
subscription between them. Each step's ``remove`` checks ownership again before it writes.

An existing trail's onboarding (``ExistingTrailName``) wrote into resources that are the customer's: the
trail's bucket (our notification entry), the trail's key and a customer's topic (our statements), the
topic (our queue's subscription). Discovery finds them from what is ours: the queue's key is the key
that got the SNS statement, the topics the queue is subscribed to are where our subscription and publish
statement are, and the trail names the bucket. Nothing of the trail's is marked as ours.
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
    if config.existing_trail_name:
        return _discover_existing_trail(config)
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


def _discover_existing_trail(config: Config) -> Discovery:
    own_key = _our_key(config)
    queue_url = _queue_url(config)
    queue_arn = naming.queue_arn(config.partition, config.region, config.account_id, config.queue_name)
    queue_key = _key_arn(sqs.queue_attributes(queue_url, config.region).get("KmsMasterKeyId", ""), config) \
        if queue_url else ""
    trail = cloudtrail.get_trail(config.existing_trail_name, config.region)
    bucket = str(trail.get("S3BucketName", "")) if trail else ""
    topic = _existing_trail_topic(config, queue_arn if queue_url else "")
    trail_output = TrailOutput(
        trail_arn=str(trail["TrailARN"]) if trail else "", bucket_name=bucket,
        bucket_arn=naming.bucket_arn(config.partition, bucket) if bucket else "",
        # The queue's key got the SNS statement; with the queue gone, ours or the trail's is the one.
        kms_key_arn=queue_key or own_key or (_key_arn(str(trail.get("KmsKeyId") or ""), config) if trail else ""),
        kms_alias=full_alias(config.kms_alias) if own_key else "", existing_trail=True)
    found = Found(trail=False, bucket=False, key=bool(own_key), topic=bool(topic.topic_arn and not topic.customers),
                  queue=bool(queue_url))
    logger.info("Teardown of an existing trail's onboarding: found",
                extra={"found": found.to_dict(), "bucket": bucket, "topic": topic.topic_arn,
                       "customers_topic": topic.customers})
    return Discovery(trail=trail_output, topic=topic,
                     queue=QueueOutput(queue_arn=queue_arn if queue_url else "", queue_url=queue_url), found=found)


def _existing_trail_topic(config: Config, queue_arn: str) -> TopicOutput:
    """Our own topic, else the customer's topic our queue is subscribed to (or ExistingTopicArn)."""
    ours = _topic(config)
    if ours:
        return TopicOutput(topic_arn=ours, kms_key_arn=_topic_key(ours, config))
    candidates = [str(s["TopicArn"]) for s in sns.subscriptions_to(queue_arn, config.region)] if queue_arn else []
    if config.existing_topic_arn:
        candidates.append(config.existing_topic_arn)
    for arn in candidates:
        if sns.topic_attributes(arn, config.region) is not None:
            return TopicOutput(topic_arn=arn, kms_key_arn=_topic_key(arn, config), customers=True)
    return TopicOutput(topic_arn="")


def _topic_key(topic_arn: str, config: Config) -> str:
    attributes = sns.topic_attributes(topic_arn, config.region) or {}
    return _key_arn(attributes.get("KmsMasterKeyId", ""), config)


def _key_arn(key_id: str, config: Config) -> str:
    """The ARN of a customer managed key named in any form (id, ARN, alias); "" for none or an AWS managed one."""
    if not key_id:
        return ""
    metadata = kms.describe_key(key_id, config.region)
    return str(metadata["Arn"]) if metadata and metadata.get("KeyManager") != "AWS" else ""
