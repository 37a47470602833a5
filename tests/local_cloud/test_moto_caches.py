"""The local cloud's caches of moto's per-request work give moto's own answers."""

from __future__ import annotations

import copy
import enum
import json
import pickle
import re
import time
import types
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.serialize import AttributePicker
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from local_cloud import moto_caches, time_scale
from tests.conftest import boto

TEMPLATE = {"Resources": {
    "Queue": {"Type": "AWS::SQS::Queue"},
    "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                       "Action": "sts:AssumeRole"}]}}},
}}


@pytest.mark.parametrize("host", [None, "moto_api", "s3", "iam", "sts.us-east-1.amazonaws.com",
                                  "cloudformation.eu-west-1.amazonaws.com", "s3.amazonaws.com",
                                  "bucket.s3.us-east-1.amazonaws.com", "states.us-east-1.amazonaws.com",
                                  "not-a-service.example.com"])
def test_each_host_is_dispatched_to_the_backend_moto_picks(host: str | None) -> None:
    moto_caches.install()
    dispatcher = DomainDispatcherApplication(create_backend_app)
    for _ in range(2):  # the first answer is remembered, the second read back
        assert dispatcher.get_backend_for_host(host) == moto_caches.moto_backend_for_host(dispatcher, host)


@pytest.mark.usefixtures("aws")
def test_every_response_member_holds_the_value_moto_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_caches.install()
    cached = AttributePicker.__call__
    compared: list[str] = []

    def both(self: AttributePicker, context: Any) -> Any:
        value = cached(self, context)
        assert value == moto_caches.moto_pick(self, context), context.key_path + "." + context.key
        compared.append(context.key)
        return value

    monkeypatch.setattr(AttributePicker, "__call__", both)
    for _ in range(2):  # names worked out, then read back from the cache
        cloudformation = boto("cloudformation")
        name = f"stack-{len(compared)}"
        cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(TEMPLATE),
                                    Capabilities=["CAPABILITY_IAM"])
        events = cloudformation.describe_stack_events(StackName=name)["StackEvents"]
        assert {e["LogicalResourceId"] for e in events} >= {"Queue", "Role", name}
        assert cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        roles = boto("iam").list_roles()["Roles"]
        assert roles and all(r["Arn"].startswith("arn:aws:iam::") for r in roles)
        boto("sqs").list_queues()
        boto("kms").create_key(Description="k")
        boto("kms").list_keys()
    assert len(compared) > 100


def test_every_structure_serialized_from_a_dict_is_the_one_moto_serializes(sfn: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.core.serialize import ResponseSerializer

    cached = ResponseSerializer._serialize_type_structure
    compared: list[str] = []

    def both(self: ResponseSerializer, serialized: Any, value: Any, shape: Any, key: str) -> None:
        expected = copy.deepcopy(serialized)
        moto_caches.moto_serialize_structure(self, expected, value, shape, key)
        cached(self, serialized, value, shape, key)
        assert serialized == expected, shape.name
        if type(value) is dict:
            compared.append(shape.name)

    monkeypatch.setattr(ResponseSerializer, "_serialize_type_structure", both)
    machine = sfn.create_state_machine(name="serialized", definition=json.dumps(FIRST_SEEN),
                                       roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]
    run = sfn.start_execution(stateMachineArn=machine, name="run")["executionArn"]
    described, events = _finished(sfn, run)
    assert described["status"] == "SUCCEEDED" and "ParallelStateStarted" in events
    page = sfn.get_execution_history(executionArn=run, maxResults=5, reverseOrder=True)
    assert len(page["events"]) == 5 and page["events"][0]["type"] == "ExecutionSucceeded"
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    cloudformation.create_stack(StackName="serialized", TemplateBody=json.dumps(TEMPLATE),
                                Capabilities=["CAPABILITY_IAM"])
    assert cloudformation.describe_stack_events(StackName="serialized")["StackEvents"]
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName="g", tags={"k": "v"})
    assert logs.describe_log_groups()["logGroups"][0]["logGroupName"] == "g"
    kms = boto3.client("kms", region_name="us-east-1")
    key = kms.create_key(Description="k")["KeyMetadata"]
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == "k"
    assert {"HistoryEvent", "GetExecutionHistoryOutput"} <= set(compared)


@pytest.mark.parametrize("package", ["iam", "s3", "awslambda", "stepfunctions", "cloudformation",
                                     "resourcegroupstaggingapi", "sagemakerruntime", "not_a_service"])
def test_an_exceptions_package_names_the_service_moto_names(package: str) -> None:
    from moto.core import utils

    moto_caches.install()
    for _ in range(2):
        assert utils.service_name_from_moto_package_name(package) == moto_caches.moto_service_name(package)


