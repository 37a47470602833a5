"""The local cloud: a moto server that runs Lambda artifacts and Step Functions, plus the Workbench emulator.

Everything binds to 127.0.0.1. ``LocalCloud.start()`` returns once both endpoints accept connections;
``stop()`` shuts them down. The CLI's ``local serve`` and ``demo`` and the e2e tests use this class.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import json
import logging
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from local_cloud import (
    api_calls,
    cloudtrail_checks,
    cloudtrail_history,
    cloudtrail_logs,
    iam_propagation,
    lambda_runner,
    moto_caches,
    moto_patches,
    stacksets,
    time_scale,
)
from local_cloud.background import Loop, serve, stop_serving
from local_cloud.faults import FaultInjector, FaultPlan
from local_cloud.once import once

HOST = "127.0.0.1"
# The services a SAM stack's deploy and its functions, state machine and trail call first (warmed up at start).
WARM_SERVICES = ("cloudformation", "s3", "sts", "iam", "lambda", "stepfunctions", "events", "logs", "kms", "sns",
                 "sqs", "cloudtrail", "secretsmanager", "cloudwatch")
# moto's package of a service, where its name differs (the errors a package raises are named after it).
_MOTO_PACKAGES = {"lambda": "awslambda"}
log = logging.getLogger(__name__)


class PortInUse(Exception):
    """A port the local cloud should listen on is taken."""

    def __init__(self, port: int, option: str = "--port") -> None:
        self.port = port
        super().__init__(f"port {port} is in use: stop the other process or pass {option}")


def check_port_free(port: int, option: str = "--port") -> None:
    """Raise PortInUse unless ``port`` can be bound on 127.0.0.1 (0 means any free port)."""
    if port == 0:
        return
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((HOST, port))
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUse(port, option) from exc
        raise
    finally:
        probe.close()


def _enable_step_functions_execution() -> None:
    """``config={"stepfunctions": {"execute_state_machine": True}}`` for the server in this process.

    moto reads ``default_user_config`` on every Step Functions request, so setting it here is the
    in-process equivalent of ``mock_aws(config=...)`` or a POST to ``/moto-api/config``.
    """
    from moto.core.config import default_user_config

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True


WsgiApp = Callable[..., Any]


class MotoServer:
    """moto's WSGI app in a threaded werkzeug server (one thread per connection, kept alive between requests: a
    Lambda may call back on a connection of its own).

    ``middleware`` wraps moto's app in order, innermost first: each sees a request after those listed
    after it, so the last one listed is the first to see it. The port is bound (and connections queue) from
    the constructor on; requests are answered from ``start()`` on."""

    def __init__(self, port: int, middleware: Sequence[Callable[[WsgiApp], WsgiApp]] = ()) -> None:
        from werkzeug.serving import make_server

        self._middleware = middleware
        try:
            self._server = make_server(HOST, port, _not_started, threaded=True, request_handler=request_handler())
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE or "in use" in str(exc):
                raise PortInUse(port) from exc
            raise
        self.port = self._server.server_address[1]
        self._thread = serve(self._server, "moto-server")

    def start(self, middleware: Sequence[Callable[[WsgiApp], WsgiApp]] | None = None) -> None:
        """Answer requests, through ``middleware`` when given (else the constructor's)."""
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        moto_caches.install()
        app: WsgiApp = DomainDispatcherApplication(create_backend_app)
        for wrap in self._middleware if middleware is None else middleware:
            app = wrap(app)
        self._server.app = app
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            stop_serving(self._server)
            self._thread.join(timeout=10)
        self._server.server_close()
        # Kept-alive connections outlive the accepting loop: each one's thread waits for its next request. Those
        # waiting are shut, so nothing more is answered (as by a stopped process); one answering a request closes
        # once its answer is out.
        connections = _open_connections(self._server)
        self._server.local_cloud_stopped = True
        for connection, answering in list(connections.items()):
            if not answering:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


@functools.cache
def request_handler() -> type:
    """moto's request handler, minus the request lines nobody sees: werkzeug formats each request's log line
    (path decoded, escaped, styled, dated) before its logger drops it (a few % of the server's CPU per
    request). When the ``werkzeug`` logger's level is set and leaves out INFO, the line is not made; when it
    is not set, werkzeug logs as it always does (it sets INFO on its first line)."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class RequestHandler(MotoRequestHandler):
        """Also keeps connections alive, as AWS's endpoints do. werkzeug closes every connection (after each answer it
        reads whatever the socket holds, which on a kept connection would be the next request): here the request
        body is read through a reader bounded by its Content-Length, so that read stops at the request's end, and
        what the application left unread is skipped before the next request. A chunked request (no length known
        beforehand) or a client's ``Connection: close`` is answered as before, closing the connection. Each new
        connection costs a thread and a TCP handshake on both sides (about half a millisecond of CPU a request)."""

        _keep_alive = False

        def setup(self) -> None:
            super().setup()
            # A response's headers and body are separate writes: without TCP_NODELAY, Nagle's algorithm holds the
            # body until the client acknowledges the headers, which a client delays by 40 ms on a kept connection.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _open_connections(self.server)[self.connection] = False

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                _open_connections(self.server).pop(self.connection, None)

        def run_wsgi(self) -> None:
            connections = _open_connections(self.server)
            connections[self.connection] = True
            try:
                self._answer()
            finally:
                connections[self.connection] = False
            if getattr(self.server, "local_cloud_stopped", False):
                self.close_connection = True

        def _answer(self) -> None:
            length = _content_length(self.headers)
            self._keep_alive = not self.close_connection and length is not None
            if not self._keep_alive:
                self.close_connection = True
                super().run_wsgi()
                return
            raw = self.rfile
            body = self.rfile = _RequestBody(raw, length)  # type: ignore[assignment]
            try:
                super().run_wsgi()
            finally:
                self.rfile = raw
            if not body.skip_rest():
                self.close_connection = True

        def send_header(self, keyword: str, value: str) -> None:
            if self._keep_alive and keyword.lower() == "connection" and value.lower() == "close":
                return  # werkzeug's, sent with every answer
            super().send_header(keyword, value)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if _werkzeug_log.level != logging.NOTSET and not _werkzeug_log.isEnabledFor(logging.INFO):
                return
            super().log_request(code, size)

    return RequestHandler


def _open_connections(server: Any) -> dict[socket.socket, bool]:
    """The connections a server has accepted and not yet closed, each with whether it is answering a request now
    (the handlers keep it)."""
    try:
        return server.local_cloud_connections  # type: ignore[no-any-return]
    except AttributeError:
        connections = server.local_cloud_connections = {}
        return connections  # type: ignore[no-any-return]


def _content_length(headers: Any) -> int | None:
    """A request's body length: 0 without a body; None when it cannot be known before reading it (chunked) or the
    header is not a length, and the connection closes after the answer."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        return None
    try:
        length = int(headers.get("Content-Length") or 0)
    except ValueError:
        return None
    return length if length >= 0 else None


