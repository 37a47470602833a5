"""The local cloud's AWS Organizations as a member account sees it (``local_cloud/organizations_members.py``):
a delegated administrator (for any service) lists the organization as the management account does, any other
member is refused with AWS's AccessDeniedException, and every member may describe the organization."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ACCOUNT_ID, REGION, boto
from tests.organization import STACKSETS, Organization, build, member_client
from tests.support import refusal

LAYOUT = {"prod": ("root", 2), "payments": ("prod", 1), "root": ("root", 1)}


@pytest.fixture
def org(aws: None) -> Iterator[Organization]:
    yield build(boto("organizations"), LAYOUT, trusted=(STACKSETS, "cloudtrail.amazonaws.com"))


def _member(account: str) -> Any:
    return member_client(boto("sts"), account, "organizations", region_name=REGION)


def _reads(client: Any, org: Organization) -> dict[str, Any]:
    return {
        "roots": [r["Id"] for r in client.list_roots()["Roots"]],
        "prod": sorted(a["Id"] for a in client.list_accounts_for_parent(ParentId=org.ous["prod"])["Accounts"]),
        "nested": [o["Id"] for o in client.list_organizational_units_for_parent(ParentId=org.ous["prod"])[
            "OrganizationalUnits"]],
        "children": [c["Id"] for c in client.list_children(ParentId=org.root, ChildType="ORGANIZATIONAL_UNIT")[
            "Children"]],
        "admins": sorted(a["Id"] for a in client.list_delegated_administrators()["DelegatedAdministrators"]),
        "trusted": sorted(s["ServicePrincipal"] for s in client.list_aws_service_access_for_organization()[
            "EnabledServicePrincipals"]),
    }


@pytest.mark.parametrize("principal", [STACKSETS, "cloudtrail.amazonaws.com"])
def test_a_delegated_administrator_lists_the_organization_as_the_management_account_does(org, principal):
    admin = org.accounts["prod"][0]
    boto("organizations").register_delegated_administrator(AccountId=admin, ServicePrincipal=principal)

    seen = _reads(_member(admin), org)

    assert seen == _reads(boto("organizations"), org)
    assert seen["prod"] == sorted(org.accounts["prod"]) and seen["nested"] == [org.ous["payments"]]
    assert seen["admins"] == [admin]


@pytest.mark.parametrize("read", [
    lambda c, o: c.list_roots(),
    lambda c, o: c.list_accounts_for_parent(ParentId=o.ous["prod"]),
    lambda c, o: c.list_organizational_units_for_parent(ParentId=o.root),
    lambda c, o: c.list_children(ParentId=o.root, ChildType="ACCOUNT"),
    lambda c, o: c.list_delegated_administrators(ServicePrincipal=STACKSETS),
    lambda c, o: c.list_aws_service_access_for_organization(),
    lambda c, o: c.describe_organizational_unit(OrganizationalUnitId=o.ous["prod"]),
], ids=["ListRoots", "ListAccountsForParent", "ListOrganizationalUnitsForParent", "ListChildren",
        "ListDelegatedAdministrators", "ListAWSServiceAccessForOrganization", "DescribeOrganizationalUnit"])
def test_a_member_that_administers_nothing_is_refused_as_aws_refuses_it(org, read):
    member = _member(org.accounts["root"][0])

    assert refusal(read, member, org) == ("AccessDeniedException",
                                          "You don't have permissions to access this resource.")


def test_every_member_may_describe_its_organization(org):
    described = _member(org.accounts["root"][0]).describe_organization()["Organization"]

    assert described["MasterAccountId"] == ACCOUNT_ID
