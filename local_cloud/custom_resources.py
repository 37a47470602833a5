"""Custom resources in the local cloud, handled as CloudFormation handles them.

moto 5.2.5 sends only the Create request (in a thread, so create_stack does not block while the
resource is pending) and accepts only SUCCESS answers. Here an answer is applied fully: SUCCESS records
the PhysicalResourceId and Data (Fn::GetAtt and Outputs read it) and completes the stack when nothing
else is pending; FAILED fails the resource and the stack with the provider's Reason.
"""

from __future__ import annotations

import logging
from typing import Any

from local_cloud import moto_patches

log = logging.getLogger(__name__)


def on_response(stack: Any, body: dict) -> None:
    """Apply one provider answer to ``stack`` (called with the stack's lock held)."""
    logical_id = body.get("LogicalResourceId", "")
    resource = stack.custom_resources.get(logical_id)
    if resource is None:
        log.warning("answer for unknown custom resource %s of %s", logical_id, stack.name)
        return
    request_type = getattr(resource, "pending_request", None) or "Create"
    if getattr(resource, "answered_request_id", None) == body.get("RequestId"):
        return  # CloudFormation takes the first answer to a request and ignores repeats
    resource.answered_request_id = body.get("RequestId")
    resource.pending_request = None
    status = body.get("Status")
    reason = body.get("Reason") or ""
    verb = {"Create": "CREATE", "Update": "UPDATE", "Delete": "DELETE"}.get(request_type, "CREATE")
    resource_type = getattr(resource, "cf_resource_type", "AWS::CloudFormation::CustomResource")
    if body.get("PhysicalResourceId"):
        resource.physical_id = body["PhysicalResourceId"]
    if status == "SUCCESS":
        resource.set_data(body.get("Data") or {})
        moto_patches.resource_event(stack, logical_id, resource_type, f"{verb}_COMPLETE", resource.physical_resource_id)
        stack.output_map = stack._create_output_map()  # Outputs read while pending cached None
        if stack.status == "CREATE_IN_PROGRESS":
            stack.verify_readiness()
    else:
        if not reason:
            reason = "the custom resource provider answered FAILED without a Reason"
        moto_patches.resource_event(
            stack, logical_id, resource_type, f"{verb}_FAILED", resource.physical_resource_id, reason
        )
        moto_patches.fail_stack(stack, f"The following resource(s) failed to {verb.lower()}: [{logical_id}]. ")


def install() -> None:
    """Give moto's CustomModel the physical id the provider chose."""
    from moto.cloudformation.custom_model import CustomModel

    CustomModel.physical_resource_id = property(  # type: ignore[method-assign,assignment]
        lambda self: getattr(self, "physical_id", None) or self.resource_name
    )
