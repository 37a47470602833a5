"""Organizations preflight against moto's AWS Organizations: every refusal names the parameter and the
fix, and nothing is written."""

from __future__ import annotations

import dataclasses
from typing import Any
from unittest import mock

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from expel_onboarding.aws import clients
from expel_onboarding.errors import InvalidParameter, OnboardingError
from expel_onboarding.models import Config
from expel_onboarding.steps import preflight_organizations
from tests.conftest import ACCOUNT_ID, boto
from tests.support import count_mutating_calls

STACKSETS = "member.org.stacksets.cloudformation.amazonaws.com"
CLOUDTRAIL = "cloudtrail.amazonaws.com"


@pytest.fixture
def org_config(config: Config) -> Config:
    return dataclasses.replace(config, organization_mode=True)


def _organization(feature_set: str = "ALL", trusted: tuple[str, ...] = (STACKSETS, CLOUDTRAIL)) -> dict[str, Any]:
    org = boto("organizations")
    org.create_organization(FeatureSet=feature_set)
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="prod")["OrganizationalUnit"]["Id"]
    member = org.create_account(AccountName="member", Email="member@example.com")["CreateAccountStatus"]["AccountId"]
    for principal in trusted:
        org.enable_aws_service_access(ServicePrincipal=principal)
    return {"root": root, "ou": ou, "member": member, "id": org.describe_organization()["Organization"]["Id"]}


@pytest.fixture
def as_member(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run the code under test with a member account's credentials (moto keys accounts by them)."""
    def switch(account_id: str) -> None:
        credentials = boto("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="preflight")[
            "Credentials"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
        monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])
        clients.reset()
    return switch


def _check(config: Config) -> dict[str, Any]:
    """The check, asserting it wrote nothing whatever it answered."""
    with count_mutating_calls() as calls:
        try:
            return preflight_organizations.check(config)
        finally:
            assert calls == []


def _refused(config: Config, parameter: str) -> str:
    with pytest.raises(InvalidParameter) as raised:
        _check(config)
    assert raised.value.parameter == parameter
    assert "Fix: " in str(raised.value)
    return str(raised.value)


def test_management_account_with_everything_enabled_passes_and_targets_the_root(aws, org_config):
    org = _organization()

    result = _check(org_config)

    assert result == {"OrganizationId": org["id"], "ManagementAccountId": ACCOUNT_ID, "Targets": [org["root"]]}


def test_existing_target_ous_and_root_are_accepted(aws, org_config):
    org = _organization()
    targeted = dataclasses.replace(org_config, organization_target_ou_ids=[org["root"], org["ou"]])

    assert _check(targeted)["Targets"] == sorted([org["root"], org["ou"]])


def test_single_account_mode_asks_nothing(aws, config):
    assert _check(config) == {"OrganizationId": "", "ManagementAccountId": "", "Targets": []}


def _register(account: str, *principals: str) -> None:
    for principal in principals:
        boto("organizations").register_delegated_administrator(AccountId=account, ServicePrincipal=principal)


def test_member_account_that_is_not_a_delegated_administrator_is_refused(aws, org_config, as_member):
    org = _organization()
    as_member(org["member"])  # Organizations refuses its reads: it administers nothing

    message = _refused(dataclasses.replace(org_config, account_id=org["member"]), "OrganizationMode")

    assert f"account {org['member']} is neither the management account ({ACCOUNT_ID})" in message
    assert f"register-delegated-administrator --account-id {org['member']} --service-principal {STACKSETS}" in message


def test_delegated_administrator_for_cloudtrail_only_is_told_to_register_for_stacksets(aws, org_config, as_member):
    org = _organization()
    _register(org["member"], CLOUDTRAIL)  # it may list the organization, but not operate StackSets
    as_member(org["member"])

    message = _refused(dataclasses.replace(org_config, account_id=org["member"]), "OrganizationMode")

    assert "nor a delegated administrator for CloudFormation StackSets" in message
    assert f"register-delegated-administrator --account-id {org['member']} --service-principal {STACKSETS}" in message


def test_delegated_administrator_for_stacksets_and_cloudtrail_is_accepted(aws, org_config, as_member):
    org = _organization()
    _register(org["member"], STACKSETS, CLOUDTRAIL)
    as_member(org["member"])

    result = _check(dataclasses.replace(org_config, account_id=org["member"]))

    assert result == {"OrganizationId": org["id"], "ManagementAccountId": ACCOUNT_ID, "Targets": [org["root"]]}


def test_organizations_refused_by_iam_names_the_grant_not_the_delegation(aws, org_config):
    _organization()
    original = BaseClient._make_api_call

    def call(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "ListAWSServiceAccessForOrganization":
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": (
                "User: arn:aws:sts::123456789012:assumed-role/x/y is not authorized to perform: "
                "organizations:ListAWSServiceAccessForOrganization")}}, operation)
        return original(self, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", call), pytest.raises(OnboardingError) as raised:
        _check(org_config)

    assert not isinstance(raised.value, InvalidParameter)
    assert "give the onboarding function organizations:ListAWSServiceAccessForOrganization" in str(raised.value)
    assert "register-delegated-administrator" not in str(raised.value)


def test_organization_without_all_features_is_refused(aws, org_config):
    _organization(feature_set="CONSOLIDATED_BILLING", trusted=())

    message = _refused(org_config, "OrganizationMode")

    assert "Enable all features" in message and "enable-all-features" in message


def test_stacksets_trusted_access_off_is_refused(aws, org_config):
    _organization(trusted=(CLOUDTRAIL,))

    message = _refused(org_config, "OrganizationMode")

    assert "trusted access for CloudFormation StackSets is off" in message
    assert "aws cloudformation activate-organizations-access" in message


def test_cloudtrail_trusted_access_off_is_refused(aws, org_config):
    _organization(trusted=(STACKSETS,))

    message = _refused(org_config, "OrganizationMode")

    assert "trusted access for CloudTrail is off" in message
    assert "enable-aws-service-access --service-principal cloudtrail.amazonaws.com" in message


@pytest.mark.parametrize("unknown", ["ou-zzzz-12345678", "r-zzzz"])
def test_unknown_target_ou_is_refused(aws, org_config, unknown):
    org = _organization()
    targeted = dataclasses.replace(org_config, organization_target_ou_ids=[org["ou"], unknown])

    message = _refused(targeted, "OrganizationTargetOuIds")

    assert f"{unknown} is not a root or organizational unit of organization {org['id']}" in message


def test_account_outside_any_organization_is_refused(aws, org_config):
    with pytest.raises(OnboardingError, match="Parameter OrganizationMode: this account is not in an AWS Organization"):
        _check(org_config)


@pytest.mark.parametrize(("field", "value", "parameter"), [
    ("stack_set_max_concurrent_percentage", 0, "StackSetMaxConcurrentPercentage"),
    ("stack_set_max_concurrent_percentage", "many", "StackSetMaxConcurrentPercentage"),
    ("stack_set_failure_tolerance_percentage", 101, "StackSetFailureTolerancePercentage"),
])
def test_rollout_percentages_out_of_range_are_refused_before_any_call(org_config, field, value, parameter):
    with count_mutating_calls() as calls:
        _refused(dataclasses.replace(org_config, **{field: value}), parameter)
    assert calls == []
