"""``RedriveExecution`` for moto 5.2.5's Step Functions engine (``moto/stepfunctions/parser``), as AWS has it.

moto has no RedriveExecution, so the retry a person makes from the Step Functions console ("Redrive") could not
be rehearsed. What Step Functions does, and what this module makes moto's engine do
(https://docs.aws.amazon.com/step-functions/latest/dg/redrive-executions.html):

- A FAILED, TIMED_OUT or ABORTED execution of a STANDARD state machine restarts from the state that was running
  when it stopped, with that state's input, under the same execution ARN; the states that succeeded are not run
  again. A Task runs again (its retry count starts at 0), a Fail state is entered again and fails again (so an
  error a Catch routed to a Fail state cannot be redriven past), a Parallel state runs again only the branches
  that did not succeed (inside each, from the state that stopped), using the saved output of the others.
  An inline Map state runs again as a whole (Step Functions would run only its failed iterations).
- Refusals, ``ExecutionNotRedrivable`` with the reasons DescribeExecution gives as ``redriveStatusReason``:
  RUNNING, SUCCEEDED, stopped more than 14 days ago, 24,999 history events or more; EXPRESS state machines.
  A clientToken seen in the last 15 minutes (the last 10 are kept) answers again with its redriveDate.
- DescribeExecution: ``redriveCount`` (0 until redriven), ``redriveDate``, ``redriveStatus`` (REDRIVABLE /
  NOT_REDRIVABLE) and ``redriveStatusReason``; ListExecutions: ``redriveFilter`` (REDRIVEN / NOT_REDRIVEN) and
  ``redriveCount``/``redriveDate`` on each item; ``stopDate`` also for TIMED_OUT executions.
- History: an ``ExecutionRedriven`` event (``executionRedrivenEventDetails.redriveCount``) after the original
  events, then the redriven states' events; ``$$.Execution.RedriveCount`` / ``RedriveTime`` in the context object.

How: every state records, on the Environment (frame) it runs in, its name and input when it is entered; a
Parallel state that failed records how each branch ended. A redrive evaluates the program again in a fresh
Environment that shares the execution's event history, starting at the recorded state.
"""

from __future__ import annotations

import copy
import datetime
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from local_cloud.once import once

REDRIVABLE_PERIOD = datetime.timedelta(days=14)
HISTORY_EVENT_LIMIT = 24_999
CLIENT_TOKEN_LIFETIME = datetime.timedelta(minutes=15)
CLIENT_TOKENS_KEPT = 10

_lock = threading.RLock()


@dataclass
class Checkpoint:
    """Where a program (the execution, or one Parallel branch) was when it stopped: the state last entered."""

    state: str
    input: Any
    # When that state is a Parallel state that failed: how each of its branches ended.
    branches: list[BranchOutcome] | None = None


@dataclass
class BranchOutcome:
    succeeded: bool
    output: Any = None
    checkpoint: Checkpoint | None = None  # an unfinished branch: where it stopped (None: never entered a state)


@dataclass
class RedriveRecord:
    """Per execution: how often and when it was redriven, and the client tokens that did it."""

    count: int = 0
    date: datetime.datetime | None = None
    tokens: dict[str, tuple[datetime.datetime, datetime.datetime]] = field(default_factory=dict)


def _not_redrivable(reason: str) -> Exception:
    from moto.core.exceptions import AWSError

    class ExecutionNotRedrivable(AWSError):
        TYPE = "ExecutionNotRedrivable"
        STATUS = 400

    return ExecutionNotRedrivable(reason)


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def record_of(execution: Any) -> RedriveRecord:
    record = getattr(execution, "_redrive", None)
    if record is None:
        record = RedriveRecord()
        execution._redrive = record
    return record


# ------------------------------------------------------------------------------------------- the engine
def _patch_state_entry() -> None:
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField

    original = CommonStateField._eval_body

    def _eval_body(self: Any, env: Any) -> None:
        env._redrive_checkpoint = Checkpoint(self.name, env.states.get_input())
        original(self, env)

    CommonStateField._eval_body = _eval_body  # type: ignore[method-assign]


