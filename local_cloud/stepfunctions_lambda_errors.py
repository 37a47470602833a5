"""Lambda's own refusals in a Task state named as Step Functions names them (moto 5.2.5 calls them "Exception").

When Step Functions cannot invoke a Task's function (Lambda throttles, fails on its side, or refuses),
the state fails with ``Lambda.<error code>``: ``Lambda.TooManyRequestsException``,
``Lambda.ServiceException``, ``Lambda.AWSLambdaException``... so a ``Retry`` on those names (AWS's advice
for every Lambda task) retries it. moto's engine does this for the ``arn:aws:states:::lambda:invoke``
integration but reports a function ARN used directly as ``Resource`` (this template's tasks) as a bare
``Exception``, which no Retry lists: one throttled Invoke failed the whole onboarding.
"""

from __future__ import annotations

from typing import Any

from local_cloud.once import once


@once
def install() -> None:
    """Idempotent; installed from ``moto_patches.apply``."""
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
        StateTaskServiceLambda,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original = StateTaskLambda._from_error

    def _from_error(self: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, ClientError):
            return original(self, env, ex)
        error, cause = StateTaskServiceLambda._error_cause_from_client_error(ex)
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(error),
            event_type=HistoryEventType.LambdaFunctionFailed,
            event_details=EventDetails(
                lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(error=error, cause=cause)),
        )

    StateTaskLambda._from_error = _from_error  # type: ignore[method-assign]
