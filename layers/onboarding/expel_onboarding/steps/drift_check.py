"""The drift check: every guide step compares the account with its end state and writes nothing.

Each step's ``check`` runs the same ``converge`` as its apply, in ``Mode.CHECK`` (``drift.Converge``), so a
finding is exactly what a rerun of the onboarding would change. The outputs a later step needs (the key,
bucket, topic and queue) come from the names in Config, as the teardown finds them: a check may run long
after the onboarding's own state document is gone, and a part that is missing or no longer ours makes the
steps that build on it "not checked" rather than compared with something else.

The check never sends a canary through the queue Expel reads (Expel would receive it): step 6 reads the
deliveries SNS itself counted as failed instead.

A scheduled check (``DriftCheckSchedule``) starts with no configuration of its own: ``onboarding_input``
finds the stack's last successful onboarding, whose Config and Settings the check (and, with
``DriftRepair``, the repair) then use, as ``cloudtrail-onboarding doctor`` does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from expel_onboarding.aws import stepfunctions
from expel_onboarding.drift import Report
from expel_onboarding.errors import OnboardingError
from expel_onboarding.models import Config, RoleOutput, RoleStatus, TrailOutput
from expel_onboarding.steps import (
    expel_role_stack,
    step01_existing_trail,
    step01_trail,
    step02_bucket_encryption,
    step03_sns_topic,
    step04_key_policy,
    step05_sqs_queue,
    step06_sns_subscription,
    step07_bucket_notification,
    step08_expel_role,
    step10_workbench_device,
    teardown_discover,
)

logger = Logger(child=True)

# The CloudFormation requests whose executions leave the account in the onboarding's end state.
ONBOARDING_REQUESTS = ("Create", "Update")


# The metric each check publishes (powertools Metrics, CloudWatch's embedded metric format): how many
# differences it found, 0 when in sync, per stack. The template's DriftAlarm watches it.
METRIC_NAMESPACE = "ExpelCloudTrailOnboarding"
METRIC_NAME = "DriftFindings"
METRIC_DIMENSION = "StackName"


class NoOnboarding(Exception):
    """No successful onboarding of the stack to compare with."""


def onboarding_input(executions: Iterable[dict[str, Any]], describe: Callable[[str], dict[str, Any]],
                     preferred: str = "") -> dict[str, Any]:
    """Input of the stack's last successful onboarding (Config, Settings, CloudFormation): ``preferred``
    (the stack's ExecutionArn output) first, else the newest SUCCEEDED Create or Update execution of
    ``executions`` (ListExecutions' entries). A check's own execution carries no CloudFormation request, so
    it is never taken for one."""
    done = sorted((e for e in executions if e.get("status") == "SUCCEEDED"),
                  key=lambda e: e["startDate"], reverse=True)
    candidates = [preferred] if preferred.startswith("arn:") else []
    candidates += [str(e["executionArn"]) for e in done]
    for arn in candidates:
        given = json.loads(describe(arn).get("input") or "{}")
        if given.get("CloudFormation", {}).get("RequestType") in ONBOARDING_REQUESTS and "Config" in given:
            return dict(given)
    raise NoOnboarding("no successful onboarding of this stack to compare with: deploy the stack first "
                       "(`cloudtrail-onboarding status` shows where it stands)")


def check(config: Config, now: datetime | None = None, execution_arn: str = "") -> Report:
    """Every guide step's check, in the guide's order; nothing is written."""
    now = now or datetime.now(UTC)
    found = teardown_discover.discover(config)
    trail, topic, queue = found.trail, found.topic, found.queue
    if trail.existing_trail and trail.trail_arn:
        trail = _with_log_folder(config, trail)
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
        checks.append(step08_expel_role.check(config, now=now))
    checks.append(expel_role_stack.check(config, trail, queue))
    role = RoleOutput(stack_id="", status=RoleStatus.COMPLETE,
                      role_arn=f"arn:{config.partition}:iam::{config.account_id}:role/{config.role_name}")
    checks.append(step10_workbench_device.check(config, role, queue))
    report = Report.of(checks, checked_at=now.isoformat(timespec="seconds"), execution_arn=execution_arn)
    logger.info("Drift check", extra={"status": report.status, "findings": report.finding_count,
                                      "steps": {c.step: c.status for c in report.steps}})
    return report


def look_again(config: Config, report: Report, now: datetime | None = None) -> Report:
    """The next look of a check that waits for CloudFormation's drift detection (``report.pending``): each
    pending step reads it; the other steps' findings stand as the first look found them."""
    checks = [step08_expel_role.check(config, previous=c, now=now) if c.pending else c for c in report.steps]
    again = Report.of(checks, checked_at=report.checked_at, execution_arn=report.execution_arn)
    logger.info("Drift check, looked again", extra={"status": again.status, "findings": again.finding_count,
                                                     "pending": again.pending})
    return again


def _with_log_folder(config: Config, trail: TrailOutput) -> TrailOutput:
    """An existing trail's log folder, which discovery (shared with the teardown, which needs only the bucket)
    does not read: steps 7 and 8 compare their entries and the role's read grant with it. A trail that cannot
    be read leaves it empty; step 1's check says why."""
    try:
        return dataclasses.replace(trail, log_prefix=step01_existing_trail.read_log_prefix(config))
    except OnboardingError:
        return trail


def last_onboarding(state_machine_arn: str) -> dict[str, Any]:
    """A scheduled check's start: the Config and Settings of the stack's last successful onboarding."""
    given = onboarding_input(stepfunctions.list_executions(state_machine_arn), stepfunctions.describe_execution)
    return {"Config": given["Config"], "Settings": given.get("Settings", {})}


def publish(metrics: Metrics, report: Report, stack_name: str) -> None:
    """The check's finding count as the DriftFindings metric of ``stack_name`` (0 when in sync)."""
    metrics.add_dimension(name=METRIC_DIMENSION, value=stack_name)
    metrics.add_metric(name=METRIC_NAME, unit=MetricUnit.Count, value=report.finding_count)
