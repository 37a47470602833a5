"""The local cloud's IAM: policies, conditions, evaluation, and the mapping from API calls to IAM actions.

Pure code (no moto, no boto3 calls): the local cloud's server plumbing (``local_cloud.enforcement``)
feeds it requests; other checks (a service principal writing to a bucket, publishing to a topic) call
``resource_policy_allows`` directly.
"""

from local_cloud.iam.conditions import Unsupported, Values
from local_cloud.iam.evaluation import (
    Decision,
    Identity,
    Kind,
    Matched,
    Principal,
    Reason,
    Request,
    ResourcePolicy,
    ResourcePolicyKind,
    evaluate,
    resource_policy_allows,
)
from local_cloud.iam.policy import NamedPolicy, Policy, PolicyError, parse_policy

__all__ = [
    "Decision",
    "Identity",
    "Kind",
    "Matched",
    "NamedPolicy",
    "Policy",
    "PolicyError",
    "Principal",
    "Reason",
    "Request",
    "ResourcePolicy",
    "ResourcePolicyKind",
    "Unsupported",
    "Values",
    "evaluate",
    "parse_policy",
    "resource_policy_allows",
]
