"""Custom resources in the local cloud, handled as CloudFormation handles them.

moto 5.2.5 sends only the Create request (in a thread, so create_stack does not block while the
resource is pending) and accepts only SUCCESS answers. Here:

- an answer is applied fully: SUCCESS records the PhysicalResourceId and Data (Fn::GetAtt and Outputs
  read it) and completes the stack when nothing else is pending; FAILED fails the resource and the
  stack with the provider's Reason;
- update_stack sends Update (with OldResourceProperties and the PhysicalResourceId) to a custom resource
  whose properties changed and keeps the stack UPDATE_IN_PROGRESS until it answers; a new
  PhysicalResourceId in the answer gets the old one a Delete, as CloudFormation's cleanup does;
- delete_stack sends Delete to every custom resource that was answered, waits for the answers
  (DELETE_IN_PROGRESS meanwhile, in the background: the request returns at once), then deletes the rest.

Requests reach the provider Lambda as moto's own Create does: ``LambdaFunction.invoke`` in a thread.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from typing import Any

from local_cloud import cfn_stacks

log = logging.getLogger(__name__)
# CloudFormation waits an hour for a custom resource; locally a Delete is given this long.
CUSTOM_RESOURCE_TIMEOUT = float(os.environ.get("LOCAL_CLOUD_CUSTOM_RESOURCE_TIMEOUT", "300"))
NO_ANSWER = "CloudFormation did not receive a response from your Custom Resource in time"


def on_response(stack: Any, body: dict) -> None:
    """Apply one provider answer to ``stack`` (called with the stack's lock held)."""
    logical_id = body.get("LogicalResourceId", "")
    resource = stack.custom_resources.get(logical_id)
    if resource is None:
        log.warning("answer for unknown custom resource %s of %s", logical_id, stack.name)
        return
    request_type = getattr(resource, "pending_request", None)
    if not request_type or body.get("RequestId") != getattr(resource, "request_id", None):
        return  # CloudFormation takes the first answer to its current request and ignores the rest
    resource.pending_request = None
    status = body.get("Status")
    verb = {"Create": "CREATE", "Update": "UPDATE", "Delete": "DELETE"}[request_type]
    resource_type = getattr(resource, "cfn_resource_type", "AWS::CloudFormation::CustomResource")
    if status != "SUCCESS":
        given = body.get("Reason") or "the custom resource provider answered FAILED without a Reason"
        # CloudFormation's own wording around the provider's Reason.
        reason = f"Received response status [FAILED] from custom resource. Message returned: {given} " \
                 f"(RequestId: {body.get('RequestId')})"
        if body.get("PhysicalResourceId") and request_type == "Create":
            resource.physical_id = body["PhysicalResourceId"]
        cfn_stacks.resource_event(
            stack, logical_id, resource_type, f"{verb}_FAILED", resource.physical_resource_id, reason
        )
        if request_type == "Delete":
            resource.delete_failed = True  # the delete (or rollback) waiting for the answers decides the stack
        else:
            cfn_stacks.fail_stack(stack, cfn_stacks.summary(verb.lower(), [logical_id]))
        return
    if body.get("PhysicalResourceId"):
        resource.physical_id = body["PhysicalResourceId"]
    cfn_stacks.resource_event(stack, logical_id, resource_type, f"{verb}_COMPLETE", resource.physical_resource_id)
    if request_type == "Delete":
        return
    resource.set_data(body.get("Data") or {})
    stack.output_map = stack._create_output_map()  # Outputs read while pending cached None
    if request_type == "Create":
        if stack.status == "CREATE_IN_PROGRESS":
            stack.verify_readiness()
        return
    old_id = getattr(resource, "old_physical_id", None)
    if old_id and old_id != resource.physical_resource_id:
        # A new physical id means a replacement: CloudFormation deletes the old one during cleanup.
        send(resource, "Delete", resource.old_properties, physical_id=old_id, track=False)
    if stack.status == "UPDATE_IN_PROGRESS" and not pending(stack):
        stack.status = "UPDATE_COMPLETE"
        stack._add_stack_event("UPDATE_COMPLETE")


def handle_response(stack_id: str, body: dict) -> None:
    """A custom resource provider's answer (the PUT to the ResponseURL), handled as CloudFormation does."""
    stack = cfn_stacks.find_stack(stack_id or body.get("StackId", ""))
    if stack is None:
        log.warning("custom resource answer for unknown stack %s", body.get("StackId"))
        return
    with cfn_stacks.stack_lock(stack.stack_id):
        on_response(stack, body)


def _response_url(region: str, stack_id: str) -> str:
    from moto import settings

    host = f"{settings.moto_server_host()}:{settings.moto_server_port()}"
    return f"{host}/cloudformation_{region}/cfnresponse?stack={stack_id}"


def send(
    resource: Any,
    request_type: str,
    properties: dict,
    old_properties: dict | None = None,
    physical_id: str | None = None,
    track: bool = True,
) -> None:
    """Invoke the provider Lambda with a CloudFormation request (in a thread: the caller never waits).

    ``track=False``: a request whose answer nobody waits for (the cleanup Delete after a replacement).
    """
    from moto.awslambda.utils import get_backend

    event = {
        "RequestType": request_type,
        "ServiceToken": resource.service_token,
        "ResponseURL": _response_url(resource.region_name, resource.stack_id),
        "StackId": resource.stack_id,
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": resource.logical_id,
        "PhysicalResourceId": physical_id or resource.physical_resource_id,
        "ResourceType": resource.cfn_resource_type,
        "ResourceProperties": properties,
    }
    if old_properties is not None:
        event["OldResourceProperties"] = old_properties
    if track:
        resource.pending_request = request_type
        resource.request_id = event["RequestId"]
    fn = get_backend(resource.account_id, resource.region_name).get_function(resource.service_token)
    threading.Thread(
        target=fn.invoke,
        args=(json.dumps(event), {}, {}),
        name=f"cfn-{request_type}-{resource.logical_id}",
        daemon=True,
    ).start()


def pending(stack: Any) -> list[Any]:
    return [r for r in list(stack.custom_resources.values()) if getattr(r, "pending_request", None)]


def install() -> None:
    """Give moto's CustomModel the physical id the provider chose, and Update/Delete requests."""
    from moto.cloudformation.custom_model import CustomModel
    from moto.cloudformation.models import CloudFormationBackend, Stack

    CustomModel.physical_resource_id = property(  # type: ignore[method-assign,assignment]
        lambda self: getattr(self, "physical_id", None) or self.resource_name
    )

    original_create = CustomModel.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create_from_cloudformation_json(
        cls: Any, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        resource = original_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        # What Update and Delete requests need later (moto keeps none of it).
        resource.properties = cloudformation_json["Properties"]
        resource.service_token = cloudformation_json["Properties"]["ServiceToken"]
        resource.stack_id = kwargs["StackId"]
        resource.account_id = account_id
        resource.cfn_resource_type = kwargs["ResourceType"]
        resource.pending_request = "Create"
        return resource

    CustomModel.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)  # type: ignore[assignment]

    def update_from_cloudformation_json(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict,
        account_id: str,
        region_name: str,
    ) -> Any:
        """Changed properties: an Update request with OldResourceProperties, as CloudFormation sends."""
        properties = cloudformation_json["Properties"]
        old = original_resource.properties
        original_resource._finished = False
        stack = cfn_stacks.find_stack(original_resource.stack_id)
        if stack is not None:
            cfn_stacks.resource_event(
                stack,
                original_resource.logical_id,
                original_resource.cfn_resource_type,
                "UPDATE_IN_PROGRESS",
                original_resource.physical_resource_id,
            )
        original_resource.old_physical_id = original_resource.physical_resource_id
        original_resource.old_properties = old
        original_resource.properties = properties
        send(original_resource, "Update", properties, old)
        return original_resource

    CustomModel.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)  # type: ignore[assignment]

    original_update = Stack.update

    def update(self: Any, *args: Any, **kwargs: Any) -> None:
        with cfn_stacks.stack_lock(self.stack_id):
            cfn_stacks.remember_previous(self)
            try:
                original_update(self, *args, **kwargs)
            except Exception as exc:
                log.info("stack %s failed to update", self.name, exc_info=True)  # `local serve --verbose` shows why
                self.status = "UPDATE_IN_PROGRESS"
                cfn_stacks.fail_stack(self, cfn_stacks.failure_reason(exc))
                return
            if pending(self):
                # moto declared UPDATE_COMPLETE at once; CloudFormation waits for the providers' answers.
                if self.events and self.events[-1].resource_status == "UPDATE_COMPLETE":
                    self.events.pop()
                self.status = "UPDATE_IN_PROGRESS"

    Stack.update = update  # type: ignore[method-assign]

    original_delete_stack = CloudFormationBackend.delete_stack

    def delete_stack(self: Any, name_or_stack_id: str) -> None:
        stack = self.stacks.get(name_or_stack_id) or next(
            (s for s in list(self.stacks.values()) if s.name == name_or_stack_id), None
        )
        answered = [r for r in (stack.custom_resources.values() if stack else []) if getattr(r, "physical_id", None)]
        if stack is None or not answered or stack.status == "DELETE_IN_PROGRESS":
            if stack is None:
                original_delete_stack(self, name_or_stack_id)
            elif stack.status != "DELETE_IN_PROGRESS":
                cfn_stacks.delete_or_fail(self, stack, original_delete_stack)
            return
        stack.status = "DELETE_IN_PROGRESS"
        stack._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
        threading.Thread(
            target=_delete_with_custom_resources,
            args=(self, stack, answered, original_delete_stack),
            name=f"delete-{stack.name}",
            daemon=True,
        ).start()

    CloudFormationBackend.delete_stack = delete_stack  # type: ignore[method-assign]