class _RequestBody(io.RawIOBase):
    """A request's body on a kept-alive connection: the connection's reader, up to the body's end."""

    def __init__(self, reader: Any, length: int) -> None:
        self._reader = reader
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        data = self._reader.read(min(len(buffer), self._left))
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        if self._left <= 0:
            return b""
        line: bytes = self._reader.readline(self._left if size is None or size < 0 else min(size, self._left))
        self._left -= len(line)
        return line

    def skip_rest(self) -> bool:
        """Read what the application left of the body; False when the client stopped sending before its end."""
        while self._left > 0:
            data = self._reader.read(min(self._left, 1 << 16))
            if not data:
                return False
            self._left -= len(data)
        return True


_werkzeug_log = logging.getLogger("werkzeug")


def _not_started(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Never called: the server's loop starts once its app is set."""
    raise RuntimeError("the local cloud is not started")


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_MINUTES = {"minute": 1, "hour": 60, "day": 1440}
_MONTHS = {m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV",
                                       "DEC"), start=1)}
_DAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}


def rate_minutes(expression: str) -> int | None:
    """A rate(...) expression in minutes; None for anything else."""
    found = _RATE.match(expression.strip())
    return int(found.group(1)) * _MINUTES[found.group(2).rstrip("s")] if found else None


def _field_matches(field_text: str, value: int, names: dict[str, int]) -> bool:
    for part in field_text.upper().split(","):
        if part in ("*", "?"):
            return True
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", ""):
            low, high = 0, 10**4
        elif "-" in part:
            a, b = part.split("-", 1)
            low, high = names.get(a) or int(a), names.get(b) or int(b)
        else:
            low = names.get(part) or int(part)
            high = low if step == 1 else 10**4
        if low <= value <= high and (value - low) % step == 0:
            return True
    return False


