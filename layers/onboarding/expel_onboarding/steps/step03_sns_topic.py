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
from expel_onboarding.drift import Converge, Mode, StepCheck, not_ready, run_check, statement_findings
from expel_onboarding.errors import InvalidParameter
from expel_onboarding.models import Config, TopicOutput, TrailOutput
from expel_onboarding.naming import refers_to_key
from expel_onboarding.ownership import is_ours, require_ours
from expel_onboarding.policies import remove_statements
from expel_onboarding.policies._equivalence import add_by_meaning, statement_differences
from expel_onboarding.policies.topic_policy import TOPIC_POLICY_VERSION, merge_topic_policy, stack_sid, topic_statements
from expel_onboarding.steps import step01_existing_trail

logger = Logger(child=True)

STEP = 3
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
    return TopicOutput(topic_arn=converge(Converge(STEP), config, trail), kms_key_arn=trail.kms_key_arn)


def check(config: Config, trail: TrailOutput) -> StepCheck:
    """Drift check: what ``apply`` would change, written nowhere."""
    skip = "an existing trail: its topic is not compared yet" if trail.existing_trail else ""
    needs = [("the bucket", trail.bucket_arn, 1), ("the KMS key", trail.kms_key_arn, 1)]
    return not_ready(STEP, needs, skip) or run_check(Converge(STEP, Mode.CHECK),
                                                     lambda run: converge(run, config, trail))


def converge(run: Converge, config: Config, trail: TrailOutput) -> str:
    """The end state: our topic, encrypted with the trail's key, whose policy lets the bucket publish
    (every other statement kept). Returns the topic's ARN."""
    region = config.region
    topic_arn = naming.topic_arn(config.partition, region, config.account_id, config.topic_name)
    statements = topic_statements(config.partition, topic_arn, trail.bucket_arn, config.account_id)

    attributes = sns.topic_attributes(topic_arn, region)
    if attributes is None:
        run.change(run.finding(
            f"SNS topic {config.topic_name}", "topic", None,
            f"a Standard topic encrypted with {trail.kms_key_arn} that only bucket {trail.bucket_arn} may publish to",
            "run the onboarding again: it creates the topic (an SNS topic made by hand is not this stack's)"),
            lambda: sns.create_topic(config.topic_name, {
                "KmsMasterKeyId": trail.kms_key_arn,
                "Policy": json.dumps(merge_topic_policy(None, statements)),
            }, naming.owner_tags(config.stack_name), region))
        return topic_arn

    require_ours(sns.topic_tags(topic_arn, region), config.stack_name, parameter="TopicName",
                 what=f"{KIND} {topic_arn}", fix=f"choose another TopicName, or delete that {KIND} if nothing uses it")
    current_key = attributes.get("KmsMasterKeyId", "")
    if not refers_to_key(current_key, trail.kms_key_arn, trail.kms_alias):
        run.change(run.finding(
            topic_arn, "encryption (KmsMasterKeyId)", current_key or None, trail.kms_key_arn,
            f"in the SNS console, topic {config.topic_name} > Edit > Encryption: on, with {trail.kms_alias}"),
            lambda: sns.set_topic_attribute(topic_arn, "KmsMasterKeyId", trail.kms_key_arn, region))

    current_policy = sns.topic_policy(attributes)
    merged = merge_topic_policy(current_policy, statements)
    if merged != current_policy:
        run.change(statement_findings(
            STEP, topic_arn, "topic policy", current_policy, statement_differences(current_policy, statements),
            f"add the statement {{sid!r}} back to topic {config.topic_name}'s access policy (guide step 3)"),
            lambda: sns.set_topic_attribute(topic_arn, "Policy", json.dumps(merged), region))
    return topic_arn


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
