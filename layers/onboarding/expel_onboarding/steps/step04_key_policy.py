"""Guide step 4: append the guide's two statements to the key policy so S3 (publishing to the
encrypted topic) and SNS (delivering to the encrypted queue) can use the key.

The policy is read, merged and written back only when the merge changed it: every statement already
there (CloudTrail's, the customer's) stays. Replacing a key policy wholesale is how comparable tools
stopped organizations' trails.

The S3 statement belongs on the topic's key and the SNS statement on the queue's key: one key in the
guide, two when an existing trail's bucket already notifies a customer's topic encrypted with a key of
its own. A key this stack created gets the guide's statements under the guide's Sids. A key that is
not ours (an existing trail's, a customer's topic's) gets them under Sids naming this stack, and only
when no statement there already grants the same (the guide's statements pasted by hand, under any Sid):
a stack delete then removes exactly what this stack added.
"""

from __future__ import annotations

import functools

from aws_lambda_powertools import Logger

from expel_onboarding.aws import kms_policy
from expel_onboarding.drift import Converge, Mode, StepCheck, not_ready, run_check, statement_findings
from expel_onboarding.models import Config, KeyPolicyOutput, TopicOutput, TrailOutput
from expel_onboarding.policies import Statement, remove_statements
from expel_onboarding.policies._equivalence import add_by_meaning, merge_keeping_equivalent, statement_differences
from expel_onboarding.policies.key_policy import guide_key_statements, stack_sid

logger = Logger(child=True)

STEP = 4


def apply(config: Config, trail: TrailOutput, topic: TopicOutput) -> KeyPolicyOutput:
    sids = converge(Converge(STEP), config, trail, topic)
    topic_key = topic.kms_key_arn if topic.kms_key_arn != trail.kms_key_arn else ""
    return KeyPolicyOutput(kms_key_arn=trail.kms_key_arn, statement_ids=sids, topic_kms_key_arn=topic_key)


def check(config: Config, trail: TrailOutput, topic: TopicOutput) -> StepCheck:
    """Drift check: what ``apply`` would change, written nowhere."""
    needs = [("the KMS key", trail.kms_key_arn, 1), ("the bucket", trail.bucket_arn, 1),
             ("the topic", topic.topic_arn, 3)]
    return not_ready(STEP, needs) or run_check(Converge(STEP, Mode.CHECK),
                                               lambda run: converge(run, config, trail, topic))


def converge(run: Converge, config: Config, trail: TrailOutput, topic: TopicOutput) -> list[str]:
    """The end state: the guide's statements in the policies of the keys that need them, every other
    statement as it is. Returns the Sids of ours."""
    sids: list[str] = []
    for key_arn, statements in _wanted(trail, topic).items():
        current = kms_policy.key_policy(key_arn, config.region)
        ours = _ours(trail, key_arn)
        if not ours:
            statements = [{**s, "Sid": stack_sid(s["Sid"], config.stack_name)} for s in statements]
        merged = merge_keeping_equivalent(current, statements) if ours else add_by_meaning(current, statements)
        if merged != current:
            run.change(statement_findings(
                STEP, key_arn, "key policy", current, statement_differences(current, statements),
                "append the guide's statement {sid!r} to the key's policy again (guide step 4)"),
                functools.partial(kms_policy.put_key_policy, key_arn, merged, config.region))
        sids.extend(s["Sid"] for s in statements if s["Sid"] not in sids)
    return sids


def remove(config: Config, trail: TrailOutput, topic: TopicOutput) -> bool:
    """Teardown, when a key is kept: take out only our statements (the guide's Sids from our key, this
    stack's Sids from anyone else's). True when a policy was written; a key that is gone or pending
    deletion needs nothing."""
    written = False
    for key_arn, statements in _wanted(trail, topic).items():
        current = kms_policy.key_policy_if_usable(key_arn, config.region)
        if current is None:
            continue
        ours = _ours(trail, key_arn)
        sids = [s["Sid"] if ours else stack_sid(s["Sid"], config.stack_name) for s in statements]
        remaining = remove_statements(current, sids)
        if remaining != current:
            kms_policy.put_key_policy(key_arn, remaining, config.region)
            logger.info("Removed our statements from the key policy", extra={"kms_key": key_arn, "sids": sids})
            written = True
    return written


def _ours(trail: TrailOutput, key_arn: str) -> bool:
    """Step 1 made this key: a new trail's key, or the key an existing trail's onboarding created for the
    topic and queue (it alone comes with our alias). The trail's own key and a customer topic's are not."""
    return key_arn == trail.kms_key_arn and (not trail.existing_trail or bool(trail.kms_alias))


def _wanted(trail: TrailOutput, topic: TopicOutput) -> dict[str, list[Statement]]:
    """Key ARN -> the guide's statements it needs, in the guide's order: S3 on the topic's key (none for
    an unencrypted topic), SNS on the queue's key (``trail.kms_key_arn``)."""
    bucket, sns = guide_key_statements(trail.bucket_arn, topic.topic_arn)
    topic_key = topic.kms_key_arn if (topic.kms_key_arn or topic.customers) else trail.kms_key_arn
    wanted: dict[str, list[Statement]] = {}
    if topic_key:
        wanted.setdefault(topic_key, []).append(bucket)
    if trail.kms_key_arn:
        wanted.setdefault(trail.kms_key_arn, []).append(sns)
    return wanted
