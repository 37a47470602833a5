"""Guide step 5: the KMS-encrypted SQS queue, 7-day retention, only the topic may send to it (with
``"Action": "Delete"`` on stack delete: the queue, if this stack created it; anyone else's is left as it is)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config, QueueOutput, Removed, TopicOutput, TrailOutput
from expel_onboarding.steps import step05_sqs_queue

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    config, trail, topic = Config.from_state(event), TrailOutput.from_state(event), TopicOutput.from_state(event)
    if event.get("Action") == "Delete":
        # Discovery leaves the URL empty for a queue that is gone or another onboarding stack's.
        found = bool(QueueOutput.from_state(event).queue_url)
        return Removed(removed=found and step05_sqs_queue.remove(config)).to_dict()
    return step05_sqs_queue.apply(config, trail, topic).to_dict()