def cron_matches(expression: str, when: datetime) -> bool:
    """Does an EventBridge cron(minutes hours day-of-month month day-of-week year) fire at ``when``'s
    minute? L, W and # are not emulated (never fires)."""
    found = _CRON.match(expression.strip())
    if not found:
        return False
    fields = found.group(1).split()
    if len(fields) != 6 or any(c in found.group(1).upper() for c in ("L", "W", "#")):
        return False
    minute, hour, dom, month, dow, year = fields
    weekday = when.isoweekday() % 7 + 1  # EventBridge: 1 = SUN ... 7 = SAT
    try:
        return (_field_matches(minute, when.minute, {}) and _field_matches(hour, when.hour, {})
                and _field_matches(dom, when.day, {}) and _field_matches(month, when.month, _MONTHS)
                and _field_matches(dow, weekday, _DAYS) and _field_matches(year, when.year, {}))
    except ValueError:
        return False


@dataclass
class Scheduler(Loop):
    """Fires enabled EventBridge scheduled rules' targets, in compressed time: every ``interval`` seconds is
    one minute. A rate(N minutes|hours|days) rule fires every N, 60 N or 1440 N intervals from when it is first
    seen (crhelper's rate(1 minute) poll every interval); a cron(...) rule when its fields match the
    compressed clock's minute (which starts at the real time). Alarms are evaluated once a minute too.

    moto stores rules but never fires schedules. A Lambda target is invoked with the scheduled event (or the
    target's Input); a Step Functions target is started as the target's role, which EventBridge assumes as
    ``events.amazonaws.com`` (its trust policy must allow it) and which must be allowed states:StartExecution:
    a target that cannot be started is counted in the rule's FailedInvocations metric (AWS/Events), as on AWS.
    """

    interval: float = 5.0
    endpoint: str = ""
    thread_name = "schedule"
    stop_seconds = 5.0
    _busy: set[tuple[str, str]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tick: int = 0
    _first_seen: dict[str, int] = field(default_factory=dict)
    _clock_start: datetime = field(default_factory=lambda: datetime.now(UTC).replace(second=0, microsecond=0))

    def tick(self) -> None:
        try:
            self.fire_due_rules()
        except Exception:
            log.exception("scheduled rules")
        try:
            from local_cloud import cloudwatch_alarms

            cloudwatch_alarms.evaluate()
        except Exception:
            log.exception("alarm evaluation")

    def due(self, rule: Any) -> bool:
        """Does ``rule`` fire at this tick (one compressed minute)?"""
        expression = str(rule.scheduled_expression)
        every = rate_minutes(expression)
        if every is not None:
            seen = self._first_seen.setdefault(rule.arn, self._tick)
            return (self._tick - seen) % every == every - 1
        return cron_matches(expression, self._clock_start + timedelta(minutes=self._tick))

    def fire_due_rules(self) -> int:
        """One compressed minute: start every due rule's targets once; returns how many started."""
        from moto.events.models import events_backends

        started = 0
        for account_id, regions in list(events_backends.items()):
            for region, backend in list(regions.items()):
                for bus in list(backend.event_buses.values()):
                    for rule in list(bus.rules.values()):
                        if not (rule.scheduled_expression and rule.state == "ENABLED") or not self.due(rule):
                            continue
                        for target in list(rule.targets):
                            arn = target.get("Arn", "")
                            if ":lambda:" in arn and self._fire(account_id, region, rule, target):
                                started += 1
                            elif ":states:" in arn and self._start_execution(account_id, region, rule, target):
                                started += 1
        self._tick += 1
        return started

    def _event(self, account_id: str, region: str, rule: Any) -> str:
        return json.dumps(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": account_id,
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": region,
                "resources": [rule.arn],
                "detail": {},
            }
        )

    def _start_execution(self, account_id: str, region: str, rule: Any, target: dict) -> bool:
        """StartExecution as the target's role; False (and FailedInvocations) when EventBridge could not."""
        import boto3

        from local_cloud.enforcement import credentials

        body = target["Input"] if "Input" in target else self._event(account_id, region, rule)
        try:
            role = target.get("RoleArn") or ""
            if not role:
                raise credentials.RoleNotAssumable("the target has no RoleArn")
            session = credentials.assume(role, "events.amazonaws.com", f"events-{rule.name}"[:64],
                                         source_account=account_id, source_arn=rule.arn)
            boto3.client("stepfunctions", region_name=region, endpoint_url=self.endpoint or None,
                         aws_access_key_id=session.access_key_id, aws_secret_access_key=session.secret_access_key,
                         aws_session_token=session.session_token).start_execution(
                stateMachineArn=target["Arn"], input=body)
        except Exception as exc:
            log.warning("rule %s could not start %s: %s", rule.name, target["Arn"], exc)
            _count_invocation(account_id, region, rule.name, "FailedInvocations")
            return False
        _count_invocation(account_id, region, rule.name, "Invocations")
        return True

    def _fire(self, account_id: str, region: str, rule: Any, target: dict) -> bool:
        key = (rule.arn, target.get("Id", target["Arn"]))
        with self._lock:
            if key in self._busy:
                return False  # the previous run of this target has not finished
            self._busy.add(key)
        body = target["Input"] if "Input" in target else self._event(account_id, region, rule)

        def run() -> None:
            try:
                from moto.awslambda.utils import get_backend

                fn = get_backend(account_id, region).get_function(target["Arn"])
                fn.invoke(body, {}, {})
            except Exception:
                log.exception("scheduled target %s of %s", target["Arn"], rule.name)
            finally:
                with self._lock:
                    self._busy.discard(key)

        threading.Thread(target=run, name=f"schedule-{rule.name}", daemon=True).start()
        return True


