"""Compressed waiting in the local cloud (``local serve --time-scale F``): the waits that AWS's own rules
impose, taken F times as long. 1 (the default) waits as AWS does.

What a run of the onboarding waits for on AWS, besides work:

* Step Functions: a ``Retry`` waits ``IntervalSeconds`` (times ``BackoffRate`` per attempt) before the
  next attempt, and a ``Wait`` state waits its ``Seconds``/``SecondsPath``. moto's engine really sleeps
  both, so a scenario that throttles every step spends most of its time asleep.
* The AWS SDK in a Lambda function: a throttled or failed call is retried after an exponential backoff
  with jitter (botocore's standard mode, up to 20 s a try).

The template and its state machine are deployed unchanged (the ASL's intervals stay what customers get):
only the emulator's clock for these waits runs faster. Every retry still happens, in the same order and
the same number of times; timeouts (a Lambda's ``Timeout``, an execution's ``TimeoutSeconds``) are not
scaled. The tests' local clouds run with a small factor; ``local serve`` and ``demo`` default to 1.
"""

from __future__ import annotations

import time
from typing import Any

from local_cloud.once import once

#: Environment variable the Lambda runner sets in execution environments (read by _lambda_bootstrap).
SDK_BACKOFF_VARIABLE = "_LOCAL_SDK_BACKOFF_SCALE"

_scale = 1.0


def scale() -> float:
    return _scale


def configure(factor: float) -> None:
    """Every later Retry interval, Wait state and (in Lambda environments started later) SDK backoff takes
    ``factor`` times as long. Installs the engine patches the first time (idempotent)."""
    global _scale
    if not 0 < factor <= 1:
        raise ValueError(f"time scale must be more than 0 and at most 1, got {factor:g}")
    _scale = factor
    _install()


class _ScaledSleep:
    """What moto's retrier module uses of ``time``: ``sleep``, scaled."""

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds * _scale)


@once
def _install() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    # RetrierDecl._eval_body computes the interval (IntervalSeconds, BackoffRate, MaxDelaySeconds, jitter)
    # and ends in time.sleep(interval): the module's `time` is the one name to replace.
    retrier_decl.time = _ScaledSleep  # type: ignore[assignment]

    def _wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        # moto's version re-enters the wait on whole seconds left, so it cannot wait a fraction of one.
        # As there: the wait ends early when the execution stops (program_state_event wakes it), and
        # goes on after any other wake-up.
        deadline = time.monotonic() + wait_seconds * _scale
        while env.is_running() and (left := deadline - time.monotonic()) > 0:
            env.program_state_event.wait(left)

    WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]
