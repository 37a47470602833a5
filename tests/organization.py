"""An AWS Organization for tests, built through the Organizations API (in-process moto or the local cloud),
and clients that act inside one of its member accounts."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import boto3

STACKSETS = "member.org.stacksets.cloudformation.amazonaws.com"


@dataclasses.dataclass
class Organization:
    root: str
    ous: dict[str, str]  # name -> id
    accounts: dict[str, list[str]]  # OU name ("root" for the root) -> account ids

    def all_members(self) -> list[str]:
        return sorted(a for accounts in self.accounts.values() for a in accounts)


def build(org: Any, layout: dict[str, tuple[str, int]], trusted: tuple[str, ...] = (STACKSETS,)) -> Organization:
    """An organization whose OUs are ``layout``'s keys: name -> (parent name or "root", member accounts).
    Parents come before their children in ``layout``."""
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ous: dict[str, str] = {}
    accounts: dict[str, list[str]] = {}
    for name, (parent, count) in layout.items():
        parent_id = root if parent == "root" else ous[parent]
        if name != "root":
            ous[name] = org.create_organizational_unit(ParentId=parent_id, Name=name)["OrganizationalUnit"]["Id"]
        for n in range(count):
            accounts.setdefault(name, []).append(add_account(org, root, ous.get(name, root), f"{name}{n}"))
    for principal in trusted:
        org.enable_aws_service_access(ServicePrincipal=principal)
    return Organization(root=root, ous=ous, accounts=accounts)


def add_account(org: Any, root: str, parent: str, name: str) -> str:
    """A new member account (created in the root, as Organizations does), then moved under ``parent``."""
    account = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]["AccountId"]
    if parent != root:
        org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=parent)
    return str(account)


def member_client(sts: Any, account_id: str, service: str, **kwargs: Any) -> Any:
    """A client acting inside a member account, as the management account reaches it on AWS: through the
    OrganizationAccountAccessRole that Organizations creates in accounts it creates."""
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
                                  RoleSessionName="tests")["Credentials"]
    return boto3.client(service, aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"], **kwargs)


def role_names(iam: Any) -> list[str]:
    return sorted(r["RoleName"] for r in iam.list_roles()["Roles"])


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or check}")
        time.sleep(interval)
