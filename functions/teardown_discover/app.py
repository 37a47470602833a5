"""Stack delete, first state: rebuild the outputs the teardown steps need from the names in Config
(read-only; what is absent or another stack's is left empty and skipped)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config
from expel_onboarding.steps import teardown_discover

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return teardown_discover.discover(Config.from_state(event)).to_dict()
