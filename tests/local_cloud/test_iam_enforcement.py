"""``local serve --iam``: requests are authorized as IAM would, refused as each service refuses them,
and the report records what a role's grant allowed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_cloud.enforcement.report import read
from tests.local_cloud.harness import ServedCloud, client, serve_child
from tests.support import function_zip

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def iam_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedCloud, Path]]:
    report = tmp_path_factory.mktemp("iam") / "report.jsonl"
    with serve_child(extra_args=("--iam", "--iam-report", str(report))) as cloud:
        yield cloud, report


@pytest.fixture(scope="module")
def session(iam_cloud: tuple[ServedCloud, Path]) -> dict[str, str]:
    """A session of a role that may list buckets, create keys (untagged) and use queues named app-*."""
    cloud, _ = iam_cloud
    iam = client(cloud, "iam")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps(trust))
    grant = {"Version": "2012-10-17", "Statement": [
        {"Sid": "List", "Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"},
        {"Sid": "Keys", "Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"},
        {"Sid": "Metrics", "Effect": "Allow", "Action": "cloudwatch:GetMetricStatistics", "Resource": "*"},
        {"Sid": "Queues", "Effect": "Allow", "Action": "sqs:*",
         "Resource": f"arn:aws:sqs:us-east-1:{ACCOUNT}:app-*"}]}
    iam.put_role_policy(RoleName="app", PolicyName="grant", PolicyDocument=json.dumps(grant))
    found = client(cloud, "sts").assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/app", RoleSessionName="me")
    creds = found["Credentials"]
    return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"]}


def test_dummy_credentials_act_as_the_accounts_root_user(iam_cloud: tuple[ServedCloud, Path]) -> None:
    cloud, _ = iam_cloud
    client(cloud, "s3").create_bucket(Bucket="root-made")
    assert client(cloud, "sts").get_caller_identity()["Account"] == ACCOUNT


def test_a_session_does_what_its_role_allows(iam_cloud: tuple[ServedCloud, Path], session: dict[str, str]) -> None:
    cloud, report = iam_cloud
    assert "root-made" in str(client(cloud, "s3", session).list_buckets())
    client(cloud, "sqs", session).create_queue(QueueName="app-queue")
    # CloudWatch signs as "monitoring"; IAM names its actions cloudwatch:*.
    client(cloud, "cloudwatch", session).get_metric_statistics(
        Namespace="AWS/SNS", MetricName="NumberOfNotificationsFailed", StartTime=0, EndTime=60, Period=60,
        Statistics=["Sum"])
    entries = {(e["role"], e["action"], e["resource"], e["statement"]) for e in read(report)}
    assert ("app", "cloudwatch:GetMetricStatistics", "*", "Metrics") in entries
    assert ("app", "s3:ListAllMyBuckets", "*", "List") in entries
    assert ("app", "sqs:CreateQueue", f"arn:aws:sqs:us-east-1:{ACCOUNT}:app-queue", "Queues") in entries


@pytest.mark.parametrize(("service", "call", "code", "action", "resource"), [
    ("s3", lambda c: c.create_bucket(Bucket="not-allowed"), "AccessDenied", "s3:CreateBucket",
     "arn:aws:s3:::not-allowed"),
    ("sns", lambda c: c.create_topic(Name="t"), "AuthorizationError", "sns:CreateTopic",
     f"arn:aws:sns:us-east-1:{ACCOUNT}:t"),
    ("sqs", lambda c: c.create_queue(QueueName="other-queue"), "AccessDenied", "sqs:CreateQueue",
     f"arn:aws:sqs:us-east-1:{ACCOUNT}:other-queue"),
    ("iam", lambda c: c.list_roles(), "AccessDenied", "iam:ListRoles", "*"),
    ("stepfunctions", lambda c: c.list_state_machines(), "AccessDeniedException", "states:ListStateMachines", "*"),
    ("cloudwatch", lambda c: c.put_metric_data(Namespace="n", MetricData=[{"MetricName": "m", "Value": 1.0}]),
     "AccessDenied", "cloudwatch:PutMetricData", "*"),
    # Tags on a new key need kms:TagResource too, which the role lacks.
    ("kms", lambda c: c.create_key(Tags=[{"TagKey": "team", "TagValue": "a"}]), "AccessDeniedException",
     "kms:TagResource", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*"),
])
def test_a_denied_call_fails_with_the_services_code_and_awss_message(
        iam_cloud: tuple[ServedCloud, Path], session: dict[str, str], service: str, call: Any, code: str,
        action: str, resource: str) -> None:
    cloud, _ = iam_cloud
    with pytest.raises(ClientError) as caught:
        call(client(cloud, service, session))
    error = caught.value.response["Error"]
    assert error["Code"] == code
    assert error["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/app/me is not authorized to perform: {action} on resource: "
        f"{resource} because no identity-based policy allows the {action} action")


def test_assume_role_honours_the_trust_policy(iam_cloud: tuple[ServedCloud, Path], session: dict[str, str]) -> None:
    cloud, _ = iam_cloud
    lambda_only = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    trust = {"Version": "2012-10-17", "Statement": [lambda_only]}
    client(cloud, "iam").create_role(RoleName="lambda-only", AssumeRolePolicyDocument=json.dumps(trust))
    with pytest.raises(ClientError) as caught:
        client(cloud, "sts", session).assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/lambda-only",
                                                  RoleSessionName="xx")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert "sts:AssumeRole on resource: arn:aws:iam::123456789012:role/lambda-only" in str(caught.value)


WHOAMI = """
import os, boto3
CALLS = 0

def handler(event, context):
    global CALLS
    CALLS += 1
    return {"arn": boto3.client("sts").get_caller_identity()["Arn"], "pid": os.getpid(), "calls": CALLS}
"""


def test_a_function_runs_as_its_execution_role_also_in_a_reused_environment(
        iam_cloud: tuple[ServedCloud, Path]) -> None:
    cloud, _ = iam_cloud
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = client(cloud, "iam").create_role(RoleName="whoami-role", AssumeRolePolicyDocument=json.dumps(trust))
    lam = client(cloud, "lambda")
    lam.create_function(FunctionName="whoami", Runtime="python3.13", Role=role["Role"]["Arn"], Handler="app.handler",
                        Code={"ZipFile": function_zip({"app.py": WHOAMI})}, Timeout=30)

    first, second = (json.loads(lam.invoke(FunctionName="whoami")["Payload"].read()) for _ in range(2))

    assert first["arn"] == second["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/whoami-role/whoami"
    assert second["pid"] == first["pid"] and second["calls"] == 2  # the same execution environment
