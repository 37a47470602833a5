"""The one table of transient AWS error codes, the one mapping mechanism, and their agreement with the
state machine: whatever ``TransientError`` a step raises, its Task retries it by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from expel_onboarding import errors
from expel_onboarding.aws.errors import (
    TRANSIENT_CODES,
    Rule,
    aws_errors,
    mapped_error,
    suppress_codes,
    transient_codes,
)
from expel_onboarding.errors import OnboardingError, StillInProgress, TransientError

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = json.loads((ROOT / "statemachine" / "onboarding.asl.json").read_text())


def _client_error(code: str, message: str = "refused") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Operation")


def _tasks(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, state in states.items():
        if state["Type"] == "Task":
            found[name] = state
        for branch in state.get("Branches", []):
            found.update(_tasks(branch["States"]))
    return found


def _transient_classes() -> set[str]:
    found, todo = set(), [TransientError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found


TASKS = _tasks(DEFINITION["States"])


@pytest.mark.parametrize("service", sorted(set(TRANSIENT_CODES) - {"*"}))
@pytest.mark.parametrize("code", ["ThrottlingException", "Throttling", "TooManyRequestsException",
                                  "ServiceUnavailable", "InternalFailure"])
def test_throttling_and_aws_failures_are_transient_for_every_service(service: str, code: str) -> None:
    with pytest.raises(TransientError, match=rf"{service} is busy \({code}\) on reading x; retrying"):
        with aws_errors(service, "reading x"):
            raise _client_error(code)


def test_a_code_transient_for_one_service_stays_the_rule_of_another() -> None:
    """LimitExceededException is 'too many operations' for StackSets, but a reached quota for KMS."""
    quota = Rule({"LimitExceededException"}, OnboardingError, "{service}: quota reached")
    assert isinstance(mapped_error("CloudFormation StackSets", "x", _client_error("LimitExceededException"), quota),
                      TransientError)
    assert type(mapped_error("KMS", "x", _client_error("LimitExceededException"), quota)) is OnboardingError
    assert "LimitExceededException" not in transient_codes("CloudFormation")


def test_transient_codes_win_over_a_modules_rules() -> None:
    rule = Rule({"ThrottlingException"}, OnboardingError, "never")
    assert type(mapped_error("KMS", "x", _client_error("ThrottlingException"), rule)) is TransientError


def test_rules_match_by_code_prefix_and_message_and_fill_the_template() -> None:
    rules = (Rule({"ValidationError"}, StillInProgress, "{name} is busy: {message}", contains="can not be updated"),
             Rule({"KMS.*"}, OnboardingError, "{what}: key problem {code}"))
    busy = mapped_error("CloudFormation", "x", _client_error("ValidationError", "Stack is in a state and CAN NOT be "
                                                             "updated"), *rules, name="s")
    assert type(busy) is StillInProgress and str(busy) == "s is busy: Stack is in a state and CAN NOT be updated"
    assert mapped_error("CloudFormation", "x", _client_error("ValidationError", "other"), *rules) is None
    kms = mapped_error("SQS", "queue q", _client_error("KMS.DisabledException"), *rules)
    assert type(kms) is OnboardingError and str(kms) == "queue q: key problem KMS.DisabledException"


def test_an_unmapped_error_passes_unchanged_and_a_mapped_one_keeps_its_cause() -> None:
    original = _client_error("SomethingElse")
    with pytest.raises(ClientError) as raised, aws_errors("SNS", "x"):
        raise original
    assert raised.value is original
    with pytest.raises(TransientError) as mapped, aws_errors("SNS", "x"):
        raise _client_error("Throttled")
    assert isinstance(mapped.value.__cause__, ClientError)
    with pytest.raises(ValueError), aws_errors("SNS", "x", Rule({""}, OnboardingError, "never")):
        raise ValueError("not an AWS error")


def test_suppress_codes_ends_a_look_up_quietly_only_for_its_codes_and_message() -> None:
    with suppress_codes("ValidationError", contains="does not exist"):
        raise _client_error("ValidationError", "Stack x does not exist")
    with pytest.raises(ClientError), suppress_codes("ValidationError", contains="does not exist"):
        raise _client_error("ValidationError", "Template format error")


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_retries_every_transient_error_class_by_name(name: str) -> None:
    """Step Functions matches the Lambda's errorType (the class name) exactly, not its base classes."""
    retried = {error for retrier in TASKS[name]["Retry"] for error in retrier["ErrorEquals"]}
    assert _transient_classes() <= retried


def test_the_state_machine_names_only_error_classes_that_exist() -> None:
    named = {error for task in TASKS.values() for retrier in task["Retry"] for error in retrier["ErrorEquals"]
             if not error.startswith(("Lambda.", "States."))}
    assert named == _transient_classes()
    assert all(isinstance(getattr(errors, error), type) for error in named)


@pytest.mark.parametrize("call", ["create_stack", "update_stack"])
def test_a_service_role_iam_has_not_propagated_yet_is_retried(call: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from expel_onboarding.aws import clients, stacks

    role = "arn:aws:iam::123456789012:role/stack-RoleStackExecutionRole-AbC"

    class CloudFormation:
        def __getattr__(self, name: str) -> Any:
            def refuse(**kwargs: Any) -> Any:
                raise ClientError({"Error": {"Code": "ValidationError",
                                             "Message": f"Role {role} is invalid or cannot be assumed"}}, name)
            return refuse

    monkeypatch.setattr(clients, "cloudformation", lambda region: CloudFormation())
    with pytest.raises(TransientError, match="cannot \\(yet\\) assume the service role of stack roles"):
        getattr(stacks, call)("roles", "body", {}, {}, "us-east-1", role)
