"""Guide step 4: merge the guide's S3 and SNS statements into the key policy (with ``"Action": "Delete"``
on stack delete, when the key is kept: take them out again)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config, Removed, TopicOutput, TrailOutput
from expel_onboarding.steps import step04_key_policy

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    config, trail, topic = Config.from_state(event), TrailOutput.from_state(event), TopicOutput.from_state(event)
    if event.get("Action") == "Delete":
        # Discovery leaves the key ARNs empty when no key of ours (or, for an existing trail, of the queue or the
        # customer's topic) is there.
        found = bool(trail.kms_key_arn or topic.kms_key_arn)
        return Removed(removed=found and step04_key_policy.remove(config, trail, topic)).to_dict()
    return step04_key_policy.apply(config, trail, topic).to_dict()
