"""Guide step 1: the KMS key and alias, the S3 bucket, the trail."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config
from expel_onboarding.steps import step01_trail

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return step01_trail.apply(Config.from_state(event)).to_dict()
