"""The state machine's last step: answer CloudFormation for the custom resource."""

import json

from shared import answer


def lambda_handler(event: dict, context: object) -> dict:
    request = event["Request"]
    # A stable physical id: a new one would make CloudFormation delete the old resource.
    physical_id = request.get("PhysicalResourceId") or f"run-{request['RequestId']}"
    if event["Status"] == "SUCCESS":
        data = {"Greeting": event["Work"]["Greeting"], "ExecutionArn": event["ExecutionId"]}
        answer(request, "SUCCESS", physical_id, data)
        return data
    error = event["Error"]
    cause = json.loads(error["Cause"])
    reason = f"{error['Error']}: {cause['errorMessage']} (execution {event['ExecutionId']})"
    answer(request, "FAILED", physical_id, reason=reason)
    return {"Reason": reason}
