"""Every document the builders produce passes the offline policy audit."""

from __future__ import annotations

import json
from typing import Any

import jsoncfg
import pytest

from expel_onboarding.policies.bucket_policy import (
    access_log_bucket_statements,
    cloudtrail_bucket_statements,
    merge_bucket_policy,
)
from expel_onboarding.policies.key_policy import cloudtrail_key_policy, merge_key_policy
from expel_onboarding.policies.queue_policy import merge_queue_policy, queue_statements
from expel_onboarding.policies.topic_policy import merge_topic_policy, topic_statements
from tests.policy_audit import ACCEPTED_FINDINGS, RESOURCE_KINDS, all_findings, audit, config_tree

ACCOUNT = "123456789012"


def _documents() -> list[tuple[str, str, dict[str, Any]]]:
    documents = []
    for partition, region in (("aws", "us-east-1"), ("aws-us-gov", "us-gov-west-1"), ("aws-cn", "cn-north-1")):
        bucket = f"arn:{partition}:s3:::expel-logs"
        topic = f"arn:{partition}:sns:{region}:{ACCOUNT}:ExpelTopic"
        queue = f"arn:{partition}:sqs:{region}:{ACCOUNT}:ExpelQueue"
        trail = f"arn:{partition}:cloudtrail:{region}:{ACCOUNT}:trail/ExpelCloudTrail"
        key = cloudtrail_key_policy(partition, region, ACCOUNT, "ExpelCloudTrail")
        documents += [
            (f"key-{partition}", "kms", key),
            (f"key-merged-{partition}", "kms", merge_key_policy(key, bucket, topic)),
            (f"bucket-{partition}", "s3",
             merge_bucket_policy(None, cloudtrail_bucket_statements(partition, "expel-logs", ACCOUNT, trail))),
            (f"bucket-org-{partition}", "s3", merge_bucket_policy(None, cloudtrail_bucket_statements(
                partition, "expel-logs", ACCOUNT, trail, "o-a1b2c3d4e5"))),
            (f"topic-{partition}", "sns",
             merge_topic_policy(None, topic_statements(partition, topic, bucket, ACCOUNT))),
            (f"queue-{partition}", "sqs", merge_queue_policy(None, queue_statements(queue, topic))),
            (f"access-log-bucket-{partition}", "s3", merge_bucket_policy(None, access_log_bucket_statements(
                partition, "expel-access-logs", "expel-logs", ACCOUNT, "expel-logs/"))),
        ]
    return documents


DOCUMENTS = _documents()


@pytest.mark.parametrize(("kind", "document"), [(k, d) for _, k, d in DOCUMENTS],
                         ids=[name for name, _, _ in DOCUMENTS])
def test_built_policy_has_no_unaccepted_findings(kind: str, document: dict[str, Any]) -> None:
    assert audit(document, kind) == []


def test_every_accepted_finding_is_still_needed() -> None:
    """The accepted list stays minimal: each resource-policy entry must match something the builders produce
    (test_template_policies checks the identity and trust entries against the templates)."""
    seen = {(kind, issue) for _, kind, document in DOCUMENTS for issue, _ in all_findings(document)}
    ours = {key for key in ACCEPTED_FINDINGS if key[0] in RESOURCE_KINDS}
    assert ours <= seen, ours - seen


@pytest.mark.parametrize(("kind", "statement", "issue"), [
    ("sqs", {"Sid": "Open", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sqs:SendMessage",
             "Resource": "arn:aws:sqs:us-east-1:123456789012:q"}, "PUBLIC_ALLOW"),
    ("sns", {"Sid": "Deputy", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
             "Action": "sns:Publish", "Resource": "arn:aws:sns:us-east-1:123456789012:t"}, "CONFUSED_DEPUTY"),
    ("s3", {"Sid": "Star", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "s3:GetObject", "Resource": "*"}, "RESOURCE_STAR"),
    ("kms", {"Sid": "Spaces hide nothing", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
             "Action": "kms:Decryptt", "Resource": "*"}, "UNKNOWN_ACTION"),
])
def test_audit_reports_what_it_should_catch(kind: str, statement: dict, issue: str) -> None:
    findings = audit({"Version": "2012-10-17", "Statement": [statement]}, kind)
    assert any(f.startswith(f"{issue}:") for f in findings), findings


def _same_tree(ours: Any, theirs: Any) -> None:
    assert type(ours) is type(theirs) and repr(ours) == repr(theirs)  # the repr names the line and column
    if jsoncfg.node_is_object(ours):
        assert [key for key, _ in ours] == [key for key, _ in theirs]
        for (_, mine), (_, its) in zip(ours, theirs, strict=True):
            _same_tree(mine, its)
    elif jsoncfg.node_is_array(ours):
        for mine, its in zip(ours, theirs, strict=True):
            _same_tree(mine, its)
    else:
        assert type(ours.value) is type(theirs.value) and ours.value == theirs.value


@pytest.mark.parametrize("text", [
    *(json.dumps(document, sort_keys=True) for _, _, document in DOCUMENTS),
    json.dumps({"Sid": 'é \\ " \n', "N": [1, 2.5, -3e-07, True, None, [], {}, [[{}]]], "E": {}, "U": "\u2603"}),
    '{"Version": "2012-10-17",\n "Statement": []}',  # not json.dumps's layout: jsoncfg reads it
    '{"Sid": "a", "Sid": "b"}',  # a repeated key: jsoncfg's refusal, not json's last value
])
def test_the_tree_parliament_analyses_is_jsoncfgs(text: str) -> None:
    try:
        theirs = jsoncfg.loads_config(text)
    except jsoncfg.JSONConfigParserException:
        with pytest.raises(jsoncfg.JSONConfigParserException):
            config_tree(text)
        return
    _same_tree(config_tree(text), theirs)
