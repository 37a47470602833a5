"""Drift check: every guide step compares the account with its end state and writes nothing; returns the
report (which resource, which setting, now vs should-be, the guide step and the fix) and publishes its
finding count as a CloudWatch metric (embedded metric format, through the function's log: no write grant).
Its role only reads.

A scheduled check first asks it for the stack's last onboarding (``StateMachineArn`` instead of ``Config``).
While CloudFormation's drift detection of the member accounts runs (Organizations mode), the report is
``Pending``: the state machine waits and hands it back (``Drift``), and the metric is published once it is done.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from expel_onboarding.drift import Report
from expel_onboarding.models import Config
from expel_onboarding.steps import drift_check

logger = Logger()
# No "service" dimension: the metric is the stack's alone, the one the template's DriftAlarm names.
metrics = Metrics(namespace=drift_check.METRIC_NAMESPACE, service="")


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="ExecutionId")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if "Config" not in event:
        return drift_check.last_onboarding(event["StateMachineArn"])
    config = Config.from_state(event)
    if "Drift" in event:
        report = drift_check.look_again(config, Report.from_dict(event["Drift"]))
    else:
        report = drift_check.check(config, execution_arn=event.get("ExecutionId", ""))
    if not report.pending:
        drift_check.publish(metrics, report, config.stack_name)
    return report.to_dict()
