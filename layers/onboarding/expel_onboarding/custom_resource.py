"""The custom resource ``Onboarding`` (``Custom::CloudTrailOnboarding``): all of it, in one place.

CloudFormation sends Create, Update or Delete to the trigger Lambda. ``start`` runs one Step Functions
execution for the request (the state machine only does the work: it never answers) and returns without
answering. crhelper then invokes the trigger once a minute through an EventBridge rule, with the same
request, and ``poll`` is the one place that answers CloudFormation: SUCCESS with the guide's values, or
FAILED naming the failed state, on every terminal state of the execution, after the retry window and
before the deadline. docs/lifecycle.md says why this design and what each rule protects.

The pure parts (names, settings, execution input, the poll's verdict, outputs, the response body) take no
boto3 and are tested without AWS; the AWS calls go through ``aws.stepfunctions``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger
from crhelper import CfnResource

from expel_onboarding import naming
from expel_onboarding.aws import stepfunctions
from expel_onboarding.errors import InvalidParameter, OnboardingError
from expel_onboarding.execution_history import Failure, console_url, failed_step
from expel_onboarding.models import Config

logger = Logger(child=True)

# ------------------------------------------------------------------------------------ settings, identity
# Properties of the custom resource that steer its answer rather than describe the onboarding. The defaults
# are template.yaml's (a test holds them equal): they apply only when a property is missing.
SETTINGS_KEYS = ("RetryWindowSeconds", "DeadlineSeconds", "PollSeconds")
DEFAULT_SETTINGS = {"RetryWindowSeconds": 900, "DeadlineSeconds": 2700, "PollSeconds": 10}
# The poll answers a missed deadline this much before CloudFormation's own ServiceTimeout (the same
# parameter), so a person reads the failed step and not CloudFormation's generic timeout: the poll runs
# once a minute, and the execution starts a little after CloudFormation's request.
DEADLINE_MARGIN_SECONDS = 180
# The names that say WHICH trail, buckets, key, topic, queue and role this onboarding is. Changing one on an
# update would build a second set and leave the first (a billed, multi-region trail among it) behind.
IDENTITY_KEYS = ("TrailName", "BucketName", "KmsAlias", "TopicName", "QueueName", "RoleName", "OrganizationMode",
                 "ExistingTrailName", "ExistingTopicArn", "AccessLogBucketName")
# Added with existing-trail mode and the access-log bucket: in the identity only when set, so a stack deployed
# before keeps its physical id.
_IDENTITY_WHEN_SET = ("ExistingTrailName", "ExistingTopicArn", "AccessLogBucketName")


def _added_identity_default(key: str, properties: dict[str, Any]) -> str:
    """The value an identity key added after a stack's creation had there: the template's default. The
    template always hands the access-log bucket's name (its default derived), so a stack created before that
    parameter existed sees it appear on its first update although nothing was renamed."""
    if key == "AccessLogBucketName":
        return naming.access_log_bucket_name(str(properties.get("AccountId", "")),
                                             str(properties.get("Region", "")))
    return ""


def settings(properties: dict[str, Any]) -> dict[str, int]:
    return {key: int(properties.get(key, default)) for key, default in DEFAULT_SETTINGS.items()}


def check_settings(properties: dict[str, Any]) -> None:
    """The retry window must end before the deadline, or the person's retry could never complete the stack."""
    values = settings(properties)
    latest = values["DeadlineSeconds"] - DEADLINE_MARGIN_SECONDS
    if values["RetryWindowSeconds"] > latest:
        raise InvalidParameter(
            "RetryWindowSeconds", f"{values['RetryWindowSeconds']} s does not end before the deadline "
                                  f"(OnboardingDeadlineSeconds {values['DeadlineSeconds']} s less a "
                                  f"{DEADLINE_MARGIN_SECONDS} s margin)",
            f"use at most {latest}, or raise OnboardingDeadlineSeconds")


