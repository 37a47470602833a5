"""Guide step 3: the KMS-encrypted SNS topic only the bucket may publish to."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config, TrailOutput
from expel_onboarding.steps import step03_sns_topic

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return step03_sns_topic.apply(Config.from_state(event), TrailOutput.from_state(event)).to_dict()
