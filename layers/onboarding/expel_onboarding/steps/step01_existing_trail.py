"""Guide steps 1 and 2 for a trail the customer already has (``ExistingTrailName``): adopt it.

Expel's "Existing Trail" guide keeps the trail, its bucket and its key, and adds beside them what Expel
reads from: a topic, a queue and a key that encrypts them, with the key policies extended and the
bucket's object-created events sent to the topic. The trail's own settings are never changed: ``read``
only looks, and refuses (before anything is written) a trail that cannot serve Expel, naming the setting
and the fix; where it can serve but differs from the guide's best practice, the differences travel as
findings into the stack's outputs. ``adopt`` is step 1 in this mode: ``read`` again, plus a key of our
own for the topic and queue when the trail's log files are not encrypted with a customer managed key.

``destination`` decides where the bucket's events go (``policies.notification.choose_destination``)
and checks a customer's topic the onboarding would use, for preflight and step 3 alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from expel_onboarding.aws import cloudtrail, kms, kms_policy, organizations, s3, sns
from expel_onboarding.errors import InvalidParameter
from expel_onboarding.models import Config, TrailOutput
from expel_onboarding.naming import OWNER_TAG_KEY, bucket_arn, full_alias, owner_tags
from expel_onboarding.ownership import Ownership, owner, ownership
from expel_onboarding.policies.denials import Request, Verdict, expel_read_denials
from expel_onboarding.policies.event_selectors import management_events
from expel_onboarding.policies.key_policy import own_key_policy
from expel_onboarding.policies.notification import (
    Destination,
    account_prefixes,
    choose_destination,
    notification_id,
)
from expel_onboarding.steps import existing

logger = Logger(child=True)

TRAIL = "ExistingTrailName"
TOPIC = "ExistingTopicArn"
OU_FILTER = "LogFilterOrganizationalUnitId"


@dataclass(frozen=True)
class AdoptedTrail:
    """What the onboarding reads from an existing trail; nothing here is ever written back to it."""

    trail_arn: str
    bucket_name: str
    log_prefix: str  # <S3KeyPrefix>/AWSLogs/<account id, organization id or LogPrefixOrganizationId>/
    kms_key_arn: str  # the trail's own customer managed key, "" when it has none
    log_kms_key_arn: str  # the key the log files are encrypted with: the trail's, else the bucket default's
    findings: tuple[str, ...]


def read(config: Config) -> AdoptedTrail:
    """The trail, checked for what Expel needs: logging, every region, management events, log file
    validation, delivery to a bucket of this account in this region, a usable key. Reads only."""
    trail = _trail(config)
    arn, name = str(trail["TrailARN"]), config.existing_trail_name
    _require(cloudtrail.is_logging(arn, config.region), "logging is off, so it delivers no log files",
             f"start it: aws cloudtrail start-logging --name {arn} (the onboarding never changes your trail)")
    _require(bool(trail.get("IsMultiRegionTrail")), f"it logs {config.region} only; Expel needs every region",
             f"aws cloudtrail update-trail --name {arn} --is-multi-region-trail")
    events = management_events(cloudtrail.event_selectors(arn, config.region))
    _require(events.write, "it logs no write management events, the ones Expel's detections read",
             f"log read and write management events: CloudTrail console > Trails > {name} > Management events")
    _require(bool(trail.get("LogFileValidationEnabled")), "log file validation is off, so Expel cannot prove a "
             "log file was not changed", f"aws cloudtrail update-trail --name {arn} --enable-log-file-validation")
    bucket = str(trail.get("S3BucketName", ""))
    _check_bucket(config, bucket)
    organization_trail = bool(trail.get("IsOrganizationTrail"))
    if config.organization_mode and not organization_trail:
        raise InvalidParameter("OrganizationMode", f"trail {name} logs only this account, but OrganizationMode is "
                                                   "true (Expel would miss every member account)",
                               f"make {name} an organization trail (aws cloudtrail update-trail --name {arn} "
                               "--is-organization-trail), onboard your organization trail, or set OrganizationMode "
                               "to false")
    log_prefix = _log_prefix(config, trail, organization_trail)
    denial_findings = _bucket_policy_denials(config, bucket, log_prefix)
    key_arn = _trail_key(config, str(trail.get("KmsKeyId") or ""))
    log_key = key_arn or _bucket_default_key(config, bucket)
    findings = [*_event_findings(events), *_bucket_findings(config, bucket, key_arn), *denial_findings]
    if config.access_logging and s3.logging_target(bucket, config.account_id) is None:
        # AccessLogging applies as a check here: turning it on would change the customer's bucket.
        findings.append(f"bucket {bucket} has server access logging off (CIS 3.6, Security Hub CloudTrail.7): "
                        "turn it on to a bucket of yours; the onboarding does not change your bucket")
    if key_arn and not kms.rotation_enabled(key_arn, config.region):
        findings.append(f"key {key_arn} has automatic rotation off (the guide's new key rotates yearly)")
    if not key_arn:
        findings.append("the log files are not encrypted with a customer managed KMS key (the guide: SSE-KMS with "
                        "a key of your own); the onboarding's own key encrypts the topic and queue")
    if organization_trail and not config.organization_mode:
        findings.append("an organization trail onboarded with OrganizationMode false: Expel's role exists in this "
                        "account only")
    return AdoptedTrail(trail_arn=arn, bucket_name=bucket, log_prefix=log_prefix, kms_key_arn=key_arn,
                        log_kms_key_arn=log_key, findings=tuple(findings))


def adopt(config: Config) -> TrailOutput:
    """Step 1 in existing-trail mode: the trail as it is, and the key that will encrypt the topic and queue:
    the trail's own customer managed key, else one the onboarding creates (alias KmsAlias, rotation on)."""
    adopted = read(config)
    key_arn, alias = adopted.kms_key_arn, ""
    if not key_arn:
        key_arn, alias = _own_key(config), full_alias(config.kms_alias)
    logger.info("Adopted the existing trail; its settings are left as they are",
                extra={"trail_arn": adopted.trail_arn, "bucket": adopted.bucket_name, "log_prefix": adopted.log_prefix,
                       "findings": list(adopted.findings)})
    return TrailOutput(trail_arn=adopted.trail_arn, bucket_name=adopted.bucket_name,
                       bucket_arn=bucket_arn(config.partition, adopted.bucket_name), kms_key_arn=key_arn,
                       kms_alias=alias, existing_trail=True, log_prefix=adopted.log_prefix,
                       log_kms_key_arn=adopted.log_kms_key_arn, findings="; ".join(adopted.findings))