def _patch_program_start() -> None:
    """A program given a checkpoint starts at that state with that input instead of at StartAt."""
    from moto.stepfunctions.parser.asl.component.program.program import Program
    from moto.stepfunctions.parser.utils import TMP_THREADS

    def eval(self: Any, env: Any) -> None:  # noqa: A001 - moto's name
        timeout = self.timeout_seconds.timeout_seconds if self.timeout_seconds else None
        plan: Checkpoint | None = env.__dict__.pop("_redrive_plan", None)
        if plan is not None and plan.state in self.states.states:
            env.next_state_name = plan.state
            env.states.reset(input_value=plan.input)
            env._redrive_branches = plan.branches
        else:
            env.next_state_name = self.start_at.start_at_name
        if timeout is not None:  # each run (the first and every redrive) has its own TimeoutSeconds
            env._execution_deadline = time.monotonic() + timeout
        worker_thread = threading.Thread(target=super(Program, self).eval, args=(env,), daemon=True)
        TMP_THREADS.append(worker_thread)
        worker_thread.start()
        worker_thread.join(timeout=timeout)
        if worker_thread.is_alive():
            env.set_timed_out()

    Program.eval = eval  # type: ignore[method-assign]


def _patch_end_after_deadline() -> None:
    """An execution that reaches its end after its TimeoutSeconds has TIMED_OUT, as on Step Functions. moto's
    watcher thread wakes at the deadline to say so, but on a busy machine the program can end first (a Wait
    longer than the timeout then SUCCEEDED): the deadline, not the watcher's wake-up, decides."""
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    original = Environment.set_ended

    def set_ended(self: Any) -> None:
        deadline = self.__dict__.get("_execution_deadline")
        if deadline is not None and time.monotonic() >= deadline and self.is_running():
            self.set_timed_out()
            return
        original(self)

    Environment.set_ended = set_ended  # type: ignore[method-assign]


def _patch_frames() -> None:
    """A frame a state runs its work in (moto's timeout frame) knows the env of that state."""
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    original = Environment.open_frame

    def open_frame(self: Any, event_history_context: Any = None) -> Any:
        frame = original(self, event_history_context)
        frame._redrive_owner = getattr(self, "_redrive_owner", self)
        return frame

    Environment.open_frame = open_frame  # type: ignore[method-assign]


