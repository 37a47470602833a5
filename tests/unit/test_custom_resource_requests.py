"""CloudFormation's requests through the trigger Lambda and crhelper, as CloudFormation and EventBridge send
them: a request starts its execution and is not answered; the poll answers, once, with the physical id
CloudFormation must see, after crhelper removed its rule (a stack delete then deletes the trigger)."""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import pytest

from expel_onboarding import custom_resource
from tests.conftest import ACCOUNT_ID, REGION
from tests.support import function_zip
from tests.unit.test_custom_resource import cfn_event, template_defaults

MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:expel-onboarding"
EXECUTIONS = MACHINE.replace(":stateMachine:", ":execution:")
CRHELPER_ID = "expel_Onboarding_AB12CD34"  # what crhelper answers a Create that failed before our id existed
FUNCTION = "expel-TriggerFunction-1"
PUT_RESPONSE = custom_resource.put_response


class Context:
    function_name = FUNCTION
    memory_limit_in_mb = 128
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{FUNCTION}"
    aws_request_id = "00000000-0000-0000-0000-000000000001"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


class FakeStepFunctions:
    """Step Functions as the trigger sees it: executions it started, their state, and stops."""

    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []
        self.stopped: list[str] = []
        self.executions: dict[str, dict[str, Any]] = {}

    def start_execution(self, _machine: str, name: str, execution_input: dict[str, Any]) -> str:
        arn = f"{EXECUTIONS}:{name}"
        self.started.append({"name": name, "input": execution_input})
        self.executions[arn] = {"executionArn": arn, "name": name, "status": "RUNNING",
                                "startDate": datetime.now(UTC),
                                "input": json.dumps(execution_input)}
        return arn

    def finish(self, arn: str, status: str, output: dict[str, Any] | None = None) -> None:
        self.executions[arn].update(status=status, stopDate=datetime.now(UTC),
                                    output=json.dumps(output or {}))

    def describe_execution(self, arn: str) -> dict[str, Any]:
        return self.executions[arn]

    def list_executions(self, _machine: str) -> list[dict[str, Any]]:
        return list(self.executions.values())

    def stop_execution(self, arn: str, _cause: str) -> None:
        self.stopped.append(arn)

    @staticmethod
    def history(_arn: str) -> list[dict[str, Any]]:
        return [{"id": 1, "previousEventId": 0, "type": "TaskStateEntered",
                 "stateEnteredEventDetails": {"name": "Step 5 Delete SQS Queue"}},
                {"id": 2, "previousEventId": 1, "type": "LambdaFunctionFailed",
                 "lambdaFunctionFailedEventDetails": {"error": "OnboardingError", "cause": "denied"}},
                {"id": 3, "previousEventId": 2, "type": "ExecutionFailed",
                 "executionFailedEventDetails": {"error": "OnboardingError", "cause": "denied"}}]


@pytest.fixture
def trigger(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, FakeStepFunctions, list[Any]]]:
    """The deployed handler (functions/trigger/app.py) with Step Functions faked, crhelper's EventBridge
    schedule recorded instead of created, and the answers captured (in order with the schedule's removal)."""
    monkeypatch.setenv("STATE_MACHINE_ARN", MACHINE)
    app = importlib.import_module("functions.trigger.app")
    sfn = FakeStepFunctions()
    log: list[Any] = []
    monkeypatch.setattr(custom_resource, "stepfunctions", sfn)
    monkeypatch.setattr(custom_resource, "put_response", lambda _url, body: log.append(body))
    monkeypatch.setattr(app.resource, "_init_failed", None)
    monkeypatch.setattr(app.resource, "_setup_polling", lambda: log.append("poll set up"))
    monkeypatch.setattr(app.resource, "_remove_polling", lambda: log.append("poll removed"))
    yield app, sfn, log


def polled(event: dict[str, Any], execution_arn: str) -> dict[str, Any]:
    """The event crhelper's rule sends back every minute."""
    return {**event, "CrHelperPoll": True, "CrHelperData": {"ExecutionArn": execution_arn, "PhysicalResourceId": "x"},
            "CrHelperRule": f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/OnboardingAB12CD34",
            "CrHelperPermission": "OnboardingAB12CD34"}


def delete_event(physical_id: str) -> dict[str, Any]:
    return {**cfn_event("Delete"), "PhysicalResourceId": physical_id}


def test_create_starts_its_execution_and_leaves_the_answer_to_the_poll(trigger: Any) -> None:
    app, sfn, log = trigger
    event = cfn_event()
    app.lambda_handler(event, Context())

    [execution] = sfn.started
    assert execution["name"] == "create-5a3c-2b1e-0001"
    assert event["ResponseURL"] not in json.dumps(execution["input"])
    assert log == ["poll set up"]
    assert app.resource.Data["ExecutionArn"] == f"{EXECUTIONS}:create-5a3c-2b1e-0001"


