"""Expel's account and service user in the local cloud (``local_cloud.expel_account``): requests signed with
its key act as arn:aws:iam::012205512454:user/ExpelCloudService, and assuming a customer's role in another
account is decided on that role's trust policy (external id included) and on Expel's own grant.

The enforcing server runs in this process (as in ``test_iam_bites``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_cloud import expel_account
from tests.local_cloud.harness import client, enforcing_cloud, reset

ACCOUNT, REGION, GUID = "123456789012", "us-east-1", "4f9c2a1e-7b3d-4e5f-9a8b-1c2d3e4f5a6b"
TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": expel_account.EXPEL_PRINCIPAL_ARN}, "Action": "sts:AssumeRole",
    "Condition": {"StringEquals": {"sts:ExternalId": GUID}}}]}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with enforcing_cloud() as url:
        yield url


@pytest.fixture
def expel(url: str) -> Any:
    reset(url)
    user = expel_account.principal()
    return client(url, "sts", {"aws_access_key_id": user["AccessKeyId"],
                               "aws_secret_access_key": user["SecretAccessKey"]})


def test_the_key_acts_as_expels_service_user_in_expels_account(expel: Any) -> None:
    assert expel.get_caller_identity()["Arn"] == expel_account.EXPEL_PRINCIPAL_ARN
    assert expel.get_caller_identity()["Account"] == expel_account.EXPEL_ACCOUNT


def test_the_customers_role_is_assumed_only_with_the_workbench_guid(url: str, expel: Any) -> None:
    arn = client(url, "iam").create_role(RoleName="ExpelAssumeRole", AssumeRolePolicyDocument=json.dumps(TRUST)
                                         )["Role"]["Arn"]
    for external_id in ({}, {"ExternalId": "another-tenant"}):
        with pytest.raises(ClientError) as refused:
            expel.assume_role(RoleArn=arn, RoleSessionName="expel", **external_id)
        error = refused.value.response["Error"]
        assert error["Code"] == "AccessDenied"
        assert error["Message"].startswith(f"User: {expel_account.EXPEL_PRINCIPAL_ARN} is not authorized to "
                                           f"perform: sts:AssumeRole on resource: {arn}")
    session = expel.assume_role(RoleArn=arn, RoleSessionName="expel", ExternalId=GUID)["AssumedRoleUser"]
    assert session["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/ExpelAssumeRole/expel"


def test_without_expels_own_grant_the_trust_policy_alone_does_not_let_it_in(url: str, expel: Any) -> None:
    from moto.iam.models import iam_backends

    arn = client(url, "iam").create_role(RoleName="ExpelAssumeRole", AssumeRolePolicyDocument=json.dumps(TRUST)
                                         )["Role"]["Arn"]
    backend = iam_backends[expel_account.EXPEL_ACCOUNT]["aws"]
    backend.delete_user_policy(expel_account.EXPEL_USER, "assume-customer-roles")
    try:
        with pytest.raises(ClientError) as refused:
            expel.assume_role(RoleArn=arn, RoleSessionName="expel", ExternalId=GUID)
        assert "because no identity-based policy allows the sts:AssumeRole action" in \
            refused.value.response["Error"]["Message"]
    finally:
        backend.put_user_policy(expel_account.EXPEL_USER, "assume-customer-roles",
                                json.dumps(expel_account.ASSUME_CUSTOMER_ROLES))