def _patch_parallel_branches() -> None:
    """moto's BranchesDecl, plus: record how each branch ended when one failed, and on a redrive run only the
    branches that did not succeed."""
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branch_worker import BranchWorker
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branches_decl import (
        BranchesDecl,
        BranchWorkerPool,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded

    def _eval_body(self: Any, env: Any) -> None:
        input_val = env.stack.pop()
        owner = getattr(env, "_redrive_owner", env)  # the Parallel state's env (it runs in a timeout frame)
        plan: list[BranchOutcome] | None = owner.__dict__.pop("_redrive_branches", None)
        if plan is not None and len(plan) != len(self.programs):
            plan = None
        results: dict[int, Any] = {}
        workers: dict[int, BranchWorker] = {}
        to_run = [i for i in range(len(self.programs)) if plan is None or not plan[i].succeeded]
        for index in range(len(self.programs)):
            if index not in to_run:
                results[index] = copy.deepcopy(plan[index].output)  # type: ignore[index]
        pool = BranchWorkerPool(workers_num=len(to_run))
        for index in to_run:
            env_frame = env.open_inner_frame()
            env_frame.states.reset(input_value=input_val)
            if plan is not None and plan[index].checkpoint is not None:
                env_frame._redrive_plan = plan[index].checkpoint
            workers[index] = BranchWorker(branch_worker_comm=pool, program=self.programs[index], env=env_frame)
        for index in to_run:
            workers[index].start()
        if to_run:
            pool.wait()

        exit_event_details: ExecutionFailedEventDetails | None = pool.get_exit_event_details()
        if exit_event_details is not None:
            for worker in workers.values():
                worker.stop(stop_date=datetime.datetime.now(), cause=None, error=None)
            outcomes: list[BranchOutcome] = []
            for index in range(len(self.programs)):
                if index in results:
                    outcomes.append(BranchOutcome(succeeded=True, output=results[index]))
                    continue
                frame = workers[index].env
                if isinstance(frame.program_state(), ProgramEnded):
                    outcomes.append(BranchOutcome(succeeded=True, output=frame.states.get_input()))
                else:
                    outcomes.append(
                        BranchOutcome(succeeded=False, checkpoint=getattr(frame, "_redrive_checkpoint", None))
                    )
            for worker in workers.values():
                env.close_frame(worker.env)
            checkpoint = getattr(owner, "_redrive_checkpoint", None)
            if checkpoint is not None:
                checkpoint.branches = outcomes
            raise FailureEventException(
                failure_event=FailureEvent(
                    env=env,
                    error_name=CustomErrorName(error_name=exit_event_details.get("error")),
                    event_type=HistoryEventType.ExecutionFailed,
                    event_details=EventDetails(executionFailedEventDetails=exit_event_details),
                )
            )

        for index, worker in workers.items():
            results[index] = worker.env.states.get_input()
            env.close_frame(worker.env)
        env.stack.append([results[index] for index in range(len(self.programs))])

    BranchesDecl._eval_body = _eval_body  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------- the execution
def not_redrivable_reason(execution: Any, now: datetime.datetime | None = None) -> str | None:
    """Why RedriveExecution would refuse this execution now (Step Functions' redriveStatusReason), or None."""
    from moto.stepfunctions.parser.api import StateMachineType

    now = now or _now()
    if _machine_type(execution) == StateMachineType.EXPRESS:
        return "Execution of an EXPRESS state machine cannot be redriven"
    status = execution.status
    if status in ("RUNNING", "SUCCEEDED"):
        return f"Execution is {status} and cannot be redriven"
    stopped = execution.stop_date
    if stopped is not None:
        if stopped.tzinfo is None:
            stopped = stopped.replace(tzinfo=datetime.UTC)
        if now - stopped > REDRIVABLE_PERIOD:
            return "Execution redrivable period exceeded"
    if len(_history(execution)) >= HISTORY_EVENT_LIMIT:
        return "Execution history event limit exceeded"
    return None


def _machine_type(execution: Any) -> str | None:
    # moto keeps the type a state machine was created with in ``type`` (``sm_type`` always says STANDARD).
    return getattr(getattr(execution, "state_machine", None), "type", None) or getattr(execution, "sm_type", None)


def _history(execution: Any) -> list[dict[str, Any]]:
    worker = getattr(execution, "exec_worker", None)
    env = getattr(worker, "env", None)
    return env.event_manager.get_event_history() if env is not None else []


def redrive(execution: Any, client_token: str | None = None) -> datetime.datetime:
    """Restart an unsuccessful execution from where it stopped; returns the redriveDate."""
    from moto.stepfunctions.parser.api import ExecutionStatus, HistoryEventType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    with _lock:
        now = _now()
        record = record_of(execution)
        for token, (first_used, _) in list(record.tokens.items()):
            if now - first_used > CLIENT_TOKEN_LIFETIME:
                del record.tokens[token]
        if client_token and client_token in record.tokens:
            return record.tokens[client_token][1]
        reason = not_redrivable_reason(execution, now)
        if reason:
            raise _not_redrivable(reason)

        worker = execution.exec_worker
        old_env = worker.env
        checkpoint: Checkpoint | None = getattr(old_env, "_redrive_checkpoint", None)
        record.count += 1
        record.date = now
        if client_token:
            record.tokens[client_token] = (now, now)
            while len(record.tokens) > CLIENT_TOKENS_KEPT:
                del record.tokens[next(iter(record.tokens))]

        # A fresh Environment: a timed-out program's thread may still hold the old one (it stops at its next
        # state); the history, variables and Map runs carry over.
        env = worker._get_evaluation_environment()
        env.event_manager = old_env.event_manager
        env.variable_store = old_env.variable_store
        env.map_run_record_pool_manager = old_env.map_run_record_pool_manager
        execution_data = env.states.context_object.context_object_data["Execution"]
        execution_data["RedriveCount"] = record.count
        execution_data["RedriveTime"] = now.isoformat()
        history = old_env.event_manager.get_event_history()
        last_event = history[-1]["id"] if history else 0
        env.event_history_context.source_event_id = last_event
        env.event_history_context.last_published_event_id = last_event
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            event_details=EventDetails(executionRedrivenEventDetails={"redriveCount": record.count}),  # type: ignore[typeddict-unknown-key]
        )
        if checkpoint is not None:
            env._redrive_plan = checkpoint
        worker.env = env
        execution.exec_status = ExecutionStatus.RUNNING
        execution.stop_date = None
        execution.error = None
        execution.cause = None
        execution.output = None

    def run() -> None:
        program = worker._get_evaluation_entrypoint()
        program.eval(env)
        worker._execution_communication.terminated()

    from moto.stepfunctions.parser.utils import TMP_THREADS

    thread = threading.Thread(target=run, name=f"redrive-{execution.name}", daemon=True)
    TMP_THREADS.append(thread)
    thread.start()
    return now


