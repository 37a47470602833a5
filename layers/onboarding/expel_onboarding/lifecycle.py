"""The custom resource's lifecycle: start the onboarding, answer CloudFormation when it ends.

Two paths answer. The fast one: the state machine's last state calls ``report_success`` within
seconds of the work ending. The poll: crhelper calls ``poll`` every minute and answers everything
else — a failed step (at once without a retry window, else when the window has run out), an aborted
execution, a missed deadline — and a success the fast path could not report. A failed step is not
caught inside the state machine: the execution fails in that step, so a Redrive resumes there (a
redriven execution keeps its ARN, and its own Report Success answers). CloudFormation keeps the first
answer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from expel_onboarding import cfn_response, custom_resource
from expel_onboarding.aws import events, stepfunctions
from expel_onboarding.custom_resource import Outcome
from expel_onboarding.execution_history import console_url, failed_step

logger = Logger(child=True)

TERMINAL_FAILURES = ("FAILED", "TIMED_OUT", "ABORTED")


def start(event: dict[str, Any], state_machine_arn: str) -> str:
    name = custom_resource.execution_name(event["RequestType"], event["RequestId"])
    arn = stepfunctions.start_execution(state_machine_arn, name, custom_resource.execution_input(event))
    logger.info("Onboarding execution started", extra={"execution_arn": arn})
    return arn


def stop_onboardings(state_machine_arn: str) -> list[str]:
    """Before a teardown or an update: an onboarding still running (past its deadline, or a retry a
    person started) would race the new execution. Returns the stopped executions."""
    running = [e["executionArn"] for e in stepfunctions.list_executions(state_machine_arn)
               if e["status"] == "RUNNING" and not e.get("name", "").startswith("delete-")]
    for arn in running:
        stepfunctions.stop_execution(arn, "A newer CloudFormation request takes over")
        logger.warning("Stopped an onboarding still running", extra={"execution_arn": arn})
    return running


def _answer(cloudformation: dict[str, Any], status: str, reason: str = "",
            data: dict[str, str] | None = None) -> None:
    body = cfn_response.response_body(cloudformation, status, cloudformation["PhysicalResourceId"],
                                      reason, data)
    cfn_response.send(cloudformation["ResponseURL"], body)
    if cloudformation.get("RequestType") == "Delete" and cloudformation.get("ServiceToken"):
        # CloudFormation deletes the trigger right after this answer: its poll rule cannot remove itself.
        events.remove_poll_rules(cloudformation["ServiceToken"], cloudformation["LogicalResourceId"])


def report_success(state: dict[str, Any]) -> dict[str, str]:
    data = custom_resource.outputs(state)
    _answer(state["CloudFormation"], "SUCCESS", "Onboarding complete", data)
    return data


def failure_reason(execution_arn: str, region: str) -> str:
    """The newest failure in the history: after a redrive that failed again, that one."""
    failure = failed_step(stepfunctions.history(execution_arn))
    return custom_resource.failure_reason(failure, region, execution_arn)


def _seconds_since(moment: datetime | None, now: datetime) -> float:
    if moment is None:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (now - moment).total_seconds()


def poll(execution_arn: str, state_machine_arn: str, settings: dict[str, int],
         now: datetime | None = None) -> Outcome:
    now = now or datetime.now(UTC)
    execution = stepfunctions.describe_execution(execution_arn)
    region = execution_arn.split(":")[3]
    started = execution.get("startDate")
    deadline = settings["DeadlineSeconds"] - custom_resource.DEADLINE_MARGIN_SECONDS
    past_deadline = _seconds_since(started, now) > deadline
    status = execution["status"]
    if status == "SUCCEEDED":
        return Outcome("SUCCESS", custom_resource.outputs(json.loads(execution.get("output") or "{}")))
    if status in ("RUNNING", "PENDING_REDRIVE"):
        if past_deadline:
            # Stop it: CloudFormation rolls back next, and a rollback racing a live execution could leave
            # the account in the new state while the stack says the old one.
            stepfunctions.stop_execution(execution_arn, f"Past the {deadline} s deadline: CloudFormation was answered")
            url = console_url(region, execution_arn)
            return Outcome("FAILED", reason=f"Onboarding did not finish within {deadline} s | Execution: {url}")
        return Outcome("PENDING")
    retry = _retry_of(execution, state_machine_arn)
    if retry is not None:
        if retry["status"] == "SUCCEEDED":
            described = stepfunctions.describe_execution(retry["executionArn"])
            return Outcome("SUCCESS", custom_resource.outputs(json.loads(described.get("output") or "{}")))
        if retry["status"] == "RUNNING":
            if not past_deadline:
                return Outcome("PENDING")
            stepfunctions.stop_execution(retry["executionArn"], "Past the deadline: CloudFormation was answered")
    window = settings["RetryWindowSeconds"]
    if status == "ABORTED" or past_deadline or _seconds_since(execution.get("stopDate"), now) >= window:
        return Outcome("FAILED", reason=failure_reason(execution_arn, region))
    return Outcome("PENDING")


def _retry_of(execution: dict[str, Any], state_machine_arn: str) -> dict[str, Any] | None:
    """The newest later execution started with this one's CloudFormation request: a retry."""
    request_id = json.loads(execution.get("input") or "{}").get("CloudFormation", {}).get("RequestId")
    later = [e for e in stepfunctions.list_executions(state_machine_arn)
             if e["executionArn"] != execution["executionArn"] and e["startDate"] > execution["startDate"]]
    for candidate in sorted(later, key=lambda e: e["startDate"], reverse=True):
        described = stepfunctions.describe_execution(candidate["executionArn"])
        same = json.loads(described.get("input") or "{}").get("CloudFormation", {}).get("RequestId")
        if same == request_id:
            return described
    return None
