"""S3 refuses the bucket policies S3 refuses (``MalformedPolicy`` with S3's message), and keeps the old one.

Without this the local cloud stored any bytes as a bucket policy: a Resource given as a nested list was taken,
and a later CloudTrail UpdateTrail, whose check reads the bucket policy, failed with HTTP 500 instead of the
PutBucketPolicy failing as it does on AWS.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from expel_onboarding.policies.bucket_policy import access_log_bucket_statements, cloudtrail_bucket_statements
from tests.conftest import ACCOUNT_ID, REGION

BUCKET = "expel-logs-sample"
ARN = f"arn:aws:s3:::{BUCKET}"
TRAIL = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/ExpelCloudTrail"


def _policy(**statement: Any) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Reads", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, **statement}]})


def _without(name: str) -> str:
    document = json.loads(_policy(Action="s3:GetObject", Resource=f"{ARN}/*"))
    del document["Statement"][0][name]
    return json.dumps(document)


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


def test_the_onboardings_own_policies_and_common_forms_are_taken(s3: Any) -> None:
    taken = [
        {"Version": "2012-10-17", "Statement": cloudtrail_bucket_statements("aws", BUCKET, ACCOUNT_ID, TRAIL, "o-abc")},
        {"Version": "2012-10-17", "Statement": access_log_bucket_statements("aws", BUCKET, "source", ACCOUNT_ID,
                                                                             "logs/")},
        # 2008-10-17, a single statement object, Not forms, wildcards that cover the bucket and its objects.
        {"Version": "2008-10-17", "Statement": {"Effect": "Deny", "NotPrincipal": {"AWS": ["111122223333"]},
                                                "NotAction": "s3:GetObject*", "Resource": f"{ARN}*"}},
        {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:List*", "s3:Get*"],
                        "Resource": [ARN, f"{ARN}/*"]}]},
    ]
    for document in taken:
        s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(document))
        assert json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"]) == document


@pytest.mark.parametrize(("policy", "message"), [
    pytest.param(_policy(Action="s3:GetObject", Resource=[[f"{ARN}/*"]]), "Policy has invalid resource",
                 id="resource-nested-list"),
    pytest.param(_policy(Action="s3:GetObject", Resource="*"), "Policy has invalid resource", id="resource-star"),
    pytest.param(_policy(Action="s3:GetObject", Resource="arn:aws:s3:::someone-elses-bucket/*"),
                 "Policy has invalid resource", id="resource-another-bucket"),
    pytest.param(_policy(Action="s3:GetObject", Resource=f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:queue"),
                 "Policy has invalid resource", id="resource-not-s3"),
    pytest.param(_policy(Action="s3:GetObject", Resource=ARN), "Action does not apply to any resource(s) in statement",
                 id="object-action-on-the-bucket"),
    pytest.param(_policy(Action=["s3:GetObject", "s3:ListBucket"], Resource=f"{ARN}/*"),
                 "Action does not apply to any resource(s) in statement", id="bucket-action-on-objects"),
    pytest.param(_policy(Action="s3:GetObjekt", Resource=f"{ARN}/*"), "Policy has invalid action", id="action-typo"),
    pytest.param(_policy(Action="sqs:SendMessage", Resource=f"{ARN}/*"), "Policy has invalid action",
                 id="action-of-another-service"),
    pytest.param(_policy(Action="s3:GetObject", Resource=f"{ARN}/*", Effect="Allowed"), "Invalid effect: Allowed",
                 id="effect"),
    pytest.param(_policy(Action="s3:GetObject", Resource=f"{ARN}/*", Principal={"User": "alice"}),
                 "Invalid principal in policy", id="principal-type"),
    pytest.param(_without("Principal"), "Missing required field Principal", id="no-principal"),
    pytest.param(_without("Action"), "Missing required field Action", id="no-action"),
    pytest.param(_without("Resource"), "Missing required field Resource", id="no-resource"),
    pytest.param(_without("Effect"), "Missing required field Effect", id="no-effect"),
    pytest.param(json.dumps({"Version": "2012-10-17"}), "Missing required field Statement", id="no-statement"),
    pytest.param(json.dumps({"Version": "2012-10-17", "Statement": []}),
                 "Could not parse the policy: Statement is empty!", id="empty-statement"),
    pytest.param(json.dumps({"Version": "2012-10-18", "Statement": []}),
                 "The policy must contain a valid version string", id="version"),
    pytest.param('{"Version": "2012-10-17", "Statement": [', "This policy contains invalid Json", id="invalid-json"),
    pytest.param("Version: 2012-10-17", "Policies must be valid JSON and the first byte must be '{'", id="not-json"),
])
def test_a_malformed_policy_is_refused_and_the_old_one_kept(s3: Any, policy: str, message: str) -> None:
    kept = _policy(Action="s3:GetObject", Resource=f"{ARN}/*")
    s3.put_bucket_policy(Bucket=BUCKET, Policy=kept)

    with pytest.raises(ClientError) as caught:
        s3.put_bucket_policy(Bucket=BUCKET, Policy=policy)
    assert caught.value.response["Error"]["Code"] == "MalformedPolicy"
    assert caught.value.response["Error"]["Message"] == message
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert s3.get_bucket_policy(Bucket=BUCKET)["Policy"] == kept


def test_a_policy_for_a_bucket_that_does_not_exist_is_no_such_bucket(s3: Any) -> None:
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_policy(Bucket="no-such-bucket-here", Policy="not even json")
    assert caught.value.response["Error"]["Code"] == "NoSuchBucket"


def test_cloudformation_fails_a_bucket_policy_resource_s3_refuses(aws: None) -> None:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    template = {"Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": BUCKET}},
        "Policy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": {"Ref": "Bucket"}, "PolicyDocument": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                    "Resource": [[f"{ARN}/*"]]}]}}}}}
    cloudformation.create_stack(StackName="malformed-bucket-policy", TemplateBody=json.dumps(template),
                                DisableRollback=True)

    events = cloudformation.describe_stack_events(StackName="malformed-bucket-policy")["StackEvents"]
    failed = [e for e in events if e["LogicalResourceId"] == "Policy" and e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed and "Policy has invalid resource" in failed[0]["ResourceStatusReason"], events
    with pytest.raises(ClientError) as caught:
        boto3.client("s3", region_name=REGION).get_bucket_policy(Bucket=BUCKET)
    assert caught.value.response["Error"]["Code"] == "NoSuchBucketPolicy"
