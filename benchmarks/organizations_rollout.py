"""Organizations rollout at scale (not part of the test suite): guide steps 8 and 9 for N member accounts.

Builds an organization of N member accounts across OUs (each with a nested child OU), then runs the step
code as the state machine does: deploy once, then status after each poll interval until COMPLETE; then
deploy again (a rerun must write nothing). Prints the StackSet operations with their durations, the AWS
API calls by operation, the wall time, and the longest single deploy()/status() call, which must stay
under 60 s (the Lambda budget).

Against the local cloud's StackSets (``local_cloud/stacksets.py``), which run operations in the background
as AWS does, in compressed time: either a ``local serve`` this script starts (``--serve``, the default), one
already running (``--endpoint-url``), or in-process moto (``--in-process``, fastest).

    .venv/bin/python benchmarks/organizations_rollout.py --accounts 1000
    .venv/bin/python benchmarks/organizations_rollout.py --accounts 1000 --in-process
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

from expel_onboarding.aws import clients  # noqa: E402
from expel_onboarding.models import Config, QueueOutput, RoleOutput, TrailOutput  # noqa: E402
from expel_onboarding.steps import step08_expel_role  # noqa: E402

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


@contextlib.contextmanager
def local_cloud(args: argparse.Namespace) -> Iterator[str | None]:
    """The endpoint the step code and the setup talk to (None: in-process moto)."""
    if args.in_process:
        from moto import mock_aws

        from local_cloud import moto_patches, stacksets

        moto_patches.apply()  # what local serve applies, StackSets included
        stacksets.configure(start_seconds=args.stackset_seconds / 2, batch_seconds=args.stackset_seconds)
        with mock_aws():
            yield None
        return
    if args.endpoint_url:
        yield args.endpoint_url
        return
    from tests.local_cloud.harness import serve_child

    with serve_child(stackset_seconds=args.stackset_seconds) as cloud:
        yield cloud.url


def build_organization(org: Any, accounts: int, ous: int) -> None:
    """``ous`` OUs under the root, each with a nested child; accounts spread across all of them."""
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


def timed(durations: list[tuple[str, float]], label: str, call: Callable[[], RoleOutput]) -> RoleOutput:
    started = time.perf_counter()
    result = call()
    durations.append((label, time.perf_counter() - started))
    return result


def config_and_inputs() -> tuple[Config, TrailOutput, QueueOutput]:
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
    return config, trail, queue


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--ous", type=int, default=10)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--endpoint-url", help="a running `cloudtrail-onboarding local serve`")
    where.add_argument("--in-process", action="store_true", help="in-process moto instead of `local serve`")
    parser.add_argument("--stackset-seconds", type=float, default=2.0,
                        help="seconds per group of accounts a StackSet operation deploys at once (local serve's "
                             "default: 2; AWS takes tens of seconds)")
    parser.add_argument("--poll-seconds", type=float, default=1.0, help="the state machine's wait between looks")
    parser.add_argument("--max-polls", type=int, default=2000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    config, trail, queue = config_and_inputs()

    with local_cloud(args) as endpoint:
        if endpoint:
            os.environ["AWS_ENDPOINT_URL"] = endpoint
        clients.reset()
        started = time.perf_counter()
        build_organization(boto3.client("organizations", region_name=REGION), args.accounts, args.ous)
        log.info("Organization of %d member accounts in %d OUs built in %.1f s (%s; setup, not measured below)",
                 args.accounts, 2 * args.ous, time.perf_counter() - started, endpoint or "in-process moto")

        durations: list[tuple[str, float]] = []
        with counting_calls() as rollout_calls:
            started = time.perf_counter()
            role = timed(durations, "deploy", lambda: step08_expel_role.deploy(config, trail, queue))
            polls = 0
            while role.status != "COMPLETE" and polls < args.max_polls:
                time.sleep(args.poll_seconds)
                polls += 1
                role = timed(durations, "status", lambda r=role: step08_expel_role.status(config, r))
            wall = time.perf_counter() - started
        with counting_calls() as rerun_calls:
            rerun = timed(durations, "deploy (rerun)", lambda: step08_expel_role.deploy(config, trail, queue))

        cfn = boto3.client("cloudformation", region_name=REGION)
        name = step08_expel_role.stack_set_name(config)
        pages = cfn.get_paginator("list_stack_instances").paginate(StackSetName=name)
        deployed = sum(1 for page in pages for i in page["Summaries"] if i["Status"] == "CURRENT")
        operations = cfn.list_stack_set_operations(StackSetName=name)["Summaries"]

    log.info("\nRollout: %s after %d looks, %d stack instances CURRENT, %d failed accounts, role ARN %s",
             role.status, polls + 1, deployed, len(role.failed_accounts), role.role_arn)
    log.info("Wall time deploy + status loop: %.2f s (poll every %.2g s, StackSet batches of %.2g s)",
             wall, args.poll_seconds, args.stackset_seconds)
    log.info("\nStackSet operations (newest first):")
    for operation in operations:
        took = (operation["EndTimestamp"] - operation["CreationTimestamp"]).total_seconds() \
            if operation.get("EndTimestamp") else float("nan")
        log.info("  %-8s %-10s %7.1f s  failed accounts: %d", operation["Action"], operation["Status"], took,
                 operation.get("StatusDetails", {}).get("FailedStackInstancesCount", 0))
    calls = collections.Counter(label.split(" ")[0] for label, _ in durations)
    longest_label, longest = max(durations, key=lambda d: d[1])
    log.info("\nStep calls: %s; longest single call: %s, %.2f s (budget %.0f s)%s", dict(calls), longest_label,
             longest, LAMBDA_BUDGET_SECONDS, "" if longest < LAMBDA_BUDGET_SECONDS else "  <-- OVER BUDGET")
    log.info("\nAWS API calls of the rollout, by operation:")
    for operation_name, count in sorted(rollout_calls.items()):
        log.info("  %-52s %5d", operation_name, count)
    mutating = {o: c for o, c in rerun_calls.items() if not o.split(".")[1].startswith(("Describe", "List", "Get"))}
    log.info("\nAWS API calls of the rerun: %d in all, %d mutating %s; output identical: %s",
             sum(rerun_calls.values()), sum(mutating.values()), dict(mutating) or "", rerun == role)
    ok = role.status == "COMPLETE" and deployed == args.accounts and not mutating and rerun == role
    return 0 if ok and longest < LAMBDA_BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
