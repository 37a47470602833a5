"""Custom resource ``Onboarding``: starts the request's execution, then polls it and answers CloudFormation
(``expel_onboarding.custom_resource``)."""

import os

from aws_lambda_powertools import Logger

from expel_onboarding.custom_resource import OnboardingResource

logger = Logger()
resource = OnboardingResource(os.environ["STATE_MACHINE_ARN"])


@logger.inject_lambda_context(log_event=False, correlation_id_path="RequestId")
def lambda_handler(event: dict, context: object) -> None:
    resource(event, context)