def physical_id(properties: dict[str, Any]) -> str:
    """Stable while the identity stays: CloudFormation never 'replaces' (and deletes) the onboarding.
    The identity's digest is part of it, so an update can tell which names are deployed."""
    identity = json.dumps({key: str(properties.get(key, "")) for key in IDENTITY_KEYS
                           if key not in _IDENTITY_WHEN_SET or properties.get(key)}, sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return f"{properties['StackName']}-cloudtrail-onboarding-{digest}"


def deployed_ids(properties: dict[str, Any]) -> set[str]:
    """Every physical id under which these names can already be deployed: the id of ``properties``, and the
    ids a stack created before an added identity key existed holds (that key absent, its value the default)."""
    at_default = [key for key in _IDENTITY_WHEN_SET
                  if properties.get(key) and str(properties[key]) == _added_identity_default(key, properties)]
    return {physical_id({k: v for k, v in properties.items() if k not in absent})
            for size in range(len(at_default) + 1) for absent in itertools.combinations(at_default, size)}


def _identity_value(properties: dict[str, Any], key: str) -> str:
    """A key's value, an absent added key read as the default it would have had."""
    if key in _IDENTITY_WHEN_SET and not properties.get(key):
        return _added_identity_default(key, properties)
    return str(properties.get(key, ""))


def answer_id(event: dict[str, Any], succeeded: bool = True) -> str:
    """The PhysicalResourceId of our answer. A Delete, and any failure but a Create's, keeps the id
    CloudFormation holds (after a failed Create it may be crhelper's generated one: the teardown runs
    anyway, and removes only what carries our tag); otherwise the id of the identity in the properties."""
    held = str(event.get("PhysicalResourceId") or "")
    if held and (event["RequestType"] == "Delete" or not succeeded):
        return held
    if event["RequestType"] == "Update" and held in deployed_ids(event["ResourceProperties"]):
        return held  # a new id would be a replacement: CloudFormation would then delete the onboarding
    return physical_id(event["ResourceProperties"])


def check_update(event: dict[str, Any]) -> None:
    """Refuse an update that renames what the onboarding made, before anything is written.

    The deployed identity is the one in the PhysicalResourceId; a rollback (old properties back)
    matches it again and goes through.
    """
    current = str(event.get("PhysicalResourceId", ""))
    stack = event["ResourceProperties"]["StackName"]
    if not current.startswith(f"{stack}-cloudtrail-onboarding-") or current in deployed_ids(
            event["ResourceProperties"]):
        return
    old, new = event.get("OldResourceProperties", {}), event["ResourceProperties"]
    changed = [key for key in IDENTITY_KEYS
               if _identity_value(old, key) != _identity_value(new, key)] or list(IDENTITY_KEYS)
    raise InvalidParameter(
        ", ".join(changed), "cannot change on a stack update: the onboarding would build a second trail, bucket, "
        "key, topic, queue or role and leave the first one behind",
        "update the stack with the previous values; to move to new names, delete the stack (it keeps the log "
        "bucket and key by default) and create it again")


# ------------------------------------------------------------------------------------------- starting
def execution_name(request_type: str, request_id: str) -> str:
    """Derived from the RequestId: a re-delivered request maps to the same execution."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "-", request_id)
    return f"{request_type.lower()}-{clean}"[:80]


def execution_input(event: dict[str, Any]) -> dict[str, Any]:
    """The state machine's input: the onboarding config, the timing settings and which request it serves.

    Never the Workbench API key (only its secret's ARN travels in Config), and never the pre-signed
    ResponseURL: whoever can read an execution's input or history could answer for the stack.
    """
    properties = {k: v for k, v in event["ResourceProperties"].items()
                  if k not in ("ServiceToken", "ServiceTimeout") and k not in SETTINGS_KEYS}
    return {
        "Config": Config.from_dict(properties).to_dict(),
        "Settings": settings(event["ResourceProperties"]),
        # RequestId ties a retry a person starts with the same input to this request (``attempts``).
        "CloudFormation": {key: event[key] for key in ("RequestType", "RequestId", "StackId", "LogicalResourceId")},
    }


def stop_onboardings(state_machine_arn: str) -> list[str]:
    """Before a teardown or an update: an onboarding still running (a retry a person started) would race
    the new execution. Returns the stopped executions."""
    running = [e["executionArn"] for e in stepfunctions.list_executions(state_machine_arn)
               if e["status"] == "RUNNING" and not e.get("name", "").startswith("delete-")]
    for arn in running:
        stepfunctions.stop_execution(arn, "A newer CloudFormation request takes over")
        logger.warning("Stopped an onboarding still running", extra={"execution_arn": arn})
    return running


# ----------------------------------------------------------------------------------- the poll's verdict
# Stack Output name -> where the value sits in the final state document.
OUTPUT_PATHS: dict[str, tuple[str, ...]] = {
    "WorkbenchGuid": ("Config", "WorkbenchGuid"),
    "AwsRegion": ("Config", "Region"),
    "S3BucketName": ("Trail", "BucketName"),
    "KmsAlias": ("Trail", "KmsAlias"),
    "S3BucketArn": ("Trail", "BucketArn"),
    "SnsTopicArn": ("Topic", "TopicArn"),
    "KmsKeyArn": ("Trail", "KmsKeyArn"),
    "SqsQueueArn": ("Queue", "QueueArn"),
    "SqsQueueUrl": ("Queue", "QueueUrl"),
    "IamRoleArn": ("Role", "RoleArn"),
    "TrailArn": ("Trail", "TrailArn"),
    "TrailFindings": ("Trail", "Findings"),
    "AwsAccountId": ("Config", "AccountId"),
    "WorkbenchDeviceId": ("Device", "DeviceId"),
    "WorkbenchDeviceStatus": ("Device", "Status"),
    "WorkbenchRegistrationUrl": ("Device", "RegistrationUrl"),
    "ExecutionArn": ("ExecutionId",),
}
RUNNING = ("RUNNING", "PENDING_REDRIVE")


def outputs(state: dict[str, Any]) -> dict[str, str]:
    """The stack Outputs from a finished execution's state document (missing parts -> "")."""
    data: dict[str, str] = {}
    for name, path in OUTPUT_PATHS.items():
        value: Any = state
        for key in path:
            value = value.get(key, {}) if isinstance(value, dict) else {}
        data[name] = value if isinstance(value, str) else ""
    return data


class Answer(StrEnum):
    """What the poll tells CloudFormation now: its two response statuses, or nothing yet."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    PENDING = "PENDING"  # no answer: CloudFormation keeps waiting


@dataclass(frozen=True)
class Verdict:
    """What the poll answers now: SUCCESS (with ``data``), FAILED, or PENDING (keep CloudFormation waiting).

    A FAILED verdict has either a ``reason`` or the ``failed_execution`` whose history names the step (a
    PENDING one names it too while the retry window is open); ``stop`` lists executions to stop first (the
    deadline passed while they ran).
    """

    status: Answer
    data: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    failed_execution: str = ""
    stop: tuple[str, ...] = ()


def judge(attempts: list[dict[str, Any]], values: dict[str, int], now: datetime) -> Verdict:
    """The answer for one request, from its executions as ``describe_execution`` gives them: the trigger's
    first, then the retries a person started with the same input. A redrive keeps the first one's ARN.

    - any attempt SUCCEEDED: SUCCESS with its outputs;
    - one still runs: wait, unless the deadline (counted from the trigger's execution) has passed: then
      stop it and fail, so it cannot race the rollback that follows;
    - all ended: the newest one ABORTED fails at once (a person stopped it); otherwise wait for a retry
      until the retry window, counted from the newest end, or the deadline runs out.
    """
    succeeded = [a for a in attempts if a["status"] == "SUCCEEDED"]
    if succeeded:
        newest = max(succeeded, key=_stopped)
        return Verdict(Answer.SUCCESS, data=outputs(json.loads(newest.get("output") or "{}")))
    deadline = values["DeadlineSeconds"] - DEADLINE_MARGIN_SECONDS
    past_deadline = _seconds_between(attempts[0].get("startDate"), now) > deadline
    running = [a for a in attempts if a["status"] in RUNNING]
    if running:
        if not past_deadline:
            return Verdict(Answer.PENDING)
        url = console_url(_region(running[-1]["executionArn"]), running[-1]["executionArn"])
        return Verdict(Answer.FAILED, reason=f"Onboarding did not finish within {deadline} s | Execution: {url}",
                       stop=tuple(a["executionArn"] for a in running))
    newest = max(attempts, key=_stopped)
    window_over = _seconds_between(newest.get("stopDate"), now) >= values["RetryWindowSeconds"]
    if newest["status"] == "ABORTED" or past_deadline or window_over:
        return Verdict(Answer.FAILED, failed_execution=newest["executionArn"])
    return Verdict(Answer.PENDING, failed_execution=newest["executionArn"])


def _stopped(execution: dict[str, Any]) -> datetime:
    return _aware(execution.get("stopDate") or execution["startDate"])


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _seconds_between(moment: datetime | None, now: datetime) -> float:
    return 0.0 if moment is None else (now - _aware(moment)).total_seconds()


def _region(execution_arn: str) -> str:
    return execution_arn.split(":")[3]


def failure_reason(failure: Failure, region: str, execution_arn: str) -> str:
    """One line a person reads in CloudFormation's events: the step, its error, and where to look."""
    what = ": ".join(part for part in (failure.error, failure.cause) if part)
    reason = f"{failure.step} failed: {what}" if what else f"{failure.step} failed"
    return f"{reason[:700]} | Execution: {console_url(region, execution_arn)}"


# ------------------------------------------------------------------------------------------ answering
# CloudFormation rejects response bodies over 4096 bytes.
MAX_BODY_BYTES = 4096
MAX_REASON_CHARS = 1000


def response_body(request: dict[str, Any], status: str, physical: str, reason: str = "",
                  data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON CloudFormation expects, kept under its 4 KB limit (reason is cut first, then data)."""
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 15] + " ...(truncated)"
    body: dict[str, Any] = {
        "Status": status,
        "Reason": reason or status,
        "PhysicalResourceId": physical,
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


def put_response(response_url: str, body: dict[str, Any], attempts: int = 4) -> None:
    """PUT the answer to the pre-signed ResponseURL: a few tries, then give up (an answer that never arrives
    is the hour-long hang we avoid, and the next poll answers again); any scheme (the local cloud's is HTTP)."""
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


# --------------------------------------------------------------------------------------- the resource
def attempts(execution_arn: str, state_machine_arn: str) -> list[dict[str, Any]]:
    """The executions serving one request: the trigger's (a redrive keeps its ARN), then every later one
    a person started with the same input (the console's "New execution" copies it, RequestId included)."""
    first = stepfunctions.describe_execution(execution_arn)
    request_id = _request_id(first)
    later = [e["executionArn"] for e in stepfunctions.list_executions(state_machine_arn)
             if e["executionArn"] != execution_arn and _aware(e["startDate"]) > _aware(first["startDate"])]
    described = (stepfunctions.describe_execution(arn) for arn in later)
    return [first, *sorted((d for d in described if _request_id(d) == request_id), key=lambda d: d["startDate"])]


def _request_id(execution: dict[str, Any]) -> str | None:
    request = json.loads(execution.get("input") or "{}").get("CloudFormation", {})
    return request.get("RequestId") if isinstance(request, dict) else None


class OnboardingResource(CfnResource):
    """crhelper's resource with the onboarding's handlers: ``start`` on each request, ``poll`` every minute.

    crhelper calls ``_remove_polling`` (its rule and the rule's Lambda permission) before ``_send``: the
    invocation that answers a stack delete leaves nothing behind when CloudFormation then deletes the
    trigger. ``_send`` is crhelper's only way to send, and its own sender speaks HTTPS only, retries for
    ever, and keeps only the last 240 characters of a reason (the failed step's name comes first), so this
    class replaces it with ``response_body`` and ``put_response``.
    """

    def __init__(self, state_machine_arn: str) -> None:
        # polling_interval=1: EventBridge's smallest rate, one poll a minute.
        # sleep_on_delete=0: crhelper's wait for CloudWatch Logs before a delete's answer is not needed.
        super().__init__(json_logging=True, log_level="INFO", boto_level="ERROR", polling_interval=1,
                         sleep_on_delete=0)
        self.state_machine_arn = state_machine_arn
        for register in (self.create, self.update, self.delete):
            register(self.start)
        for register in (self.poll_create, self.poll_update, self.poll_delete):
            register(self.poll)

    def start(self, event: dict[str, Any], _context: object) -> str:
        """Start the request's execution; crhelper then sets up the poll instead of answering."""
        self.PhysicalResourceId = answer_id(event, succeeded=False)  # what a refusal below answers with
        check_settings(event["ResourceProperties"])
        if event["RequestType"] == "Update":
            check_update(event)
        if event["RequestType"] != "Create":
            stop_onboardings(self.state_machine_arn)
        name = execution_name(event["RequestType"], event["RequestId"])
        arn = stepfunctions.start_execution(self.state_machine_arn, name, execution_input(event))
        logger.info("Onboarding execution started", extra={"execution_arn": arn})
        self.Data["ExecutionArn"] = arn
        return answer_id(event)

    def poll(self, event: dict[str, Any], _context: object, now: datetime | None = None) -> str | None:
        """None keeps CloudFormation waiting; an id answers SUCCESS; raising answers FAILED with the reason."""
        self.PhysicalResourceId = answer_id(event, succeeded=False)
        found = attempts(event["CrHelperData"]["ExecutionArn"], self.state_machine_arn)
        verdict = judge(found, settings(event["ResourceProperties"]), now or datetime.now(UTC))
        for arn in verdict.stop:
            stepfunctions.stop_execution(arn, "Past the deadline: CloudFormation was answered")
        if verdict.status is Answer.SUCCESS:
            if event["RequestType"] != "Delete":
                self.Data.update(verdict.data)
            return answer_id(event)
        reason = verdict.reason
        if verdict.failed_execution:
            history = stepfunctions.history(verdict.failed_execution)
            reason = failure_reason(failed_step(history), _region(verdict.failed_execution), verdict.failed_execution)
        if verdict.status is Answer.PENDING:
            if reason:
                logger.warning("Onboarding failed: waiting for a retry (redrive, or a new execution with the "
                               "same input) within the retry window", extra={"reason": reason})
            return None
        # Also on Delete: a teardown that failed answers within the deadline (the stack shows DELETE_FAILED
        # with the step and reason) instead of leaving CloudFormation to wait an hour.
        raise OnboardingError(reason)

    def _send(self, status: str | None = None, reason: str = "", send_response: Any = None) -> None:
        request = {"StackId": self.StackId, "RequestId": self.RequestId, "LogicalResourceId": self.LogicalResourceId}
        data = {k: v for k, v in (self.Data or {}).items()
                if k not in ("CrHelperPoll", "CrHelperPermission", "CrHelperRule", "PhysicalResourceId")}
        body = response_body(request, status or self.Status, str(self.PhysicalResourceId or ""),
                             reason or str(self.Reason), data)
        put_response(self._response_url, body)  # type: ignore[attr-defined]  # set by crhelper per request