def destination(config: Config, bucket: str, log_prefix: str,
                accounts: Sequence[str] = ()) -> tuple[Destination, str]:
    """Where the trail's log file events go, and the key of a customer's topic ("" for none or ours).
    Refuses, before anything is written, an overlap S3 would refuse and a topic we could not use. With an
    OU filter, ``accounts`` (``filter_accounts``) are the folders our entries will cover; without them only
    the topic is chosen (a customer's covering topic is never used then: it gets every account's logs)."""
    current = s3.notification_configuration(bucket, config.account_id)
    prefixes = account_prefixes(log_prefix, accounts) if config.log_filter_organizational_unit_id else None
    chosen = choose_destination(current, log_prefix, notification_id(config.stack_name), config.existing_topic_arn,
                                prefixes)
    if not chosen.topic_arn:
        return chosen, ""
    parameter = TOPIC if chosen.topic_arn == config.existing_topic_arn else TRAIL
    return chosen, _customers_topic_key(config, chosen.topic_arn, parameter)


def read_log_prefix(config: Config) -> str:
    """The trail's log folder alone (the drift check: discovery names the bucket, not the folder)."""
    trail = _trail(config)
    return _log_prefix(config, trail, bool(trail.get("IsOrganizationTrail")))


def filter_accounts(config: Config, log_prefix: str) -> list[str] | None:
    """The member accounts of the OU filter (``LogFilterOrganizationalUnitId``), nested OUs included (an
    account in a child OU is in the OU's subtree), sorted; None without a filter. CloudTrail's folders name
    organizations and accounts, never OUs, so the filter becomes one entry per account's folder. Refuses,
    naming the parameter: a folder that is not an organization's, an organization other than this account's
    (its OUs cannot be listed from here), an OU that does not exist or has no account. Reads only."""
    ou = config.log_filter_organizational_unit_id
    if not ou:
        return None
    folder = log_prefix.rstrip("/").rsplit("/", 1)[-1]
    if not folder.startswith("o-"):
        raise InvalidParameter(OU_FILTER, f"trail {config.existing_trail_name} logs one account (folder {log_prefix}), "
                                          "and only an organization trail's folder holds the accounts of an OU",
                               "leave LogFilterOrganizationalUnitId empty, or onboard your organization trail (in "
                               "the management account)")
    organization_id = str(organizations.describe_organization()["Id"])
    if folder != organization_id:
        raise InvalidParameter(OU_FILTER, f"the log folder {log_prefix} is organization {folder}'s "
                                          f"(LogPrefixOrganizationId), but this account is in organization "
                                          f"{organization_id}, and only its own organization's OUs can be listed here",
                               "leave LogFilterOrganizationalUnitId empty, or LogPrefixOrganizationId (or set it to "
                               f"{organization_id})")
    if organizations.describe_organizational_unit(ou) is None:
        raise InvalidParameter(OU_FILTER, f"organization {organization_id} has no organizational unit {ou}",
                               "copy the OU's id (ou-...) from AWS Organizations > AWS accounts, or leave "
                               "LogFilterOrganizationalUnitId empty for every account of the organization")
    accounts = sorted(organizations.accounts_under([ou], active_only=False))
    if not accounts:
        raise InvalidParameter(OU_FILTER, f"OU {ou} (nested OUs included) has no account, so Expel would receive "
                                          "no log file event",
                               "move the accounts Expel should watch into the OU, or choose another OU, then retry")
    return accounts


