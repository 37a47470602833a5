"""The SQS queue's access policy (guide step 5)."""

from __future__ import annotations

from expel_onboarding.policies import PolicyDocument, Statement
from expel_onboarding.policies._equivalence import merge_keeping_equivalent

# The guide's (console-generated) Sid, so a statement pasted by hand from the guide is replaced
# rather than doubled.
SEND_SID = "Sid1572965666162"
QUEUE_POLICY_SIDS = (SEND_SID,)
QUEUE_POLICY_ID = "SQSDefaultPolicy"


def queue_statements(queue_arn: str, topic_arn: str) -> list[Statement]:
    """Only our topic may send. The guide grants ``"AWS": "*"`` limited by ``aws:SourceArn``;
    the SNS service principal with the same condition has the same effect and nothing more."""
    return [
        {
            "Sid": SEND_SID,
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "SQS:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        },
    ]


def merge_queue_policy(existing: PolicyDocument | None, statements: list[Statement]) -> PolicyDocument:
    """Our statement into the queue's policy (None when it has none); the rest is kept."""
    merged = merge_keeping_equivalent(existing, statements)
    if not existing:
        merged = {"Version": "2012-10-17", "Id": QUEUE_POLICY_ID, "Statement": merged["Statement"]}
    return merged
