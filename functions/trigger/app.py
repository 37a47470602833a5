"""Custom resource: starts the onboarding (or, on stack delete, the teardown) execution; answers when
it ends (poll = safety net)."""

import os

from aws_lambda_powertools import Logger

from expel_onboarding import custom_resource, lifecycle
from expel_onboarding.trigger import make_helper, physical_id

logger = Logger()
helper = make_helper()


def _answer_id(event: dict) -> str:
    # A Delete answers with the id CloudFormation holds, whoever made it: after a failed Create it may be
    # crhelper's generated one. The teardown runs either way; it removes only what carries our tag.
    if event["RequestType"] == "Delete":
        return str(event.get("PhysicalResourceId") or physical_id(event))
    return physical_id(event)


@helper.create
@helper.update
@helper.delete
def start_execution(event: dict, _context: object) -> str:
    custom_resource.check_settings(event["ResourceProperties"])
    if event["RequestType"] == "Update":
        custom_resource.check_update(event)
    if event["RequestType"] != "Create":
        lifecycle.stop_onboardings(os.environ["STATE_MACHINE_ARN"])
    helper.Data["ExecutionArn"] = lifecycle.start(event, os.environ["STATE_MACHINE_ARN"])
    return _answer_id(event)


@helper.poll_create
@helper.poll_update
@helper.poll_delete
def poll_onboarding(event: dict, _context: object) -> str | None:
    settings = custom_resource.settings(event["ResourceProperties"])
    outcome = lifecycle.poll(event["CrHelperData"]["ExecutionArn"], os.environ["STATE_MACHINE_ARN"], settings)
    if outcome.status == "PENDING":
        return None
    if outcome.status == "FAILED":
        # Also on Delete: a teardown that failed answers within the deadline (the stack shows DELETE_FAILED
        # with the step and reason) instead of leaving CloudFormation to wait an hour.
        raise RuntimeError(outcome.reason)
    if event["RequestType"] != "Delete":
        helper.Data.update(outcome.data)
    return _answer_id(event)


@logger.inject_lambda_context(log_event=False, correlation_id_path="RequestId")
def lambda_handler(event: dict, context: object) -> None:
    helper(event, context)
