"""Step Functions: start the onboarding execution, read its outcome and where it failed."""

from __future__ import annotations

import json
from typing import Any

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import suppress_codes


def start_execution(state_machine_arn: str, name: str, execution_input: dict[str, Any]) -> str:
    """Start (or find) the execution called ``name``.

    Step Functions treats a repeated StartExecution with the same name and input as the same
    execution, so a re-delivered CloudFormation request never starts a second onboarding.
    """
    with suppress_codes("ExecutionAlreadyExists"):
        response = clients.stepfunctions().start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input))
        return str(response["executionArn"])
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


def describe_execution(execution_arn: str) -> dict[str, Any]:
    return dict(clients.stepfunctions().describe_execution(executionArn=execution_arn))


def list_executions(state_machine_arn: str) -> list[dict[str, Any]]:
    paginator = clients.stepfunctions().get_paginator("list_executions")
    return [dict(e) for page in paginator.paginate(stateMachineArn=state_machine_arn) for e in page["executions"]]


def history(execution_arn: str) -> list[dict[str, Any]]:
    paginator = clients.stepfunctions().get_paginator("get_execution_history")
    return [dict(e) for page in paginator.paginate(executionArn=execution_arn) for e in page["events"]]


def stop_execution(execution_arn: str, cause: str) -> None:
    """Stop a running execution; one that ended meanwhile is fine."""
    with suppress_codes("ExecutionDoesNotExist"):
        clients.stepfunctions().stop_execution(executionArn=execution_arn, error="StackDelete", cause=cause)
