"""The drift check: every guide step compares the account with its end state and writes nothing.

Each step's ``check`` runs the same ``converge`` as its apply, in ``Mode.CHECK`` (``drift.Converge``), so a
finding is exactly what a rerun of the onboarding would change. The outputs a later step needs (the key,
bucket, topic and queue) come from the names in Config, as the teardown finds them: a check may run long
after the onboarding's own state document is gone, and a part that is missing or no longer ours makes the
steps that build on it "not checked" rather than compared with something else.

The check never sends a canary through the queue Expel reads (Expel would receive it): step 6 reads the
deliveries SNS itself counted as failed instead.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aws_lambda_powertools import Logger

from expel_onboarding.drift import Report, StepCheck
from expel_onboarding.models import Config, RoleOutput, RoleStatus
from expel_onboarding.steps import (
    expel_role_stack,
    step01_trail,
    step02_bucket_encryption,
    step03_sns_topic,
    step04_key_policy,
    step05_sqs_queue,
    step06_sns_subscription,
    step07_bucket_notification,
    step10_workbench_device,
    teardown_discover,
)

logger = Logger(child=True)


def check(config: Config, now: datetime | None = None, execution_arn: str = "") -> Report:
    """Every guide step's check, in the guide's order; nothing is written."""
    now = now or datetime.now(UTC)
    found = teardown_discover.discover(config)
    trail, topic, queue = found.trail, found.topic, found.queue
    checks = [
        step01_trail.check(config),
        step02_bucket_encryption.check(config, trail),
        step03_sns_topic.check(config, trail),
        step04_key_policy.check(config, trail, topic),
        step05_sqs_queue.check(config, trail, topic),
        step06_sns_subscription.check(config, topic, queue, now),
        step07_bucket_notification.check(config, trail, topic),
    ]
    if config.organization_mode:
        checks.append(StepCheck.not_checked(8, "the StackSet's member-account roles are not compared yet"))
    checks.append(expel_role_stack.check(config, trail, queue))
    role = RoleOutput(stack_id="", status=RoleStatus.COMPLETE,
                      role_arn=f"arn:{config.partition}:iam::{config.account_id}:role/{config.role_name}")
    checks.append(step10_workbench_device.check(config, role, queue))
    report = Report.of(checks, checked_at=now.isoformat(timespec="seconds"), execution_arn=execution_arn)
    logger.info("Drift check", extra={"status": report.status, "findings": report.finding_count,
                                      "steps": {c.step: c.status for c in report.steps}})
    return report

