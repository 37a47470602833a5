"""The drift report: it crosses the state machine as JSON and reads, for a person, like the guide."""

from __future__ import annotations

import pytest

from expel_onboarding.drift import (
    Converge,
    DriftStatus,
    Finding,
    Mode,
    Report,
    StepCheck,
    applied,
    not_ready,
    render,
    run_check,
)
from expel_onboarding.errors import OnboardingError
from expel_onboarding.models import Config, TopicOutput, TrailOutput
from expel_onboarding.steps import step02_bucket_encryption, step04_key_policy

FINDING = Finding(step=6, resource="arn:aws:sns:us-east-1:123456789012:T:sub", setting="RawMessageDelivery",
                  actual="false", expected="true", fix="check Enable raw message delivery")


def _report() -> Report:
    return Report.of([StepCheck(step=6, status=DriftStatus.DRIFTED, findings=[FINDING]),
                      StepCheck(step=1, status=DriftStatus.IN_SYNC),
                      StepCheck.not_checked(10, "no Workbench API key")], checked_at="2026-12-01T02:00:00+00:00")


def test_report_survives_the_state_machines_json() -> None:
    report = _report()
    assert Report.from_dict(report.to_dict()) == report
    assert report.to_dict()["Steps"][1]["Findings"][0]["Setting"] == "RawMessageDelivery"


def test_report_counts_findings_in_guide_order() -> None:
    report = _report()
    assert (report.status, report.finding_count) == (DriftStatus.DRIFTED, 1)
    assert [c.step for c in report.steps] == [1, 6, 10]
    assert Report.of([StepCheck(step=1, status=DriftStatus.IN_SYNC)]).status == DriftStatus.IN_SYNC


def test_render_names_the_guide_step_the_setting_now_should_be_and_fix() -> None:
    lines = render(_report(), stack="prod")
    text = "\n".join(lines)
    assert lines[0] == "Drift check  DRIFTED  1 difference"
    assert "Guide step 6  Create the SNS subscription: 1 difference" in text
    assert "  - RawMessageDelivery of arn:aws:sns:us-east-1:123456789012:T:sub" in text
    assert "      is now     false" in text and "      should be  true" in text
    assert "Guide step 10  Add AWS CloudTrail as a security device in Workbench: not checked (no Workbench API key)" \
        in text
    assert "cloudtrail-onboarding doctor --stack prod --repair" in text


def test_render_of_a_clean_account_says_so() -> None:
    lines = render(Report.of([StepCheck(step=1, status=DriftStatus.IN_SYNC)]))
    assert lines[0] == "Drift check  IN_SYNC  the account is in the onboarding's end state"
    assert not any(line.startswith("Repair") for line in lines)


def test_render_says_which_differences_only_a_person_can_put_back() -> None:
    trust = Finding(step=8, resource="role ExpelAssumeRole in account 111111111111 (us-east-1)",
                    setting="AssumeRolePolicyDocument/Statement/0/Condition/StringEquals/sts:ExternalId (NOT_EQUAL)",
                    actual="x", expected="guid", fix="in account 111111111111, IAM > Roles > ...", repairable=False)
    report = Report.of([StepCheck(step=6, status=DriftStatus.DRIFTED, findings=[FINDING]),
                        StepCheck(step=8, status=DriftStatus.DRIFTED, findings=[trust])])

    text = "\n".join(render(report, stack="prod"))

    assert Report.from_dict(report.to_dict()) == report
    assert ("By hand only (1): the repair cannot put these back (each fix above says why and what to do): "
            "AssumeRolePolicyDocument/Statement/0/Condition/StringEquals/"
            "sts:ExternalId (NOT_EQUAL) of role ExpelAssumeRole in account 111111111111 (us-east-1)") in text
    assert "By hand only" not in "\n".join(render(_report()))


def test_a_pending_check_says_drift_detection_is_still_running() -> None:
    waiting = StepCheck(step=8, status=DriftStatus.IN_SYNC, pending=True, detection="op-1",
                        detection_started="2026-12-01T02:00:00+00:00")
    report = Report.of([waiting])

    assert report.pending and Report.from_dict(report.to_dict()).steps[0].detection == "op-1"
    assert report.to_dict()["Pending"] is True  # what the state machine's Choice reads
    assert "Guide step 8  Set up CloudFormation (the Expel role): drift detection still running" in \
        "\n".join(render(report))


def test_a_step_whose_inputs_are_there_is_ready_and_one_missing_some_names_them_and_where_they_come_from() -> None:
    assert not_ready(4, [("the KMS key", "arn:key", 1), ("the topic", "arn:topic", 3)]) is None
    assert not_ready(4, [("the KMS key", "", 1), ("the topic", "arn:topic", 3)]) == StepCheck.not_checked(
        4, "the KMS key is missing (guide step 1)")
    assert not_ready(4, [("the KMS key", "", 1), ("the bucket", "", 1), ("the topic", "", 3)]) == (
        StepCheck.not_checked(4, "the KMS key, the bucket and the topic are missing (guide steps 1 and 3)"))
    assert not_ready(2, [("the bucket", "", 1)], skip="an existing trail") == (
        StepCheck.not_checked(2, "an existing trail"))


def test_the_drift_check_of_a_step_says_which_input_from_an_earlier_step_is_missing(config: Config) -> None:
    trail = TrailOutput(trail_arn="", bucket_name="b", bucket_arn="arn:aws:s3:::b", kms_key_arn="", kms_alias="")
    assert step04_key_policy.check(config, trail, TopicOutput(topic_arn="")).note == (
        "the KMS key and the topic are missing (guide steps 1 and 3)")
    assert step02_bucket_encryption.check(config, trail).note == "the KMS key is missing (guide step 1)"
    existing = TrailOutput(trail_arn="", bucket_name="", bucket_arn="", kms_key_arn="", kms_alias="",
                           existing_trail=True)
    assert step02_bucket_encryption.check(config, existing).note == (
        "an existing trail: the customer's bucket keeps its encryption")


def test_an_apply_that_ends_with_its_resource_returns_it_and_one_that_does_not_is_a_named_defect() -> None:
    queue = "arn:aws:sqs:us-east-1:123456789012:q"
    assert applied(Converge(5), queue, "a queue") == queue
    with pytest.raises(OnboardingError, match=r"^Step 5: applying ended without a queue\. This is a defect"):
        applied(Converge(5), None, "a queue")


def test_a_check_refuses_a_run_that_would_write() -> None:
    with pytest.raises(ValueError, match="step 3's applies"):
        run_check(Converge(3, Mode.APPLY), lambda run: None)
