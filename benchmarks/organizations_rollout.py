"""Organizations rollout at scale, in-process moto (not part of the test suite).

Builds an organization of N member accounts across OUs, runs guide steps 8/9 as the state machine
does (deploy once, then status until COMPLETE), runs deploy again (must write nothing), and prints
the AWS API calls by operation, the wall time and the longest single deploy()/status() call, which
must stay under 60 s (the Lambda budget).

moto runs a StackSet operation synchronously: create_stack_instances itself creates every member
account's role before answering. So the deploy() call here includes work AWS does in the background
after answering; its duration is an upper bound for moto's emulation, not what the Lambda waits for.
moto also answers ListStackInstances in one page; AWS pages by 100 (1,000 accounts: 10 reads per look).

    .venv/bin/python benchmarks/organizations_rollout.py --accounts 1000
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "onboarding"), str(ROOT)]
for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                    "POWERTOOLS_SERVICE_NAME": "organizations-benchmark", "POWERTOOLS_LOG_LEVEL": "WARNING"}.items():
    os.environ[name] = value
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3  # noqa: E402
from botocore.client import BaseClient  # noqa: E402
from moto import mock_aws  # noqa: E402

from expel_onboarding.aws import clients  # noqa: E402
from expel_onboarding.models import Config, QueueOutput, RoleOutput, TrailOutput  # noqa: E402
from expel_onboarding.steps import step08_expel_role  # noqa: E402
from tests.moto_stacksets import service_managed_stacksets  # noqa: E402

REGION, ACCOUNT_ID = "us-east-1", "123456789012"
LAMBDA_BUDGET_SECONDS = 60.0
log = logging.getLogger("benchmark")


@contextlib.contextmanager
def counting_calls() -> Iterator[collections.Counter[str]]:
    counts: collections.Counter[str] = collections.Counter()
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        counts[f"{self.meta.service_model.service_name}.{operation_name}"] += 1
        return original(self, operation_name, api_params)

    with mock.patch.object(BaseClient, "_make_api_call", record):
        yield counts


def build_organization(accounts: int, ous: int) -> list[str]:
    """``ous`` OUs under the root, each with a nested child; accounts spread across all of them."""
    org = boto3.client("organizations", region_name=REGION)
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    parents: list[str] = []
    for n in range(ous):
        ou = org.create_organizational_unit(ParentId=root, Name=f"ou{n}")["OrganizationalUnit"]["Id"]
        child = org.create_organizational_unit(ParentId=ou, Name=f"ou{n}-child")["OrganizationalUnit"]["Id"]
        parents += [ou, child]
    for n in range(accounts):
        account = org.create_account(AccountName=f"member{n}", Email=f"member{n}@example.com")[
            "CreateAccountStatus"]["AccountId"]
        org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=parents[n % len(parents)])
    org.enable_aws_service_access(ServicePrincipal="member.org.stacksets.cloudformation.amazonaws.com")
    return [root]


def timed(durations: list[tuple[str, float]], label: str, call: Callable[[], RoleOutput]) -> RoleOutput:
    started = time.perf_counter()
    result = call()
    durations.append((label, time.perf_counter() - started))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--ous", type=int, default=10)
    parser.add_argument("--max-polls", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.getLogger("botocore").setLevel(logging.WARNING)

    config = Config(
        stack_name="expel-onboarding", region=REGION, account_id=ACCOUNT_ID, partition="aws",
        workbench_guid="4f9c2a1e-7b3d-4e5f-9a8b-1c2d3e4f5a6b", trail_name="ExpelCloudTrail",
        bucket_name=f"expel-cloudtrail-{ACCOUNT_ID}-{REGION}", kms_alias="alias/expel-cloudtrail",
        topic_name="ExpelCloudTrailTopic", queue_name="ExpelCloudTrailQueue", role_name="ExpelAssumeRole",
        role_stack_name="expel-onboarding-expel-role", organization_mode=True)
    trail = TrailOutput(trail_arn=f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/ExpelCloudTrail",
                        bucket_name=config.bucket_name, bucket_arn=f"arn:aws:s3:::{config.bucket_name}",
                        kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                        kms_alias=config.kms_alias)
    queue = QueueOutput(queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:ExpelCloudTrailQueue",
                        queue_url=f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/ExpelCloudTrailQueue")

    with mock_aws(), service_managed_stacksets():
        clients.reset()
        started = time.perf_counter()
        build_organization(args.accounts, args.ous)
        log.info("Organization of %d member accounts built in %.1f s (setup, not measured below)",
                 args.accounts, time.perf_counter() - started)

        durations: list[tuple[str, float]] = []
        with counting_calls() as rollout_calls:
            started = time.perf_counter()
            role = timed(durations, "deploy", lambda: step08_expel_role.deploy(config, trail, queue))
            for poll in range(args.max_polls):
                if role.status == "COMPLETE":
                    break
                role = timed(durations, f"status #{poll + 1}", lambda r=role: step08_expel_role.status(config, r))
            wall = time.perf_counter() - started
        with counting_calls() as rerun_calls:
            rerun = timed(durations, "deploy (rerun)", lambda: step08_expel_role.deploy(config, trail, queue))

        instances = boto3.client("cloudformation", region_name=REGION).get_paginator("list_stack_instances")
        pages = instances.paginate(StackSetName=step08_expel_role.stack_set_name(config))
        deployed = sum(len(page["Summaries"]) for page in pages)

    log.info("\nRollout: status %s, %d stack instances, role ARN %s", role.status, deployed, role.role_arn)
    log.info("Wall time deploy + status loop: %.2f s", wall)
    for label, seconds in durations:
        log.info("  %-16s %7.2f s", label, seconds)
    longest_label, longest = max(durations, key=lambda d: d[1])
    log.info("Longest single call: %s, %.2f s (budget %.0f s)%s", longest_label, longest, LAMBDA_BUDGET_SECONDS,
             "" if longest < LAMBDA_BUDGET_SECONDS else "  <-- OVER BUDGET")
    log.info("\nAWS API calls of the rollout, by operation:")
    for operation, count in sorted(rollout_calls.items()):
        log.info("  %-52s %5d", operation, count)
    mutating = {o: c for o, c in rerun_calls.items() if not o.split(".")[1].startswith(("Describe", "List", "Get"))}
    log.info("\nAWS API calls of the rerun: %d in all, %d mutating %s; output identical: %s",
             sum(rerun_calls.values()), sum(mutating.values()), dict(mutating) or "", rerun == role)
    ok = role.status == "COMPLETE" and deployed == args.accounts and not mutating and rerun == role
    return 0 if ok and longest < LAMBDA_BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
