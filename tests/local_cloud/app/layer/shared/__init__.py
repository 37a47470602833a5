"""The fixture app's shared layer: error classes the ASL names, and the CloudFormation answer."""

import json
import urllib.request


class TransientError(Exception):
    """The state machine retries this one by name."""


class OnboardingError(Exception):
    """The state machine catches this one by name."""


def answer(request: dict, status: str, physical_id: str, data: dict | None = None, reason: str = "") -> None:
    """PUT the custom resource response to CloudFormation's pre-signed ResponseURL."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason or f"See {physical_id}",
            "PhysicalResourceId": physical_id,
            "StackId": request["StackId"],
            "RequestId": request["RequestId"],
            "LogicalResourceId": request["LogicalResourceId"],
            "Data": data or {},
        }
    ).encode()
    put = urllib.request.Request(request["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""})  # noqa: S310
    with urllib.request.urlopen(put, timeout=10) as response:  # noqa: S310 - the ResponseURL is https on AWS
        response.read()
