"""Guide step 2: the bucket's default encryption becomes SSE-KMS with the trail's key."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config, TrailOutput
from expel_onboarding.steps import step02_bucket_encryption

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return step02_bucket_encryption.apply(Config.from_state(event), TrailOutput.from_state(event)).to_dict()
