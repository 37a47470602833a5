"""A customer's account before an existing-trail onboarding, built with plain boto3 calls so the same
starting state serves the moto step tests and the end-to-end tests on the local cloud.

What a security team typically has: a multi-region trail with log file validation, encrypting with its
own key (CloudTrail's console policy plus a statement of theirs), a bucket with CloudTrail's policy plus
a statement of theirs, a notification of theirs on ObjectRemoved to a queue; optionally a topic of
theirs that already gets every log file (a SIEM subscribed to it).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from expel_onboarding.policies.key_policy import cloudtrail_key_policy

Client = Callable[[str], Any]
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"Service": "ec2.amazonaws.com"}}]}


@dataclass
class CustomerTrail:
    trail_name: str
    trail_arn: str
    bucket: str
    key_arn: str  # "" when the trail has no key of its own
    log_prefix: str
    deletes_queue_arn: str
    topic_arn: str = ""  # their topic that already gets the log files, when built with one
    siem_queue_arn: str = ""

    def snapshot(self, client: Client) -> dict[str, Any]:
        """Everything of the customer's the onboarding must leave as it found it."""
        cloudtrail, s3, kms, sns = (client(s) for s in ("cloudtrail", "s3", "kms", "sns"))
        trail = cloudtrail.get_trail(Name=self.trail_name)["Trail"]
        found: dict[str, Any] = {
            "trail": trail,
            "logging": cloudtrail.get_trail_status(Name=self.trail_name)["IsLogging"],
            "selectors": _without_metadata(cloudtrail.get_event_selectors(TrailName=self.trail_name)),
            "bucket_policy": json.loads(s3.get_bucket_policy(Bucket=self.bucket)["Policy"]),
            "encryption": _without_metadata(s3.get_bucket_encryption(Bucket=self.bucket)),
            "versioning": s3.get_bucket_versioning(Bucket=self.bucket).get("Status"),
        }
        if self.key_arn:
            found["key_policy"] = json.loads(kms.get_key_policy(KeyId=self.key_arn, PolicyName="default")["Policy"])
            found["key_state"] = kms.describe_key(KeyId=self.key_arn)["KeyMetadata"]["KeyState"]
        if self.topic_arn:
            attributes = sns.get_topic_attributes(TopicArn=self.topic_arn)["Attributes"]
            found["topic_policy"] = json.loads(attributes["Policy"])
            found["topic_key"] = attributes.get("KmsMasterKeyId", "")
            found["topic_subscriptions"] = sorted(
                (s["Endpoint"], s["Protocol"]) for s in
                sns.list_subscriptions_by_topic(TopicArn=self.topic_arn)["Subscriptions"])
        return found

    def notification(self, client: Client) -> dict[str, Any]:
        return _without_metadata(client("s3").get_bucket_notification_configuration(Bucket=self.bucket))


