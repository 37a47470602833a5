"""AWS Organizations as a member account sees it.

moto 5.2.5 answers a member account's reads of the organization from an empty organization of that
account's own: no accounts, OUs, delegated administrators or trusted services (only ListRoots and
DescribeOrganization are forwarded to the management account, and to any member). AWS answers these reads
(ListRoots, ListAccountsForParent, ListOrganizationalUnitsForParent, ListDelegatedAdministrators, ...) "only
from the organization's management account or by a member account that is a delegated administrator" (for
any AWS service), and refuses every other member with ``AccessDeniedException``: "You don't have permissions to
access this resource." Here a delegated administrator reads the organization as the management account does,
and any other member is refused as AWS refuses it. DescribeOrganization stays open to every member, as on AWS.
CloudTrail, which AWS lets have delegated administrators, is missing from moto's list of such services: added.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from local_cloud.once import once

# The OrganizationsBackend reads that AWS opens to the management account and delegated administrators only.
READS = (
    "list_roots", "describe_organizational_unit", "list_organizational_units_for_parent", "describe_account",
    "list_accounts", "list_accounts_for_parent", "list_parents", "list_children", "describe_policy",
    "list_policies", "list_policies_for_target", "list_targets_for_policy", "list_tags_for_resource",
    "list_aws_service_access_for_organization", "list_delegated_administrators",
    "list_delegated_services_for_account",
)
MESSAGE = "You don't have permissions to access this resource."
CLOUDTRAIL_PRINCIPAL = "cloudtrail.amazonaws.com"


def _access_denied() -> Exception:
    from moto.organizations.exceptions import OrganizationsClientError

    return OrganizationsClientError("AccessDeniedException", MESSAGE)


def management_backend(backend: Any) -> Any | None:
    """The management account's backend when ``backend`` is a member account's (None: it manages an organization
    itself, or it is in none)."""
    from moto.organizations.models import organizations_backends

    if backend.org is not None:
        return None
    found = organizations_backends.master_accounts.get(backend.account_id)
    if not found:
        return None
    master, partition = found
    return organizations_backends[master][partition]


def is_delegated_administrator(management: Any, account_id: str) -> bool:
    """Registered as delegated administrator for at least one service."""
    return any(a.account.id == account_id and a.services for a in management.admins)


def _as_the_organization(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def read(self: Any, *args: Any, **kwargs: Any) -> Any:
        management = management_backend(self)
        if management is None:
            return original(self, *args, **kwargs)
        if not is_delegated_administrator(management, self.account_id):
            raise _access_denied()
        return original(management, *args, **kwargs)

    read.__wrapped__ = original  # type: ignore[attr-defined]
    return read


@once
def apply() -> None:
    from moto.organizations.models import FakeDelegatedAdministrator, OrganizationsBackend

    if CLOUDTRAIL_PRINCIPAL not in FakeDelegatedAdministrator.SUPPORTED_SERVICES:
        FakeDelegatedAdministrator.SUPPORTED_SERVICES.append(CLOUDTRAIL_PRINCIPAL)
    for name in READS:
        setattr(OrganizationsBackend, name, _as_the_organization(name, getattr(OrganizationsBackend, name)))