def _require(condition: bool, problem: str, fix: str) -> None:
    if not condition:
        raise InvalidParameter(TRAIL, problem, fix)


def _trail(config: Config) -> dict[str, Any]:
    name = config.existing_trail_name
    trail = cloudtrail.get_trail(name, config.region)
    if trail is None:
        raise InvalidParameter(TRAIL, f"no trail named {name} in {config.region}",
                               f"give the name or ARN of your trail (aws cloudtrail describe-trails --region "
                               f"{config.region} lists them), or deploy the stack in the trail's home region")
    arn = str(trail["TrailARN"])
    _, _, _, region, account, _ = arn.split(":", 5)
    if account != config.account_id:
        raise InvalidParameter(TRAIL, f"trail {arn} belongs to account {account} (an organization trail seen from "
                                      "a member account)",
                               f"deploy the stack in account {account}, the organization's management account, "
                               "which owns the trail (guide: prerequisites)")
    home = str(trail.get("HomeRegion") or region)
    if home != config.region:
        raise InvalidParameter(TRAIL, f"the trail's home region is {home}, not {config.region}",
                               f"deploy the stack in {home}: the topic and queue must live beside the trail's bucket")
    return trail


def _check_bucket(config: Config, bucket: str) -> None:
    head = s3.head_bucket(bucket, config.account_id)
    if not head.exists:
        raise InvalidParameter(TRAIL, f"the trail delivers to bucket {bucket}, which does not exist",
                               "fix the trail's delivery (CloudTrail console > Trails > Storage location), then retry")
    if not head.owned:
        raise InvalidParameter(
            TRAIL, f"the trail delivers to bucket {bucket} of another AWS account (a Control Tower log archive or a "
                   "central logging account); the onboarding adds its topic, queue and notification beside the "
                   "bucket, and a bucket in another account is not supported yet",
            "follow Expel's 'Existing Trail' guide by hand in the account that owns the bucket, or onboard a trail "
            "whose bucket is in this account")
    if head.region and head.region != config.region:
        raise InvalidParameter(TRAIL, f"the trail's bucket {bucket} is in {head.region}, not in {config.region}; S3 "
                                      "notifies only a topic in the bucket's own region",
                               f"onboard a trail whose bucket is in its home region, or deploy in {head.region} "
                               "with a trail there")


def _log_prefix(config: Config, trail: dict[str, Any], organization_trail: bool) -> str:
    """Where CloudTrail writes: <prefix>/AWSLogs/<account>/ for a trail of one account, and
    <prefix>/AWSLogs/<organization id>/<account>/ for an organization trail."""
    prefix = str(trail.get("S3KeyPrefix") or "").strip("/")
    root = f"{prefix}/AWSLogs/" if prefix else "AWSLogs/"
    if config.log_prefix_organization_id:
        return f"{root}{config.log_prefix_organization_id}/"
    if organization_trail:
        return f"{root}{organizations.describe_organization()['Id']}/"
    return f"{root}{config.account_id}/"


