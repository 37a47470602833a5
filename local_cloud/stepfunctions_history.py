"""GetExecutionHistory as Step Functions pages it.

moto 5.2.5 answers every GetExecutionHistory with the whole history, oldest first, and ignores
``maxResults``, ``nextToken`` and (in its executing engine) the order. Step Functions answers at most
``maxResults`` events (default 100, at most 1000), oldest first or, with ``reverseOrder``, newest first,
and a ``nextToken`` while more remain; a token that this execution and order did not hand out is refused
with ``InvalidToken``. A reader that follows a running execution (``status --watch``, ``local deploy``)
asks for the newest events only, instead of the whole history each time.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from typing import Any

from local_cloud.once import once

DEFAULT_PAGE = 100
MAX_PAGE = 1000



def _invalid_token(detail: str) -> Exception:
    from moto.stepfunctions.exceptions import InvalidToken

    return InvalidToken(detail)


def _too_many(value: int) -> Exception:
    from moto.stepfunctions.exceptions import ValidationException

    return ValidationException(
        f"1 validation error detected: Value '{value}' at 'maxResults' failed to satisfy constraint: "
        f"Member must have value {'less than or equal to 1000' if value > MAX_PAGE else 'greater than or equal to 0'}"
    )


def encode_token(execution_arn: str, reverse: bool, next_id: int) -> str:
    text = json.dumps({"arn": execution_arn, "reverse": reverse, "next": next_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii")


def decode_token(token: str, execution_arn: str, reverse: bool) -> int:
    """The id of the event the page starts at; InvalidToken for a token of another execution or order."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        next_id = int(data["next"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _invalid_token("the token is not one GetExecutionHistory handed out") from exc
    if data.get("arn") != execution_arn or bool(data.get("reverse")) != reverse:
        raise _invalid_token("the token belongs to another execution or order")
    return next_id


def page(events: list[dict[str, Any]], execution_arn: str, max_results: int | None, reverse: bool,
         token: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``events`` (oldest first, as an execution records them) and the token for the next."""
    size = DEFAULT_PAGE if not max_results else max_results
    if not 0 <= size <= MAX_PAGE:
        raise _too_many(size)
    ordered = list(reversed(events)) if reverse else events
    if token is not None:
        start_id = decode_token(token, execution_arn, reverse)
        ordered = [e for e in ordered if (e["id"] <= start_id if reverse else e["id"] >= start_id)]
    chosen, rest = ordered[:size], ordered[size:]
    return chosen, encode_token(execution_arn, reverse, rest[0]["id"]) if rest else None


def _recorded(backend: Any, execution_arn: str) -> tuple[list[dict[str, Any]], threading.Lock | None] | None:
    """The executing engine's own event list and its lock (read without copying all of it), or None."""
    describe = getattr(backend, "describe_execution", None)
    if describe is None:
        return None
    execution = describe(execution_arn)  # refuses an unknown or malformed ARN as before
    env = getattr(getattr(execution, "exec_worker", None), "env", None)
    if env is None:
        return ([], None) if hasattr(execution, "exec_worker") else None
    manager = env.event_manager
    return manager._history_event_list, manager._mutex


def _patch_response() -> None:
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def get_execution_history(self: Any) -> ActionResult:
        arn = self._get_param("executionArn")
        max_results = self._get_int_param("maxResults")
        reverse = bool(self._get_bool_param("reverseOrder", False))
        token = self._get_param("nextToken")
        backend = self.stepfunction_backend
        recorded = _recorded(backend, arn)
        if recorded is None:  # moto's non-executing backend: its canned history
            chosen, next_token = page(backend.get_execution_history(arn)["events"], arn, max_results, reverse, token)
        else:
            events, mutex = recorded
            if mutex is None:
                chosen, next_token = page(events, arn, max_results, reverse, token)
            else:
                with mutex:  # the engine appends while the execution runs: copy only the page
                    chosen, next_token = page(list(events), arn, max_results, reverse, token)
                    chosen = copy.deepcopy(chosen)
        result: dict[str, Any] = {"events": chosen}
        if next_token:
            result["nextToken"] = next_token
        return ActionResult(result)

    StepFunctionResponse.get_execution_history = get_execution_history  # type: ignore[method-assign]


@once
def install() -> None:
    """Page GetExecutionHistory (idempotent); the local cloud and the tests' in-process moto use it."""
    _patch_response()
