"""Before guide step 1: check everything that can be checked without writing anything.

The guide's prerequisites (right account, home region, Organizations management account) and its
Troubleshooting ("a bucket name someone else in AWS already uses") become read-only checks here,
so bad input fails with a message naming the parameter and the fix before anything exists.

A name may be taken only by a resource carrying our ownership tag for this stack (a re-run). We never
take over a customer's bucket, key, trail, topic or queue: the onboarding would rewrite their policies.
The look-ups live in ``existing``, shared with step 1, which re-checks ownership before it writes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from expel_onboarding.aws import sts
from expel_onboarding.errors import InvalidParameter, OnboardingError
from expel_onboarding.models import Config
from expel_onboarding.steps import existing, preflight_organizations, step01_existing_trail
from expel_onboarding.validation import validate_config

logger = Logger(child=True)


def check(config: Config) -> dict[str, Any]:
    """Validate the parameters, then the account, then that every name is free or already ours."""
    validate_config(config)
    _check_region(config)
    _check_account(config)
    organization_id = _check_organization(config) if config.organization_mode else ""
    findings = _check_existing_trail(config) if config.existing_trail_name else _check_names(config)
    # Guide steps 8 and 9 run last: a name taken there would fail the onboarding after everything else was built.
    existing.role_stack(config)
    existing.role(config)
    if config.organization_mode:
        existing.stack_set(config)
    logger.info("Preflight passed", extra={"account_id": config.account_id, "region": config.region})
    result: dict[str, Any] = {"Checked": True, "AccountId": config.account_id, "Region": config.region,
                              "OrganizationId": organization_id}
    if config.existing_trail_name:
        result["Findings"] = findings
    return result


def _check_names(config: Config) -> list[str]:
    """A new trail: the key, bucket, trail, topic and queue names are free or ours."""
    existing.key(config)
    existing.object_lock_choosable(config, existing.bucket(config))
    if config.access_logging:
        existing.access_log_bucket(config)
    existing.trail(config)
    if config.cloud_watch_logs_retention_days:
        existing.log_group(config)
    existing.topic_and_queue(config)
    return []


def _check_existing_trail(config: Config) -> list[str]:
    """An existing trail: it can serve Expel, the bucket's notifications leave room for (or already feed)
    Expel's topic, and the names of what the onboarding adds beside it are free or ours."""
    adopted = step01_existing_trail.read(config)
    accounts = step01_existing_trail.filter_accounts(config, adopted.log_prefix)
    destination, _ = step01_existing_trail.destination(config, adopted.bucket_name, adopted.log_prefix,
                                                       accounts or ())
    if not adopted.kms_key_arn:
        existing.key(config)  # the onboarding's own key for the topic and queue
    if not destination.topic_arn:
        existing.topic(config)
    existing.queue(config)
    logger.info("The existing trail can serve Expel", extra={"trail_arn": adopted.trail_arn,
                                                             "log_prefix": adopted.log_prefix,
                                                             "filter_accounts": accounts,
                                                             "topic": destination.topic_arn or config.topic_name,
                                                             "findings": list(adopted.findings)})
    return list(adopted.findings)


def _check_region(config: Config) -> None:
    region = sts.session_region()
    if region != config.region:
        raise OnboardingError(
            f"The onboarding runs in region {region} but its configuration names home region {config.region}. "
            "Fix: deploy the stack in your home region; the guide keeps every resource in one region")


def _check_account(config: Config) -> None:
    identity = sts.caller_identity()
    if identity.account_id != config.account_id or identity.partition != config.partition:
        raise OnboardingError(
            f"The onboarding runs as {identity.arn} (account {identity.account_id}) but its configuration "
            f"names account {config.account_id}. Fix: deploy the stack in the account you want to onboard")


def _check_organization(config: Config) -> str:
    """Organizations, StackSets and CloudTrail trusted access (``preflight_organizations``), plus the
    management account itself: an organization trail made by a delegated administrator belongs to
    the management account, so its ARN (in the bucket and key policies) would not be ours."""
    organization = preflight_organizations.check(config)
    management, organization_id = organization["ManagementAccountId"], organization["OrganizationId"]
    if management != config.account_id:
        raise InvalidParameter(
            "OrganizationMode", f"account {config.account_id} is not the management account ({management}) "
                                f"of organization {organization_id}",
            "deploy the stack in the management account, as the guide's prerequisites say, or set "
            "OrganizationMode to false to onboard this account alone")
    return str(organization_id)
