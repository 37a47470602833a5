"""Guide step 10: add AWS CloudTrail as a security device in Workbench.

With an API key (in Secrets Manager) the device is registered through Workbench's API: looked up by
organization and name first, created when absent, updated only when it is ours and differs, and
left alone when it already matches. A device with that name that another person or stack made is
never changed or deleted. Without a key nothing is called: the output carries a link to Workbench's
form with the guide's values filled in.
"""

from __future__ import annotations

import dataclasses

from aws_lambda_powertools import Logger

from expel_onboarding import workbench_payload as payload
from expel_onboarding.aws import secrets
from expel_onboarding.drift import Converge, Mode, StepCheck, applied, run_check
from expel_onboarding.errors import OnboardingError, ResourceConflict, WorkbenchError
from expel_onboarding.models import Config, DeviceOutput, DeviceStatus, QueueOutput, RoleOutput
from expel_onboarding.workbench import Device, Workbench

logger = Logger(child=True)

STEP = 10


def device_name(config: Config) -> str:
    return config.workbench_device_name.strip() or f"{config.account_id} CloudTrail"


def settings(config: Config, role: RoleOutput, queue: QueueOutput) -> payload.DeviceSettings:
    if not role.role_arn:
        raise OnboardingError(
            f"The Expel role has no ARN yet (its stack is {role.status or 'unknown'}); step 8 must complete "
            "before the Workbench device is registered"
        )
    if not queue.queue_url:
        raise OnboardingError("The SQS queue URL is missing; step 5 must complete before step 10")
    return payload.DeviceSettings(
        name=device_name(config),
        location=config.workbench_location,
        role_arn=role.role_arn,
        role_session_name=config.role_session_name,
        region=config.region,
        sqs_url=queue.queue_url,
        organization_mode=config.organization_mode,
        account_id=config.account_id,
        # The form's "Do you have an existing CloudTrail that you want Expel to reuse?"
        existing_trail=bool(config.existing_trail_name),
    )


def register(config: Config, role: RoleOutput, queue: QueueOutput) -> DeviceOutput:
    run = Converge(STEP)
    return applied(run, converge(run, config, role, queue), "a device (or the manual link)")


def check(config: Config, role: RoleOutput, queue: QueueOutput) -> StepCheck:
    """Drift check: what ``register`` would change, written nowhere (Workbench only read), and the device's
    status as Workbench reports it."""
    if not config.workbench_api_key_secret_arn:
        return StepCheck.not_checked(STEP, "no Workbench API key: the device is registered by hand, in Workbench")
    if not (role.role_arn and queue.queue_url):
        return StepCheck.not_checked(STEP, "the role or the queue is missing (guide steps 5 and 8)")
    found: list[DeviceOutput] = []
    check = run_check(Converge(STEP, Mode.CHECK), lambda run: found.extend(
        [d] if (d := converge(run, config, role, queue)) else []))
    if not found or not found[0].device_id:
        return check
    with _workbench(config) as workbench:
        raw = workbench.device_status(found[0].device_id)
    return dataclasses.replace(check, device_status=raw or "(the device is gone)")


def converge(run: Converge, config: Config, role: RoleOutput, queue: QueueOutput) -> DeviceOutput | None:
    """The end state: one device of ours with the guide's values (a person's device of that name is used
    only when it already matches, never changed). None only when checking finds no device."""
    wanted = settings(config, role, queue)
    # Validate the overrides even in manual mode: a typo should fail before anything else happens.
    request = payload.build_device(wanted, config.workbench_device_overrides)
    base_url = payload.validate_base_url(config.workbench_base_url)
    if not config.workbench_api_key_secret_arn:
        url = payload.manual_registration_url(base_url, wanted.values())
        logger.info(
            "No Workbench API key given: add the security device in Workbench with this link",
            extra={"registration_url": url},
        )
        return DeviceOutput(device_id="", status=DeviceStatus.MANUAL_REGISTRATION_REQUIRED, registration_url=url)

    owner = _owner(config)
    resource = f"Workbench security device {wanted.name!r}"
    with _workbench(config) as workbench:
        found = workbench.find_devices(config.workbench_guid, wanted.name)
        ours = [d for d in found if payload.is_owned(d.attributes, request.owner_property, owner)]
        if not found:
            # Renamed since the last run (WorkbenchDeviceName changed): update ours, leave no orphan.
            slug = request.attributes["plugin_slug"]
            ours = _renamed(workbench, config.workbench_guid, slug, request.owner_property, owner)
        if len(ours) > 1:
            logger.warning(
                "Several Workbench devices carry this stack's marker; keeping the oldest",
                extra={"device_ids": [d.id for d in ours]},
            )
        if ours:
            device: Device | None = _update(run, workbench, ours[0], request, resource)
        elif found:
            device = _adopt_if_identical(found, request, wanted.name)
        else:
            device = run.change(run.finding(
                resource, "security device", None, "registered, with the guide's values",
                "run the onboarding again: it registers the device (or add it in Workbench > Organization "
                "Settings > Security Devices)"),
                lambda: _create(workbench, config, request, owner))
    if device is None:
        return None
    return DeviceOutput(device_id=device.id, status=_health(device.status))


