"""CloudWatch as the drift alarm relies on it, where moto stores but does nothing:

- Embedded metric format: a log event that is an EMF document (``_aws.CloudWatchMetrics``) becomes metric
  data, as CloudWatch Logs extracts it on AWS (powertools Metrics publishes this way, without
  PutMetricData). A document whose metric has no numeric value in the root, or without a namespace, gives
  no metric, as on AWS.
- Alarms: ``AWS::CloudWatch::Alarm`` in CloudFormation (moto skipped it); a new alarm starts in
  INSUFFICIENT_DATA, as on AWS (moto said OK); ``evaluate`` judges every metric alarm over its last
  EvaluationPeriods periods (Statistic, Threshold, ComparisonOperator, DatapointsToAlarm, TreatMissingData)
  and, on a change of state, runs the state's actions: an SNS topic gets CloudWatch's alarm message only when
  its policy lets ``cloudwatch.amazonaws.com`` publish and, for an encrypted topic, its key policy lets
  CloudWatch use the key (the AWS managed key for SNS does not); otherwise the action fails, as on AWS,
  and the alarm's history says so. ``local serve`` evaluates once per ``--schedule-interval`` (a minute of
  compressed time, as AWS evaluates alarms every minute).
- DescribeAlarmHistory (moto lacks it): each alarm's ConfigurationUpdate (created, updated), StateUpdate ("Alarm
  updated from OK to ALARM", old and new state in HistoryData) and Action items ("Successfully executed action
  <topic ARN>" with the published message's id, or "Failed to execute action ..." with the error), newest first
  (ScanBy), filtered by AlarmName, HistoryItemType, StartDate and EndDate, MaxRecords 1 to 100 per page.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from local_cloud.once import once

log = logging.getLogger(__name__)

CLOUDWATCH = "cloudwatch.amazonaws.com"
_COMPARE = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


# ------------------------------------------------------------------------------------ embedded metrics
def emf_metrics(message: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """(namespace, PutMetricData entries) an EMF log event carries; [] for any other event."""
    try:
        document = json.loads(message)
    except (TypeError, ValueError):
        return []
    if not isinstance(document, dict) or not isinstance(document.get("_aws"), dict):
        return []
    meta = document["_aws"]
    timestamp = meta.get("Timestamp")
    when = datetime.fromtimestamp(timestamp / 1000, UTC) if isinstance(timestamp, int | float) else datetime.now(UTC)
    when = when.replace(tzinfo=None)  # moto keeps metric timestamps as naive UTC
    found: list[tuple[str, list[dict[str, Any]]]] = []
    for directive in meta.get("CloudWatchMetrics") or []:
        namespace = directive.get("Namespace")
        if not namespace:
            continue
        for dimension_set in directive.get("Dimensions") or [[]]:
            if any(not isinstance(document.get(name), str) for name in dimension_set):
                continue  # a dimension's value must be a string member of the root
            dimensions = [{"Name": name, "Value": document[name]} for name in dimension_set]
            entries = []
            for metric in directive.get("Metrics") or []:
                value = document.get(metric.get("Name"))
                values = value if isinstance(value, list) else [value]
                if not values or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                    continue
                for number in values:
                    entries.append({"MetricName": metric["Name"], "Dimensions": dimensions, "Value": float(number),
                                    "Timestamp": when, "Unit": metric.get("Unit", "None")})
            if entries:
                found.append((namespace, entries))
    return found


def _install_emf() -> None:
    from moto.logs.models import LogsBackend

    original = LogsBackend.put_log_events
    if getattr(original, "_extracts_emf", False):
        return

    def put_log_events(self: Any, log_group_name: str, log_stream_name: str, log_events: list[dict[str, Any]],
                       *args: Any, **kwargs: Any) -> Any:
        result = original(self, log_group_name, log_stream_name, log_events, *args, **kwargs)
        from moto.cloudwatch.models import cloudwatch_backends

        for event in log_events:
            for namespace, entries in emf_metrics(str(event.get("message", ""))):
                cloudwatch_backends[self.account_id][self.region_name].put_metric_data(namespace, entries)
        return result

    put_log_events._extracts_emf = True  # type: ignore[attr-defined]
    LogsBackend.put_log_events = put_log_events  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------------- alarms
def _install_initial_state() -> None:
    from moto.cloudwatch.models import CloudWatchBackend

    original = CloudWatchBackend.put_metric_alarm
    if getattr(original, "_insufficient_first", False):
        return

    def put_metric_alarm(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        existing = self.alarms.get(name)
        alarm = original(self, name, *args, **kwargs)
        if existing is None:
            alarm.state_value = "INSUFFICIENT_DATA"
            alarm.history = []
            _record(alarm, "ConfigurationUpdate", f'Alarm "{name}" created', {"type": "Create"})
        else:  # an update keeps the alarm's state, as on AWS
            alarm.state_value, alarm.state_reason = existing.state_value, existing.state_reason
            alarm.history = existing.history
            _record(alarm, "ConfigurationUpdate", f'Alarm "{name}" updated', {"type": "Update"})
        return alarm

    put_metric_alarm._insufficient_first = True  # type: ignore[attr-defined]
    CloudWatchBackend.put_metric_alarm = put_metric_alarm  # type: ignore[method-assign]


def _alarm_arguments(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    def number(key: str, default: Any = None) -> Any:
        value = properties.get(key, default)
        return None if value is None else float(value) if key == "Threshold" else int(value)

    return {
        "name": name, "namespace": properties.get("Namespace", ""), "metric_name": properties.get("MetricName", ""),
        "comparison_operator": properties["ComparisonOperator"], "evaluation_periods": number("EvaluationPeriods"),
        "period": number("Period", 60), "threshold": number("Threshold"), "statistic": properties.get("Statistic", ""),
        "description": properties.get("AlarmDescription", ""), "dimensions": properties.get("Dimensions", []),
        "alarm_actions": properties.get("AlarmActions", []), "ok_actions": properties.get("OKActions", []),
        "insufficient_data_actions": properties.get("InsufficientDataActions", []),
        "datapoints_to_alarm": number("DatapointsToAlarm"), "unit": properties.get("Unit"),
        "actions_enabled": str(properties.get("ActionsEnabled", True)).lower() != "false",
        "treat_missing_data": properties.get("TreatMissingData", "missing"),
    }


def _add_alarm_model() -> None:
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core.common_models import CloudFormationModel

    from local_cloud.cloudformation_models import ResourceModel, UpdatedInPlace, register, registered

    if registered("AWS::CloudWatch::Alarm"):
        return

    class CfnAlarm(ResourceModel, UpdatedInPlace, CloudFormationModel):
        TYPE, NAME_PROPERTY, ATTRIBUTES = "AWS::CloudWatch::Alarm", "AlarmName", {"Arn": "arn"}

        def __init__(self, alarm: Any) -> None:
            super().__init__(str(alarm.name))
            self.alarm, self.arn = alarm, alarm.alarm_arn

        @classmethod
        def put(cls, name: str, properties: dict[str, Any], account_id: str, region_name: str) -> Any:
            backend = cloudwatch_backends[account_id][region_name]
            return cls(backend.put_metric_alarm(**_alarm_arguments(name, properties)))

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str, **kwargs: Any
        ) -> Any:
            properties = cloudformation_json.get("Properties", {})
            return cls.put(properties.get("AlarmName") or resource_name, properties, account_id, region_name)

        @classmethod
        def update(cls, original: Any, properties: dict[str, Any], account_id: str, region_name: str) -> Any:
            return cls.put(properties.get("AlarmName") or original.alarm.name, properties, account_id, region_name)

        @classmethod
        def delete_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str
        ) -> None:
            cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])

    register(CfnAlarm)


def _statistic(values: list[float], statistic: str) -> float:
    return {"Maximum": max, "Minimum": min, "Sum": sum, "SampleCount": len,
            "Average": lambda v: sum(v) / len(v)}[statistic](values)


def judge(alarm: Any, datapoints: list[tuple[datetime, float]], now: datetime) -> tuple[str, str]:
    """The state the alarm should be in over its last EvaluationPeriods periods, and why (AWS's wording)."""
    period = timedelta(seconds=int(alarm.period))
    periods = int(alarm.evaluation_periods)
    needed = int(alarm.datapoints_to_alarm or periods)
    compare = _COMPARE[alarm.comparison_operator]
    threshold = float(alarm.threshold)
    seen: list[tuple[datetime, float]] = []
    for k in range(periods):
        end = now - k * period
        window = [v for when, v in datapoints if end - period < when <= end]
        if window:
            seen.append((end - period, _statistic(window, alarm.statistic)))
    treat = alarm.treat_missing_data or "missing"
    missing = periods - len(seen)
    breaching = [(w, v) for w, v in seen if compare(v, threshold)]
    if treat == "breaching":
        count = len(breaching) + missing
    else:
        count = len(breaching)
    if not seen and treat in ("missing", "ignore"):
        state = alarm.state_value if treat == "ignore" else "INSUFFICIENT_DATA"
        return state, "Insufficient Data: no datapoints were received for the evaluation periods."
    shown = ", ".join(f"{v:g} ({w.strftime('%d/%m/%y %H:%M:%S')})" for w, v in (breaching or seen))
    word = alarm.comparison_operator.replace("Threshold", "").replace("OrEqualTo", " or equal to ")
    word = {"GreaterThan": "greater than", "LessThan": "less than", "Greater or equal to": "greater than or equal to",
            "Less or equal to": "less than or equal to"}.get(word, word.lower())
    if count >= needed:
        return "ALARM", (f"Threshold Crossed: {len(breaching)} datapoint{'s' if len(breaching) != 1 else ''} "
                         f"[{shown}] was {word} the threshold ({threshold:g}).")
    return "OK", (f"Threshold Crossed: {len(seen)} datapoint{'s' if len(seen) != 1 else ''} [{shown}] was not "
                  f"{word} the threshold ({threshold:g}).")


def _datapoints(backend: Any, alarm: Any) -> list[tuple[datetime, float]]:
    wanted = sorted((d.name, d.value) for d in alarm.dimensions)
    found = []
    for datum in backend.get_all_metrics():
        if datum.namespace != alarm.namespace or datum.name != alarm.metric_name:
            continue
        if sorted((d.name, d.value) for d in datum.dimensions) != wanted:
            continue  # an alarm watches exactly one metric: the same dimensions, no more, no fewer
        value = getattr(datum, "value", None)
        if value is None:
            value = {"Maximum": datum.max_stat, "Minimum": datum.min_stat, "Sum": datum.sum_stat,
                     "SampleCount": datum.sample_count}.get(alarm.statistic, datum.sum_stat / datum.sample_count)
        when = datum.timestamp if datum.timestamp.tzinfo else datum.timestamp.replace(tzinfo=UTC)
        found.append((when, float(value)))
    return found


def evaluate(now: datetime | None = None) -> list[tuple[str, str]]:
    """Judge every metric alarm of every account and region; returns (alarm ARN, new state) per change."""
    from moto.cloudwatch.models import cloudwatch_backends

    now = now or datetime.now(UTC)
    changed = []
    for account_id, regions in list(cloudwatch_backends.items()):
        for region, backend in list(regions.items()):
            for alarm in list(backend.alarms.values()):
                if not alarm.metric_name or alarm.statistic not in ("Maximum", "Minimum", "Sum", "SampleCount",
                                                                    "Average"):
                    continue
                state, reason = judge(alarm, _datapoints(backend, alarm), now)
                if state == alarm.state_value:
                    continue
                old, old_reason = alarm.state_value, alarm.state_reason
                data = {"version": "1.0", "queryDate": now.isoformat()}
                alarm.update_state(reason, json.dumps(data), state)
                alarm.history = [h for h in alarm.history if isinstance(h, dict)]  # moto's own tuple: not AWS's
                _record(alarm, "StateUpdate", f"Alarm updated from {old} to {state}", {
                    "version": "1.0", "oldState": {"stateValue": old, "stateReason": old_reason},
                    "newState": {"stateValue": state, "stateReason": reason, "stateReasonData": data}}, now)
                changed.append((alarm.alarm_arn, state))
                if alarm.actions_enabled:
                    actions = {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions,
                               "INSUFFICIENT_DATA": alarm.insufficient_data_actions}[state]
                    for action in actions or []:
                        _run_action(account_id, region, alarm, old, action, now)
    return changed


def _run_action(account_id: str, region: str, alarm: Any, old: str, action: str, now: datetime) -> None:
    failed = {"actionState": "Failed", "stateUpdateTimestamp": int(now.timestamp() * 1000),
              "notificationResource": action}
    if ":sns:" not in action:
        _record(alarm, "Action", f"Failed to execute action {action}: only SNS actions are emulated",
                failed | {"error": "only SNS actions are emulated"}, now)
        return
    refusal = publish_refusal(action, alarm.alarm_arn)
    if refusal:
        log.warning("alarm %s: %s", alarm.name, refusal)
        _record(alarm, "Action", f"Failed to execute action {action}. Received error: \"{refusal}\"",
                failed | {"error": refusal}, now)
        return
    from moto.sns.models import sns_backends

    message = {
        "AlarmName": alarm.name, "AlarmDescription": alarm.description, "AWSAccountId": account_id,
        "NewStateValue": alarm.state_value, "NewStateReason": alarm.state_reason,
        "StateChangeTime": now.strftime("%Y-%m-%dT%H:%M:%S.000+0000"), "Region": region,
        "AlarmArn": alarm.alarm_arn, "OldStateValue": old, "OKActions": alarm.ok_actions,
        "AlarmActions": alarm.alarm_actions, "InsufficientDataActions": alarm.insufficient_data_actions,
        "Trigger": {"MetricName": alarm.metric_name, "Namespace": alarm.namespace, "Statistic": alarm.statistic.upper(),
                    "Dimensions": [{"name": d.name, "value": d.value} for d in alarm.dimensions],
                    "Period": int(alarm.period), "EvaluationPeriods": int(alarm.evaluation_periods),
                    "ComparisonOperator": alarm.comparison_operator, "Threshold": float(alarm.threshold),
                    "TreatMissingData": alarm.treat_missing_data or "missing"},
    }
    topic_region = action.split(":")[3]
    message_id = sns_backends[account_id][topic_region].publish(
        json.dumps(message), arn=action, subject=f'{alarm.state_value}: "{alarm.name}" in {region}')
    _record(alarm, "Action", f"Successfully executed action {action}", {
        "actionState": "Succeeded", "stateUpdateTimestamp": int(now.timestamp() * 1000),
        "notificationResource": action, "publishedMessage": {"messageId": str(message_id), "message": message}}, now)


def _record(alarm: Any, kind: str, summary: str, data: dict[str, Any], when: datetime | None = None) -> None:
    """One AlarmHistoryItem, as DescribeAlarmHistory shows it."""
    alarm.history.append({"AlarmName": alarm.name, "AlarmType": "MetricAlarm", "Timestamp": when or datetime.now(UTC),
                          "HistoryItemType": kind, "HistorySummary": summary,
                          "HistoryData": json.dumps(data, default=str)})


_ITEM_TYPES = ("ConfigurationUpdate", "StateUpdate", "Action", "AlarmContributorStateUpdate",
               "AlarmContributorAction")


def _install_describe_alarm_history() -> None:
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    from local_cloud.stacksets import _page

    def describe_alarm_history(self: Any) -> Any:
        from moto.cloudwatch.exceptions import ValidationError

        params = self._get_params()
        kind = params.get("HistoryItemType")
        if kind and kind not in _ITEM_TYPES:
            raise ValidationError(f"1 validation error detected: Value '{kind}' at 'historyItemType' failed to "
                                  f"satisfy constraint: Member must satisfy enum value set: [{', '.join(_ITEM_TYPES)}]")
        name = params.get("AlarmName")
        alarms = [a for a in list(self.cloudwatch_backend.alarms.values()) if not name or a.name == name]
        items = [h for a in alarms for h in a.history if isinstance(h, dict) and (not kind or
                                                                                 h["HistoryItemType"] == kind)]
        start, end = params.get("StartDate"), params.get("EndDate")
        if start:
            items = [h for h in items if h["Timestamp"] >= _when(start)]
        if end:
            items = [h for h in items if h["Timestamp"] <= _when(end)]
        order = {id(h): n for n, h in enumerate(items)}  # an action follows its state change at the same time
        items.sort(key=lambda h: (h["Timestamp"], order[id(h)]),
                   reverse=params.get("ScanBy", "TimestampDescending") == "TimestampDescending")
        try:
            page, token = _page(items, {"MaxRecords": None, "NextToken": params.get("NextToken"),
                                        "MaxResults": params.get("MaxRecords")})
        except Exception as exc:
            raise ValidationError(str(getattr(exc, "message", exc)).replace("maxResults", "maxRecords")) from exc
        return ActionResult({"AlarmHistoryItems": page, "NextToken": token} if token else {"AlarmHistoryItems": page})

    CloudWatchResponse.describe_alarm_history = describe_alarm_history  # type: ignore[attr-defined]


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def publish_refusal(topic_arn: str, alarm_arn: str) -> str | None:
    """Why CloudWatch could not publish to the topic (its policy, its key's policy), None when it can."""
    from moto.kms.models import kms_backends
    from moto.sns.models import sns_backends

    from local_cloud.iam import Principal, Values, resource_policy_allows

    account, region = topic_arn.split(":")[4], topic_arn.split(":")[3]
    try:
        topic = sns_backends[account][region].get_topic(topic_arn)
    except Exception:
        return f"Topic {topic_arn} does not exist"
    context = Values({"aws:sourceaccount": (alarm_arn.split(":")[4],), "aws:sourcearn": (alarm_arn,),
                      "aws:securetransport": ("true",)})
    cloudwatch = Principal.of_service(CLOUDWATCH)
    if not resource_policy_allows(topic.policy, cloudwatch, "sns:Publish", topic_arn, context).allowed:
        return f"CloudWatch Alarms is not authorized to perform: SNS:Publish on resource: {topic_arn}"
    key_id = str(getattr(topic, "kms_master_key_id", "") or "")
    if not key_id:
        return None
    kms = kms_backends[account][region]
    try:
        key = kms.describe_key(kms.get_key_id_from_alias(key_id) if key_id.startswith("alias/") else key_id)
    except Exception:
        return f"KMS key {key_id} of topic {topic_arn} does not exist"
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        if not resource_policy_allows(key.policy, Principal.of_service(CLOUDWATCH), action, key.arn, context).allowed:
            return (f"CloudWatch Alarms does not have authorization to access the SNS topic encryption key: "
                    f"{action} is not allowed on {key.arn}")
    return None


@once
def install() -> None:
    _install_emf()
    _install_initial_state()
    _install_describe_alarm_history()
    _add_alarm_model()
