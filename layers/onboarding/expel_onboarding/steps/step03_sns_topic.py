"""Guide step 3: a Standard SNS topic, encrypted with the trail's key, that only the bucket may
publish to.

Looked up first: CreateTopic is idempotent only with identical attributes and tags, and a second
run must not write anything. An existing topic gets only the attributes that differ, and its
policy is merged (SNS's default statement and anyone else's stay).

An existing trail's bucket may already send its log files to a topic of the customer's (or the person
names one in ExistingTopicArn): that topic is used instead of creating ours. Its settings stay as they
are; only our publish statement is added to its policy, under a Sid naming this stack, unless a
statement there already grants the same.
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
from expel_onboarding.policies import remove_statements
from expel_onboarding.policies._equivalence import add_by_meaning
from expel_onboarding.policies.topic_policy import TOPIC_POLICY_VERSION, merge_topic_policy, stack_sid, topic_statements
from expel_onboarding.steps import step01_existing_trail

logger = Logger(child=True)

KIND = "SNS topic"


def apply(config: Config, trail: TrailOutput) -> TopicOutput:
    if config.topic_name.endswith(".fifo"):
        # S3 event notifications cannot target FIFO topics; the guide asks for Standard.
        raise InvalidParameter("TopicName", f"{config.topic_name} names a FIFO topic",
                               "use a name without the .fifo suffix (the guide's topic is Standard)")
    if trail.existing_trail:
        chosen, key_arn = step01_existing_trail.destination(config, trail.bucket_name, trail.log_prefix)
        if chosen.topic_arn:
            return _customers_topic(config, trail, chosen.topic_arn, key_arn)
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
        return TopicOutput(topic_arn=topic_arn, kms_key_arn=trail.kms_key_arn)

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
    return TopicOutput(topic_arn=topic_arn, kms_key_arn=trail.kms_key_arn)


def _customers_topic(config: Config, trail: TrailOutput, topic_arn: str, key_arn: str) -> TopicOutput:
    """The customer's topic: our publish statement added by meaning, nothing else touched."""
    statement = topic_statements(config.partition, topic_arn, trail.bucket_arn, config.account_id)[0]
    attributes = sns.topic_attributes(topic_arn, config.region) or {}
    current = sns.topic_policy(attributes)
    merged = add_by_meaning(current, [{**statement, "Sid": stack_sid(config.stack_name)}],
                            version=TOPIC_POLICY_VERSION)
    if merged != current:
        sns.set_topic_attribute(topic_arn, "Policy", json.dumps(merged), config.region)
        logger.info("Added the bucket's publish statement to the customer's topic policy", extra={"topic": topic_arn})
    logger.info("Using the customer's topic, which the trail's bucket notifies", extra={"topic": topic_arn})
    return TopicOutput(topic_arn=topic_arn, kms_key_arn=key_arn, customers=True)


def remove(config: Config, topic: TopicOutput) -> bool:
    """Teardown: delete the topic if this stack created it. Anything else is left as it is, even
    statements with the guide's Sid (a person may have pasted them by hand); from a customer's topic an
    existing trail used, only our statement (by its stack Sid) is taken out. True when something changed."""
    region = config.region
    if topic.customers:
        return _remove_our_statement(config, topic.topic_arn)
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


def _remove_our_statement(config: Config, topic_arn: str) -> bool:
    attributes = sns.topic_attributes(topic_arn, config.region)
    current = sns.topic_policy(attributes) if attributes else None
    if current is None:
        return False
    remaining = remove_statements(current, [stack_sid(config.stack_name)])
    if remaining == current:
        return False
    sns.set_topic_attribute(topic_arn, "Policy", json.dumps(remaining), config.region)
    logger.info("Removed our publish statement from the customer's topic policy", extra={"topic": topic_arn})
    return True
