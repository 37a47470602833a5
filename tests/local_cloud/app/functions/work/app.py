"""One step: fails once with TransientError (retried), and with OnboardingError when asked to (caught)."""

import json
import time

from shared import OnboardingError, TransientError


def lambda_handler(event: dict, context: object) -> dict:
    if "SleepSeconds" in event:  # for the tests of asynchronous and scheduled invocations
        print(json.dumps({"event": event}))
        time.sleep(event["SleepSeconds"])
        return {"Slept": event["SleepSeconds"]}
    if event["RetryCount"] == 0:
        raise TransientError("first attempt always fails: the ASL retries TransientError")
    if event["Fail"] == "true":
        raise OnboardingError("Greeting refused: set Fail=false and retry")
    return {"Greeting": f"{event['Greeting']}, world", "RemainingMs": context.get_remaining_time_in_millis()}
