"""What the local cloud corrects in moto, checked through its endpoint as a Lambda would see it."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.local_cloud.harness import ServedCloud
from tests.local_cloud.test_fixture_app import client

pytestmark = pytest.mark.e2e


def _policy(bucket: str, statement: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_tls_only_bucket_policy_lets_requests_through(served_cloud: ServedCloud) -> None:
    s3 = client(served_cloud, "s3")
    bucket = f"tls-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    deny_plain_http = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, deny_plain_http))

    s3.put_object(Bucket=bucket, Key="canary", Body=b"ok")

    assert s3.get_object(Bucket=bucket, Key="canary")["Body"].read() == b"ok"


def test_unconditional_deny_in_a_bucket_policy_still_denies(served_cloud: ServedCloud) -> None:
    s3 = client(served_cloud, "s3")
    bucket = f"deny-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, deny))

    with pytest.raises(ClientError):
        s3.put_object(Bucket=bucket, Key="x", Body=b"no")


def test_result_selector_path_through_an_array_index_yields_the_value(served_cloud: ServedCloud) -> None:
    sfn = client(served_cloud, "stepfunctions")
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "A",
                        "States": {"A": {"Type": "Pass", "Result": {"k": 1}, "ResultPath": "$.A", "End": True}},
                    },
                    {
                        "StartAt": "B",
                        "States": {"B": {"Type": "Pass", "Result": [1, 2], "ResultPath": "$.B", "End": True}},
                    },
                ],
                "ResultSelector": {"A.$": "$[0].A", "B.$": "$[1].B", "Ks.$": "$[*].A.k"},
                "End": True,
            }
        },
    }
    arn = sfn.create_state_machine(
        name=f"paths-{uuid.uuid4().hex[:6]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    for _ in range(50):
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            break
        time.sleep(0.1)

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"A": {"k": 1}, "B": [1, 2], "Ks": [1]}
    assert execution.rsplit(":", 1)[-1] != "None"  # an unnamed execution gets a UUID name


CONDITION_SHORT_FORM = """
Parameters:
  Key: {Type: String, Default: ""}
Conditions:
  Always: !Equals [a, a]
  HasKey: !And [!Condition Always, !Not [!Equals [!Ref Key, ""]]]
Resources:
  OnlyWithKey:
    Type: AWS::SNS::Topic
    Condition: HasKey
    Properties: {TopicName: only-with-key}
"""


@pytest.mark.parametrize(("key", "topics"), [("given", ["only-with-key"]), ("", [])])
def test_a_condition_named_in_a_condition_short_form_holds_as_cloudformation_evaluates_it(
        aws: None, key: str, topics: list[str]) -> None:
    """``!Condition Always`` inside ``!And``: moto read the short form as an unknown function, so the And was false."""
    import boto3

    boto3.client("cloudformation").create_stack(StackName="condition-short-form", TemplateBody=CONDITION_SHORT_FORM,
                                                Parameters=[{"ParameterKey": "Key", "ParameterValue": key}])
    names = [t["TopicArn"].rsplit(":", 1)[1] for t in boto3.client("sns").list_topics()["Topics"]]
    assert names == topics


def test_requests_recorded_at_once_by_server_threads_are_one_line_each(tmp_path, monkeypatch) -> None:
    """moto's recorder (MOTO_ENABLE_RECORDING) writes a large request in pieces; the local cloud's server answers
    requests in parallel threads, so without one-at-a-time recording two could share a line of the file."""
    import threading
    from types import SimpleNamespace

    from moto.moto_api._internal.recorder.models import Recorder

    from local_cloud import moto_patches

    moto_patches._patch_recorder_lock()
    monkeypatch.setenv("MOTO_ENABLE_RECORDING", "true")
    monkeypatch.setenv("MOTO_RECORDER_FILEPATH", str(tmp_path / "recording"))
    recorder = Recorder()
    body = b"x" * 200_000  # several of the file buffer's writes

    def record(thread: int) -> None:
        for number in range(10):
            request = SimpleNamespace(raw_path="/", headers={"X-Request": f"{thread}-{number}"}, method="PUT",
                                      raw_url=f"http://127.0.0.1/{thread}/{number}")
            recorder._record_request(request, body)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    lines = (tmp_path / "recording").read_text().splitlines()
    assert sorted(json.loads(line)["headers"]["X-Request"] for line in lines) == sorted(
        f"{t}-{n}" for t in range(8) for n in range(10))


LAYERED_FUNCTION = """
Resources:
  Layer:
    Type: AWS::Lambda::LayerVersion
    Properties:
      LayerName: shared
      Content: {S3Bucket: layer-artifacts, S3Key: layer.zip}
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}]
  Function:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.13
      Handler: index.handler
      Role: !GetAtt Role.Arn
      Code: {ZipFile: "def handler(event, context): return 1"}
      Layers: [!Ref Layer]
      Architectures: [arm64]
"""


def test_a_function_cloudformation_creates_has_its_layers_from_the_moment_it_exists(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """What sees a new function as CreateFunction makes it (the Lambda runner prepares its /opt and initializes it
    proactively from there) sees the layers and architecture of its template, not moto's defaults set right."""
    import io
    import zipfile

    import boto3
    from moto.awslambda.models import LambdaBackend

    seen: list[tuple[list[str], list[str]]] = []
    original = LambdaBackend.create_function

    def create_function(self, spec):  # noqa: ANN001, ANN202 - moto's signature
        fn = original(self, spec)
        seen.append(([layer["Arn"] for layer in fn.layers], list(fn.architectures)))
        return fn

    monkeypatch.setattr(LambdaBackend, "create_function", create_function)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("python/helper.py", "VALUE = 1\n")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="layer-artifacts")
    s3.put_object(Bucket="layer-artifacts", Key="layer.zip", Body=buffer.getvalue())

    boto3.client("cloudformation").create_stack(StackName="layered", TemplateBody=LAYERED_FUNCTION,
                                                Capabilities=["CAPABILITY_IAM"])

    layer_arn = boto3.client("lambda").list_layer_versions(LayerName="shared")["LayerVersions"][0]["LayerVersionArn"]
    assert seen == [([layer_arn], ["arm64"])]
    function = boto3.client("cloudformation").describe_stack_resource(
        StackName="layered", LogicalResourceId="Function")["StackResourceDetail"]["PhysicalResourceId"]
    configuration = boto3.client("lambda").get_function(FunctionName=function)["Configuration"]
    assert [layer["Arn"] for layer in configuration["Layers"]] == [layer_arn]
    assert configuration["Architectures"] == ["arm64"]


@pytest.mark.parametrize("path", ["$", "$.a", "$.a.b[1]", "$.items[*].n", "$..n", "$.items[?(@.n > 1)].n",
                                  "$.items[0:2]"])
def test_a_path_parsed_once_finds_what_a_fresh_parse_finds_in_any_data(path: str) -> None:
    from moto.stepfunctions.parser.asl.utils import json_path

    from local_cloud import moto_patches

    documents = [{"a": {"b": [0, {"c": 1}]}, "items": [{"n": 1}, {"n": 2}, {"n": 3}]},
                 {"a": {"b": ["x", "y"]}, "items": [{"n": 5}], "n": 7}, {"items": []}]
    for document in documents * 2:  # the second round reads the kept expression
        kept = [(str(m.full_path), m.value) for m in moto_patches.parsed_path(path).find(document)]
        assert kept == [(str(m.full_path), m.value) for m in json_path.parse(path).find(document)]
    assert moto_patches.parsed_path(path) is moto_patches.parsed_path(path)
