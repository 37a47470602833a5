"""Drift check: every guide step compares the account with its end state and writes nothing; returns the
report (which resource, which setting, now vs should-be, the guide step and the fix). Its role only reads."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config
from expel_onboarding.steps import drift_check

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return drift_check.check(Config.from_state(event), execution_arn=event.get("ExecutionId", "")).to_dict()