@pytest.mark.parametrize(("service", "code"), [
    ("iam", "NoSuchEntity"), ("iam", "NoSuchEntityException"), ("s3", "NoSuchBucket"),
    ("sqs", "AWS.SimpleQueueService.NonExistentQueue"), ("sqs", "QueueDoesNotExist"), ("kms", "NotFoundException"),
    ("cloudformation", "ValidationError"), ("iam", "NotAnErrorCode")])
def test_each_error_code_finds_the_error_shape_moto_finds(service: str, code: str) -> None:
    from moto.core.errors import ErrorLookupFactory
    from moto.core.utils import get_service_model

    moto_caches.install()
    model = get_service_model(service)
    expected = ErrorLookupFactory._create_error_lut(model).from_code(code)
    for _ in range(2):
        found = ErrorLookupFactory().for_service(model).from_code(code)
        assert (found and found.name, found and found.error_code) == (expected and expected.name,
                                                                      expected and expected.error_code)


@pytest.mark.usefixtures("aws")
def test_refusals_still_carry_the_services_error_code_and_message() -> None:
    moto_caches.install()
    from botocore.exceptions import ClientError

    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            boto("iam").get_role(RoleName="missing")
        assert refused.value.response["Error"]["Code"] == "NoSuchEntity"
        assert "missing" in refused.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as missing:
            boto("sqs").get_queue_url(QueueName="missing")
        assert missing.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


@pytest.mark.parametrize("module", ["s3", "iam", "cloudformation", "stepfunctions", "kms", "sqs"])
def test_an_action_is_found_among_the_methods_moto_finds(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from moto.core import responses

    moto_caches.install()
    classes = [cls for cls in vars(importlib.import_module(f"moto.{module}.responses")).values()
               if isinstance(cls, type) and issubclass(cls, responses.BaseResponse)]
    for cls in classes:
        names = set(moto_caches.moto_method_names(cls))
        for name in [*names, "no_such_action", "__init__", "", "dispatch"]:
            for _ in range(2):  # the first answer is remembered, the second read back
                assert (name in responses.method_names_from_class(cls)) == (name in names), (cls, name)
    # A method given to a class after its names were remembered is found, as moto would find it.
    monkeypatch.setattr(classes[0], "an_action_added_later", lambda self: "", raising=False)
    assert "an_action_added_later" in responses.method_names_from_class(classes[0])


# Every kind of state whose evaluation keeps state: a Pass Result a later state could write into, a Choice on
# what an earlier execution could have left, a Map's iterations, a Parallel retried on its branch's failure.
FIRST_SEEN = {
    "StartAt": "Seed",
    "States": {
        "Seed": {"Type": "Pass", "Result": {"items": [1, 2, 3]}, "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.tag", "IsPresent": True, "Next": "Leaked"}],
                  "Default": "Tag"},
        "Leaked": {"Type": "Fail", "Error": "Leaked", "Cause": "a Result held what an earlier execution wrote"},
        "Tag": {"Type": "Pass", "Result": "first", "ResultPath": "$.tag", "Next": "Each"},
        "Each": {"Type": "Map", "ItemsPath": "$.items", "ResultPath": "$.each", "Next": "Flaky",
                 "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Mark", "States": {
                     "Mark": {"Type": "Pass", "Parameters": {"n.$": "$"}, "Next": "Seen"},
                     "Seen": {"Type": "Pass", "Result": {"seen": True}, "ResultPath": "$.mark", "End": True}}}},
        "Flaky": {"Type": "Parallel", "ResultPath": "$.flaky", "Next": "Done",
                  "Branches": [{"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Boom"}}}],
                  "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                  "Catch": [{"ErrorEquals": ["Boom"], "ResultPath": "$.caught", "Next": "Done"}]},
        "Done": {"Type": "Succeed"},
    },
}
IMMUTABLE = (str, bytes, int, float, complex, bool, type(None), type, enum.Enum, types.FunctionType,
             types.BuiltinFunctionType, re.Pattern)


def _objects(root: Any) -> dict[int, Any]:
    """Every object reachable from ``root`` (attributes, items, keys), by id."""
    found: dict[int, Any] = {}
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in found:
            continue
        found[id(obj)] = obj
        if isinstance(obj, IMMUTABLE):
            continue
        if isinstance(obj, dict):
            todo.extend(obj.keys())
            todo.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            todo.extend(obj)
        else:
            todo.extend(vars(obj).values() if hasattr(obj, "__dict__") else ())
            todo.extend(getattr(obj, slot) for cls in type(obj).__mro__
                        for slot in getattr(cls, "__slots__", ()) if hasattr(obj, slot))
    return found


def _shape(obj: Any) -> Any:
    """The program as plain data: types and values, whatever the objects' identities."""
    if isinstance(obj, IMMUTABLE):
        return obj
    if isinstance(obj, dict):
        return {"dict": sorted(((repr(_shape(k)), repr(_shape(v))) for k, v in obj.items()))}
    if isinstance(obj, (list, tuple)):
        return [type(obj).__name__, *(_shape(item) for item in obj)]
    return [type(obj).__qualname__, _shape(vars(obj))]


