"""The local cloud's caches of moto's per-request work give moto's own answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.core.serialize import AttributePicker
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from local_cloud import moto_caches
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


DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": {"ok": 1}, "End": True}}})


def test_the_first_execution_after_a_validation_gets_its_parse_and_later_ones_their_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    moto_caches.install()
    parsed: list[tuple[Any, Any]] = []
    parse = moto_caches.moto_parse

    def counted(definition: str) -> tuple[Any, Any]:
        parsed.append(parse(definition))
        return parsed[-1]

    monkeypatch.setattr(moto_caches, "moto_parse", counted)
    StepFunctionsParserBackend._validate_definition(DEFINITION)
    assert len(parsed) == 1
    first = AmazonStateLanguageParser.parse(DEFINITION)  # as an execution starts
    assert first is parsed[0] and len(parsed) == 1  # never evaluated: the same as a parse of its own
    second = AmazonStateLanguageParser.parse(DEFINITION)
    assert len(parsed) == 2 and second is parsed[1] and second[0] is not first[0]
    assert type(second[0]) is type(first[0])


def test_a_definition_that_does_not_parse_is_refused_as_moto_refuses_it_and_never_kept() -> None:
    from moto.stepfunctions.parser.api import InvalidDefinition
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    moto_caches.install()
    broken = '{"StartAt": "Nowhere", "States": {'
    with pytest.raises(InvalidDefinition):
        StepFunctionsParserBackend._validate_definition(broken)
    assert broken not in moto_caches._validated