def _count_invocation(account_id: str, region: str, rule_name: str, metric: str) -> None:
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch_backends[account_id][region].put_metric_data("AWS/Events", [{
        "MetricName": metric, "Dimensions": [{"Name": "RuleName", "Value": rule_name}], "Value": 1.0,
        "Timestamp": datetime.now(UTC).replace(tzinfo=None), "Unit": "Count"}])  # moto keeps naive UTC


def warm_up(iam: bool = True) -> None:
    """Read now what the first requests would otherwise read on their way (IAM's reference data, the services'
    botocore models): a caller such as the SAM CLI takes seconds to start, and a cold start of the server's data
    would otherwise add a second to its first calls. Only a cost moves: nothing else. A local cloud does it as
    it starts; a parent that forks local clouds (the tests' fork server) can do it once for all of them."""
    if iam:
        from local_cloud.enforcement import middleware
        from local_cloud.iam import sar

        sar.action("iam:PassRole")
    for service in WARM_SERVICES:
        api_calls.protocol_of(service)
        if iam:
            middleware.service_model(service)
    _warm_moto()


@once
def _warm_moto() -> None:
    """What moto works out on a service's first request, a first state machine, a first stack with a Serverless
    transform (together about a second of CPU of each local cloud's first deploy): the endpoint data of every
    partition (read for each service's backend), the services' request routers, the services' error tables,
    ANTLR's grammar caches, the AWS managed policies, the SAM translator's policy templates (when the transform is
    loaded already). Read-only data and caches: no backend is made here."""
    from moto.core import errors, utils
    from moto.core.base_backend import AccountSpecificBackend
    from moto.core.routing import get_router_class, get_service_router

    from local_cloud import cloudformation_iam, cloudformation_templates
    from local_cloud.enforcement.middleware import service_model

    moto_caches.install()
    # moto's own botocore session, which lists each new account's regions for every service (its first use reads
    # the endpoint data: about 60 ms of the first request that reaches a backend).
    session = AccountSpecificBackend.get_session()
    for partition in session.get_available_partitions():
        for service in WARM_SERVICES:
            session.get_available_regions(service, partition_name=partition)
    for service in WARM_SERVICES:
        model = service_model(service)
        router = get_service_router(service)
        for protocol in model.metadata.get("protocols") or [model.protocol]:
            if get_router_class(service, protocol) is not None:
                router._get_router(protocol)  # built on its first request otherwise
        utils.service_name_from_moto_package_name(_MOTO_PACKAGES.get(service, service))
        errors.ErrorLookupFactory().for_service(model)
    utils.service_name_from_moto_package_name("core")
    moto_caches.warm_parser()
    cloudformation_templates.managed_policy_arns()
    cloudformation_iam.aws_managed_policies()
    if "samtranslator.translator.translator" in sys.modules:  # a parent that preloaded the Serverless transform
        cloudformation_templates.policy_templates()