def _bucket_policy_denials(config: Config, bucket: str, log_prefix: str) -> list[str]:
    """A Deny in the bucket's policy that stops Expel's role reading the log files is refused (the onboarding
    would complete and Expel read nothing); one that may, depending on where the request comes from, is a
    finding. Expel's role needs no Allow there: it is in the bucket's account, where its IAM policy suffices."""
    role_arn = f"arn:{config.partition}:iam::{config.account_id}:role/{config.role_name}"
    folder = log_prefix if log_prefix.endswith(f"/{config.account_id}/") else f"{log_prefix}{config.account_id}/"
    request = Request(role_arn=role_arn, account_id=config.account_id,
                      object_arn=f"{bucket_arn(config.partition, bucket)}/{folder}CloudTrail/{config.region}/"
                                 f"2026/01/01/{config.account_id}_CloudTrail_{config.region}_log.json.gz")
    findings = []
    for denial in expel_read_denials(s3.bucket_policy(bucket, config.account_id), request):
        if denial.verdict is Verdict.CERTAIN:
            raise InvalidParameter(
                TRAIL, f"bucket {bucket}'s policy statement {denial.sid!r} denies s3:GetObject on the trail's log "
                       f"files to Expel's role {role_arn} (RoleName), and an explicit Deny wins over the role's Allow",
                f"exempt {role_arn} from that statement (e.g. add it to the statement's aws:PrincipalArn "
                "exceptions), then retry; the onboarding never changes your bucket policy")
        findings.append(f"bucket {bucket}'s policy statement {denial.sid!r} denies reading log files depending on "
                        f"{', '.join(denial.undecided_keys)}: check that it exempts Expel's role {role_arn}")
    return findings


def _trail_key(config: Config, key_id: str) -> str:
    """The ARN of the trail's customer managed key ("" for none), checked usable: in this account, enabled,
    and its policy readable (it must let this account's IAM policies apply, as Expel's role relies on)."""
    if not key_id:
        return ""
    metadata = kms.describe_key(key_id, config.region)
    if metadata is None:
        raise InvalidParameter(TRAIL, f"the trail encrypts with KMS key {key_id}, which does not exist",
                               "fix the trail's encryption (CloudTrail console > Trails > Log file SSE-KMS "
                               "encryption), then retry")
    arn = str(metadata["Arn"])
    if arn.split(":")[4] != config.account_id:
        raise InvalidParameter(TRAIL, f"the trail encrypts with KMS key {arn} of another account; the onboarding "
                                      "extends a key policy only in this account",
                               "follow Expel's 'Existing Trail' guide by hand in the key's account, or onboard a "
                               "trail whose key is in this account")
    if metadata.get("KeyState") != "Enabled":
        raise InvalidParameter(TRAIL, f"the trail's KMS key {arn} is {metadata.get('KeyState')}",
                               f"aws kms enable-key --key-id {arn} (or cancel its deletion), then retry")
    kms_policy.key_policy(arn, config.region)  # AccessDenied names the missing IAM delegation
    return arn


def _bucket_default_key(config: Config, bucket: str) -> str:
    """Without a trail key the log files take the bucket's default encryption: its KMS key, if any, is
    what Expel's role must be able to decrypt with."""
    for rule in s3.encryption_rules(bucket, config.account_id):
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        if str(default.get("SSEAlgorithm", "")).startswith("aws:kms"):
            metadata = kms.describe_key(str(default.get("KMSMasterKeyID") or "alias/aws/s3"), config.region)
            return str(metadata["Arn"]) if metadata else ""
    return ""


def _event_findings(events: Any) -> list[str]:
    findings = []
    if not events.read:
        findings.append("the trail logs write management events only (the guide: read and write)")
    if events.excluded:
        findings.append(f"the trail leaves out management events of {', '.join(events.excluded)}")
    if events.filtered:
        findings.append("an advanced event selector filters the trail's management events")
    return findings


