"""The SNS topic's access policy (guide step 3)."""

from __future__ import annotations

from expel_onboarding.policies import PolicyDocument, Statement
from expel_onboarding.policies._equivalence import merge_keeping_equivalent

# The guide's Sid, so a statement pasted by hand from the guide is replaced rather than doubled.
PUBLISH_SID = "expel-statement-ID"
TOPIC_POLICY_SIDS = (PUBLISH_SID,)
# What the guide's policy (and SNS's own default policy) use; kept for a topic that has none.
TOPIC_POLICY_VERSION = "2008-10-17"
TOPIC_POLICY_ID = "expel-topic-policy-ID"


def topic_statements(partition: str, topic_arn: str, bucket_arn: str, account_id: str) -> list[Statement]:
    """Only our bucket may publish.

    The guide grants ``"AWS": "*"`` limited by ``aws:SourceArn``; naming the S3 service principal
    and pinning ``aws:SourceAccount`` (bucket ARNs carry no account) gives the same effect and
    nothing more. ``partition`` is accepted for symmetry with the other builders: every ARN here
    already carries it.
    """
    del partition
    return [
        {
            "Sid": PUBLISH_SID,
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": ["SNS:Publish"],
            "Resource": topic_arn,
            "Condition": {
                "ArnLike": {"aws:SourceArn": bucket_arn},
                "StringEquals": {"aws:SourceAccount": account_id},
            },
        },
    ]


def stack_sid(stack_name: str) -> str:
    """The Sid of our publish statement in a customer's topic policy (an existing trail's topic): it names
    the stack, so a stack delete removes exactly it and never a statement the customer wrote."""
    return f"{PUBLISH_SID}-{stack_name}"


def merge_topic_policy(existing: PolicyDocument | None, statements: list[Statement]) -> PolicyDocument:
    """Our statement into the topic's policy. Everything else, including SNS's
    ``__default_statement_ID`` (owner-account access), is kept."""
    merged = merge_keeping_equivalent(existing, statements, version=TOPIC_POLICY_VERSION)
    if not existing:
        merged = {"Version": TOPIC_POLICY_VERSION, "Id": TOPIC_POLICY_ID, "Statement": merged["Statement"]}
    return merged
