"""Guide step 6: subscribe the queue to the topic with raw message delivery (with ``"Action": "Delete"``
on stack delete: unsubscribe it)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config, QueueOutput, Removed, TopicOutput
from expel_onboarding.steps import step06_sns_subscription

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    config, topic, queue = Config.from_state(event), TopicOutput.from_state(event), QueueOutput.from_state(event)
    if event.get("Action") == "Delete":
        # Discovery leaves an ARN empty for a topic or queue that is gone or lacks this stack's tag.
        found = bool(topic.topic_arn and queue.queue_arn)
        return Removed(removed=found and step06_sns_subscription.remove(config, topic, queue)).to_dict()
    return step06_sns_subscription.apply(config, topic, queue).to_dict()
