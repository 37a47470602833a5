"""Before guide step 1: check everything that can be checked without writing anything.

The guide's prerequisites (right account, home region, Organizations management account) and its
Troubleshooting ("a bucket name someone else in AWS already uses") become read-only checks here,
so bad input fails with a message naming the parameter and the fix before anything exists.

A name may be taken only by a resource carrying our ownership tag for this stack (a re-run). We never
take over a customer's bucket, key, trail, topic or queue: the onboarding would rewrite their policies.
The ``existing_*`` functions are shared with the steps, which re-check ownership before they write.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from expel_onboarding.aws import cloudtrail, kms, s3, sns, sqs, sts
from expel_onboarding.errors import InvalidParameter, OnboardingError, ResourceConflict
from expel_onboarding.models import Config
from expel_onboarding.naming import OWNER_TAG_KEY, full_alias, topic_arn
from expel_onboarding.steps import preflight_organizations
from expel_onboarding.validation import validate_config

logger = Logger(child=True)


def check(config: Config) -> dict[str, Any]:
    """Validate the parameters, then the account, then that every name is free or already ours."""
    validate_config(config)
    _check_region(config)
    _check_account(config)
    organization_id = _check_organization(config) if config.organization_mode else ""
    existing_key(config)
    existing_bucket(config)
    existing_trail(config)
    _check_topic_and_queue(config)
    logger.info("Preflight passed", extra={"account_id": config.account_id, "region": config.region})
    return {"Checked": True, "AccountId": config.account_id, "Region": config.region,
            "OrganizationId": organization_id}


def taken(parameter: str, problem: str, fix: str) -> ResourceConflict:
    """A conflict worded like ``InvalidParameter``: the person fixes it by changing that parameter."""
    error = ResourceConflict(f"Parameter {parameter}: {problem}. Fix: {fix}")
    error.parameter = parameter  # type: ignore[attr-defined]
    return error


def _ownership(config: Config, tags: dict[str, str]) -> str:
    """Whose resource: ``ours``, ``other-stack:<name>`` (another onboarding) or ``foreign``."""
    owner = tags.get(OWNER_TAG_KEY)
    if owner == config.stack_name:
        return "ours"
    return f"other-stack:{owner}" if owner else "foreign"


def _not_ours(config: Config, parameter: str, what: str, tags: dict[str, str], fix: str) -> ResourceConflict:
    ownership = _ownership(config, tags)
    if ownership.startswith("other-stack:"):
        stack = ownership.split(":", 1)[1]
        return taken(parameter, f"{what} belongs to another onboarding stack ({stack})",
                     f"choose another {parameter}, or delete stack {stack} first")
    return taken(parameter, f"{what} already exists and was not created by this onboarding "
                            f"(it has no {OWNER_TAG_KEY}={config.stack_name} tag)", fix)


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


def existing_key(config: Config) -> dict[str, Any] | None:
    """The key our alias points to (KeyMetadata), None when the alias is free; raises if not ours."""
    alias = full_alias(config.kms_alias)
    key = kms.describe_alias_target(alias, config.region)
    if key is None:
        return None
    tags = kms.key_tags(key["KeyId"], config.region)
    if _ownership(config, tags) != "ours":
        raise _not_ours(config, "KmsAlias", f"the alias {alias} points to key {key['KeyId']}, which", tags,
                        "choose another KmsAlias (guide step 1 creates a new key), or delete that alias")
    state = key.get("KeyState")
    if state == "PendingDeletion":
        raise taken("KmsAlias", f"the onboarding's key {key['KeyId']} ({alias}) is scheduled for deletion",
                    f"run 'aws kms cancel-key-deletion --key-id {key['KeyId']}' and 'aws kms enable-key "
                    f"--key-id {key['KeyId']}', or choose another KmsAlias")
    if state != "Enabled":
        raise taken("KmsAlias", f"the onboarding's key {key['KeyId']} ({alias}) is {state}",
                    f"run 'aws kms enable-key --key-id {key['KeyId']}', or choose another KmsAlias")
    return key


def existing_bucket(config: Config) -> bool:
    """True when the bucket exists and is ours, False when the name is free; raises otherwise."""
    bucket = config.bucket_name
    head = s3.head_bucket(bucket, config.account_id)
    if not head.exists:
        return False
    if not head.owned:
        raise taken("BucketName", f"the bucket {bucket} exists and belongs to another AWS account",
                    "choose another name; bucket names are unique across all of AWS, so append your account "
                    "id and region, e.g. expel-cloudtrail-<account id>-<region>")
    tags = s3.tags(bucket, config.account_id)
    if _ownership(config, tags) != "ours":
        raise _not_ours(
            config, "BucketName", f"the bucket {bucket} in this account", tags,
            "choose a new BucketName (guide step 1 creates a new bucket). Only if this bucket may be "
            "re-configured for Expel (public access blocked, ACLs disabled, versioning on, policy and "
            f"notifications added), tag it {OWNER_TAG_KEY}={config.stack_name} and retry")
    if head.region and head.region != config.region:
        raise taken("BucketName", f"the onboarding's bucket {bucket} is in {head.region}, not in the home "
                                  f"region {config.region}",
                    f"choose another BucketName, or deploy the stack in {head.region}")
    return True


def existing_trail(config: Config) -> dict[str, Any] | None:
    """The trail named TrailName in the home region, None when free; raises if not ours."""
    trail = cloudtrail.get_trail(config.trail_name, config.region)
    if trail is None:
        return None
    arn = str(trail["TrailARN"])
    _, _, _, region, account, _ = arn.split(":", 5)
    if account != config.account_id:
        raise taken("TrailName", f"the name {config.trail_name} is used by trail {arn} of account {account} "
                                 "(an organization trail)", "choose another TrailName")
    home = trail.get("HomeRegion") or region
    if home != config.region:
        raise taken("TrailName", f"a trail named {config.trail_name} exists with home region {home}",
                    f"choose another TrailName, or deploy the stack in {home}")
    tags = cloudtrail.trail_tags(arn, config.region)
    if _ownership(config, tags) != "ours":
        raise _not_ours(config, "TrailName", f"the trail {config.trail_name}", tags,
                        "choose another TrailName (this guide creates a new trail), or delete that trail")
    return trail


def _check_topic_and_queue(config: Config) -> None:
    """Topic (step 3) and queue (step 5) names: free, or ours from an earlier run."""
    arn = topic_arn(config.partition, config.region, config.account_id, config.topic_name)
    if sns.topic_attributes(arn, config.region) is not None:
        tags = sns.topic_tags(arn, config.region)
        if _ownership(config, tags) != "ours":
            raise _not_ours(config, "TopicName", f"the SNS topic {config.topic_name}", tags,
                            "choose another TopicName (guide step 3 creates a new topic)")
    url = sqs.queue_url(config.queue_name, config.account_id, config.region)
    if url is not None:
        tags = sqs.queue_tags(url, config.region)
        if _ownership(config, tags) != "ours":
            raise _not_ours(config, "QueueName", f"the SQS queue {config.queue_name}", tags,
                            "choose another QueueName (guide step 5 creates a new queue)")
