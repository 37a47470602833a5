"""CloudWatch: the delivery metrics AWS keeps for the onboarding's topic (read by the drift check)."""

from __future__ import annotations

from datetime import datetime

from expel_onboarding.aws import clients
from expel_onboarding.aws.errors import ACCESS_DENIED, REFUSED, Rule, aws_errors
from expel_onboarding.errors import OnboardingError


def metric_sum(namespace: str, name: str, dimensions: dict[str, str], start: datetime, end: datetime,
               region: str) -> float | None:
    """The metric's Sum from ``start`` to ``end`` (one period), or None when CloudWatch holds no data for it
    (a topic that published nothing in that time has no datapoints)."""
    seconds = max(60, int((end - start).total_seconds()) // 60 * 60)  # periods are multiples of a minute
    with aws_errors("CloudWatch", f"reading metric {namespace} {name}", Rule(ACCESS_DENIED, OnboardingError, REFUSED)):
        response = clients.cloudwatch(region).get_metric_statistics(
            Namespace=namespace, MetricName=name, Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
            StartTime=start, EndTime=end, Period=seconds, Statistics=["Sum"])
    points = response.get("Datapoints", [])
    return sum(float(p.get("Sum", 0.0)) for p in points) if points else None


def last_nonzero_minute(namespace: str, name: str, dimensions: dict[str, str], start: datetime, end: datetime,
                        region: str) -> datetime | None:
    """The start of the latest minute from ``start`` to ``end`` in which the metric's Sum was above zero."""
    with aws_errors("CloudWatch", f"reading metric {namespace} {name}", Rule(ACCESS_DENIED, OnboardingError, REFUSED)):
        response = clients.cloudwatch(region).get_metric_statistics(
            Namespace=namespace, MetricName=name, Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
            StartTime=start, EndTime=end, Period=60, Statistics=["Sum"])
    minutes = [p["Timestamp"] for p in response.get("Datapoints", []) if float(p.get("Sum", 0.0)) > 0]
    return max(minutes) if minutes else None