def status(config: Config, device: DeviceOutput) -> DeviceOutput:
    """One status read; the state machine waits and asks again for a bounded time. Not being healthy
    yet is normal (Workbench polls the queue on its own schedule), so it is reported, not raised."""
    if not device.device_id or not config.workbench_api_key_secret_arn:
        return device
    with _workbench(config) as workbench:
        raw = workbench.device_status(device.device_id)
    if raw is None:
        raise WorkbenchError(
            f"The Workbench security device {device.device_id} no longer exists (deleted in Workbench?). "
            "Run the onboarding again to register it anew."
        )
    logger.info("Workbench device status", extra={"device_id": device.device_id, "workbench_status": raw})
    return DeviceOutput(device_id=device.device_id, status=_health(raw), registration_url=device.registration_url)


def remove(config: Config, device_id: str = "") -> DeviceOutput:
    """Stack delete: delete the device only if this stack made it; already gone counts as done.
    Without a known id, the device is looked up by name (and still deleted only if ours)."""
    if not config.workbench_api_key_secret_arn:
        logger.info("No Workbench API key: a manually registered device is left for a person to remove")
        return DeviceOutput(device_id=device_id, status=DeviceStatus.MANUAL_REGISTRATION_REQUIRED)
    owner = _owner(config)
    profile = payload.device_profile(config.workbench_device_overrides)
    owner_property = profile["owner_property"]
    with _workbench(config) as workbench:
        if device_id:
            device = workbench.get_device(device_id)
            candidates = [] if device is None else [device]
        else:
            candidates = workbench.find_devices(config.workbench_guid, device_name(config))
            if not candidates:
                candidates = _renamed(workbench, config.workbench_guid, profile["plugin_slug"], owner_property, owner)
        ours = [d for d in candidates if payload.is_owned(d.attributes, owner_property, owner)]
        theirs = [d for d in candidates if d.id not in {o.id for o in ours}]
        for other in theirs:
            logger.warning("Leaving a Workbench device this stack did not create", extra={"device_id": other.id})
        deleted = [d.id for d in ours if workbench.delete_device(d.id)]
    if deleted:
        return DeviceOutput(device_id=deleted[0], status=DeviceStatus.DELETED)
    if theirs:
        return DeviceOutput(device_id=theirs[0].id, status=DeviceStatus.NOT_OURS)
    logger.info("The Workbench device is already gone", extra={"device_id": device_id})
    return DeviceOutput(device_id=device_id, status=DeviceStatus.ABSENT)


def _update(run: Converge, workbench: Workbench, device: Device, request: payload.DeviceRequest,
            resource: str) -> Device:
    changes = payload.changed_attributes(device.attributes, request.attributes)
    if not changes:
        logger.info("The Workbench device is already registered as wanted", extra={"device_id": device.id})
        return device
    patched = run.change(
        [run.finding(f"{resource} ({device.id})", key, device.attributes.get(key), request.attributes[key],
                     f"in Workbench, edit the device's {key} back, or run the onboarding again")
         for key in sorted(changes)],
        lambda: workbench.patch_device(device, changes))
    return patched or device


def _renamed(
    workbench: Workbench, organization_id: str, plugin_slug: str, owner_property: str, owner: str
) -> list[Device]:
    """Our device under any name: found by its integration and our marker."""
    if not owner_property:
        return []
    same_kind = workbench.find_devices_by_plugin(organization_id, plugin_slug)
    return [d for d in same_kind if payload.is_owned(d.attributes, owner_property, owner)]


def _adopt_if_identical(found: list[Device], request: payload.DeviceRequest, name: str) -> Device:
    for device in found:
        if payload.device_matches(device.attributes, request.attributes):
            # Same settings, made by a person (or an earlier tool): use it, but never change or delete it.
            logger.info("A matching Workbench device already exists; using it as is", extra={"device_id": device.id})
            return device
    raise ResourceConflict(
        f"Workbench already has a security device named {name!r} (id {found[0].id}) that this stack did "
        "not create and whose settings differ. It is left untouched. Choose another WorkbenchDeviceName, "
        "or update or delete that device in Workbench, then retry."
    )


def _create(workbench: Workbench, config: Config, request: payload.DeviceRequest, owner: str) -> Device:
    vendor_id = None
    if request.vendor_name:
        vendor_id = workbench.find_vendor_id(request.vendor_name)
        if vendor_id is None:
            raise WorkbenchError(
                f"Workbench has no vendor named {request.vendor_name!r}. Set the right name with "
                'WorkbenchDeviceOverrides {"vendor_name": "..."} (or "" to send none), or register by hand.'
            )
    return workbench.create_device(config.workbench_guid, request.create_attributes(owner), vendor_id)


def _workbench(config: Config) -> Workbench:
    base_url = payload.validate_base_url(config.workbench_base_url)
    api_key = secrets.get_workbench_api_key(config.workbench_api_key_secret_arn)
    return Workbench(base_url, api_key)


def _owner(config: Config) -> str:
    return payload.owner_marker(config.account_id, config.region, config.stack_name)


def _health(workbench_status: str) -> DeviceStatus:
    return DeviceStatus.HEALTHY if workbench_status == DeviceStatus.HEALTHY else DeviceStatus.NOT_YET_HEALTHY
