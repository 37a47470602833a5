"""What a Step Functions execution history says: which state each event belongs to, and what failed.

Pure (no boto3). One attribution for everyone who names a failed step: the custom resource's answer to
CloudFormation and the ``status`` view a person reads.

Events of parallel branches interleave, and a Lambda's failure is three events away from its state's
``...StateEntered`` (Scheduled, Started, Failed), so "the latest state entered before the failure" can be
the other branch's state. Each event is attributed by following its ``previousEventId`` chain back to
the ``...StateEntered`` event that began it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Details of the events that end an attempt or an execution unsuccessfully.
FAILURE_DETAILS = (
    "lambdaFunctionFailedEventDetails", "lambdaFunctionTimedOutEventDetails", "lambdaFunctionStartFailedEventDetails",
    "lambdaFunctionScheduleFailedEventDetails", "taskFailedEventDetails", "taskTimedOutEventDetails",
    "taskStartFailedEventDetails", "taskSubmitFailedEventDetails", "executionFailedEventDetails",
    "executionTimedOutEventDetails", "executionAbortedEventDetails",
)
EXECUTION_ENDS = ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted")
# States that only hold branches: an event without a chain is never theirs.
CONTAINERS = ("Parallel",)


def owning_states(events: list[dict[str, Any]]) -> dict[Any, str | None]:
    """Event id -> the name of the state the event belongs to (None: none, e.g. the execution's start).

    A ``...StateEntered`` event begins its state's chain and ``...StateExited`` ends it; every other event
    belongs to the state its ``previousEventId`` belongs to. A history without ``previousEventId`` falls
    back to the one state still open, if exactly one is.
    """
    owner: dict[Any, str | None] = {}
    carries: dict[Any, str | None] = {}  # what an event chained after this one belongs to
    open_states: list[str] = []
    for event in sorted(events, key=lambda e: e["id"]):
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            owner[event["id"]] = carries[event["id"]] = name
            if kind[: -len("StateEntered")] not in CONTAINERS:
                open_states.append(name)
            continue
        if kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            owner[event["id"]], carries[event["id"]] = name, None
            if name in open_states:
                open_states.remove(name)
            continue
        name = carries.get(event.get("previousEventId") or -1)
        if name is None and len(open_states) == 1:
            name = open_states[0]
        owner[event["id"]] = carries[event["id"]] = name
    return owner


@dataclass(frozen=True)
class Failure:
    step: str
    error: str
    cause: str


def failed_step(events: list[dict[str, Any]]) -> Failure:
    """Which state failed and why, in the execution's latest attempt (a redrive starts a new one).

    An execution that FAILED repeats the error of the state that failed it: that state's failure event
    names the step. A TIMED_OUT or ABORTED one (or a failure no state raised, such as a bad path) names the
    state it ended in. A Lambda's ``cause`` is its exception as JSON: we keep its message.
    """
    owner = owning_states(events)
    ordered = sorted(events, key=lambda e: e["id"])
    redriven = [i for i, e in enumerate(ordered) if e["type"] == "ExecutionRedriven"]
    attempt = ordered[redriven[-1] + 1:] if redriven else ordered
    state_failures = [e for e in attempt if e["type"] not in EXECUTION_ENDS and _details(e) is not None]
    ends = [e for e in attempt if e["type"] in EXECUTION_ENDS]
    chosen = ends[-1] if ends else (state_failures[-1] if state_failures else None)
    if chosen is None:
        return Failure(step="unknown step", error="", cause="")
    details = _details(chosen) or {}
    if ends and state_failures:
        last = _details(state_failures[-1]) or {}
        if (last.get("error"), last.get("cause")) == (details.get("error"), details.get("cause")):
            chosen, details = state_failures[-1], last
    return Failure(step=owner.get(chosen["id"]) or "unknown step", error=details.get("error") or chosen["type"],
                   cause=cause_message(details.get("cause", "")))


def _details(event: dict[str, Any]) -> dict[str, Any] | None:
    return next((event[k] for k in FAILURE_DETAILS if k in event), None)


def console_url(region: str, execution_arn: str) -> str:
    """Where a person reads the execution (and redrives it) in the Step Functions console."""
    return (f"https://{region}.console.aws.amazon.com/states/home?region={region}"
            f"#/v2/executions/details/{execution_arn}")


def cause_message(cause: str) -> str:
    """The message of a Lambda error's JSON ``cause`` (or the cause as it is)."""
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        return cause
    if isinstance(parsed, dict):
        return str(parsed.get("errorMessage") or parsed.get("Cause") or cause)
    return cause
