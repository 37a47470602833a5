"""The custom resource handler's crhelper wiring (the trigger Lambda is a few lines over this)."""

from __future__ import annotations

from typing import Any

from crhelper import CfnResource

from expel_onboarding import cfn_response, custom_resource


class OnboardingResource(CfnResource):
    """crhelper with our sender: bounded retries, any URL scheme (see ``cfn_response``)."""

    def _send(self, status: str | None = None, reason: str = "", send_response: Any = None) -> None:
        request = {"StackId": self.StackId, "RequestId": self.RequestId,
                   "LogicalResourceId": self.LogicalResourceId}
        data = {k: v for k, v in (self.Data or {}).items()
                if k not in ("CrHelperPoll", "CrHelperPermission", "CrHelperRule", "PhysicalResourceId")}
        body = cfn_response.response_body(request, status or self.Status, str(self.PhysicalResourceId),
                                           reason or str(self.Reason), data)
        cfn_response.send(self._response_url, body)  # type: ignore[attr-defined]  # set by crhelper


def make_helper() -> OnboardingResource:
    # polling_interval=1: the safety net looks every minute; the state machine answers faster.
    # sleep_on_delete=0: we do not need crhelper's wait for CloudWatch Logs flushing.
    return OnboardingResource(json_logging=True, log_level="INFO", boto_level="ERROR",
                              polling_interval=1, sleep_on_delete=0)


def physical_id(event: dict[str, Any]) -> str:
    return custom_resource.physical_id(event["ResourceProperties"])