def _bucket_findings(config: Config, bucket: str, key_arn: str) -> list[str]:
    owner_id = config.account_id
    findings = []
    if s3.versioning_status(bucket, owner_id) != "Enabled":
        findings.append(f"bucket {bucket} has versioning off (the guide's bucket keeps every version of a log file)")
    if s3.effective_public_access_block(bucket, owner_id, config.region) != s3.PUBLIC_ACCESS_BLOCK:
        findings.append(f"bucket {bucket} does not block all public access (neither its own nor the account's "
                        "S3 Block Public Access has every setting on)")
    rules = s3.encryption_rules(bucket, owner_id)
    defaults = [rule.get("ApplyServerSideEncryptionByDefault", {}) for rule in rules]
    if key_arn and not any(d.get("SSEAlgorithm") == "aws:kms" and d.get("KMSMasterKeyID") in (
            key_arn, key_arn.rsplit("/", 1)[-1]) for d in defaults):
        findings.append(f"bucket {bucket}'s default encryption is not SSE-KMS with the trail's key (guide step 2)")
    return findings


def _own_key(config: Config) -> str:
    """The onboarding's key for the topic and queue (the trail's log files do not use it): found by its
    alias when an earlier run made it, else created with only the account's root statement; step 4 adds
    the guide's S3 and SNS statements."""
    alias = full_alias(config.kms_alias)
    key = existing.key(config)
    if key is None:
        policy = own_key_policy(config.partition, config.account_id)
        key = kms.create_key(f"Encrypts the SNS topic and SQS queue Expel reads the events of trail "
                             f"{config.existing_trail_name} from (stack {config.stack_name})",
                             policy, owner_tags(config.stack_name), config.region)
        logger.info("Created the KMS key for the topic and queue", extra={"key_arn": key["Arn"]})
        if not kms.create_alias(alias, key["KeyId"], config.region):
            kms.schedule_deletion(key["KeyId"], config.region)  # a concurrent run's alias won: use its key
            key = existing.key(config)
            if key is None:
                raise InvalidParameter("KmsAlias", f"the alias {alias} was taken and freed again meanwhile",
                                       "retry the onboarding")
    if not kms.rotation_enabled(key["KeyId"], config.region):
        kms.enable_rotation(key["KeyId"], config.region)
    return str(key["Arn"])


def _customers_topic_key(config: Config, topic_arn: str, parameter: str) -> str:
    """A customer's topic the bucket notifies: in this account and region, Standard, encrypted (if at all)
    with a customer managed key of this account, whose policy step 4 extends. Returns that key's ARN."""
    _, _, _, region, account, name = topic_arn.split(":", 5)
    if account != config.account_id or region != config.region:
        raise InvalidParameter(parameter, f"topic {topic_arn} is not in this account and region "
                                          f"({config.account_id}, {config.region})",
                               "the topic must live beside the trail's bucket: name a topic of this account and "
                               "region")
    attributes = sns.topic_attributes(topic_arn, config.region)
    if attributes is None:
        raise InvalidParameter(parameter, f"topic {topic_arn} does not exist", "name an existing SNS topic")
    kind = ownership(sns.topic_tags(topic_arn, config.region), config.stack_name)
    if kind is Ownership.OTHER_STACK:
        other = owner(sns.topic_tags(topic_arn, config.region))
        raise InvalidParameter(parameter, f"topic {topic_arn} belongs to onboarding stack {other} "
                                          f"({OWNER_TAG_KEY}={other}): its delete would take Expel's feed with it",
                               f"onboard this trail with stack {other} only, or delete that stack first")
    if attributes.get("FifoTopic") == "true" or name.endswith(".fifo"):
        raise InvalidParameter(parameter, f"topic {topic_arn} is a FIFO topic, which S3 cannot notify",
                               "name a Standard topic")
    key_id = attributes.get("KmsMasterKeyId", "")
    if not key_id:
        return ""
    metadata = kms.describe_key(key_id, config.region)
    if metadata is None or metadata.get("KeyManager") == "AWS":
        raise InvalidParameter(parameter, f"topic {topic_arn} is encrypted with {key_id}, an AWS managed key S3 "
                                          "cannot publish with",
                               "encrypt the topic with a customer managed key of this account (step 4 adds the "
                               "guide's statement to its policy), or turn its encryption off")
    arn = str(metadata["Arn"])
    if arn.split(":")[4] != config.account_id:
        raise InvalidParameter(parameter, f"topic {topic_arn} is encrypted with key {arn} of another account",
                               "encrypt it with a key of this account")
    kms_policy.key_policy(arn, config.region)
    return arn