def test_the_poll_answers_success_with_the_outputs_after_removing_its_schedule(trigger: Any) -> None:
    app, sfn, log = trigger
    event = cfn_event()
    app.lambda_handler(event, Context())
    arn = f"{EXECUTIONS}:create-5a3c-2b1e-0001"
    app.lambda_handler(polled(event, arn), Context())
    assert log == ["poll set up"]  # still running: no answer, the schedule stays

    sfn.finish(arn, "SUCCEEDED", {"Queue": {"QueueUrl": "https://q"}, "ExecutionId": arn})
    app.lambda_handler(polled(event, arn), Context())

    assert log[1:-1] == ["poll removed"]
    body = log[-1]
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == custom_resource.physical_id(event["ResourceProperties"])
    assert body["Data"]["SqsQueueUrl"] == "https://q"
    assert set(body["Data"]) == set(custom_resource.OUTPUT_PATHS)


def test_a_failed_create_answers_failed_with_the_step_and_our_physical_id(trigger: Any) -> None:
    app, sfn, log = trigger
    event = cfn_event()  # RetryWindowSeconds 0
    app.lambda_handler(event, Context())
    arn = f"{EXECUTIONS}:create-5a3c-2b1e-0001"
    sfn.finish(arn, "FAILED")
    app.lambda_handler(polled(event, arn), Context())

    body = log[-1]
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("Step 5 Delete SQS Queue failed: OnboardingError: denied | Execution: https://")
    assert body["PhysicalResourceId"] == custom_resource.physical_id(event["ResourceProperties"])


def test_delete_starts_the_teardown_even_when_the_physical_id_is_not_ours(trigger: Any) -> None:
    app, sfn, log = trigger
    app.lambda_handler(delete_event(CRHELPER_ID), Context())

    [execution] = sfn.started
    assert execution["name"] == "delete-5a3c-2b1e-0001"
    assert execution["input"]["CloudFormation"]["RequestType"] == "Delete"
    assert log == ["poll set up"]


def test_delete_stops_an_onboarding_still_running_before_the_teardown_starts(trigger: Any) -> None:
    app, sfn, _log = trigger
    sfn.executions = {"arn:create-1": {"executionArn": "arn:create-1", "name": "create-1", "status": "RUNNING"},
                      "arn:create-0": {"executionArn": "arn:create-0", "name": "create-0", "status": "FAILED"},
                      "arn:delete-0": {"executionArn": "arn:delete-0", "name": "delete-0", "status": "RUNNING"}}
    app.lambda_handler(delete_event(CRHELPER_ID), Context())

    assert sfn.stopped == ["arn:create-1"]
    assert len(sfn.started) == 1


def test_a_finished_teardown_is_answered_with_the_physical_id_cloudformation_holds(trigger: Any) -> None:
    app, sfn, log = trigger
    event = delete_event(CRHELPER_ID)
    app.lambda_handler(event, Context())
    arn = f"{EXECUTIONS}:delete-5a3c-2b1e-0001"
    sfn.finish(arn, "SUCCEEDED")
    app.lambda_handler(polled(event, arn), Context())

    assert log[-2:-1] == ["poll removed"]
    assert log[-1]["Status"] == "SUCCESS"
    assert log[-1]["PhysicalResourceId"] == CRHELPER_ID


def test_a_failed_teardown_fails_the_delete_with_its_reason_instead_of_waiting(trigger: Any) -> None:
    app, sfn, log = trigger
    event = delete_event("expel-cloudtrail-onboarding")
    app.lambda_handler(event, Context())
    arn = f"{EXECUTIONS}:delete-5a3c-2b1e-0001"
    sfn.finish(arn, "FAILED")
    app.lambda_handler(polled(event, arn), Context())

    body = log[-1]
    assert body["Status"] == "FAILED"
    assert "Step 5 Delete SQS Queue failed" in body["Reason"]
    assert body["PhysicalResourceId"] == "expel-cloudtrail-onboarding"


def test_update_that_renames_the_queue_fails_at_once_and_starts_nothing(trigger: Any) -> None:
    app, sfn, log = trigger
    old = cfn_event()["ResourceProperties"]
    event = {**cfn_event("Update", QueueName="Renamed"), "OldResourceProperties": old,
             "PhysicalResourceId": custom_resource.physical_id(old)}
    app.lambda_handler(event, Context())

    assert sfn.started == []
    body = log[-1]
    assert body["Status"] == "FAILED"
    assert "Parameter QueueName: cannot change on a stack update" in body["Reason"]
    assert body["PhysicalResourceId"] == custom_resource.physical_id(old)


