"""GetExecutionHistory pages as Step Functions pages it, on moto's Step Functions engine in this process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local_cloud.progress import Progress

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"
PASSES = 60  # each Pass state records an Entered and an Exited event: 122 events with start and end


@pytest.fixture
def sfn() -> Iterator[Any]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name=REGION)


def finished_execution(sfn: Any, passes: int = PASSES, parallel: bool = False) -> str:
    """Pass states in a row, or Parallel states of one Pass branch each (about 6 events each)."""
    branch = {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}
    states: dict[str, Any] = {f"P{i}": {"Type": "Parallel", "Branches": [branch], "Next": f"P{i + 1}"} if parallel
                              else {"Type": "Pass", "Next": f"P{i + 1}"} for i in range(passes)}
    states[f"P{passes}"] = {"Type": "Succeed"}
    machine = sfn.create_state_machine(name=f"m{time.monotonic_ns()}", roleArn=ROLE,
                                       definition=json.dumps({"StartAt": "P0", "States": states}))
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")["executionArn"]
    deadline = time.monotonic() + 20
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not finish"
        time.sleep(0.05)
    return str(arn)


def all_pages(sfn: Any, **request: Any) -> list[list[dict[str, Any]]]:
    pages = []
    while True:
        answer = sfn.get_execution_history(**request)
        pages.append(answer["events"])
        if "nextToken" not in answer:
            return pages
        request["nextToken"] = answer["nextToken"]


def test_a_history_comes_in_pages_of_100_by_default_oldest_first(sfn: Any) -> None:
    arn = finished_execution(sfn)
    pages = all_pages(sfn, executionArn=arn)
    ids = [event["id"] for page in pages for event in page]
    assert [len(page) for page in pages] == [100, len(ids) - 100]
    assert ids == list(range(1, len(ids) + 1))
    assert pages[0][0]["type"] == "ExecutionStarted" and pages[-1][-1]["type"] == "ExecutionSucceeded"


def test_reverse_order_pages_newest_first_and_a_paginator_reads_every_event(sfn: Any) -> None:
    arn = finished_execution(sfn)
    pages = all_pages(sfn, executionArn=arn, reverseOrder=True, maxResults=25)
    ids = [event["id"] for page in pages for event in page]
    assert all(len(page) == 25 for page in pages[:-1])
    assert ids == sorted(ids, reverse=True) and pages[0][0]["type"] == "ExecutionSucceeded"
    paginator = sfn.get_paginator("get_execution_history")
    paged = [event["id"] for answer in paginator.paginate(executionArn=arn) for event in answer["events"]]
    assert paged == sorted(ids)


def test_a_token_of_another_execution_or_order_is_refused_and_max_results_over_1000_too(sfn: Any) -> None:
    arn, other = finished_execution(sfn), finished_execution(sfn)
    token = sfn.get_execution_history(executionArn=arn, maxResults=10)["nextToken"]
    for request in ({"executionArn": other, "maxResults": 10}, {"executionArn": arn, "reverseOrder": True},
                    {"executionArn": arn, "nextToken": "not-a-token"[::-1]}):
        with pytest.raises(ClientError) as refused:
            sfn.get_execution_history(**{"nextToken": token, **request})
        assert refused.value.response["Error"]["Code"] == "InvalidToken"
    with pytest.raises(ClientError) as refused:
        sfn.get_execution_history(executionArn=arn, maxResults=1001)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "maxResults" in refused.value.response["Error"]["Message"]


def test_progress_shows_each_step_of_a_long_history_once_in_order(sfn: Any) -> None:
    arn = finished_execution(sfn, passes=30, parallel=True)
    assert len(all_pages(sfn, executionArn=arn, maxResults=1000)[0]) > 3 * 20  # more than 3 of Progress's pages
    lines: list[str] = []
    progress = Progress(None, sfn, None, lines.append, execution_arn=arn)
    progress.poll()
    progress.poll()  # nothing new: nothing written
    steps = [f"P{i}" for i in range(30)]
    assert [line.split(": ", 1)[1] for line in lines] == ["execution started", *steps, "execution SUCCEEDED"]
    assert progress._seen_history[arn] == sfn.get_execution_history(executionArn=arn, reverseOrder=True,
                                                                     maxResults=1)["events"][0]["id"]
