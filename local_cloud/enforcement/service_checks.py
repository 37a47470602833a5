"""The resource-policy questions AWS services ask one another, answered by IAM's evaluator (while IAM is
enforced): S3 publishing to a topic or queue, SNS sending to a queue, a new key policy that would lock its
caller out. ``s3_notifications``, ``sns_delivery`` and ``kms_key_policies`` ask them through their
``checks``; without IAM enforcement every destination that exists admits its service and no policy locks out.

- S3 -> topic / queue (configuration time and every event): the destination's policy must let
  ``s3.amazonaws.com`` ``sns:Publish`` / ``sqs:SendMessage`` with ``aws:SourceArn`` = the bucket and
  ``aws:SourceAccount`` = its owner, else "Permissions on the destination topic|queue do not allow S3 to
  publish notifications from this bucket" (S3's words); a KMS-encrypted destination's key must let S3
  ``kms:GenerateDataKey`` and ``kms:Decrypt``.
- SNS -> queue (every delivery): the queue's policy must let ``sns.amazonaws.com`` ``sqs:SendMessage`` with
  ``aws:SourceArn`` = the topic; an encrypted queue's key must let SNS ``kms:GenerateDataKey`` and
  ``kms:Decrypt``. Otherwise the message is dropped and counted (``sns_delivery``).
- KMS CreateKey / PutKeyPolicy: the new policy must let the caller (its IAM policies where the key policy
  delegates to the account) call ``kms:PutKeyPolicy`` on the key.
"""

from __future__ import annotations

from typing import Any

from local_cloud.iam import Principal, Request, ResourcePolicy, ResourcePolicyKind, Values, evaluate
from local_cloud.iam import resource_policy_allows as _allows
from local_cloud.iam.policy import NamedPolicy, PolicyError

_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


def _key_admits(service: str, account: str, region: str, key_id: str, context: dict[str, tuple[str, ...]]) -> bool:
    from moto.kms.models import kms_backends

    try:
        key = kms_backends[account][region].describe_key(key_id)
    except Exception:
        return False
    principal = Principal.of_service(service)
    return all(_allows(key.policy, principal, action, key.arn, Values(context)).allowed for action in _KEY_ACTIONS)


def _policy_admits(policy: str | None, service: str, action: str, resource: str,
                   context: dict[str, tuple[str, ...]]) -> bool:
    if not policy:
        return False
    try:
        return _allows(policy, Principal.of_service(service), action, resource, Values(context)).allowed
    except PolicyError:
        return False


def s3_publish(kind: str, arn: str, bucket_arn: str, account: str) -> str | None:
    """For ``s3_notifications.checks.publish``: None when S3 may deliver this bucket's events to ``arn``."""
    parts = arn.split(":")
    region, owner = parts[3], parts[4]
    context = {"aws:sourcearn": (bucket_arn,), "aws:sourceaccount": (account,), "aws:securetransport": ("true",)}
    if kind == "TopicConfiguration":
        from moto.sns.models import sns_backends

        topic = sns_backends[owner][region].get_topic(arn)
        if not _policy_admits(topic.policy, "s3.amazonaws.com", "sns:Publish", arn, context):
            return "Permissions on the destination topic do not allow S3 to publish notifications from this bucket"
        key = topic.kms_master_key_id
        label = "topic"
    elif kind == "QueueConfiguration":
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[owner][region].get_queue(parts[5])
        if not _policy_admits(queue.policy, "s3.amazonaws.com", "sqs:SendMessage", arn, context):
            return "Permissions on the destination queue do not allow S3 to publish notifications from this bucket"
        key = getattr(queue, "kms_master_key_id", None)
        label = "queue"
    else:
        return None  # a Lambda function's resource policy: not used by the onboarding, not checked here
    if key and not _key_admits("s3.amazonaws.com", owner, region, key, context):
        return f"The KMS key of the destination {label} does not allow S3 to use it"
    return None


def sns_send(topic_arn: str, queue_arn: str) -> str | None:
    """For ``sns_delivery.checks.send``: None when SNS may deliver the topic's messages to the queue."""
    from moto.sqs.models import sqs_backends

    _arn, _partition, _service, region, owner, name = queue_arn.split(":", 5)
    queue = sqs_backends[owner][region].get_queue(name)
    context = {"aws:sourcearn": (topic_arn,), "aws:sourceaccount": (topic_arn.split(":")[4],),
               "aws:securetransport": ("true",)}
    if not _policy_admits(queue.policy, "sns.amazonaws.com", "sqs:SendMessage", queue_arn, context):
        return "the queue policy does not let the topic send to it"
    key = getattr(queue, "kms_master_key_id", None)
    if key and not _key_admits("sns.amazonaws.com", owner, region, key, context):
        return "the queue's KMS key does not let SNS use it"
    return None


_EVERYTHING = NamedPolicy.of("the caller's IAM policies, not consulted by the check", {
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def keeps_key_policy_access(policy: dict[str, Any], access_key: str, account: str, key_arn: str) -> bool:
    """For ``kms_key_policies.checks.allows_put_key_policy``: does the new key policy still give the caller
    ``kms:PutKeyPolicy`` on the key, naming it (or ``*``) or its account (which delegates to IAM)? KMS checks the
    key policy only, so the caller's IAM policies count as allowing."""
    from dataclasses import replace

    from local_cloud.enforcement.identity import resolve

    identity = replace(resolve(access_key), policies=(_EVERYTHING,), boundary=None)
    try:
        named = NamedPolicy.of("the new key policy", policy)
    except PolicyError:
        return False
    target = key_arn or f"arn:aws:kms:us-east-1:{account}:key/00000000-0000-0000-0000-000000000000"
    decision = evaluate(identity, Request("kms:PutKeyPolicy", target, Values({"kms:calleraccount": (account,)})),
                        ResourcePolicy(named, ResourcePolicyKind.REQUIRED, account))
    return decision.allowed


def install() -> None:
    from local_cloud import kms_key_policies, s3_notifications, sns_delivery

    s3_notifications.checks.publish = s3_publish
    sns_delivery.checks.send = sns_send
    kms_key_policies.checks.allows_put_key_policy = keeps_key_policy_access


def uninstall() -> None:
    """Back to the services' defaults (for in-process tests that installed them)."""
    from local_cloud import kms_key_policies, s3_notifications, sns_delivery

    s3_notifications.checks.publish = s3_notifications.PolicyChecks().publish
    sns_delivery.checks.send = sns_delivery.PolicyChecks().send
    kms_key_policies.checks.allows_put_key_policy = kms_key_policies.PolicyChecks().allows_put_key_policy
