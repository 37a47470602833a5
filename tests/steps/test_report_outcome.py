"""The last state's answer: after a stack delete, crhelper's poll rule goes with the trigger."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from expel_onboarding import cfn_response, lifecycle
from tests.conftest import ACCOUNT_ID, REGION

TRIGGER = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:expel-onboarding-TriggerFunction-AbCdEf"


def state(request_type: str) -> dict[str, Any]:
    return {"Config": {"Region": REGION}, "ExecutionId": "arn:exec",
            "CloudFormation": {"RequestType": request_type, "RequestId": "r", "ResponseURL": "https://cfn/r",
                               "StackId": "s", "LogicalResourceId": "Onboarding", "PhysicalResourceId": "p",
                               "ServiceToken": TRIGGER}}


@pytest.fixture
def rules(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(cfn_response, "send", lambda _url, _body: None)
    events = boto3.client("events", region_name=REGION)
    for name, target in (("OnboardingAB12CD34", TRIGGER), ("OnboardingOTHER123", f"{TRIGGER}-other"),
                         ("CustomersOwnRule", TRIGGER)):
        events.put_rule(Name=name, ScheduleExpression="rate(1 minute)")
        events.put_targets(Rule=name, Targets=[{"Id": "1", "Arn": target}])
    return lambda: sorted(r["Name"] for r in events.list_rules()["Rules"])


def test_answered_delete_removes_only_our_triggers_poll_rule(rules: Any) -> None:
    lifecycle.report_success(state("Delete"))
    assert rules() == ["CustomersOwnRule", "OnboardingOTHER123"]


def test_answered_create_leaves_the_poll_rule_to_remove_itself(rules: Any) -> None:
    lifecycle.report_success(state("Create"))
    assert "OnboardingAB12CD34" in rules()
