"""Guide step 3: the KMS-encrypted SNS topic only the bucket may publish to (with ``"Action":
"Delete"`` on stack delete: the topic, if this stack created it; from a customer's topic an existing trail
uses, only our statement; anyone else's is left as it is)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config, Removed, TopicOutput, TrailOutput
from expel_onboarding.steps import step03_sns_topic

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if event.get("Action") == "Delete":
        # Discovery leaves the ARN empty for a topic that is gone or another onboarding stack's.
        topic = TopicOutput.from_state(event)
        return Removed(removed=bool(topic.topic_arn) and step03_sns_topic.remove(Config.from_state(event),
                                                                                 topic)).to_dict()
    return step03_sns_topic.apply(Config.from_state(event), TrailOutput.from_state(event)).to_dict()
