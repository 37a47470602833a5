"""Test helpers shared by the suites."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from unittest import mock

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

# The Expel role's inline policies as roles/expel-role.yaml names them (tests/unit/test_cfn_template.py holds
# them to it): the read-only inventory, the data path, and an existing trail's other log key.
INVENTORY_POLICY, DATA_PATH_POLICY, LOG_KEY_POLICY = (
    "ExpelInventoryReadOnly", "ExpelCloudTrailDataAccess", "ExpelCloudTrailLogKeyAccess")

# Read-only API prefixes: anything else that reaches AWS counts as a mutation.
READ_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "Check", "Search", "Select", "Receive")


class Refusal(NamedTuple):
    """What AWS answered a call it refused, as a person reads it: the error code and its message."""

    code: str
    message: str


def refused(call: Callable[..., Any], *args: Any, **kwargs: Any) -> ClientError:
    """The ClientError ``call(*args, **kwargs)`` raises: the test fails if the call succeeds (or raises
    anything else). For what a ``Refusal`` leaves out: other fields of the error, the HTTP response."""
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    return raised.value


def refusal(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Refusal:
    """The code and message of the error ``call(*args, **kwargs)`` is refused with (see ``refused``)."""
    error = refused(call, *args, **kwargs).response["Error"]
    return Refusal(error["Code"], error["Message"])


@contextlib.contextmanager
def count_mutating_calls() -> Iterator[list[str]]:
    """Collect ``service.Operation`` for every mutating AWS call made while the block runs.

    Wraps botocore's single entry point for API calls, so it sees every client however made.
    """
    calls: list[str] = []
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if not operation_name.startswith(READ_PREFIXES):
            calls.append(f"{self.meta.service_model.service_name}.{operation_name}")
        return original(self, operation_name, api_params)

    with mock.patch.object(BaseClient, "_make_api_call", record):
        yield calls


def allow_cloudtrail(s3: Any, bucket: str, trail_arn: str, organization_id: str | None = None) -> None:
    """Give ``bucket`` the policy CloudTrail needs before it accepts the bucket for ``trail_arn`` (the
    local cloud, like AWS, refuses CreateTrail without it): the guide's statements, no key prefix."""
    import json

    from expel_onboarding.policies.bucket_policy import cloudtrail_bucket_statements

    partition, account = trail_arn.split(":")[1], trail_arn.split(":")[4]
    statements = cloudtrail_bucket_statements(partition, bucket, account, trail_arn, organization_id=organization_id)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))


def cloudtrail_logs_role(name: str, trail_name: str, group: str) -> str:
    """A role like template.yaml's CloudTrailLogsRole, in the moto account: CloudTrail may assume it for
    ``trail_name`` only, and it may write the log streams of ``group``. Returns its ARN."""
    import json

    import boto3

    from tests.conftest import ACCOUNT_ID, REGION

    iam = boto3.client("iam", region_name=REGION)
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {
            "aws:SourceAccount": ACCOUNT_ID,
            "aws:SourceArn": f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/{trail_name}"}}}]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="deliver", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{group}:log-stream:*"}]}))
    return str(arn)


#: A Lambda handler that answers its event: for functions a test needs to exist, not to do anything.
ECHO_HANDLER = "def handler(event, context):\n    return event\n"


def function_zip(files: dict[str, str]) -> bytes:
    """A Lambda deployment package (what ``Code.ZipFile`` takes) holding ``files``: name -> source."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def key_policy(key_arn: str) -> dict[str, Any]:
    """The KMS key's policy document, as the in-process moto account holds it."""
    import json

    import boto3

    from tests.conftest import REGION

    return dict(json.loads(boto3.client("kms", region_name=REGION).get_key_policy(
        KeyId=key_arn, PolicyName="default")["Policy"]))


def preflight_refusal(config: Any, parameter: str) -> str:
    """The message preflight refuses ``config`` with: it names ``parameter`` and a fix, and nothing was written."""
    from expel_onboarding.errors import InvalidParameter
    from expel_onboarding.steps import preflight

    with count_mutating_calls() as calls, pytest.raises(InvalidParameter) as raised:
        preflight.check(config)
    assert calls == []
    assert raised.value.parameter == parameter and "Fix: " in str(raised.value)
    return str(raised.value)
