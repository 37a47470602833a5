"""An OU filter (``LogFilterOrganizationalUnitId``) on an existing organization trail, against moto.

CloudTrail's folders name organizations and accounts (AWSLogs/<org>/<account>/), never OUs, so the filter
becomes one notification entry per member account of the OU (nested OUs included), each for that account's
folder, to the same topic. What a person checks: one entry per account of the OU and no other account's,
every entry of theirs kept, a rerun writes nothing, an account that joins or leaves the OU gains or loses its
entry on the next run (the drift check names it before), the delete takes out ours only, and every
refusal comes before any write, naming the parameter.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from expel_onboarding.drift import DriftStatus
from expel_onboarding.models import Config
from expel_onboarding.policies.notification import account_entry_id, notification_id
from expel_onboarding.steps import drift_check
from tests import customer_trail
from tests.conftest import ACCOUNT_ID, REGION, boto
from tests.organization import Organization, add_account, build
from tests.steps.test_onboarding_rerun import configure
from tests.steps.test_teardown import run_teardown
from tests.support import count_mutating_calls, preflight_refusal

TRAIL = "TheirOrgTrail"
# prod (2 accounts) with a nested eu OU (1 account), and one account in the root.
LAYOUT = {"prod": ("root", 2), "eu": ("prod", 1), "root": ("root", 1)}


@dataclasses.dataclass
class Setup:
    config: Config
    organization: Organization
    organization_id: str
    customer: customer_trail.CustomerTrail

    @property
    def folder(self) -> str:
        return f"AWSLogs/{self.organization_id}/"

    def ours(self) -> dict[str, str]:
        """Our entries on the bucket: Id -> prefix."""
        base = notification_id(self.config.stack_name)
        found = self.customer.notification(boto).get("TopicConfigurations", [])
        return {e["Id"]: e["Filter"]["Key"]["FilterRules"][0]["Value"] for e in found
                if e["Id"] == base or e["Id"].startswith(f"{base}.")}

    def expected(self, accounts: list[str]) -> dict[str, str]:
        base = notification_id(self.config.stack_name)
        return {account_entry_id(base, a): f"{self.folder}{a}/" for a in accounts}

    def prod_accounts(self) -> list[str]:
        return sorted([*self.organization.accounts["prod"], *self.organization.accounts["eu"]])


@pytest.fixture
def setup(config: Config, aws: None) -> Setup:
    org = boto("organizations")
    organization = build(org, LAYOUT, trusted=("cloudtrail.amazonaws.com",))
    organization_id = org.describe_organization()["Organization"]["Id"]
    customer = customer_trail.build(boto, ACCOUNT_ID, REGION, name=TRAIL, key_prefix="",
                                    organization_id=organization_id)
    boto("cloudtrail").update_trail(Name=TRAIL, IsOrganizationTrail=True)
    existing = dataclasses.replace(config, existing_trail_name=TRAIL,
                                   log_filter_organizational_unit_id=organization.ous["prod"])
    return Setup(existing, organization, organization_id, customer)


def _refused(config: Config) -> str:
    return preflight_refusal(config, "LogFilterOrganizationalUnitId")


def _step7_check(config: Config) -> Any:
    """Step 7 of the drift check (``doctor``), which starts from what discovery finds."""
    return next(c for c in drift_check.check(config).steps if c.step == 7)


def test_one_entry_per_account_of_the_ou_and_its_nested_ou_beside_every_entry_of_theirs(setup: Setup) -> None:
    before = setup.customer.notification(boto)

    outputs = configure(setup.config)

    assert setup.ours() == setup.expected(setup.prod_accounts())  # not the root's account, not the management's
    after = setup.customer.notification(boto)
    assert after["QueueConfigurations"] == before["QueueConfigurations"]
    assert {e["TopicArn"] for e in after["TopicConfigurations"]} == {outputs["Topic"].topic_arn}
    # The canary goes through the first account's folder, where one of our entries notifies.
    first = setup.prod_accounts()[0]
    assert outputs["BucketNotification"].canary_prefix == f"{setup.folder}{first}/"
    delivery = verify_through(setup.config, outputs)
    assert delivery.confirmed and delivery.canary_key.startswith(f"{setup.folder}{first}/")


def verify_through(config: Config, outputs: dict[str, Any]) -> Any:
    from expel_onboarding.steps import verify_delivery
    delivery = verify_delivery.put_canary(config, outputs["Trail"], outputs["Topic"], run_id="ou-filter",
                                          notification_prefix=outputs["BucketNotification"].canary_prefix)
    while not delivery.confirmed:
        delivery = verify_delivery.check_canary(config, outputs["Trail"], outputs["Queue"], delivery)
    return delivery


def test_a_rerun_writes_nothing_and_the_drift_check_is_in_sync(setup: Setup) -> None:
    first = configure(setup.config)

    with count_mutating_calls() as calls:
        second = configure(setup.config)

    assert calls == [] and second == first
    assert _step7_check(setup.config).status is DriftStatus.IN_SYNC


def test_an_account_joining_or_leaving_the_ou_is_reported_then_converged_on_the_next_run(setup: Setup) -> None:
    configure(setup.config)
    org, organization = boto("organizations"), setup.organization
    joined = organization.accounts["root"][0]
    org.move_account(AccountId=joined, SourceParentId=organization.root, DestinationParentId=organization.ous["eu"])
    left = organization.accounts["prod"][0]
    org.move_account(AccountId=left, SourceParentId=organization.ous["prod"], DestinationParentId=organization.root)

    checked = _step7_check(setup.config)

    base = notification_id(setup.config.stack_name)
    assert checked.status is DriftStatus.DRIFTED
    differences = {f.setting: f for f in checked.findings}
    assert set(differences) == {f"event notification {account_entry_id(base, joined)!r}",
                                f"event notification {account_entry_id(base, left)!r}"}
    assert differences[f"event notification {account_entry_id(base, joined)!r}"].actual == "(absent)"
    assert "no longer in OU" in differences[f"event notification {account_entry_id(base, left)!r}"].fix

    with count_mutating_calls() as calls:
        configure(setup.config)

    assert calls == ["s3.PutBucketNotificationConfiguration"]
    accounts = sorted({*setup.prod_accounts(), joined} - {left})
    assert setup.ours() == setup.expected(accounts)
    assert _step7_check(setup.config).status is DriftStatus.IN_SYNC


def test_turning_the_filter_off_by_update_leaves_one_entry_for_the_organizations_folder(setup: Setup) -> None:
    configure(setup.config)

    configure(dataclasses.replace(setup.config, log_filter_organizational_unit_id=""))

    assert setup.ours() == {notification_id(setup.config.stack_name): setup.folder}


def test_delete_takes_out_every_entry_of_ours_and_nothing_of_theirs(setup: Setup) -> None:
    before = setup.customer.notification(boto)
    configure(setup.config)
    boto("organizations").move_account(AccountId=setup.organization.accounts["eu"][0],
                                       SourceParentId=setup.organization.ous["eu"],
                                       DestinationParentId=setup.organization.root)  # left: its entry stays ours

    run_teardown(setup.config)

    assert setup.customer.notification(boto) == before


# ------------------------------------------------------------------------------ refusals, before any write

def test_their_entry_over_one_accounts_folder_is_refused_naming_it(setup: Setup) -> None:
    account = setup.prod_accounts()[1]
    configuration = setup.customer.notification(boto)
    configuration["QueueConfigurations"].append({
        "Id": "their-account-feed", "QueueArn": setup.customer.deletes_queue_arn, "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": f"{setup.folder}{account}/"}]}}})
    boto("s3").put_bucket_notification_configuration(Bucket=setup.customer.bucket,
                                                     NotificationConfiguration=configuration)

    message = _refused(setup.config)

    assert "their-account-feed" in message and account in message


def test_their_topic_getting_every_log_file_is_refused_since_expel_would_get_every_account(
        config: Config, aws: None) -> None:
    org = boto("organizations")
    organization = build(org, LAYOUT, trusted=("cloudtrail.amazonaws.com",))
    organization_id = org.describe_organization()["Organization"]["Id"]
    customer_trail.build(boto, ACCOUNT_ID, REGION, name=TRAIL, key_prefix="", organization_id=organization_id,
                         topic_entry=True)
    boto("cloudtrail").update_trail(Name=TRAIL, IsOrganizationTrail=True)

    message = _refused(dataclasses.replace(config, existing_trail_name=TRAIL,
                                           log_filter_organizational_unit_id=organization.ous["prod"]))

    assert "their-siem-feed" in message and "leave LogFilterOrganizationalUnitId empty" in message


def test_an_ou_that_does_not_exist_or_has_no_account_is_refused(setup: Setup) -> None:
    assert "has no organizational unit ou-zzzz-zzzzzzzz" in _refused(
        dataclasses.replace(setup.config, log_filter_organizational_unit_id="ou-zzzz-zzzzzzzz"))
    org = boto("organizations")
    empty = org.create_organizational_unit(ParentId=setup.organization.root, Name="empty")["OrganizationalUnit"]["Id"]
    assert "has no account" in _refused(dataclasses.replace(setup.config, log_filter_organizational_unit_id=empty))


def test_another_organizations_folder_is_refused_since_its_ous_cannot_be_listed_here(setup: Setup) -> None:
    message = _refused(dataclasses.replace(setup.config, log_prefix_organization_id="o-subsidiary01"))
    assert "organization o-subsidiary01's" in message and setup.organization_id in message


def test_a_trail_of_one_account_is_refused(config: Config, aws: None) -> None:
    organization = build(boto("organizations"), LAYOUT, trusted=("cloudtrail.amazonaws.com",))
    customer_trail.build(boto, ACCOUNT_ID, REGION, name=TRAIL)

    message = _refused(dataclasses.replace(config, existing_trail_name=TRAIL,
                                           log_filter_organizational_unit_id=organization.ous["prod"]))

    assert "logs one account" in message


def test_an_account_added_to_a_nested_ou_is_listed(setup: Setup) -> None:
    org = boto("organizations")
    nested = org.create_organizational_unit(ParentId=setup.organization.ous["eu"], Name="deeper")
    added = add_account(org, setup.organization.root, nested["OrganizationalUnit"]["Id"], "deeper0")

    configure(setup.config)

    assert setup.ours() == setup.expected(sorted([*setup.prod_accounts(), added]))