def _without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def build(client: Client, account: str, region: str, *, name: str = "CustomersTrail",
          bucket: str = "customer-trail-logs", key_prefix: str = "org", encrypted: bool = True,
          topic_entry: bool = False, partition: str = "aws", organization_id: str = "") -> CustomerTrail:
    iam, kms, s3, sqs, sns, cloudtrail = (client(s) for s in ("iam", "kms", "s3", "sqs", "sns", "cloudtrail"))
    audit_role = iam.create_role(RoleName=f"{name}-Audit", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    trail_arn = f"arn:{partition}:cloudtrail:{region}:{account}:trail/{name}"
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    key_arn = ""
    if encrypted:
        policy = cloudtrail_key_policy(partition, region, account, name)
        policy["Statement"].append({"Sid": "Their audit role describes the key", "Effect": "Allow",
                                    "Principal": {"AWS": audit_role}, "Action": "kms:DescribeKey", "Resource": "*"})
        key_arn = kms.create_key(Policy=json.dumps(policy), Description=f"{name} log files")["KeyMetadata"]["Arn"]

    s3.create_bucket(Bucket=bucket, **({} if region == "us-east-1" else
                                       {"CreateBucketConfiguration": {"LocationConstraint": region}}))
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    root = f"{bucket_arn}/{key_prefix}/AWSLogs" if key_prefix else f"{bucket_arn}/AWSLogs"
    # An organization trail writes under the organization's folder too: CloudTrail checks both.
    logs = [f"{root}/{account}/*", *([f"{root}/{organization_id}/*"] if organization_id else [])]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AWSCloudTrailAclCheck20150319", "Effect": "Allow",
         "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:GetBucketAcl", "Resource": bucket_arn,
         "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}},
        {"Sid": "AWSCloudTrailWrite20150319", "Effect": "Allow",
         "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject", "Resource": logs,
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}}},
        {"Sid": "TheirAuditRoleReadsLogs", "Effect": "Allow", "Principal": {"AWS": audit_role},
         "Action": "s3:GetObject", "Resource": f"{bucket_arn}/*"},
    ]}))
    if key_arn:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
             "BucketKeyEnabled": True}]})
    else:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})

    deletes_queue = _queue(sqs, f"{name}-deletes", account, region, bucket_arn, "s3.amazonaws.com")
    configuration: dict[str, Any] = {"QueueConfigurations": [
        {"Id": "their-deletes", "QueueArn": deletes_queue, "Events": ["s3:ObjectRemoved:*"]}]}

    cloudtrail.create_trail(Name=name, S3BucketName=bucket, S3KeyPrefix=key_prefix, IsMultiRegionTrail=True,
                            IncludeGlobalServiceEvents=True, EnableLogFileValidation=True,
                            **({"KmsKeyId": key_arn} if key_arn else {}))
    cloudtrail.start_logging(Name=name)
    log_prefix = f"{key_prefix}/AWSLogs/{account}/" if key_prefix else f"AWSLogs/{account}/"

    topic_arn = siem_queue = ""
    if topic_entry:
        topic_arn, siem_queue = _their_topic(client, name, account, region, bucket_arn, key_arn)
        configuration["TopicConfigurations"] = [
            {"Id": "their-siem-feed", "TopicArn": topic_arn, "Events": ["s3:ObjectCreated:*"],
             "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": log_prefix.split("AWSLogs/")[0]
                                                 + "AWSLogs/"}]}}}]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=copy.deepcopy(configuration))
    return CustomerTrail(trail_name=name, trail_arn=trail_arn, bucket=bucket, key_arn=key_arn, log_prefix=log_prefix,
                         deletes_queue_arn=deletes_queue, topic_arn=topic_arn, siem_queue_arn=siem_queue)


def _queue(sqs: Any, name: str, account: str, region: str, source_arn: str, service: str) -> str:
    arn = f"arn:aws:sqs:{region}:{account}:{name}"
    sqs.create_queue(QueueName=name, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "TheirSender", "Effect": "Allow", "Principal": {"Service": service}, "Action": "sqs:SendMessage",
         "Resource": arn, "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}}}]})})
    return arn


def _their_topic(client: Client, name: str, account: str, region: str, bucket_arn: str,
                 key_arn: str) -> tuple[str, str]:
    """Their SIEM feed: a topic encrypted with the trail's key (their own statement lets S3 use it), a
    policy of theirs letting the bucket publish, and their SIEM's queue subscribed."""
    sns, sqs, kms = client("sns"), client("sqs"), client("kms")
    topic_arn = f"arn:aws:sns:{region}:{account}:{name}-siem-feed"
    if key_arn:
        policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
        policy["Statement"].append({"Sid": "S3 publishes to the SIEM feed", "Effect": "Allow",
                                    "Principal": {"Service": "s3.amazonaws.com"},
                                    "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*",
                                    "Condition": {"StringEquals": {"aws:SourceAccount": account}}})
        kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=json.dumps(policy))
    attributes = {"Policy": json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "TheirBucketPublishes", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
         "Action": "sns:Publish", "Resource": topic_arn,
         "Condition": {"ArnLike": {"aws:SourceArn": bucket_arn}}}]})}
    if key_arn:
        attributes["KmsMasterKeyId"] = key_arn
    sns.create_topic(Name=f"{name}-siem-feed", Attributes=attributes)
    siem = _queue(sqs, f"{name}-siem", account, region, topic_arn, "sns.amazonaws.com")
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=siem, Attributes={"RawMessageDelivery": "true"})
    return topic_arn, siem
