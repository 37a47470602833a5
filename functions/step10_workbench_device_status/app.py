"""Guide step 10, after registration: read the device's status once. The state machine waits and
calls again for a bounded time; "not yet healthy" is an answer, not a failure."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config, DeviceOutput
from expel_onboarding.steps import step10_workbench_device

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return step10_workbench_device.status(Config.from_state(event), DeviceOutput.from_state(event)).to_dict()
