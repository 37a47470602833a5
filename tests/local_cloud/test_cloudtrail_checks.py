"""CloudTrail refuses a bucket or key whose policy would not let it write, as AWS does (in-process moto,
patches applied as in ``local serve``): each rule next to the same call accepted, with AWS's error."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from expel_onboarding.models import Config
from expel_onboarding.policies.bucket_policy import cloudtrail_bucket_statements
from expel_onboarding.policies.key_policy import cloudtrail_key_policy
from expel_onboarding.steps import step01_trail
from tests import customer_trail
from tests.conftest import ACCOUNT_ID, REGION, boto
from tests.support import count_mutating_calls, refusal

BUCKET = "trail-logs"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
TRAIL = "checked-trail"
TRAIL_ARN = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/{TRAIL}"
BUCKET_REFUSAL = ("InsufficientS3BucketPolicyException", f"Incorrect S3 bucket policy is detected for bucket: {BUCKET}")


def _put_policy(statements: list[dict[str, Any]]) -> None:
    boto("s3").put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17",
                                                                      "Statement": statements}))


def _guide_statements(organization_id: str | None = None) -> list[dict[str, Any]]:
    return cloudtrail_bucket_statements("aws", BUCKET, ACCOUNT_ID, TRAIL_ARN, organization_id=organization_id)


def _create(**params: Any) -> Any:
    return boto("cloudtrail").create_trail(Name=TRAIL, S3BucketName=BUCKET, **params)


def _trails() -> list[str]:
    return [t["Name"] for t in boto("cloudtrail").describe_trails()["trailList"]]


@pytest.fixture
def bucket(aws: None) -> str:
    boto("s3").create_bucket(Bucket=BUCKET)
    return BUCKET


def test_a_bucket_without_a_policy_is_refused_and_nothing_is_stored(bucket: str) -> None:
    assert refusal(_create) == BUCKET_REFUSAL
    assert _trails() == []


def test_the_guides_bucket_policy_is_accepted_tls_only_deny_included(bucket: str) -> None:
    _put_policy(_guide_statements())  # the third statement denies every request without TLS
    _create()
    assert _trails() == [TRAIL]


def _without(sid: str) -> list[dict[str, Any]]:
    return [s for s in _guide_statements() if s["Sid"] != sid]


def _changed(sid: str, **changes: Any) -> list[dict[str, Any]]:
    return [{**s, **changes} if s["Sid"] == sid else s for s in _guide_statements()]


@pytest.mark.parametrize("statements", [
    pytest.param(_without("AWSCloudTrailAclCheck"), id="no s3:GetBucketAcl"),
    pytest.param(_without("AWSCloudTrailWrite"), id="no s3:PutObject"),
    pytest.param(_changed("AWSCloudTrailWrite", Resource=f"{BUCKET_ARN}/AWSLogs/111122223333/*"),
                 id="PutObject for another account's folder"),
    pytest.param(_changed("AWSCloudTrailAclCheck", Condition={"StringEquals": {
        "aws:SourceArn": f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/another-trail"}}),
                 id="aws:SourceArn of another trail"),
    pytest.param(_changed("AWSCloudTrailWrite", Condition={"StringEquals": {"s3:x-amz-acl": "private"}}),
                 id="s3:x-amz-acl other than bucket-owner-full-control"),
    pytest.param(_changed("AWSCloudTrailWrite", Condition={"StringEquals": {"aws:SourceAccount": "111122223333"}}),
                 id="aws:SourceAccount of another account"),
    pytest.param([*_guide_statements(), {"Effect": "Deny", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                                         "Action": "s3:PutObject", "Resource": f"{BUCKET_ARN}/*"}],
                 id="explicit deny"),
])
def test_a_policy_that_does_not_let_cloudtrail_check_and_write_is_refused(
        bucket: str, statements: list[dict[str, Any]]) -> None:
    _put_policy(statements)
    assert refusal(_create) == BUCKET_REFUSAL
    assert _trails() == []


def test_the_s3_key_prefix_is_where_cloudtrail_must_be_allowed_to_write(bucket: str) -> None:
    _put_policy(_guide_statements())  # AWSLogs/<account>/* at the bucket's root
    assert refusal(_create, S3KeyPrefix="audit") == BUCKET_REFUSAL
    _put_policy(_changed("AWSCloudTrailWrite", Resource=f"{BUCKET_ARN}/audit/AWSLogs/{ACCOUNT_ID}/*"))
    _create(S3KeyPrefix="audit")
    assert _trails() == [TRAIL]


def test_an_organization_trail_must_be_allowed_the_organizations_folder_too(bucket: str) -> None:
    organization = boto("organizations").create_organization(FeatureSet="ALL")["Organization"]["Id"]
    _put_policy(_guide_statements())
    assert refusal(_create, IsOrganizationTrail=True, IsMultiRegionTrail=True) == BUCKET_REFUSAL
    _put_policy(_guide_statements(organization))
    _create(IsOrganizationTrail=True, IsMultiRegionTrail=True)
    assert _trails() == [TRAIL]


def test_update_trail_to_a_bucket_cloudtrail_may_not_write_is_refused_and_changes_nothing(bucket: str) -> None:
    _put_policy(_guide_statements())
    _create()
    boto("s3").create_bucket(Bucket="other-logs")
    code, message = refusal(boto("cloudtrail").update_trail, Name=TRAIL, S3BucketName="other-logs")
    assert (code, message) == ("InsufficientS3BucketPolicyException",
                               "Incorrect S3 bucket policy is detected for bucket: other-logs")
    assert boto("cloudtrail").get_trail(Name=TRAIL)["Trail"]["S3BucketName"] == BUCKET


def test_start_logging_checks_the_bucket_policy_as_it_is_now(bucket: str) -> None:
    _put_policy(_guide_statements())
    _create()
    boto("s3").delete_bucket_policy(Bucket=BUCKET)
    assert refusal(boto("cloudtrail").start_logging, Name=TRAIL) == BUCKET_REFUSAL
    assert boto("cloudtrail").get_trail_status(Name=TRAIL)["IsLogging"] is False


# ------------------------------------------------------------------------------------------ the trail's key

def _key(policy: dict[str, Any] | None) -> str:
    params = {"Policy": json.dumps(policy)} if policy else {}
    return str(boto("kms").create_key(**params)["KeyMetadata"]["Arn"])


def _encryption_refusal(key_arn: str) -> tuple[str, str]:
    return ("InsufficientEncryptionPolicyException",
            f"Insufficient permissions to access S3 bucket {BUCKET} or KMS key {key_arn}.")


def test_a_key_whose_policy_does_not_admit_cloudtrail_is_refused(bucket: str) -> None:
    _put_policy(_guide_statements())
    key_arn = _key(None)  # KMS's default policy: the account's root only
    assert refusal(_create, KmsKeyId=key_arn) == _encryption_refusal(key_arn)
    assert _trails() == []


def test_the_key_policys_encryption_context_condition_is_evaluated(bucket: str) -> None:
    _put_policy(_guide_statements())
    for_another_trail = cloudtrail_key_policy("aws", REGION, ACCOUNT_ID, TRAIL)
    encrypt = next(s for s in for_another_trail["Statement"] if s["Action"] == "kms:GenerateDataKey*")
    encrypt["Condition"] = {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn":
                                           f"arn:aws:cloudtrail:*:{ACCOUNT_ID}:trail/another-*"}}
    key_arn = _key(for_another_trail)
    assert refusal(_create, KmsKeyId=key_arn) == _encryption_refusal(key_arn)
    good = _key(cloudtrail_key_policy("aws", REGION, ACCOUNT_ID, TRAIL))
    _create(KmsKeyId=good)
    assert boto("cloudtrail").get_trail(Name=TRAIL)["Trail"]["KmsKeyId"] == good


def test_update_trail_to_a_key_cloudtrail_may_not_use_is_refused(bucket: str) -> None:
    _put_policy(_guide_statements())
    _create()
    key_arn = _key(None)
    assert refusal(boto("cloudtrail").update_trail, Name=TRAIL, KmsKeyId=key_arn) == _encryption_refusal(key_arn)
    assert not boto("cloudtrail").get_trail(Name=TRAIL)["Trail"].get("KmsKeyId")


def test_a_key_that_does_not_exist_or_is_in_another_region_is_not_found(bucket: str) -> None:
    _put_policy(_guide_statements())
    elsewhere = boto3.client("kms", region_name="eu-west-1").create_key()["KeyMetadata"]["Arn"]
    for key in (f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/00000000-0000-0000-0000-000000000000", elsewhere):
        assert refusal(_create, KmsKeyId=key).code == "KmsKeyNotFoundException"


# ------------------------------------------------------------------------------------------ the onboarding

def test_step_1_writes_the_key_policy_and_bucket_policy_before_it_creates_the_trail(
        aws: None, config: Config) -> None:
    with count_mutating_calls() as calls:
        step01_trail.apply(config)
    last_bucket_policy = max(i for i, call in enumerate(calls) if call == "s3.PutBucketPolicy")
    assert calls.index("kms.CreateKey") < last_bucket_policy < calls.index("cloudtrail.CreateTrail")
    assert calls.index("cloudtrail.CreateTrail") < calls.index("cloudtrail.StartLogging")
    # Neither policy changes afterwards: the ones CloudTrail checked are the ones it writes under.
    assert "kms.PutKeyPolicy" not in calls and last_bucket_policy < calls.index("cloudtrail.CreateTrail")
    assert boto("cloudtrail").get_trail_status(Name=config.trail_name)["IsLogging"] is True


def test_an_adopted_trail_passed_the_same_checks(aws: None, config: Config) -> None:
    # The customer's trail is made with plain CreateTrail/StartLogging calls, so it exists only because
    # its bucket policy (with a key prefix) and key policy satisfy CloudTrail; adoption never re-creates it.
    customer = customer_trail.build(lambda service: boto(service), ACCOUNT_ID, REGION, name="CustomersTrail")
    assert boto("cloudtrail").get_trail_status(Name=customer.trail_name)["IsLogging"] is True
    with pytest.raises(ClientError) as refused:
        boto("cloudtrail").update_trail(Name=customer.trail_name, S3KeyPrefix="elsewhere")
    assert refused.value.response["Error"]["Code"] == "InsufficientS3BucketPolicyException"
