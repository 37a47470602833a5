"""DescribeStackEvents with each event's XML made once.

A deploy is followed by two readers at once, ``sam deploy`` and the local cloud's own progress view, each
asking for the stack's events every half second; moto serializes the whole list (a hundred events for this
application's stack) through its generic, model-driven serializer at every call, which took a few seconds of
the server's CPU per deploy, on the thread that also creates the stack and runs its state machine. An event
does not change once recorded, so its ``<member>`` is kept with it and an answer is the kept members between
the envelope moto makes for the newest event alone: the same XML, byte for byte. An event whose attributes
changed since (none does today) is serialized again.
"""

from __future__ import annotations

from typing import Any

from local_cloud.once import once

OPEN, CLOSE = "<StackEvents>", "</StackEvents>"


def _fingerprint(event: Any) -> tuple:
    # A copy (made in one step): another request thread may be keeping its XML on the same event meanwhile,
    # and iterating the attributes themselves would then raise "dictionary changed size during iteration".
    return tuple(value for name, value in vars(event).copy().items() if name != "_local_cloud_xml")


def _between(body: Any) -> tuple[int, int] | None:
    if not isinstance(body, str):
        return None
    start, end = body.find(OPEN), body.rfind(CLOSE)
    return (start + len(OPEN), end) if 0 <= start < end else None


@once
def install() -> None:
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import ActionResult

    def serialized(events: list[Any], context: Any) -> Any:
        """moto's own answer for ``{"StackEvents": events}``: (status, headers, body)."""
        return ActionResult({"StackEvents": events}).execute_result(context)

    class StackEvents(ActionResult):
        """``{"StackEvents": events}`` (newest first) whose members are serialized once per event."""

        def __init__(self, events: list[Any]) -> None:
            super().__init__({"StackEvents": events})
            self.events = events

        def member(self, event: Any, context: Any) -> str | None:
            fingerprint = _fingerprint(event)
            kept = getattr(event, "_local_cloud_xml", None)
            if kept is not None and kept[0] == fingerprint:
                return kept[1]
            _, _, body = serialized([event], context)
            span = _between(body)
            if span is None:
                return None
            xml = body[span[0]:span[1]]
            event._local_cloud_xml = (fingerprint, xml)
            return xml

        def execute_result(self, context: Any) -> Any:
            if not self.events:
                return super().execute_result(context)
            members = [self.member(event, context) for event in self.events]
            status, headers, body = serialized(self.events[:1], context)  # the envelope, fresh
            span = _between(body)
            if span is None or any(member is None for member in members):
                return super().execute_result(context)
            return status, headers, body[:span[0]] + "".join(members) + body[span[1]:]  # type: ignore[arg-type]

    original = CloudFormationResponse.describe_stack_events

    def describe_stack_events(self: Any) -> ActionResult:
        answer = original(self)
        events = answer.result.get("StackEvents") if isinstance(answer.result, dict) else None
        return StackEvents(events) if isinstance(events, list) else answer

    describe_stack_events.original = original  # type: ignore[attr-defined]
    CloudFormationResponse.describe_stack_events = describe_stack_events  # type: ignore[method-assign]
