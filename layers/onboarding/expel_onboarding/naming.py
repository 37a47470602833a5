"""Names, ARNs and tags derived from the configuration. Pure: no boto3, no environment."""

from __future__ import annotations

OWNER_TAG_KEY = "expel-onboarding:stack"
CANARY_PREFIX = "expel-onboarding-canary/"


def owner_tags(stack_name: str) -> dict[str, str]:
    """The ownership tag every created resource carries, so teardown removes only what we made."""
    return {OWNER_TAG_KEY: stack_name}


def bucket_arn(partition: str, bucket_name: str) -> str:
    return f"arn:{partition}:s3:::{bucket_name}"


def trail_arn(partition: str, region: str, account_id: str, trail_name: str) -> str:
    return f"arn:{partition}:cloudtrail:{region}:{account_id}:trail/{trail_name}"


def access_log_bucket_name(account_id: str, region: str) -> str:
    """The access-log bucket's default name (template.yaml derives the same when AccessLogBucketName is empty)."""
    return f"expel-cloudtrail-access-logs-{account_id}-{region}"


def cloudwatch_log_group_name(account_id: str, trail_name: str) -> str:
    """The trail's CloudWatch Logs log group: the console's default prefix, unique per account and trail."""
    return f"aws-cloudtrail-logs-{account_id}-{trail_name}"


def log_group_arn(partition: str, region: str, account_id: str, name: str) -> str:
    """The form CloudTrail's CloudWatchLogsLogGroupArn takes (every stream of the group: ``:*``)."""
    return f"arn:{partition}:logs:{region}:{account_id}:log-group:{name}:*"


def topic_arn(partition: str, region: str, account_id: str, topic_name: str) -> str:
    return f"arn:{partition}:sns:{region}:{account_id}:{topic_name}"


def queue_arn(partition: str, region: str, account_id: str, queue_name: str) -> str:
    return f"arn:{partition}:sqs:{region}:{account_id}:{queue_name}"


def full_alias(alias: str) -> str:
    """KMS wants ``alias/<name>``; the guide asks a person for the bare name. Accept both."""
    return alias if alias.startswith("alias/") else f"alias/{alias}"


def refers_to_key(value: str, key_arn: str, alias: str) -> bool:
    """Whether a KmsMasterKeyId attribute names our key: services keep whatever form was set
    (key ARN, key id, alias name or alias ARN)."""
    if not value:
        return False
    key_id = key_arn.rsplit("/", 1)[-1]
    alias_name = full_alias(alias) if alias else ""
    alias_arn = key_arn.rsplit(":", 1)[0] + f":{alias_name}" if alias_name else ""
    return value in {key_arn, key_id} or (bool(alias_name) and value in {alias_name, alias_arn})
