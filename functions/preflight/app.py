"""Before guide step 1: validate the parameters and check every name, writing nothing."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config
from expel_onboarding.steps import preflight

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return preflight.check(Config.from_state(event))
