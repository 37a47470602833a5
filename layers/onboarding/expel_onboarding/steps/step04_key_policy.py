"""Guide step 4: append the guide's two statements to the key policy so S3 (publishing to the
encrypted topic) and SNS (delivering to the encrypted queue) can use the trail's key.

The policy is read, merged by Sid and written back only when the merge changed it: every statement
already there (CloudTrail's, the customer's) stays. Replacing a key policy wholesale is how
comparable tools stopped organizations' trails.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from expel_onboarding.aws import kms_policy
from expel_onboarding.models import Config, KeyPolicyOutput, TopicOutput, TrailOutput
from expel_onboarding.policies import remove_statements
from expel_onboarding.policies.key_policy import GUIDE_KEY_SIDS, merge_key_policy

logger = Logger(child=True)


def apply(config: Config, trail: TrailOutput, topic: TopicOutput) -> KeyPolicyOutput:
    current = kms_policy.key_policy(trail.kms_key_arn, config.region)
    merged = merge_key_policy(current, trail.bucket_arn, topic.topic_arn)
    if merged != current:
        kms_policy.put_key_policy(trail.kms_key_arn, merged, config.region)
        logger.info("Merged the guide's statements into the key policy",
                    extra={"kms_key": trail.kms_key_arn, "sids": list(GUIDE_KEY_SIDS)})
    return KeyPolicyOutput(kms_key_arn=trail.kms_key_arn, statement_ids=list(GUIDE_KEY_SIDS))


def remove(config: Config, trail: TrailOutput) -> bool:
    """Teardown, when the key is kept: take out only the guide's two statements. True when the
    policy was written; a key that is gone or pending deletion needs nothing."""
    current = kms_policy.key_policy_if_usable(trail.kms_key_arn, config.region)
    if current is None:
        return False
    remaining = remove_statements(current, GUIDE_KEY_SIDS)
    if remaining == current:
        return False
    kms_policy.put_key_policy(trail.kms_key_arn, remaining, config.region)
    logger.info("Removed the guide's statements from the key policy", extra={"kms_key": trail.kms_key_arn})
    return True
