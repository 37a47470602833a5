"""Guide step 10: register AWS CloudTrail as a Workbench security device (or, with ``"Action":
"Delete"`` on stack delete, remove the device this stack created). The API key is read from
Secrets Manager inside the layer and never enters the event, the result or the logs."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config, DeviceOutput, QueueOutput, RoleOutput
from expel_onboarding.steps import step10_workbench_device

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    config = Config.from_state(event)
    if event.get("Action") == "Delete":
        device_id = event.get(DeviceOutput.KEY, {}).get("DeviceId", "")
        return step10_workbench_device.remove(config, device_id).to_dict()
    role, queue = RoleOutput.from_state(event), QueueOutput.from_state(event)
    return step10_workbench_device.register(config, role, queue).to_dict()
