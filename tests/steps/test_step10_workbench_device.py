"""Guide step 10 against the Workbench emulator over real HTTP on 127.0.0.1, with the API key read
from (moto's) Secrets Manager through powertools."""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
import requests
from aws_lambda_powertools.utilities import parameters

from expel_onboarding import workbench
from expel_onboarding.aws import secrets
from expel_onboarding.errors import InvalidParameter, ResourceConflict, TransientError, WorkbenchError
from expel_onboarding.models import Config, DeviceOutput, DeviceStatus, QueueOutput, RoleOutput, replace
from expel_onboarding.steps import step10_workbench_device as step10
from expel_onboarding.workbench import Workbench
from local_cloud.workbench_emulator import WorkbenchEmulator, start_workbench_emulator
from tests.conftest import ACCOUNT_ID, REGION, WORKBENCH_GUID

API_KEY = "wb-test-key-7f3a9c1e5b2d4f60a8e7c6b5"
ROOT = Path(__file__).resolve().parents[2]
ROLE = RoleOutput(
    stack_id=f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/expel-onboarding-expel-role/1",
    status="COMPLETE",
    role_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/ExpelAssumeRole",
)
QUEUE = QueueOutput(
    queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:ExpelCloudTrailQueue",
    queue_url=f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/ExpelCloudTrailQueue",
)
DEVICES = "/api/v2/security_devices"


@pytest.fixture(autouse=True)
def _fresh_parameters_cache() -> Iterator[None]:
    parameters.clear_caches()
    yield
    parameters.clear_caches()


