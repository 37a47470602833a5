"""Custom resource: starts the onboarding execution; answers when it ends (poll = safety net)."""

import os

from aws_lambda_powertools import Logger

from expel_onboarding import custom_resource, lifecycle
from expel_onboarding.trigger import make_helper, physical_id

logger = Logger()
helper = make_helper()


@helper.create
@helper.update
def start_onboarding(event: dict, _context: object) -> str:
    helper.Data["ExecutionArn"] = lifecycle.start(event, os.environ["STATE_MACHINE_ARN"])
    return physical_id(event)


@helper.poll_create
@helper.poll_update
def poll_onboarding(event: dict, _context: object) -> str | None:
    settings = custom_resource.settings(event["ResourceProperties"])
    outcome = lifecycle.poll(event["CrHelperData"]["ExecutionArn"], os.environ["STATE_MACHINE_ARN"], settings)
    if outcome.status == "PENDING":
        return None
    if outcome.status == "FAILED":
        raise RuntimeError(outcome.reason)
    helper.Data.update(outcome.data)
    return physical_id(event)


@helper.delete
def delete(event: dict, _context: object) -> None:
    # Teardown (reverse order, only what this stack made) is issue 4; until then, keep everything.
    logger.info("Delete requested: onboarding resources are kept", extra={"stack": event["StackId"]})


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict, context: object) -> None:
    helper(event, context)
