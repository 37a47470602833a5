"""Guide step 3: a Standard SNS topic, encrypted with the trail's key, that only the bucket may
publish to.

Looked up first: CreateTopic is idempotent only with identical attributes and tags, and a second
run must not write anything. An existing topic gets only the attributes that differ, and its
policy is merged (SNS's default statement and anyone else's stay).
"""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger

from expel_onboarding import naming
from expel_onboarding.aws import sns
from expel_onboarding.errors import InvalidParameter
from expel_onboarding.models import Config, TopicOutput, TrailOutput
from expel_onboarding.naming import refers_to_key
from expel_onboarding.ownership import is_ours, require_ours
from expel_onboarding.policies.topic_policy import merge_topic_policy, topic_statements

logger = Logger(child=True)

KIND = "SNS topic"


def apply(config: Config, trail: TrailOutput) -> TopicOutput:
    if config.topic_name.endswith(".fifo"):
        # S3 event notifications cannot target FIFO topics; the guide asks for Standard.
        raise InvalidParameter("TopicName", f"{config.topic_name} names a FIFO topic",
                               "use a name without the .fifo suffix (the guide's topic is Standard)")
    region = config.region
    topic_arn = naming.topic_arn(config.partition, region, config.account_id, config.topic_name)
    statements = topic_statements(config.partition, topic_arn, trail.bucket_arn, config.account_id)

    attributes = sns.topic_attributes(topic_arn, region)
    if attributes is None:
        sns.create_topic(config.topic_name, {
            "KmsMasterKeyId": trail.kms_key_arn,
            "Policy": json.dumps(merge_topic_policy(None, statements)),
        }, naming.owner_tags(config.stack_name), region)
        logger.info("Created the SNS topic", extra={"topic": topic_arn, "kms_key": trail.kms_key_arn})
        return TopicOutput(topic_arn=topic_arn)

    require_ours(sns.topic_tags(topic_arn, region), config.stack_name, parameter="TopicName",
                 what=f"{KIND} {topic_arn}", fix=f"choose another TopicName, or delete that {KIND} if nothing uses it")
    current_key = attributes.get("KmsMasterKeyId", "")
    if not refers_to_key(current_key, trail.kms_key_arn, trail.kms_alias):
        sns.set_topic_attribute(topic_arn, "KmsMasterKeyId", trail.kms_key_arn, region)
        logger.info("Set the topic's KMS key", extra={"topic": topic_arn, "previous": current_key or None,
                                                      "kms_key": trail.kms_key_arn})

    current_policy = sns.topic_policy(attributes)
    merged = merge_topic_policy(current_policy, statements)
    if merged != current_policy:
        sns.set_topic_attribute(topic_arn, "Policy", json.dumps(merged), region)
        logger.info("Merged the bucket's publish statement into the topic policy", extra={"topic": topic_arn})
    return TopicOutput(topic_arn=topic_arn)


def remove(config: Config) -> bool:
    """Teardown: delete the topic if this stack created it. Anything else is left as it is, even
    statements with the guide's Sid (a person may have pasted them by hand). True when deleted."""
    region = config.region
    topic_arn = naming.topic_arn(config.partition, region, config.account_id, config.topic_name)
    attributes = sns.topic_attributes(topic_arn, region)
    if attributes is None:
        return False
    if not is_ours(sns.topic_tags(topic_arn, region), config.stack_name):
        logger.info("SNS topic not created by this stack: left as it is", extra={"topic": topic_arn})
        return False
    sns.delete_topic(topic_arn, region)
    logger.info("Deleted the SNS topic", extra={"topic": topic_arn})
    return True
