"""Guide step 1: the KMS key and alias, the S3 bucket, the trail (with ``"Action": "Delete"`` on stack
delete: the trail, and the bucket and key only if the person chose so)."""

import time

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.models import Config, TrailOutput
from expel_onboarding.steps import step01_trail

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if event.get("Action") == "Delete":
        # When this invocation ends: emptying a large log bucket stops short of it and continues on retry.
        deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000
        return step01_trail.remove(Config.from_state(event), TrailOutput.from_state(event), deadline).to_dict()
    return step01_trail.apply(Config.from_state(event)).to_dict()
