"""Answer a CloudFormation custom resource request by PUT to its pre-signed ResponseURL.

crhelper's own sender speaks HTTPS only and retries forever on failure; an answer that never
arrives is exactly the hour-long hang we must avoid, so this one gives up after a few tries and
works with any scheme (the local cloud's ResponseURL is plain HTTP).
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(child=True)

# CloudFormation rejects response bodies over 4096 bytes.
MAX_BODY_BYTES = 4096
MAX_REASON_CHARS = 1000


def response_body(request: dict[str, Any], status: str, physical_id: str, reason: str = "",
                  data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON CloudFormation expects, kept under its 4 KB limit (reason is cut first, then data)."""
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 15] + " ...(truncated)"
    body: dict[str, Any] = {
        "Status": status,
        "Reason": reason or status,
        "PhysicalResourceId": physical_id,
        "StackId": request["StackId"],
        "RequestId": request["RequestId"],
        "LogicalResourceId": request["LogicalResourceId"],
        "NoEcho": False,
        "Data": dict(data or {}),
    }
    # Every key stays (each is a Fn::GetAtt of an Output, and a missing one fails the stack): the longest
    # value is emptied first, in practice the prefilled registration link.
    while len(json.dumps(body).encode()) > MAX_BODY_BYTES and any(body["Data"].values()):
        longest = max(body["Data"], key=lambda key: len(str(body["Data"][key])))
        body["Data"][longest] = ""
    return body


def send(response_url: str, body: dict[str, Any], attempts: int = 4) -> None:
    payload = json.dumps(body).encode()
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(  # noqa: S310 - the URL is CloudFormation's own
            response_url, data=payload, method="PUT",
            headers={"Content-Type": "", "Content-Length": str(len(payload))},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                logger.info("Answered CloudFormation", extra={"status": body["Status"],
                                                               "http_status": response.status})
                return
        except OSError as exc:
            logger.warning("Answering CloudFormation failed", extra={"attempt": attempt, "error": str(exc)})
            if attempt == attempts:
                raise
            time.sleep(attempt)