class LocalCloud:
    """moto server + Lambda runner + scheduled rules + StackSets + (when available) the Workbench emulator."""

    def __init__(
        self,
        port: int = 4566,
        workbench_port: int = 4567,
        schedule_interval: float = 5.0,
        workbench_organization_id: str | None = None,
        iam: bool = True,
        iam_report: Path | None = None,
        stackset_seconds: float | None = None,
        faults: FaultPlan | None = None,
        cloudtrail_interval: float = 5.0,
        cloudtrail_digest_interval: float = 60.0,
        iam_propagation_delay: float = 0.0,
        iam_propagation_from_first_use: bool = False,
        time_scale: float = 1.0,
    ) -> None:
        self.iam_propagation_delay = iam_propagation_delay
        self.iam_propagation_from_first_use = iam_propagation_from_first_use
        self.workbench_organization_id = workbench_organization_id
        # IAM enforcement: every request authorized as IAM would (local_cloud.enforcement).
        self.iam = iam
        self.iam_report = iam_report
        self.stackset_seconds = stackset_seconds
        self.time_scale = time_scale
        self.faults = faults or FaultPlan()
        self.events = cloudtrail_logs.EventLog()
        self.trail_delivery = cloudtrail_logs.Delivery(self.events, cloudtrail_interval, cloudtrail_digest_interval,
                                                       check=cloudtrail_checks.delivery_refusal)
        self.requested_port = port
        self.requested_workbench_port = workbench_port
        self.scheduler = Scheduler(interval=schedule_interval)
        self.moto: MotoServer | None = None
        self.workbench: Any = None

    @property
    def url(self) -> str:
        assert self.moto is not None
        return f"http://{HOST}:{self.moto.port}"

    @property
    def workbench_url(self) -> str | None:
        return getattr(self.workbench, "url", None)

    def listen(self) -> LocalCloud:
        """Bind both endpoints: ``url`` and ``workbench_url`` hold from here on, the Workbench emulator answers,
        AWS requests wait until ``start()``. So a client (the demo's ``sam deploy``) can start up while the
        local cloud does."""
        lambda_runner.runtime_python()  # fail now, with the fix in the message, not at the first invoke
        check_port_free(self.requested_port, "--port")
        check_port_free(self.requested_workbench_port, "--workbench-port")
        self.moto = MotoServer(self.requested_port)
        try:
            self.workbench = start_workbench(self.requested_workbench_port, self.workbench_organization_id)
        except BaseException:
            self.stop()
            raise
        return self

    def start(self) -> LocalCloud:
        if self.moto is None:
            self.listen()
        try:
            self._serve()
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self) -> None:
        assert self.moto is not None
        # moto's Step Functions engine and custom resources reach the server at localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(self.moto.port)
        _enable_step_functions_execution()
        moto_patches.apply()
        moto_patches.apply_server_wiring()
        iam_propagation.configure(self.iam_propagation_delay, self.iam_propagation_from_first_use)
        if self.stackset_seconds is not None:
            # Compressed time: before an operation's first accounts, and for each group of them.
            stacksets.configure(start_seconds=self.stackset_seconds / 2, batch_seconds=self.stackset_seconds)
        # Retry intervals, Wait states and the SDK's backoff in Lambda functions (local_cloud/time_scale.py).
        time_scale.configure(self.time_scale)
        lambda_runner.install(self.url)
        self.scheduler.endpoint = self.url
        cloudtrail_logs.install(self.trail_delivery)
        cloudtrail_history.install(self.events)
        self.moto.start(self.middleware())
        threading.Thread(target=self._warm_up, name="warm-up", daemon=True).start()
        wait_until_listening(self.moto.port)
        self.scheduler.start()
        self.trail_delivery.start()

    def _warm_up(self) -> None:
        try:
            warm_up(iam=self.iam)
        except Exception:  # a warm-up that fails leaves the work to the first request
            log.exception("warming up the local cloud")

    def expect_serverless(self) -> None:
        """A SAM template is coming (the demo's): import the Serverless transform (samtranslator, most of a
        second of CPU) in the background now, while SAM starts and packages, instead of in its change set."""

        def load() -> None:
            import samtranslator.translator.translator  # noqa: F401

        threading.Thread(target=load, name="warm-up-serverless", daemon=True).start()

    def middleware(self) -> list[Callable[[WsgiApp], WsgiApp]]:
        """What stands in front of moto, innermost first: IAM authorization (``--iam``), then injected
        faults, then CloudTrail's recorder. Faults come before authorization: AWS throttles at its front
        door, whoever the caller is, so a throttled call is never evaluated (nor reported as authorized).
        The recorder sees every call first and records its answer, a fault's or a refusal's included."""
        layers: list[Callable[[WsgiApp], WsgiApp]] = []
        if self.iam:
            from local_cloud import enforcement

            layers.append(lambda app: enforcement.install(app, self.iam_report))
        layers.append(lambda app: FaultInjector(app, self.faults))
        layers.append(lambda app: cloudtrail_logs.Recorder(app, self.events))
        return layers

    def stop(self) -> None:
        self.scheduler.stop()
        self.trail_delivery.stop()
        if self.workbench is not None:
            self.workbench.stop()
            self.workbench = None
        if self.moto is not None:
            self.moto.stop()
        lambda_runner.shutdown()  # every execution environment, busy or idle
        lambda_runner.cache().cleanup()


def start_workbench(port: int, organization_id: str | None = None) -> Any:
    """The Workbench emulator, when its module exists (another engineer writes it)."""
    try:
        from local_cloud.workbench_emulator import start_workbench_emulator  # type: ignore[import-not-found]
    except ImportError:
        log.info("local_cloud.workbench_emulator not available: no Workbench emulator")
        return None
    try:
        return start_workbench_emulator(host=HOST, port=port, organization_id=organization_id)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(port, "--workbench-port") from exc
        raise


def wait_until_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
