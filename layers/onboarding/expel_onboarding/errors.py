"""Named errors. The state machine retries the transient ones (listed in the ASL ``Retry``);
terminal ones carry a message a person can act on, which surfaces in CloudFormation's events."""

from __future__ import annotations


class OnboardingError(Exception):
    """Terminal: retrying will not help until a person fixes the cause named in the message."""


class InvalidParameter(OnboardingError):
    """Bad input, found before anything is created. The message names the parameter and the fix."""

    def __init__(self, parameter: str, problem: str, fix: str) -> None:
        self.parameter = parameter
        super().__init__(f"Parameter {parameter}: {problem}. Fix: {fix}")


class ResourceConflict(OnboardingError):
    """A resource we would create exists and belongs to someone else."""

    parameter = ""  # the parameter whose value named the resource, when one did

    @classmethod
    def of_parameter(cls, parameter: str, problem: str, fix: str) -> ResourceConflict:
        """Worded like ``InvalidParameter``: the person fixes it by changing that parameter."""
        error = cls(f"Parameter {parameter}: {problem}. Fix: {fix}")
        error.parameter = parameter
        return error


class TransientError(Exception):
    """Retry later: throttling, eventual consistency, IAM propagation, an operation in progress."""


class StillInProgress(TransientError):
    """A long-running operation (stack, StackSet, delivery) has not finished yet."""


class DeliveryNotConfirmed(OnboardingError):
    """The verification canary did not arrive in the queue in time."""


class WorkbenchError(OnboardingError):
    """Workbench rejected a request; the message says what to do."""
