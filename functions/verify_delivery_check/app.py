"""Verification: one look for the canary's S3 event in the queue; the state machine loops with Wait."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config, DeliveryOutput, QueueOutput, TrailOutput
from expel_onboarding.steps import verify_delivery

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return verify_delivery.check_canary(
        Config.from_state(event), TrailOutput.from_state(event), QueueOutput.from_state(event),
        DeliveryOutput.from_state(event),
    ).to_dict()