@pytest.fixture(autouse=True)
def _short_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's pauses between retries capped at 50 ms: the tests count the retries (the emulator logs every
    request), and the cap of a Retry-After is proven with the shorter cap; none waits out seconds of backoff."""
    monkeypatch.setattr(workbench, "BACKOFF_MAX_SECONDS", 0.05)


@pytest.fixture
def emulator() -> Iterator[WorkbenchEmulator]:
    emu = WorkbenchEmulator(api_key=API_KEY, organization_id=WORKBENCH_GUID, healthy_after_reads=2).start()
    yield emu
    emu.stop()


def put_secret(value: str, name: str = "expel-onboarding/workbench-api-key") -> str:
    return boto3.client("secretsmanager", region_name=REGION).create_secret(Name=name, SecretString=value)["ARN"]


@pytest.fixture
def secret_arn(aws: None) -> str:
    return put_secret(API_KEY)


@pytest.fixture
def wb_config(config: Config, emulator: WorkbenchEmulator, secret_arn: str) -> Config:
    return replace(config, workbench_api_key_secret_arn=secret_arn, workbench_base_url=emulator.url)


def api_calls(emulator: WorkbenchEmulator, method: str | None = None) -> list[dict[str, Any]]:
    return [r for r in emulator.requests if method is None or r["method"] == method]


def only_device(emulator: WorkbenchEmulator) -> dict[str, Any]:
    devices = list(emulator.devices.values())
    assert len(devices) == 1
    return devices[0]


# ---- register


def test_register_creates_one_device_with_the_guide_values(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    out = step10.register(wb_config, ROLE, QUEUE)

    device = only_device(emulator)
    assert out == DeviceOutput(device_id=device["id"], status="not yet healthy")
    assert device["organization_id"] == WORKBENCH_GUID
    attributes = device["attributes"]
    assert attributes["name"] == f"{ACCOUNT_ID} CloudTrail"
    assert attributes["location"] == "AWS cloud"
    assert attributes["device_type"] == "CLOUD"
    assert attributes["plugin_slug"] == "aws-cloudtrail"
    assert attributes["device_spec"]["role_arn"] == ROLE.role_arn
    assert attributes["device_spec"]["sqs_url"] == QUEUE.queue_url
    assert attributes["device_spec"]["region"] == REGION
    assert attributes["device_spec"]["role_session_name"] == "expel-cloudtrail-session"
    assert "aws_account_id" not in attributes["device_spec"]
    assert attributes["properties"]["expel_onboarding_owner"] == f"{ACCOUNT_ID}/{REGION}/expel-onboarding"
    assert device["vendor_id"] is not None


def test_register_in_organizations_mode_sends_the_account_number(
    wb_config: Config, emulator: WorkbenchEmulator
) -> None:
    step10.register(replace(wb_config, organization_mode=True), ROLE, QUEUE)

    assert only_device(emulator)["attributes"]["device_spec"]["aws_account_id"] == ACCOUNT_ID


def test_register_uses_the_configured_name_and_location(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    cfg = replace(wb_config, workbench_device_name="Acme CloudTrail", workbench_location="cloud")

    step10.register(cfg, ROLE, QUEUE)

    attributes = only_device(emulator)["attributes"]
    assert (attributes["name"], attributes["location"]) == ("Acme CloudTrail", "cloud")


def test_register_rerun_keeps_one_device_and_sends_no_patch(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    first = step10.register(wb_config, ROLE, QUEUE)
    before = len(emulator.requests)

    second = step10.register(wb_config, ROLE, QUEUE)

    assert second.device_id == first.device_id
    assert len(emulator.devices) == 1
    rerun = emulator.requests[before:]
    assert [(r["method"], r["path"]) for r in rerun] == [("GET", DEVICES)]


def test_register_changed_location_sends_exactly_one_patch(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    first = step10.register(wb_config, ROLE, QUEUE)

    second = step10.register(replace(wb_config, workbench_location="on prem"), ROLE, QUEUE)

    patches = api_calls(emulator, "PATCH")
    assert len(patches) == 1
    assert patches[0]["path"] == f"{DEVICES}/{first.device_id}"
    assert patches[0]["body"]["data"]["attributes"] == {"location": "on prem"}
    assert second.device_id == first.device_id
    assert only_device(emulator)["attributes"]["location"] == "on prem"
    assert api_calls(emulator, "POST") and len(api_calls(emulator, "POST")) == 1


def test_register_changed_queue_patches_device_spec_and_keeps_foreign_keys(
    wb_config: Config, emulator: WorkbenchEmulator
) -> None:
    out = step10.register(wb_config, ROLE, QUEUE)
    with Workbench(emulator.url, API_KEY) as workbench:  # Workbench itself adds a key to the spec
        device = workbench.get_device(out.device_id)
        assert device is not None
        workbench.patch_device(device, {"device_spec": {**device.attributes["device_spec"], "poller": "eu-1"}})
    new_queue = replace(QUEUE, queue_url=f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/Other")

    step10.register(wb_config, ROLE, new_queue)

    spec = only_device(emulator)["attributes"]["device_spec"]
    assert spec["sqs_url"] == new_queue.queue_url
    assert spec["poller"] == "eu-1"


def test_register_leaves_a_foreign_identical_device_alone_and_remove_keeps_it(
    wb_config: Config, emulator: WorkbenchEmulator
) -> None:
    # A person registered the same settings by hand (no ownership marker).
    out = step10.register(replace(wb_config, workbench_device_overrides='{"owner_property": ""}'), ROLE, QUEUE)
    writes_before = len([r for r in emulator.requests if r["method"] != "GET"])

    adopted = step10.register(wb_config, ROLE, QUEUE)
    removed = step10.remove(wb_config, adopted.device_id)

    assert adopted.device_id == out.device_id
    assert removed == DeviceOutput(device_id=out.device_id, status=DeviceStatus.NOT_OURS)
    assert len([r for r in emulator.requests if r["method"] != "GET"]) == writes_before
    assert list(emulator.devices) == [out.device_id]


def test_register_refuses_to_overwrite_a_foreign_device_that_differs(
    wb_config: Config, emulator: WorkbenchEmulator
) -> None:
    theirs = replace(wb_config, stack_name="someone-else", workbench_location="their datacenter")
    step10.register(theirs, ROLE, QUEUE)
    before = only_device(emulator)

    with pytest.raises(ResourceConflict) as raised:
        step10.register(wb_config, ROLE, QUEUE)

    assert f"named '{ACCOUNT_ID} CloudTrail'" in str(raised.value)
    assert "WorkbenchDeviceName" in str(raised.value)
    assert only_device(emulator) == before
    assert not api_calls(emulator, "PATCH")


def test_register_after_a_lost_create_answer_finds_the_device_instead_of_duplicating(
    wb_config: Config, emulator: WorkbenchEmulator
) -> None:
    # Workbench created the device but the answer was a 500: the POST is not retried in-process...
    emulator.inject_fault(500, count=1, method="POST", processed=True)
    with pytest.raises(TransientError):
        step10.register(wb_config, ROLE, QUEUE)
    assert len(api_calls(emulator, "POST")) == 1

    # ...and the state machine's retry finds it by organization + name.
    out = step10.register(wb_config, ROLE, QUEUE)

    assert out.device_id == only_device(emulator)["id"]
    assert len(api_calls(emulator, "POST")) == 1


def test_register_retries_a_429_and_registers_once(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    emulator.inject_fault(429, count=1)
    emulator.inject_fault(429, count=1, method="POST")

    out = step10.register(wb_config, ROLE, QUEUE)

    assert out.device_id == only_device(emulator)["id"]
    assert [r["status"] for r in api_calls(emulator, "POST")] == [429, 201]
    assert [r["status"] for r in api_calls(emulator, "GET")][:2] == [429, 200]


def test_register_persistent_429_is_transient_and_bounded(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    emulator.inject_fault(429, count=10, retry_after=3600)  # capped at _short_backoff's BACKOFF_MAX_SECONDS
    started = time.monotonic()

    with pytest.raises(TransientError) as raised:
        step10.register(wb_config, ROLE, QUEUE)

    assert "HTTP 429" in str(raised.value)
    assert len(emulator.requests) == 3  # one try and two retries
    assert time.monotonic() - started < 5  # Retry-After: 3600 was capped
    assert not emulator.devices


def test_register_rejected_key_says_what_to_do_without_retrying(
    config: Config, emulator: WorkbenchEmulator, aws: None
) -> None:
    wrong = "wb-wrong-key-0000000000000000"
    cfg = replace(config, workbench_api_key_secret_arn=put_secret(wrong), workbench_base_url=emulator.url)

    with pytest.raises(WorkbenchError) as raised:
        step10.register(cfg, ROLE, QUEUE)

    message = str(raised.value)
    assert "Workbench rejected the API key" in message
    assert "Organization Settings → Service Accounts" in message
    assert wrong not in message and API_KEY not in message
    assert len(emulator.requests) <= 2


def test_register_injected_401_is_a_clear_workbench_error(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    emulator.inject_fault(401, count=5)

    with pytest.raises(WorkbenchError, match="Workbench rejected the API key"):
        step10.register(wb_config, ROLE, QUEUE)

    assert len(emulator.requests) <= 2


def test_register_403_names_the_missing_permission(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    emulator.inject_fault(403, count=1, method="POST")

    with pytest.raises(WorkbenchError, match="the key's role cannot create security devices"):
        step10.register(wb_config, ROLE, QUEUE)


def test_register_422_surfaces_workbench_detail(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    emulator.inject_fault(422, method="POST", detail="device_spec.sqs_url is not a valid SQS queue URL")

    with pytest.raises(WorkbenchError) as raised:
        step10.register(wb_config, ROLE, QUEUE)

    assert "HTTP 422" in str(raised.value)
    assert "device_spec.sqs_url is not a valid SQS queue URL" in str(raised.value)


def test_register_wrong_organization_surfaces_workbench_detail(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    other = "0f9c2a1e-7b3d-4e5f-9a8b-1c2d3e4f5a6b"

    with pytest.raises(WorkbenchError, match=f"Organization {other} does not exist"):
        step10.register(replace(wb_config, workbench_guid=other), ROLE, QUEUE)

    assert not emulator.devices


def test_register_unknown_vendor_explains_the_override(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    cfg = replace(wb_config, workbench_device_overrides='{"vendor_name": "Amazon"}')

    with pytest.raises(WorkbenchError, match='"vendor_name"'):
        step10.register(cfg, ROLE, QUEUE)

    assert not api_calls(emulator, "POST")


def test_register_without_vendor_sends_no_vendor_relationship(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    step10.register(replace(wb_config, workbench_device_overrides='{"vendor_name": ""}'), ROLE, QUEUE)

    assert only_device(emulator)["vendor_id"] is None
    assert not [r for r in emulator.requests if r["path"].startswith("/api/v2/vendors")]


def test_register_bad_overrides_fail_before_any_call(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    with pytest.raises(InvalidParameter, match="WorkbenchDeviceOverrides"):
        step10.register(replace(wb_config, workbench_device_overrides="{oops"), ROLE, QUEUE)

    assert emulator.requests == []


def test_register_unreachable_workbench_is_transient(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    emulator.stop()

    with pytest.raises(TransientError, match="Could not reach Workbench"):
        step10.register(wb_config, ROLE, QUEUE)


def test_register_without_role_arn_says_step_8_must_finish(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    with pytest.raises(Exception, match="step 8 must complete"):
        step10.register(wb_config, replace(ROLE, role_arn="", status="IN_PROGRESS"), QUEUE)

    assert emulator.requests == []


# ---- no API key: the prefilled link


def test_register_without_key_returns_prefilled_link_and_calls_nothing(
    config: Config, emulator: WorkbenchEmulator
) -> None:
    out = step10.register(replace(config, workbench_base_url=emulator.url), ROLE, QUEUE)

    assert out.device_id == ""
    assert out.status == "MANUAL_REGISTRATION_REQUIRED"
    assert out.registration_url.startswith(f"{emulator.url}/settings/security-devices?setupIntegration=aws&")
    for value in (ROLE.role_arn, QUEUE.queue_url, f"{ACCOUNT_ID} CloudTrail", REGION):
        assert f"={value}".replace(":", "%3A").replace("/", "%2F").replace(" ", "+") in out.registration_url
    assert emulator.requests == []


def test_status_and_remove_without_key_call_nothing(config: Config, emulator: WorkbenchEmulator) -> None:
    cfg = replace(config, workbench_base_url=emulator.url)
    manual = step10.register(cfg, ROLE, QUEUE)

    assert step10.status(cfg, manual) == manual
    assert step10.remove(cfg, "").status == "MANUAL_REGISTRATION_REQUIRED"
    assert emulator.requests == []


# ---- status


def test_status_reports_not_yet_healthy_then_healthy(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    device = step10.register(wb_config, ROLE, QUEUE)

    first = step10.status(wb_config, device)
    second = step10.status(wb_config, first)

    assert first == DeviceOutput(device_id=device.device_id, status="not yet healthy")
    assert second == DeviceOutput(device_id=device.device_id, status="healthy")
    assert len([r for r in api_calls(emulator, "GET") if r["path"] == f"{DEVICES}/{device.device_id}"]) == 2


def test_status_of_a_deleted_device_says_to_rerun(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    device = step10.register(wb_config, ROLE, QUEUE)
    emulator.reset()

    with pytest.raises(WorkbenchError, match="no longer exists"):
        step10.status(wb_config, device)


# ---- remove (stack delete)


def test_remove_deletes_our_device_and_again_is_done(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    device = step10.register(wb_config, ROLE, QUEUE)

    removed = step10.remove(wb_config, device.device_id)
    again = step10.remove(wb_config, device.device_id)

    assert removed == DeviceOutput(device_id=device.device_id, status=DeviceStatus.DELETED)
    assert again == DeviceOutput(device_id=device.device_id, status=DeviceStatus.ABSENT)
    assert emulator.devices == {}
    assert len(api_calls(emulator, "DELETE")) == 1


def test_remove_without_id_finds_our_device_by_name(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    device = step10.register(wb_config, ROLE, QUEUE)

    assert step10.remove(wb_config, "") == DeviceOutput(device_id=device.device_id, status=DeviceStatus.DELETED)
    assert emulator.devices == {}


def test_remove_never_deletes_another_stacks_device(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    theirs = step10.register(replace(wb_config, stack_name="someone-else"), ROLE, QUEUE)

    assert step10.remove(wb_config, theirs.device_id).status == DeviceStatus.NOT_OURS
    assert step10.remove(wb_config, "").status == DeviceStatus.NOT_OURS
    assert list(emulator.devices) == [theirs.device_id]
    assert not api_calls(emulator, "DELETE")


def test_remove_when_deleted_concurrently_is_done(wb_config: Config, emulator: WorkbenchEmulator) -> None:
    device = step10.register(wb_config, ROLE, QUEUE)
    emulator.inject_fault(404, method="DELETE", processed=True)

    assert step10.remove(wb_config, device.device_id).status == DeviceStatus.ABSENT


# ---- the API key stays secret


def test_secret_as_json_object_is_read(config: Config, emulator: WorkbenchEmulator, aws: None) -> None:
    arn = put_secret(json.dumps({"api_key": API_KEY}), name="json-secret")
    cfg = replace(config, workbench_api_key_secret_arn=arn, workbench_base_url=emulator.url)

    out = step10.register(cfg, ROLE, QUEUE)

    assert out.device_id == only_device(emulator)["id"]


@pytest.mark.parametrize("value", ['{"token": "x"}', "   "])
def test_secret_without_a_key_is_an_invalid_parameter(
    config: Config, emulator: WorkbenchEmulator, aws: None, value: str
) -> None:
    cfg = replace(config, workbench_api_key_secret_arn=put_secret(value), workbench_base_url=emulator.url)

    with pytest.raises(InvalidParameter, match="WorkbenchApiKeySecretArn: the secret .* holds no API key"):
        step10.register(cfg, ROLE, QUEUE)

    assert emulator.requests == []


def test_missing_secret_is_an_invalid_parameter(config: Config, emulator: WorkbenchEmulator, aws: None) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:nope-AbCdEf"

    with pytest.raises(InvalidParameter, match="does not exist"):
        step10.register(replace(config, workbench_api_key_secret_arn=arn, workbench_base_url=emulator.url), ROLE, QUEUE)


def test_secret_read_keeps_the_key_out_of_debug_logs(
    secret_arn: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser_logger = logging.getLogger("botocore.parsers")
    monkeypatch.setattr(parser_logger, "level", logging.DEBUG)  # as boto3.set_stream_logger would
    caplog.set_level(logging.DEBUG)

    assert secrets.get_workbench_api_key(secret_arn) == API_KEY

    assert API_KEY not in caplog.text
    assert parser_logger.level == logging.DEBUG  # restored


def test_a_key_put_into_the_secret_after_a_401_is_used_by_the_next_attempt_in_the_same_environment(
        wb_config: Config, emulator: WorkbenchEmulator) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    client.put_secret_value(SecretId=wb_config.workbench_api_key_secret_arn, SecretString="revoked-key")
    with pytest.raises(WorkbenchError, match="HTTP 401"):
        step10.register(wb_config, ROLE, QUEUE)

    # The person puts a valid key into the secret and redrives: the same warm Lambda must read it anew.
    client.put_secret_value(SecretId=wb_config.workbench_api_key_secret_arn, SecretString=API_KEY)
    assert step10.register(wb_config, ROLE, QUEUE).device_id


def load_handler(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"{name}_app", ROOT / "functions" / name / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lambda_context(name: str) -> SimpleNamespace:
    return SimpleNamespace(
        function_name=name,
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}",
        aws_request_id="00000000-0000-4000-8000-000000000000",
    )


def sample_event(name: str, secret_arn: str, base_url: str) -> dict[str, Any]:
    event = json.loads((ROOT / "events" / f"{name}.json").read_text())
    event["Config"].update(WorkbenchApiKeySecretArn=secret_arn, WorkbenchBaseUrl=base_url)
    return event


def test_handlers_never_reveal_the_key(
    secret_arn: str,
    emulator: WorkbenchEmulator,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    register_app = load_handler("step10_workbench_device")
    status_app = load_handler("step10_workbench_device_status")
    event = sample_event("step10_workbench_device", secret_arn, emulator.url)

    device = register_app.lambda_handler(event, lambda_context("step10"))
    status_event = {**sample_event("step10_workbench_device_status", secret_arn, emulator.url), "Device": device}
    health = status_app.lambda_handler(status_event, lambda_context("step10-status"))
    removed = register_app.lambda_handler({**event, "Action": "Delete", "Device": device}, lambda_context("step10"))
    emulator.inject_fault(500, count=3)
    with pytest.raises(TransientError) as failure:
        register_app.lambda_handler(event, lambda_context("step10"))

    assert device["DeviceId"] and device["Status"] == "not yet healthy"
    assert health["DeviceId"] == device["DeviceId"]
    assert removed["Status"] == DeviceStatus.DELETED
    output = capsys.readouterr()
    for text in (json.dumps([device, health, removed]), caplog.text, output.out, output.err, str(failure.value)):
        assert API_KEY not in text
    assert all("authorization" not in {k.lower() for k in r["headers"]} for r in emulator.requests)


def test_handler_sample_event_parses(secret_arn: str) -> None:
    event = json.loads((ROOT / "events" / "step10_workbench_device.json").read_text())

    config = Config.from_state(event)

    assert config.organization_mode is False
    assert RoleOutput.from_state(event).role_arn.endswith(":role/ExpelAssumeRole")
    assert QueueOutput.from_state(event).queue_url.startswith("https://sqs.")
    assert DeviceOutput.from_state(json.loads((ROOT / "events" / "step10_workbench_device_status.json").read_text()))


def test_public_start_function_binds_loopback_and_stops() -> None:
    emu = start_workbench_emulator(port=0, api_key="local-demo-key")
    try:
        assert emu.url == f"http://127.0.0.1:{emu.port}" and emu.port > 0
        with Workbench(emu.url, "local-demo-key") as workbench:
            assert workbench.find_devices(WORKBENCH_GUID, "x") == []
    finally:
        emu.stop()
    with pytest.raises(ValueError, match="127.0.0.1 only"):
        start_workbench_emulator(host="0.0.0.0")  # noqa: S104 - the refusal is the point


def test_register_after_rename_updates_our_device_instead_of_orphaning_it(
    wb_config: Config, emulator: WorkbenchEmulator
) -> None:
    first = step10.register(wb_config, ROLE, QUEUE)

    renamed = step10.register(replace(wb_config, workbench_device_name="Acme CloudTrail"), ROLE, QUEUE)

    assert renamed.device_id == first.device_id
    assert only_device(emulator)["attributes"]["name"] == "Acme CloudTrail"
    assert [r["body"]["data"]["attributes"] for r in api_calls(emulator, "PATCH")] == [{"name": "Acme CloudTrail"}]
    # and a stack delete that only knows the configuration still finds it
    assert step10.remove(wb_config, "").status == DeviceStatus.DELETED


def test_workbench_client_stops_after_its_time_budget(emulator: WorkbenchEmulator) -> None:
    with Workbench(emulator.url, API_KEY, budget_seconds=-1) as client:
        with pytest.raises(TransientError, match="answering slowly"):
            client.find_devices(WORKBENCH_GUID, "x")

    assert emulator.requests == []


def test_workbench_client_follows_pages(emulator: WorkbenchEmulator) -> None:
    with Workbench(emulator.url, API_KEY) as client:
        for _ in range(55):
            client.create_device(WORKBENCH_GUID, {"name": "same", "device_type": "CLOUD"}, None)

        found = client.find_devices(WORKBENCH_GUID, "same")

    assert len(found) == 55
    assert len([r for r in api_calls(emulator, "GET") if r["path"] == DEVICES]) == 2


def test_workbench_client_html_answer_names_the_base_url() -> None:
    class LoginPage(BaseHTTPRequestHandler):  # e.g. a base URL that points at a web page
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "13")
            self.end_headers()
            self.wfile.write(b"<html></html>")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), LoginPage)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with Workbench(url, API_KEY) as client, pytest.raises(WorkbenchError) as raised:
            client.find_devices(WORKBENCH_GUID, "x")
    finally:
        server.shutdown()
        server.server_close()

    assert "did not answer with JSON:API" in str(raised.value)
    assert "WorkbenchBaseUrl" in str(raised.value)


# ---- the emulator's own HTTP surface (what the local cloud and a person use)


def test_emulator_admin_endpoints_inject_faults_log_requests_and_reset(emulator: WorkbenchEmulator) -> None:
    session = requests.Session()
    auth = {"Authorization": f"Bearer {API_KEY}"}

    assert session.post(f"{emulator.url}/_emulator/faults", json={"status": 500, "count": 1}).status_code == 200
    failed = session.get(f"{emulator.url}{DEVICES}", headers=auth)
    ok = session.get(f"{emulator.url}{DEVICES}", headers=auth)
    log = session.get(f"{emulator.url}/_emulator/requests").json()["requests"]

    assert failed.status_code == 500 and failed.json()["errors"][0]["status"] == "500"
    assert ok.status_code == 200 and ok.json()["data"] == []
    assert [r["status"] for r in log] == [500, 200]
    assert API_KEY not in json.dumps(log)
    assert session.post(f"{emulator.url}/_emulator/reset").json() == {"reset": True}
    assert session.get(f"{emulator.url}/_emulator/requests").json()["requests"] == []
    assert session.post(f"{emulator.url}/_emulator/faults", json={"status": "x"}).status_code == 400


def test_emulator_rejects_missing_or_wrong_bearer_key(emulator: WorkbenchEmulator) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": API_KEY}):
        answer = requests.get(f"{emulator.url}{DEVICES}", headers=headers, timeout=5)
        assert answer.status_code == 401
        assert answer.json()["errors"][0]["detail"] == "Invalid or missing API key"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"data": {"type": "devices", "attributes": {}}}, 'data.type must be "security_devices"'),
        ({"data": {"type": "security_devices"}}, "data.attributes must be an object"),
        ({"data": {"type": "security_devices", "attributes": {"device_type": "CLOUD"}}}, "name must be"),
        (
            {"data": {"type": "security_devices", "attributes": {"name": "n", "device_type": "CLOUD"}}},
            "relationships.organization is required",
        ),
        (
            {
                "data": {
                    "type": "security_devices",
                    "attributes": {"name": "n", "device_type": "CLOUD", "status": "healthy"},
                }
            },
            "Read-only attributes cannot be set: status",
        ),
    ],
)
def test_emulator_validates_json_api_documents(emulator: WorkbenchEmulator, body: dict, detail: str) -> None:
    answer = requests.post(
        f"{emulator.url}{DEVICES}", json=body, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5
    )

    assert answer.status_code == 422
    assert detail in answer.json()["errors"][0]["detail"]
    assert emulator.devices == {}
