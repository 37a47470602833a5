"""What already exists under the names in the configuration, and whether it is ours.

Read-only look-ups shared by preflight (before anything is written) and guide step 1 (which re-checks,
because a resource can appear between preflight and the step). A name may be taken only by a resource
carrying this stack's ownership tag (a re-run); anything else is refused with the parameter to change:
the onboarding never takes over a customer's key, bucket, trail, topic or queue.
"""

from __future__ import annotations

from typing import Any

from expel_onboarding.aws import cloudtrail, kms, s3, sns, sqs
from expel_onboarding.errors import ResourceConflict
from expel_onboarding.models import Config
from expel_onboarding.naming import OWNER_TAG_KEY, full_alias, topic_arn
from expel_onboarding.ownership import require_ours


def key(config: Config) -> dict[str, Any] | None:
    """The key our alias points to (KeyMetadata), None when the alias is free; raises if not ours."""
    alias = full_alias(config.kms_alias)
    key = kms.describe_alias_target(alias, config.region)
    if key is None:
        return None
    tags = kms.key_tags(key["KeyId"], config.region)
    require_ours(tags, config.stack_name, parameter="KmsAlias",
                 what=f"the alias {alias} points to key {key['KeyId']}, which",
                 fix="choose another KmsAlias (guide step 1 creates a new key), or delete that alias")
    state = key.get("KeyState")
    if state == "PendingDeletion":
        raise ResourceConflict.of_parameter(
            "KmsAlias", f"the onboarding's key {key['KeyId']} ({alias}) is scheduled for deletion",
            f"run 'aws kms cancel-key-deletion --key-id {key['KeyId']}' and 'aws kms enable-key "
            f"--key-id {key['KeyId']}', or choose another KmsAlias")
    if state != "Enabled":
        raise ResourceConflict.of_parameter(
            "KmsAlias", f"the onboarding's key {key['KeyId']} ({alias}) is {state}",
            f"run 'aws kms enable-key --key-id {key['KeyId']}', or choose another KmsAlias")
    return key


def bucket(config: Config) -> bool:
    """True when the bucket exists and is ours, False when the name is free; raises otherwise."""
    bucket = config.bucket_name
    head = s3.head_bucket(bucket, config.account_id)
    if not head.exists:
        return False
    if not head.owned:
        raise ResourceConflict.of_parameter(
            "BucketName", f"the bucket {bucket} exists and belongs to another AWS account",
            "choose another name; bucket names are unique across all of AWS, so append your account id and region, "
            "e.g. expel-cloudtrail-<account id>-<region>")
    tags = s3.tags(bucket, config.account_id)
    require_ours(tags, config.stack_name, parameter="BucketName", what=f"the bucket {bucket} in this account",
                 fix="choose a new BucketName (guide step 1 creates a new bucket). Only if this bucket may be "
                     "re-configured for Expel (public access blocked, ACLs disabled, versioning on, policy and "
                     f"notifications added), tag it {OWNER_TAG_KEY}={config.stack_name} and retry")
    if head.region and head.region != config.region:
        raise ResourceConflict.of_parameter(
            "BucketName",
            f"the onboarding's bucket {bucket} is in {head.region}, not in the home region {config.region}",
            f"choose another BucketName, or deploy the stack in {head.region}")
    return True


def trail(config: Config) -> dict[str, Any] | None:
    """The trail named TrailName in the home region, None when free; raises if not ours."""
    trail = cloudtrail.get_trail(config.trail_name, config.region)
    if trail is None:
        return None
    arn = str(trail["TrailARN"])
    _, _, _, region, account, _ = arn.split(":", 5)
    if account != config.account_id:
        raise ResourceConflict.of_parameter(
            "TrailName", f"the name {config.trail_name} is used by trail {arn} of account {account} (an organization "
            "trail)", "choose another TrailName")
    home = trail.get("HomeRegion") or region
    if home != config.region:
        raise ResourceConflict.of_parameter(
            "TrailName", f"a trail named {config.trail_name} exists with home region {home}",
            f"choose another TrailName, or deploy the stack in {home}")
    tags = cloudtrail.trail_tags(arn, config.region)
    require_ours(tags, config.stack_name, parameter="TrailName", what=f"the trail {config.trail_name}",
                 fix="choose another TrailName (this guide creates a new trail), or delete that trail")
    return trail


def topic_and_queue(config: Config) -> None:
    """Topic (step 3) and queue (step 5) names: free, or ours from an earlier run."""
    arn = topic_arn(config.partition, config.region, config.account_id, config.topic_name)
    if sns.topic_attributes(arn, config.region) is not None:
        require_ours(sns.topic_tags(arn, config.region), config.stack_name, parameter="TopicName",
                     what=f"the SNS topic {config.topic_name}",
                     fix="choose another TopicName (guide step 3 creates a new topic)")
    url = sqs.queue_url(config.queue_name, config.account_id, config.region)
    if url is not None:
        require_ours(sqs.queue_tags(url, config.region), config.stack_name, parameter="QueueName",
                     what=f"the SQS queue {config.queue_name}",
                     fix="choose another QueueName (guide step 5 creates a new queue)")
