"""Check the configuration before anything is created. Pure: no boto3, no environment.

Each rule mirrors the one AWS (or Workbench) enforces, so a bad value fails here, with the
template parameter's name and a fix, instead of half-way through the onboarding with an AWS
error that names neither. ``validate_config`` stops at the first problem: one clear message
is easier to act on than a list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from expel_onboarding.errors import InvalidParameter
from expel_onboarding.models import Config
from expel_onboarding.naming import full_alias
from expel_onboarding.workbench_payload import validate_base_url

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_ACCOUNT_ID = re.compile(r"\d{12}")
_REGION = re.compile(r"[a-z]{2,4}(-[a-z]+){1,3}-\d{1,2}")
_PARTITIONS = ("aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc")
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
_KMS_ALIAS = re.compile(r"alias/[A-Za-z0-9/_-]+")
_TRAIL_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_TOPIC_OR_QUEUE_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_IAM_NAME_CHARS = re.compile(r"[\w+=,.@-]+", re.ASCII)
_OU = re.compile(r"ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}")
_OU_OR_ROOT = re.compile(r"ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32}")
_TRAIL_ARN = re.compile(r"arn:aws[a-z-]*:cloudtrail:[a-z0-9-]+:\d{12}:trail/(?P<name>.+)")
_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")
_ORGANIZATION_ID = re.compile(r"o-[a-z0-9]{10,32}")
_SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+")
# Prefixes and suffixes S3 reserves for its own bucket types (access points, directory buckets, ...).
# "The maximum number of organizational units (OUs) supported by a CreateStackInstances operation is 50" (and by
# DeleteStackInstances, UpdateStackInstances, UpdateStackSet: CloudFormation API reference).
MAX_OUS_PER_OPERATION = 50
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def validate_config(config: Config) -> None:
    """Raise ``InvalidParameter`` for the first value AWS or Workbench would reject."""
    checks: list[Callable[[Config], None]] = [
        _check_stack_name,
        _check_account_and_region,
        lambda c: validate_workbench_guid(c.workbench_guid),
        lambda c: validate_trail_name(c.trail_name),
        lambda c: validate_bucket_name(c.bucket_name),
        lambda c: validate_kms_alias(c.kms_alias),
        lambda c: validate_topic_name(c.topic_name),
        lambda c: validate_queue_name(c.queue_name),
        lambda c: validate_role_name(c.role_name),
        lambda c: validate_stack_name("RoleStackName", c.role_stack_name),
        lambda c: validate_role_session_name(c.role_session_name),
        _check_workbench,
        _check_organization_targets,
        _check_existing_trail,
        _check_access_logging,
        _check_retention,
        _check_cloudwatch_logs,
        _check_existing_trail_hardening,
    ]
    for check in checks:
        check(config)


def validate_workbench_guid(value: str) -> None:
    if not _UUID.fullmatch(value or ""):
        raise InvalidParameter(
            "WorkbenchGuid", f"{value!r} is not a Workbench organization GUID (a UUID such as "
            "4f9c2a1e-7b3d-4e5f-9a8b-1c2d3e4f5a6b)",
            "copy the Organization GUID from Workbench > Organization Settings > My Organization")


def validate_bucket_name(value: str, name: str = "BucketName",
                         example: str = "expel-cloudtrail-<account id>-<region>") -> None:
    """S3 general purpose bucket naming rules (the bucket namespace is shared by all of AWS)."""
    fix = ("use 3-63 lowercase letters, digits, hyphens or dots, starting and ending with a letter or "
           f"digit, e.g. {example}")
    if not 3 <= len(value) <= 63:
        raise InvalidParameter(name, f"{value!r} is {len(value)} characters long, S3 allows 3 to 63", fix)
    if not re.fullmatch(r"[a-z0-9.-]+", value):
        raise InvalidParameter(
            name, f"{value!r} contains characters S3 does not allow (uppercase, underscore, space, ...)", fix)
    if not (value[0].isalnum() and value[-1].isalnum()):
        raise InvalidParameter(name, f"{value!r} must begin and end with a letter or digit", fix)
    if ".." in value or ".-" in value or "-." in value:
        raise InvalidParameter(name, f"{value!r} has two adjacent dots or a dot next to a hyphen",
                               "remove the extra dot or hyphen")
    if _IPV4.fullmatch(value):
        raise InvalidParameter(name, f"{value!r} is formatted as an IP address", fix)
    for prefix in _BUCKET_RESERVED_PREFIXES:
        if value.startswith(prefix):
            raise InvalidParameter(name, f"{value!r} starts with {prefix!r}, which S3 reserves",
                                   "choose a name without that prefix")
    for suffix in _BUCKET_RESERVED_SUFFIXES:
        if value.endswith(suffix):
            raise InvalidParameter(name, f"{value!r} ends with {suffix!r}, which S3 reserves",
                                   "choose a name without that suffix")


def validate_kms_alias(value: str) -> None:
    """Accepts ``expel-cloudtrail`` or ``alias/expel-cloudtrail`` (the guide asks for the bare name)."""
    name = "KmsAlias"
    alias = full_alias(value or "")
    fix = "use letters, digits, '/', '_' or '-' (up to 256 characters), e.g. expel-cloudtrail"
    if alias.startswith("alias/aws/"):
        raise InvalidParameter(name, f"{value!r}: the alias/aws/ prefix is reserved for AWS managed keys",
                               "choose a name outside alias/aws/, e.g. expel-cloudtrail")
    if len(alias) > 256 or not _KMS_ALIAS.fullmatch(alias):
        raise InvalidParameter(name, f"{value!r} is not a valid KMS alias name", fix)


def validate_trail_name(value: str, name: str = "TrailName") -> None:
    """CloudTrail: 3-128 of letters, digits, '.', '_', '-'; letter/digit at both ends; no runs; not an IP."""
    fix = ("use 3-128 letters, digits, dots, underscores or hyphens, starting and ending with a letter or "
           "digit, e.g. ExpelCloudTrail")
    if not 3 <= len(value) <= 128:
        raise InvalidParameter(name, f"{value!r} is {len(value)} characters long, CloudTrail allows 3-128",
                               fix)
    if not _TRAIL_CHARS.fullmatch(value):
        raise InvalidParameter(name, f"{value!r} contains characters CloudTrail does not allow", fix)
    if not (value[0].isalnum() and value[-1].isalnum()):
        raise InvalidParameter(name, f"{value!r} must begin and end with a letter or digit", fix)
    if re.search(r"[._-]{2}", value):
        raise InvalidParameter(name, f"{value!r} has adjacent dots, underscores or hyphens",
                               "separate words with a single '.', '_' or '-'")
    if _IPV4.fullmatch(value):
        raise InvalidParameter(name, f"{value!r} is formatted as an IP address", fix)


def validate_topic_name(value: str) -> None:
    _simple_name("TopicName", value, 256, "SNS", "ExpelCloudTrailTopic")


def validate_queue_name(value: str) -> None:
    _simple_name("QueueName", value, 80, "SQS", "ExpelCloudTrailQueue")


def validate_role_name(value: str) -> None:
    name = "RoleName"
    if not 1 <= len(value) <= 64 or not _IAM_NAME_CHARS.fullmatch(value):
        raise InvalidParameter(
            name, f"{value!r} is not a valid IAM role name",
            "use 1-64 letters, digits or any of + = , . @ _ - (the guide's name is ExpelAssumeRole)")


def validate_role_session_name(value: str) -> None:
    # Workbench passes it to sts:AssumeRole as RoleSessionName.
    if not 2 <= len(value) <= 64 or not _IAM_NAME_CHARS.fullmatch(value):
        raise InvalidParameter(
            "RoleSessionName", f"{value!r} is not a valid role session name",
            "use 2-64 letters, digits or any of + = , . @ _ -, e.g. orgname-expel-trail-session")


def validate_stack_name(parameter: str, value: str) -> None:
    if not _STACK_NAME.fullmatch(value or ""):
        raise InvalidParameter(
            parameter, f"{value!r} is not a valid CloudFormation stack name",
            "use up to 128 letters, digits or hyphens, starting with a letter")


def _simple_name(parameter: str, value: str, limit: int, service: str, example: str) -> None:
    if value.endswith(".fifo"):
        raise InvalidParameter(parameter, f"{value!r} names a FIFO {service} resource",
                               "drop the .fifo suffix: the guide uses a Standard one")
    if not 1 <= len(value) <= limit or not _TOPIC_OR_QUEUE_CHARS.fullmatch(value):
        raise InvalidParameter(parameter, f"{value!r} is not a valid {service} name",
                               f"use 1-{limit} letters, digits, hyphens or underscores, e.g. {example}")


def _check_stack_name(config: Config) -> None:
    # The stack name becomes the ownership tag's value: it must be a real stack name.
    validate_stack_name("StackName", config.stack_name)


def _check_account_and_region(config: Config) -> None:
    if config.partition not in _PARTITIONS:
        raise InvalidParameter("Partition", f"{config.partition!r} is not an AWS partition",
                               "pass ${AWS::Partition}")
    if not _ACCOUNT_ID.fullmatch(config.account_id or ""):
        raise InvalidParameter("AccountId", f"{config.account_id!r} is not a 12-digit AWS account id",
                               "pass ${AWS::AccountId}")
    if not _REGION.fullmatch(config.region or ""):
        raise InvalidParameter("Region", f"{config.region!r} is not an AWS region name",
                               "deploy the stack in your home region, e.g. us-east-2")


def _check_workbench(config: Config) -> None:
    arn = config.workbench_api_key_secret_arn
    if arn and not _SECRET_ARN.fullmatch(arn):
        raise InvalidParameter(
            "WorkbenchApiKeySecretArn", f"{arn!r} is not a Secrets Manager secret ARN",
            "pass the ARN of the secret holding the Workbench API key, or leave it empty to register by hand")
    # The same rule step 10 applies before it sends the API key anywhere.
    validate_base_url(config.workbench_base_url or "")
    if len(config.workbench_device_name) > 255:
        raise InvalidParameter("WorkbenchDeviceName", "the name is longer than 255 characters",
                               "use a shorter name, e.g. 'CompanyName CloudTrail'")
    if not config.workbench_location.strip():
        raise InvalidParameter("WorkbenchLocation", "the location is empty",
                               "enter where the integration lives, e.g. 'AWS cloud'")
    overrides = config.workbench_device_overrides
    if overrides:
        try:
            parsed = json.loads(overrides)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise InvalidParameter("WorkbenchDeviceOverrides", "the value is not a JSON object",
                                   'pass a JSON object such as {"plugin_slug": "..."}, or leave it empty')


def _check_organization_targets(config: Config) -> None:
    for target in config.organization_target_ou_ids:
        if not _OU_OR_ROOT.fullmatch(target):
            raise InvalidParameter(
                "OrganizationTargetOuIds", f"{target!r} is not an organizational unit or root id",
                "list ids such as ou-ab12-cd34ef56 or r-ab12, comma separated")
    # Step 8 deploys every target in one CreateStackInstances; more than CloudFormation takes would fail there,
    # after the trail and the data path were written. Naming parents is what AWS advises, and loses no account.
    targets = set(config.organization_target_ou_ids)
    if len(targets) > MAX_OUS_PER_OPERATION:
        raise InvalidParameter(
            "OrganizationTargetOuIds", f"it lists {len(targets)} OUs, but one StackSet operation takes at most "
                                       f"{MAX_OUS_PER_OPERATION}",
            "list the parent OUs instead (the StackSet deploys to the accounts of nested OUs too), or leave it empty "
            "to deploy the role to every account of the organization")


def _check_existing_trail(config: Config) -> None:
    """Existing-trail mode's parameters: a trail name or ARN, and the two options that only apply to it."""
    trail = config.existing_trail_name
    if trail:
        arn = _TRAIL_ARN.fullmatch(trail)
        if arn:
            # The template scopes every grant on the trail to trail/<ExistingTrailName>: a name, in this account.
            raise InvalidParameter("ExistingTrailName", f"{trail!r} is an ARN",
                                   f"give the trail's name, {arn.group('name')!r}; the stack must be deployed in "
                                   "the account and home region of the trail")
        validate_trail_name(trail, "ExistingTrailName")
    topic, organization = config.existing_topic_arn, config.log_prefix_organization_id
    ou = config.log_filter_organizational_unit_id
    for parameter, value in (("ExistingTopicArn", topic), ("LogPrefixOrganizationId", organization),
                             ("LogFilterOrganizationalUnitId", ou)):
        if value and not trail:
            raise InvalidParameter(parameter, "applies only to an existing trail, and ExistingTrailName is empty",
                                   f"set ExistingTrailName to the trail to onboard, or leave {parameter} empty")
    if topic:
        if not _TOPIC_ARN.fullmatch(topic):
            raise InvalidParameter("ExistingTopicArn", f"{topic!r} is not an SNS topic ARN",
                                   "give an ARN such as arn:aws:sns:us-east-2:123456789012:CloudTrailEvents")
        if topic.endswith(".fifo"):
            raise InvalidParameter("ExistingTopicArn", f"{topic} is a FIFO topic, which S3 cannot notify",
                                   "name a Standard topic, or leave the parameter empty")
    if organization and not _ORGANIZATION_ID.fullmatch(organization):
        hint = (" CloudTrail's folders name organizations, not organizational units: AWSLogs/o-.../<account>/"
                if organization.startswith(("ou-", "r-")) else "")
        raise InvalidParameter(
            "LogPrefixOrganizationId", f"{organization!r} is not an organization id (o- and 10 to 32 lowercase "
                                       f"letters or digits).{hint}",
            "give the organization id whose folder AWSLogs/<id>/ in the trail's bucket holds the logs Expel "
            "should read (AWS Organizations > Settings), or leave it empty")
    if ou and not _OU.fullmatch(ou):
        raise InvalidParameter(
            "LogFilterOrganizationalUnitId", f"{ou!r} is not an organizational unit id (ou-, 4 to 32 lowercase letters "
                                             "or digits, -, 8 to 32 more)",
            "copy the OU's id (ou-...) from AWS Organizations > AWS accounts, or leave it empty for every account of "
            "the organization")