def redrive_fields(execution: Any) -> dict[str, Any]:
    """DescribeExecution's redrive members for a STANDARD execution."""
    record = record_of(execution)
    fields: dict[str, Any] = {"redriveCount": record.count}
    if record.date is not None:
        fields["redriveDate"] = record.date
    reason = not_redrivable_reason(execution)
    fields["redriveStatus"] = "NOT_REDRIVABLE" if reason else "REDRIVABLE"
    if reason:
        fields["redriveStatusReason"] = reason
    return fields


# ------------------------------------------------------------------------------------------------ the API
def _patch_responses() -> None:
    from moto.core.responses import ActionResult
    from moto.stepfunctions.parser.api import StateMachineType
    from moto.stepfunctions.responses import StepFunctionResponse
    from moto.stepfunctions.utils import PAGINATION_MODEL
    from moto.utilities.paginator import paginate

    def redrive_execution(self: Any) -> ActionResult:
        arn = self._get_param("executionArn")
        execution = self.stepfunction_backend.describe_execution(arn)
        if not hasattr(execution, "exec_worker"):
            raise _not_redrivable("Executions are redriven only when Step Functions executes state machines")
        return ActionResult({"redriveDate": redrive(execution, self._get_param("clientToken"))})

    StepFunctionResponse.redrive_execution = redrive_execution  # type: ignore[attr-defined]

    def _standard(execution: Any) -> bool:
        return hasattr(execution, "exec_worker") and _machine_type(execution) != StateMachineType.EXPRESS

    original_describe = StepFunctionResponse.describe_execution

    def describe_execution(self: Any) -> ActionResult:
        result = original_describe(self)
        response = result.result
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        if isinstance(response, dict):
            if execution.status == "TIMED_OUT" and execution.stop_date is not None:
                response["stopDate"] = execution.stop_date
            if _standard(execution):
                response.update(redrive_fields(execution))
        return result

    StepFunctionResponse.describe_execution = describe_execution  # type: ignore[method-assign]

    def list_executions_of(backend: Any, arn: str, status_filter: str | None, redrive_filter: str | None) -> list[Any]:
        executions = list(backend.describe_state_machine(arn).executions)
        if status_filter:
            executions = [e for e in executions if e.status == status_filter]
        if redrive_filter:
            redriven = redrive_filter == "REDRIVEN"
            executions = [e for e in executions if (record_of(e).count > 0) == redriven]
        return sorted(executions, key=lambda e: e.start_date, reverse=True)

    # moto's paginator finds its settings by the method's name.
    list_executions_of.__name__ = "list_executions"
    paginated = paginate(pagination_model=PAGINATION_MODEL)(list_executions_of)

    def list_executions(self: Any) -> ActionResult:
        arn = self._get_param("stateMachineArn")
        redrive_filter = self._get_param("redriveFilter")
        if redrive_filter not in (None, "REDRIVEN", "NOT_REDRIVEN"):
            from moto.stepfunctions.exceptions import ValidationException

            raise ValidationException(
                f"1 validation error detected: Value '{redrive_filter}' at 'redriveFilter' failed to satisfy "
                "constraint: Member must satisfy enum value set: [REDRIVEN, NOT_REDRIVEN]"
            )
        state_machine = self.stepfunction_backend.describe_state_machine(arn)
        results, next_token = paginated(
            self.stepfunction_backend,
            arn,
            self._get_param("statusFilter"),
            redrive_filter,
            max_results=self._get_int_param("maxResults"),
            next_token=self._get_param("nextToken"),
        )
        items = []
        for execution in results:
            item: dict[str, Any] = {
                "executionArn": execution.execution_arn,
                "name": execution.name,
                "startDate": execution.start_date,
                "stateMachineArn": state_machine.arn,
                "status": execution.status,
            }
            if execution.status != "RUNNING" and execution.stop_date is not None:
                item["stopDate"] = execution.stop_date
            if _standard(execution):
                record = record_of(execution)
                item["redriveCount"] = record.count
                if record.date is not None:
                    item["redriveDate"] = record.date
            items.append(item)
        return ActionResult({"executions": items, "nextToken": next_token})

    StepFunctionResponse.list_executions = list_executions  # type: ignore[method-assign]


@once
def install() -> None:
    """Apply the engine and API patches (idempotent); the local cloud and the tests' in-process moto use it."""
    _patch_state_entry()
    _patch_program_start()
    _patch_end_after_deadline()
    _patch_frames()
    _patch_parallel_branches()
    _patch_responses()
