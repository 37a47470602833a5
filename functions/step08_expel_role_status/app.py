"""Guide steps 8 and 9: one look at the Expel role stack (and StackSet); the state machine waits between looks."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config, RoleOutput
from expel_onboarding.steps import step08_expel_role

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return step08_expel_role.status(Config.from_state(event), RoleOutput.from_state(event),
                                    execution_arn=event.get("ExecutionId", ""),
                                    repair=step08_expel_role.repairing(event)).to_dict()