# S3 lifecycle and Object Lock take whole days; S3's longest Object Lock retention is 100 years.
MAX_RETENTION_DAYS = 36500


def _check_access_logging(config: Config) -> None:
    if not config.access_logging:
        return
    name = config.access_log_bucket_name
    if not name:
        raise InvalidParameter("AccessLogBucketName", "is empty while AccessLogging is true",
                               "leave it empty in the template for expel-cloudtrail-access-logs-<account id>-"
                               "<region>, name a bucket, or set AccessLogging to false")
    validate_bucket_name(name, "AccessLogBucketName", "expel-cloudtrail-access-logs-<account id>-<region>")
    if name == config.bucket_name:
        raise InvalidParameter(
            "AccessLogBucketName", f"{name!r} is the log bucket itself: its access logs would be logged again, "
                                   "without end",
            "choose a bucket of its own, or leave AccessLogBucketName empty for the default")


def _days(parameter: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_RETENTION_DAYS:
        raise InvalidParameter(parameter, f"{value!r} is not a number of days from 0 to {MAX_RETENTION_DAYS}",
                               f"use whole days from 1 to {MAX_RETENTION_DAYS}, or 0 to turn it off")
    return value


def _check_retention(config: Config) -> None:
    keep = _days("LogRetentionDays", config.log_retention_days)
    lock = _days("ObjectLockRetentionDays", config.object_lock_retention_days)
    if keep and lock and keep < lock:
        raise InvalidParameter(
            "LogRetentionDays", f"{keep} days is shorter than ObjectLockRetentionDays ({lock} days): logs would be "
                                "due to expire while Object Lock still protects them",
            f"use at least {lock} days, or 0 to keep every log")
    if lock and not config.keep_log_bucket:
        raise InvalidParameter(
            "KeepLogBucket", f"false cannot be honoured with Object Lock (ObjectLockRetentionDays {lock}): a stack "
                             "delete could not remove log versions Object Lock retains",
            "set KeepLogBucket to true (the bucket is kept on delete), or ObjectLockRetentionDays to 0")


# The retention periods CloudWatch Logs accepts (PutRetentionPolicy).
CLOUDWATCH_LOGS_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                                  2557, 2922, 3288, 3653)


