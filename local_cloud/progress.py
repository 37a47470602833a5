"""Show a stack's progress as it happens: CloudFormation events and the state machine's steps.

``Progress.poll()`` writes only what is new since the previous call, so a caller polls it while it
waits (``local deploy``, ``demo``, ``status --watch``); once the stack has finished, ``Progress.view()``
is the same ``status.StatusView`` that ``cloudtrail-onboarding status`` renders, so every command ends
with one view of the onboarding.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from local_cloud import status
from local_cloud.status import clock as _clock
from local_cloud.status import error_text as _error_text
from local_cloud.status import short as _short

# Events read per GetExecutionHistory call while following an execution (more pages when more are new): a
# poll half a second after the last usually finds a few, and each event read costs the server its input or
# output to serialize (a few KB each for the onboarding's state); pages of 20 cost 0.9 s of its CPU a deploy.
HISTORY_PAGE = 6
STEP_EVENTS = {
    "ExecutionStarted": "execution started",
    "ExecutionSucceeded": "execution SUCCEEDED",
    "ExecutionFailed": "execution FAILED",
    "ExecutionTimedOut": "execution TIMED_OUT",
    "ExecutionAborted": "execution ABORTED",
    "ExecutionRedriven": "execution redriven",
}


class Progress:
    """Polls one stack's events and its state machines' executions, writing new lines through ``write``."""

    def __init__(
        self,
        cfn: Any,
        sfn: Any,
        stack_name: str | None,
        write: Callable[[str], None],
        since: datetime | None = None,
        execution_arn: str | None = None,
    ) -> None:
        """``since``: show only what happened from then on (an update or delete of an existing stack).
        ``execution_arn`` without ``stack_name``: follow that one execution only."""
        self.since = since
        self.execution_arn = execution_arn
        self.cfn = cfn
        self.sfn = sfn
        self.stack_name = stack_name
        self.write = write
        self._seen_stack_events: set[str] = set()
        self._seen_history: dict[str, int] = {}
        self._state_machines: set[str] = set()
        self._stack_id: str | None = None  # a deleted stack is found by id only

    def poll(self) -> None:
        try:
            if self.stack_name:
                self._stack_events()
            self._executions()
        except Exception as exc:  # progress must never break the command it decorates
            if "does not exist" not in str(exc):
                self.write(f"  (progress unavailable: {_short(str(exc), 100)})")

    def _stack_events(self) -> None:
        try:
            events = self.cfn.describe_stack_events(StackName=self.stack_name)["StackEvents"]
        except Exception:
            if self._stack_id is None:
                raise
            events = self.cfn.describe_stack_events(StackName=self._stack_id)["StackEvents"]
        for event in sorted(events, key=lambda e: e["Timestamp"]):
            self._stack_id = event["StackId"]
            if event["EventId"] in self._seen_stack_events:
                continue
            self._seen_stack_events.add(event["EventId"])
            if self._old(event["Timestamp"]):
                continue
            reason = event.get("ResourceStatusReason")
            line = (
                f"  {_clock(event['Timestamp'])}  {event['ResourceStatus']:<20} "
                f"{event['LogicalResourceId']} ({event['ResourceType']})"
            )
            self.write(line + (f": {_short(reason)}" if reason else ""))
            if event["ResourceType"] == "AWS::StepFunctions::StateMachine" and event.get("PhysicalResourceId"):
                self._state_machines.add(event["PhysicalResourceId"])

    def view(self, region: str, local: bool = False) -> status.StatusView:
        """The stack's (or the followed execution's) status view, read now (a deleted stack by its id)."""
        try:
            return status.collect(self.cfn, self.sfn, region, self.stack_name, self.execution_arn, local=local)
        except status.NotFound:
            if not self._stack_id:
                raise
            return status.collect(self.cfn, self.sfn, region, self._stack_id, self.execution_arn, local=local)

    def skip_existing(self) -> None:
        """Take everything that already happened as seen, without writing it (``status --watch``)."""
        write, self.write = self.write, lambda line: None
        try:
            self.poll()
        finally:
            self.write = write

    def _executions(self) -> None:
        if self.execution_arn and not self.stack_name:
            self._history(self.execution_arn, self.execution_arn.rsplit(":", 1)[-1])
            return
        if not self._state_machines:  # created before ``since``: not among the events shown
            self._discover_state_machines()
        for arn in sorted(self._state_machines):
            if not arn.startswith("arn:"):
                continue
            try:
                executions = self.sfn.list_executions(stateMachineArn=arn).get("executions", [])
            except self.sfn.exceptions.StateMachineDoesNotExist:
                self._state_machines.discard(arn)  # deleted with the stack
                continue
            for execution in executions:
                if self._old(execution["startDate"]):
                    continue
                self._history(
                    execution["executionArn"], execution.get("name") or execution["executionArn"].rsplit(":", 1)[-1]
                )

    def _discover_state_machines(self) -> None:
        try:
            resources = self.cfn.list_stack_resources(StackName=self._stack_id or self.stack_name)
        except Exception:
            return
        for resource in resources.get("StackResourceSummaries", []):
            if resource["ResourceType"] == "AWS::StepFunctions::StateMachine":
                self._state_machines.add(resource.get("PhysicalResourceId", ""))

    def _old(self, when: Any) -> bool:
        return self.since is not None and isinstance(when, datetime) and when < self.since

    def _history(self, execution_arn: str, name: str) -> None:
        seen = self._seen_history.get(execution_arn, 0)
        for event in self._new_events(execution_arn, seen):
            seen = event["id"]
            text = self._describe(event)
            if text:
                self.write(f"  {_clock(event['timestamp'])}  execution {name[:12]}: {text}")
        self._seen_history[execution_arn] = seen

    def _new_events(self, execution_arn: str, seen: int) -> list[dict[str, Any]]:
        """The events after ``seen``, oldest first: read newest first, page by page, until one already seen
        (a running execution's whole history is not read again at each poll)."""
        new: list[dict[str, Any]] = []
        request: dict[str, Any] = {"executionArn": execution_arn, "reverseOrder": True, "maxResults": HISTORY_PAGE}
        while True:
            answer = self.sfn.get_execution_history(**request)
            events = answer.get("events", [])
            new.extend(event for event in events if event["id"] > seen)
            if not answer.get("nextToken") or any(event["id"] <= seen for event in events):
                return sorted(new, key=lambda event: event["id"])
            request["nextToken"] = answer["nextToken"]

    @staticmethod
    def _describe(event: dict) -> str | None:
        """The lines a person follows: steps (Task, Parallel, Map) entered, failures, the outcome.
        Pass, Choice and Wait states of polling loops would drown them."""
        kind = event["type"]
        if kind in STEP_EVENTS:
            details = event.get("executionFailedEventDetails") or {}
            return STEP_EVENTS[kind] + (f" ({_error_text(details)})" if details else "")
        if kind in ("TaskStateEntered", "ParallelStateEntered", "MapStateEntered"):
            return event["stateEnteredEventDetails"]["name"]
        if kind in ("LambdaFunctionFailed", "TaskFailed", "LambdaFunctionTimedOut", "TaskTimedOut"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            return f"step failed: {_short(_error_text(details))}"
        return None
