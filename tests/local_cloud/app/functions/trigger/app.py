"""Custom resource provider: Create/Update start the state machine and return WITHOUT answering
(the state machine's last step answers); Delete answers at once."""

import json
import os

import boto3
from shared import answer


def lambda_handler(event: dict, context: object) -> None:
    seen = {k: event.get(k) for k in ("RequestType", "PhysicalResourceId", "OldResourceProperties")}
    print(json.dumps({"request": seen}))
    if event["RequestType"] == "Delete":
        answer(event, "SUCCESS", event.get("PhysicalResourceId", "none"))
        return
    execution = boto3.client("stepfunctions").start_execution(
        stateMachineArn=os.environ["STATE_MACHINE_ARN"], input=json.dumps({"Request": event})
    )
    print(f"started {execution['executionArn']} for {context.function_name}")
