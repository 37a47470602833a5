"""Verification: put a canary object in the trail's bucket; its S3 event must reach the queue."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import BucketNotificationOutput, Config, TopicOutput, TrailOutput
from expel_onboarding.steps import verify_delivery

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    notification = BucketNotificationOutput.from_state(event) if BucketNotificationOutput.KEY in event else None
    return verify_delivery.put_canary(
        Config.from_state(event), TrailOutput.from_state(event), TopicOutput.from_state(event),
        run_id=event.get("ExecutionId", ""), notification_prefix=notification.canary_prefix if notification else "",
    ).to_dict()