def delete_custom_resources(stack: Any, resources: list[Any]) -> list[str]:
    """Delete requests to the providers, their answers awaited: the logical ids that did not delete."""
    deadline = time.monotonic() + CUSTOM_RESOURCE_TIMEOUT
    for resource in resources:
        with cfn_stacks.stack_lock(stack.stack_id):
            resource.delete_failed = False
            cfn_stacks.resource_event(
                stack, resource.logical_id, resource.cfn_resource_type, "DELETE_IN_PROGRESS",
                resource.physical_resource_id
            )
            send(resource, "Delete", resource.properties)
    while any(getattr(r, "pending_request", None) for r in resources):
        if time.monotonic() > deadline:
            with cfn_stacks.stack_lock(stack.stack_id):
                for resource in resources:
                    if resource.pending_request:
                        resource.pending_request, resource.delete_failed = None, True
                        cfn_stacks.resource_event(stack, resource.logical_id, resource.cfn_resource_type,
                                                  "DELETE_FAILED", resource.physical_resource_id, NO_ANSWER)
            break
        time.sleep(0.2)
    return [r.logical_id for r in resources if getattr(r, "delete_failed", False)]


def _delete_with_custom_resources(backend: Any, stack: Any, resources: list[Any], delete: Any) -> None:
    """Delete requests to the providers first (CloudFormation deletes dependents first), then the rest."""
    undeleted = delete_custom_resources(stack, resources)
    with cfn_stacks.stack_lock(stack.stack_id):
        if undeleted:  # a provider answered FAILED or not at all: its event says why; the resources stay
            stack.status = "DELETE_FAILED"
            reason = cfn_stacks.summary("delete", undeleted)
            stack._add_stack_event("DELETE_FAILED", resource_status_reason=reason)
            return
        stack.custom_resources.clear()
        stack.status = "DELETE_PENDING"
        already = len(stack.events)
        cfn_stacks.delete_or_fail(backend, stack, delete)
        # moto's delete announces DELETE_IN_PROGRESS again: that happened before the Delete requests.
        stack.events[already:] = [e for e in stack.events[already:] if e.resource_status != "DELETE_IN_PROGRESS"
                                  or e.resource_type != "AWS::CloudFormation::Stack"]