def test_update_of_a_stack_older_than_the_access_log_bucket_answers_with_the_id_it_holds(trigger: Any) -> None:
    """No replacement: a new id would make CloudFormation delete the old one, i.e. run the teardown."""
    app, sfn, log = trigger
    old = cfn_event()["ResourceProperties"]
    event = {**cfn_event("Update", **template_defaults(old)), "OldResourceProperties": old,
             "PhysicalResourceId": custom_resource.physical_id(old)}
    app.lambda_handler(event, Context())
    arn = f"{EXECUTIONS}:update-5a3c-2b1e-0001"
    sfn.finish(arn, "SUCCEEDED")
    app.lambda_handler(polled(event, arn), Context())

    assert log[-1]["Status"] == "SUCCESS"
    assert log[-1]["PhysicalResourceId"] == custom_resource.physical_id(old)


def test_update_stops_a_retry_still_running_before_its_own_execution_starts(trigger: Any) -> None:
    app, sfn, _log = trigger
    old = cfn_event()["ResourceProperties"]
    sfn.executions = {"arn:create-1": {"executionArn": "arn:create-1", "name": "create-1", "status": "RUNNING"}}
    app.lambda_handler({**cfn_event("Update", WorkbenchLocation="on prem"), "OldResourceProperties": old,
                        "PhysicalResourceId": custom_resource.physical_id(old)}, Context())

    assert sfn.stopped == ["arn:create-1"]
    assert [e["name"] for e in sfn.started] == ["update-5a3c-2b1e-0001"]


# ---------------------------------------------------------------- crhelper's real schedule, on moto
def test_the_answering_poll_leaves_no_rule_or_permission_behind(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """What EventBridge does: the rule crhelper made invokes the trigger with its input. The invocation that
    answers removes rule, target and permission first, so a stack delete leaves nothing firing."""
    role = boto3.client("iam").create_role(RoleName="trigger", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam, events = boto3.client("lambda"), boto3.client("events")
    code = function_zip({"app.py": "def lambda_handler(event, context):\n    return None\n"})
    lam.create_function(FunctionName=FUNCTION, Runtime="python3.13", Role=role, Handler="app.lambda_handler",
                        Code={"ZipFile": code})
    sfn = FakeStepFunctions()
    sent: list[tuple[list[str], dict[str, Any]]] = []
    monkeypatch.setattr(custom_resource, "stepfunctions", sfn)
    monkeypatch.setattr(custom_resource, "put_response", lambda _url, body: sent.append(
        ([r["Name"] for r in events.list_rules()["Rules"]], body)))
    resource = custom_resource.OnboardingResource(MACHINE)

    event = delete_event(CRHELPER_ID)
    resource(event, Context())
    [rule] = events.list_rules()["Rules"]
    assert rule["Name"].startswith("Onboarding") and rule["ScheduleExpression"] == "rate(1 minute)"
    [target] = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == Context.invoked_function_arn
    assert json.loads(lam.get_policy(FunctionName=FUNCTION)["Policy"])["Statement"]
    sfn.finish(f"{EXECUTIONS}:delete-5a3c-2b1e-0001", "SUCCEEDED")

    resource(json.loads(target["Input"]), Context())  # the minute's poll

    [(rules_when_answered, body)] = sent
    assert rules_when_answered == []
    assert body["Status"] == "SUCCESS" and body["PhysicalResourceId"] == CRHELPER_ID
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName=FUNCTION)


# ---------------------------------------------------------------- the answer on the wire
@pytest.fixture
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A plain-HTTP endpoint like the local cloud's ResponseURL, recording each PUT."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"content_type": self.headers["Content-Type"], "bytes": len(body),
                             "body": json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/cloudformation/response?sig=abc", received
    server.shutdown()
    server.server_close()


def test_the_answer_is_put_over_plain_http_without_crhelpers_keys_and_under_4kb(
        trigger: Any, response_url: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch) -> None:
    app, sfn, _log = trigger
    url, received = response_url
    monkeypatch.setattr(custom_resource, "put_response", PUT_RESPONSE)  # the real sender again
    event = {**cfn_event(), "ResponseURL": url}
    app.lambda_handler(event, Context())
    arn = f"{EXECUTIONS}:create-5a3c-2b1e-0001"
    sfn.finish(arn, "SUCCEEDED", {"Device": {"RegistrationUrl": "https://workbench/x?" + "q" * 5000},
                                  "ExecutionId": arn})
    app.lambda_handler(polled(event, arn), Context())

    [answer] = received
    assert answer["content_type"] == "" and answer["bytes"] <= custom_resource.MAX_BODY_BYTES
    assert answer["body"]["Status"] == "SUCCESS"
    assert set(answer["body"]["Data"]) == set(custom_resource.OUTPUT_PATHS)
    assert answer["body"]["Data"]["WorkbenchRegistrationUrl"] == ""  # the longest value gave way
