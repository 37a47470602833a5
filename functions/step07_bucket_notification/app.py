"""Guide step 7: the bucket notifies the SNS topic of every new object (merged configuration); with
``"Action": "Delete"`` on stack delete, only our entry is taken out again."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config, Removed, TopicOutput, TrailOutput
from expel_onboarding.steps import step07_bucket_notification

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if event.get("Action") == "Delete":
        # Discovery leaves the bucket name empty for a bucket that is gone or not this stack's.
        config, trail = Config.from_state(event), TrailOutput.from_state(event)
        return Removed(removed=bool(trail.bucket_name) and step07_bucket_notification.remove(config, trail)).to_dict()
    return step07_bucket_notification.apply(
        Config.from_state(event), TrailOutput.from_state(event), TopicOutput.from_state(event)
    ).to_dict()
