"""What already exists under the names in the configuration, and whether it is ours.

Read-only look-ups shared by preflight (before anything is written) and the steps that write (which
re-check, because a resource can appear between preflight and the step). A name may be taken only by a
resource carrying this stack's ownership tag (a re-run); anything else is refused with the parameter to
change: the onboarding never takes over a customer's key, bucket, trail, topic, queue, role or stack.
"""

from __future__ import annotations

from typing import Any

from expel_onboarding.aws import cloudtrail, iam, kms, logs, organizations, s3, sns, sqs, stacks, stacksets
from expel_onboarding.errors import InvalidParameter, ResourceConflict
from expel_onboarding.models import Config
from expel_onboarding.naming import OWNER_TAG_KEY, cloudwatch_log_group_name, full_alias, topic_arn
from expel_onboarding.ownership import is_ours, require_ours
from expel_onboarding.steps.expel_role_stack import ROLE_LOGICAL_ID
from expel_onboarding.steps.step08_expel_role import stack_set_name

# Resource states in which a stack's resource exists (a failed create or a delete left nothing).
_GONE = ("CREATE_FAILED", "DELETE_IN_PROGRESS", "DELETE_COMPLETE", "DELETE_FAILED")


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
    """True when the log bucket exists and is ours, False when the name is free; raises otherwise."""
    return _bucket(config, config.bucket_name, "BucketName", "expel-cloudtrail-<account id>-<region>",
                   "public access blocked, ACLs disabled, versioning on, policy and notifications added")


def access_log_bucket(config: Config) -> bool:
    """True when the access-log bucket exists and is ours, False when the name is free; raises otherwise."""
    return _bucket(config, config.access_log_bucket_name, "AccessLogBucketName",
                   "expel-cloudtrail-access-logs-<account id>-<region>",
                   "public access blocked, ACLs disabled, versioning on, SSE-S3, policy and lifecycle added")


def _bucket(config: Config, bucket: str, parameter: str, example: str, changes: str) -> bool:
    head = s3.head_bucket(bucket, config.account_id)
    if not head.exists:
        return False
    if not head.owned:
        raise ResourceConflict.of_parameter(
            parameter, f"the bucket {bucket} exists and belongs to another AWS account",
            "choose another name; bucket names are unique across all of AWS, so append your account id and region, "
            f"e.g. {example}")
    tags = s3.tags(bucket, config.account_id)
    require_ours(tags, config.stack_name, parameter=parameter, what=f"the bucket {bucket} in this account",
                 fix=f"choose a new {parameter} (guide step 1 creates a new bucket). Only if this bucket may be "
                     f"re-configured for Expel ({changes}), tag it {OWNER_TAG_KEY}={config.stack_name} and retry")
    if head.region and head.region != config.region:
        raise ResourceConflict.of_parameter(
            parameter,
            f"the onboarding's bucket {bucket} is in {head.region}, not in the home region {config.region}",
            f"choose another {parameter}, or deploy the stack in {head.region}")
    return True


def object_lock_choosable(config: Config, bucket_exists: bool) -> None:
    """Object Lock is chosen when the onboarding creates the log bucket, never later: turning it on for a
    bucket that exists (which S3 allows since 2023) cannot be undone and would leave the logs already there
    unprotected. A bucket created with it is fine on every later run."""
    if not config.object_lock_retention_days or not bucket_exists:
        return
    if not s3.object_lock(config.bucket_name, config.account_id).enabled:
        raise InvalidParameter(
            "ObjectLockRetentionDays",
            f"the log bucket {config.bucket_name} already exists without Object Lock, and the onboarding turns Object "
            "Lock on only for a bucket it creates (it cannot be undone)",
            "set ObjectLockRetentionDays back to 0 (a stack update cannot add Object Lock), or delete the stack and "
            "create it again with a new BucketName")


