"""Guide step 8 (in Organizations mode with step 9's stack): create or reconcile the Expel role's
CloudFormation stack or StackSet (returns at once). With ``"Action": "Delete"`` on stack delete: delete
them if ours; the state machine waits and calls again."""

import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config, QueueOutput, RoleRemoval, TrailOutput
from expel_onboarding.steps import step08_expel_role, teardown

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if event.get("Action") == "Delete":
        previous = RoleRemoval.from_dict(event.get("Teardown", {}).get("Role", {}))
        return teardown.remove_role(Config.from_state(event), previous).to_dict()
    return step08_expel_role.deploy(
        Config.from_state(event), TrailOutput.from_state(event), QueueOutput.from_state(event),
        # The role CloudFormation acts as, so this function needs no IAM write permissions itself.
        service_role_arn=os.environ.get("ROLE_STACK_EXECUTION_ROLE_ARN", ""),
        repair=step08_expel_role.repairing(event),
    ).to_dict()