def _check_cloudwatch_logs(config: Config) -> None:
    days = config.cloud_watch_logs_retention_days
    if days == 0:
        return
    if days not in CLOUDWATCH_LOGS_RETENTION_DAYS:
        raise InvalidParameter("CloudWatchLogsRetentionDays", f"{days!r} is not a retention CloudWatch Logs offers",
                               "use one of " + ", ".join(map(str, CLOUDWATCH_LOGS_RETENTION_DAYS))
                               + ", or 0 for no delivery to CloudWatch Logs")
    if not config.cloud_watch_logs_role_arn:
        raise InvalidParameter("CloudWatchLogsRoleArn", "is empty while CloudWatchLogsRetentionDays is set",
                               "deploy with template.yaml, which makes the role CloudTrail writes to the log group "
                               "with (CloudTrailLogsRole)")


def _check_existing_trail_hardening(config: Config) -> None:
    """The hardening parameters that would change an existing trail or its bucket are refused in existing-trail
    mode, where the onboarding never changes either (README "Which mode"). AccessLogging is the one that applies
    there without a write: it becomes a finding when the trail's bucket logs no access (step 1)."""
    trail = config.existing_trail_name
    if not trail:
        return
    refused = (
        ("CloudWatchLogsRetentionDays", config.cloud_watch_logs_retention_days,
         "delivery to CloudWatch Logs is a setting of the trail itself (UpdateTrail)",
         f"turn it on for trail {trail} yourself (CloudTrail console > Trails > {trail} > CloudWatch Logs)"),
        ("LogRetentionDays", config.log_retention_days,
         "it would add a lifecycle rule that expires log files in the trail's bucket, which is yours",
         "set the retention in your bucket's lifecycle configuration yourself"),
        ("ObjectLockRetentionDays", config.object_lock_retention_days,
         "S3 Object Lock is chosen only for a log bucket the onboarding creates",
         "turn on Object Lock for your bucket yourself if you want it (it cannot be undone)"),
    )
    for parameter, value, why, yourself in refused:
        if value:
            raise InvalidParameter(
                parameter, f"{value} applies to a new trail only: with ExistingTrailName {trail} the onboarding never "
                           f"changes your trail or its bucket, and {why}", f"set {parameter} to 0; {yourself}")