def log_group(config: Config) -> logs.LogGroup | None:
    """The trail's CloudWatch Logs log group when it exists and is ours, None when the name is free; raises
    when a group of that name is not ours. Only asked when CloudWatchLogsRetentionDays is set."""
    name = cloudwatch_log_group_name(config.account_id, config.trail_name)
    found = logs.log_group(name, config.region)
    if found is not None:
        require_ours(logs.tags(found.arn, config.region), config.stack_name,
                     parameter="CloudWatchLogsRetentionDays", what=f"the log group {name}",
                     fix=f"delete or rename that log group, set CloudWatchLogsRetentionDays to 0, or, only if "
                         f"the onboarding may take it over, tag it {OWNER_TAG_KEY}={config.stack_name}")
    return found


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
    topic(config)
    queue(config)


def topic(config: Config) -> None:
    """The topic's name (step 3): free, or ours from an earlier run."""
    arn = topic_arn(config.partition, config.region, config.account_id, config.topic_name)
    if sns.topic_attributes(arn, config.region) is not None:
        require_ours(sns.topic_tags(arn, config.region), config.stack_name, parameter="TopicName",
                     what=f"the SNS topic {config.topic_name}",
                     fix="choose another TopicName (guide step 3 creates a new topic)")


def queue(config: Config) -> None:
    """The queue's name (step 5): free, or ours from an earlier run."""
    url = sqs.queue_url(config.queue_name, config.account_id, config.region)
    if url is not None:
        require_ours(sqs.queue_tags(url, config.region), config.stack_name, parameter="QueueName",
                     what=f"the SQS queue {config.queue_name}",
                     fix="choose another QueueName (guide step 5 creates a new queue)")


def role_stack(config: Config) -> dict[str, Any] | None:
    """Guide step 8's (and step 9's) stack ``<stack>-expel-role``: None when the name is free; raises when a
    stack of that name is not this onboarding's."""
    stack = stacks.describe_stack(config.role_stack_name, config.region)
    if stack is None:
        return None
    require_ours(stacks.tags(stack), config.stack_name, parameter="RoleStackName",
                 what=f"a CloudFormation stack named {config.role_stack_name}",
                 fix=f"deploy the onboarding under another stack name (its role stack is named <stack name>-expel-role)"
                     f", or delete stack {config.role_stack_name} if it is unused")
    return stack


def role(config: Config) -> bool:
    """True when the IAM role RoleName exists and this onboarding's role stack made it, False when the name
    is free. A role made any other way (by hand from Expel's guide, by another tool) is refused here: the
    role stack would fail on it in step 8, after the trail, bucket, key, topic and queue were built."""
    found = iam.role(config.role_name)
    if found is None:
        return False
    stack = role_stack(config)
    resource = stacks.stack_resource(config.role_stack_name, ROLE_LOGICAL_ID, config.region) if stack else None
    if resource is not None and (resource.get("PhysicalResourceId") == config.role_name
                                 and str(resource.get("ResourceStatus", "")) not in _GONE):
        return True
    tags = {t["Key"]: t["Value"] for t in found.get("Tags", [])}
    if is_ours(tags, config.stack_name):
        return True
    raise ResourceConflict.of_parameter(
        "RoleName", f"an IAM role named {config.role_name} already exists ({found.get('Arn', '')}) and was not "
                    f"created by this onboarding's role stack {config.role_stack_name}",
        "choose another RoleName. If it is the role made by hand from Expel's guide, either delete it (Workbench "
        "gets the new role's ARN in step 10) or keep using it and choose another RoleName for this onboarding")


def stack_set(config: Config) -> dict[str, Any] | None:
    """Organizations mode: guide step 8's StackSet ``<stack>-expel-role``, None when the name is free;
    raises when a StackSet of that name is not this onboarding's."""
    name = stack_set_name(config)
    found = stacksets.describe_stack_set(name, config.region, organizations.call_as(config.account_id))
    if found is None:
        return None
    require_ours(stacks.tags(found), config.stack_name, parameter="OrganizationMode",
                 what=f"a StackSet named {name}",
                 fix="delete that StackSet if it is unused, or deploy the onboarding under another stack name",
                 other_stack_fix="delete stack {stack} first (its teardown removes the StackSet), or deploy the "
                                 "onboarding under another stack name")
    return found
