"""Guide step 5: the KMS-encrypted SQS queue, 7-day retention, only the topic may send to it."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config, TopicOutput, TrailOutput
from expel_onboarding.steps import step05_sqs_queue

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    config, trail, topic = Config.from_state(event), TrailOutput.from_state(event), TopicOutput.from_state(event)
    return step05_sqs_queue.apply(config, trail, topic).to_dict()
