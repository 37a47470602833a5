"""The state machine's last step: answer CloudFormation for the custom resource."""

import json

from shared import answer


def lambda_handler(event: dict, context: object) -> dict:
    request = event["Request"]
    if event["Status"] == "SUCCESS":
        data = {"Greeting": event["Work"]["Greeting"], "ExecutionArn": event["ExecutionId"]}
        answer(request, "SUCCESS", event["ExecutionId"], data)
        return data
    error = event["Error"]
    cause = json.loads(error["Cause"])
    reason = f"{error['Error']}: {cause['errorMessage']} (execution {event['ExecutionId']})"
    answer(request, "FAILED", event["ExecutionId"], reason=reason)
    return {"Reason": reason}