def test_each_execution_gets_a_program_of_its_own_the_same_as_a_parse() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    moto_caches.install()
    definition = json.dumps(FIRST_SEEN)
    StepFunctionsParserBackend._validate_definition(definition)
    one, other = moto_caches._program_copy(definition), moto_caches._program_copy(definition)
    parsed, _ = moto_caches.moto_parse(definition)

    assert _shape(one) == _shape(other) == _shape(parsed)
    theirs = _objects(other)
    shared = [obj for key, obj in _objects(one).items() if key in theirs]
    mutable = sorted({type(obj).__qualname__ for obj in shared if not isinstance(obj, IMMUTABLE)})
    assert shared and not mutable, f"objects both executions' programs hold: {mutable}"


@pytest.fixture
def sfn() -> Iterator[Any]:
    moto_caches.install()
    time_scale.configure(0.01)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name="us-east-1")
    time_scale.configure(1.0)


def _finished(sfn: Any, arn: str) -> tuple[dict[str, Any], list[str]]:
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{arn} did not finish"
        time.sleep(0.05)
    return described, [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]


def test_executions_of_one_definition_do_not_see_each_others_state(sfn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    parses: list[str] = []
    parse = moto_caches.moto_parse
    monkeypatch.setattr(moto_caches, "moto_parse", lambda definition: parses.append(definition) or parse(definition))
    monkeypatch.setattr(moto_caches, "_programs", {})  # none kept from an earlier test
    machine = sfn.create_state_machine(name="first-seen", definition=json.dumps(FIRST_SEEN),
                                       roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]
    runs = [sfn.start_execution(stateMachineArn=machine, name=f"run-{n}")["executionArn"] for n in range(2)]
    runs += [sfn.start_execution(stateMachineArn=machine, name="after")["executionArn"]]  # after both started

    finished = [_finished(sfn, arn) for arn in runs]
    assert len(parses) == 1  # the validation's: every execution ran a copy
    for described, events in finished:
        assert described["status"] == "SUCCEEDED", events
        assert sorted(events) == sorted(finished[0][1])  # the same events (the Map's iterations interleave)
        assert events.count("ParallelStateStarted") == 3  # the first attempt and both retries, in each execution
        output = json.loads(described["output"])
        assert output["tag"] == "first" and output["caught"]["Error"] == "Boom"
        assert output["each"] == [{"n": n, "mark": {"seen": True}} for n in (1, 2, 3)]


def test_an_updated_state_machine_runs_its_new_definition(sfn: Any) -> None:
    def answering(value: str) -> str:
        return json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"answer": value}, "End": True}}})

    machine = sfn.create_state_machine(name="updated", definition=answering("old"),
                                       roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]
    before = sfn.start_execution(stateMachineArn=machine, name="before")["executionArn"]
    assert json.loads(_finished(sfn, before)[0]["output"]) == {"answer": "old"}
    sfn.update_state_machine(stateMachineArn=machine, definition=answering("new"))
    after = sfn.start_execution(stateMachineArn=machine, name="after")["executionArn"]
    assert json.loads(_finished(sfn, after)[0]["output"]) == {"answer": "new"}


def test_a_program_pickle_cannot_copy_is_parsed_for_each_execution(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    moto_caches.install()
    definition = json.dumps({"StartAt": "Unpicklable", "States": {"Unpicklable": {"Type": "Succeed"}}})

    def refuse(obj: Any, protocol: int | None = None) -> bytes:
        raise pickle.PicklingError("cannot pickle")

    monkeypatch.setattr(moto_caches.pickle, "dumps", refuse)
    StepFunctionsParserBackend._validate_definition(definition)
    assert moto_caches._program_copy(definition) is None  # so the execution parses it, as moto does


def test_a_definition_that_does_not_parse_is_refused_as_moto_refuses_it_and_never_kept() -> None:
    from moto.stepfunctions.parser.api import InvalidDefinition
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    moto_caches.install()
    broken = '{"StartAt": "Nowhere", "States": {'
    for _ in range(2):  # refused again: nothing was kept that would let it pass
        with pytest.raises(InvalidDefinition):
            StepFunctionsParserBackend._validate_definition(broken)
        assert broken not in moto_caches._programs


def test_the_warm_up_reads_data_only_no_backend_made_no_program_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.backends import get_backend

    from local_cloud import server

    monkeypatch.setattr(moto_caches, "_programs", {})
    services = ["cloudformation", "s3", "iam", "stepfunctions", "events", "logs", "kms", "sns", "sqs", "cloudtrail"]
    before = {service: set(get_backend(service).keys()) for service in services}  # type: ignore[arg-type]
    server._warm_moto.__wrapped__()  # type: ignore[attr-defined]
    assert {service: set(get_backend(service).keys()) for service in services} == before  # type: ignore[arg-type]
    assert moto_caches._programs == {}
