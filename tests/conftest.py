"""Shared fixtures: fake credentials, function-scoped moto, a sample configuration."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from functools import cache
from typing import Any

import boto3
import pytest
from botocore.client import ClientCreator
from botocore.hooks import EVENT_ALIASES, EventAliaser
from botocore.model import ServiceModel
from moto import mock_aws

from expel_onboarding.aws import clients
from expel_onboarding.models import Config
from local_cloud import moto_caches, moto_patches, stacksets
from tests import shared_work

# Lambda may initialize a function's execution environment before its first invocation (proactive
# initialization), and the local cloud does so by default for a person's `demo` or `local serve`. Across the
# suite's two dozen deploys on two cores, the Inits of functions a scenario never invokes cost about a seventh of
# the suite's CPU: off for the clouds tests start; the demo and serve processes (harness.run_cli_process) run with
# the default, and the Lambda runner's own tests call the proactive Init directly.
os.environ.setdefault("LOCAL_LAMBDA_PREINIT", "0")

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
WORKBENCH_GUID = "4f9c2a1e-7b3d-4e5f-9a8b-1c2d3e4f5a6b"


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):  # its hook is unknown to pytest without pytest-xdist
        from tests import xdist_scheduling

        config.pluginmanager.register(xdist_scheduling, "shared-stack-scheduling")


def pytest_collection(session: pytest.Session) -> None:
    """No garbage collection while the test modules are imported: nearly all they make lives until the end (below).
    pytest-xdist's controller collects nothing and keeps its collector."""
    if os.environ.get("PYTEST_XDIST_WORKER") or getattr(session.config.option, "dist", "no") == "no":
        gc.disable()


def pytest_collection_finish(session: pytest.Session) -> None:
    """The garbage collector, tuned for a test process: what collection imported (moto, botocore, the tests) lives
    until the end, so it is frozen out of every later collection; and a young generation of 20,000 objects
    instead of 700. A full collection walks every tracked object, about a million by the end of a worker's run,
    and the defaults ran a dozen of them per worker: about a tenth of the workers' CPU."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)
    gc.enable()


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """The end of the process: the young garbage is collected (so pytest still reports what its finalizers raise),
    then everything else is frozen. pytest's last full collection and the interpreter's at exit walked all of a
    worker's objects, about a million: 2 to 4 s of CPU per process, at the end of the run, after the others."""
    gc.collect(1)
    gc.freeze()


_SERVICE_MODELS: dict[tuple[Any, str, str | None], ServiceModel] = {}
_ALIASED_EVENT_NAMES: dict[str, str] = {}


def _shared_service_model(creator: ClientCreator, service_name: str, api_version: str | None = None) -> ServiceModel:
    """The ServiceModel of ``service_name`` that every client from the same loader shares: each client built
    its own and worked out each operation's model and shapes again, for a few clients in every test."""
    key = (creator._loader, service_name, api_version)
    if key not in _SERVICE_MODELS:
        _SERVICE_MODELS[key] = _LOAD_SERVICE_MODEL(creator, service_name, api_version)
    return _SERVICE_MODELS[key]


def _aliaser_sharing_names(aliaser: EventAliaser, event_emitter: Any, event_aliases: Any = None) -> None:
    """A client's event emitter caches how botocore's event aliases rename each event it emits; with botocore's
    own aliases (every client's) the answers are the same, so a new client starts with them known."""
    _ALIASER_INIT(aliaser, event_emitter, event_aliases)
    if aliaser._event_aliases == EVENT_ALIASES:
        aliaser._alias_name_cache = _ALIASED_EVENT_NAMES


_LOAD_SERVICE_MODEL = ClientCreator._load_service_model
_ALIASER_INIT = EventAliaser.__init__


@pytest.fixture(autouse=True, scope="session")
def _one_botocore_loader() -> Iterator[None]:
    """Every boto3 session the tests make reads botocore's data files (service models, endpoints)
    through one loader, which parses each file once. The layer makes a session per client and the tests
    reset that cache for each test: without this, a third of the suite's time went into parsing the same
    JSON again. Botocore's S3 client rewrites its model's request URIs in place, so code that routes by the model
    (local_cloud.api_calls) reads it through a loader of its own."""
    import botocore.loaders
    import botocore.session

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", cache(botocore.loaders.create_loader))
        patch.setattr(ClientCreator, "_load_service_model", _shared_service_model)
        patch.setattr(EventAliaser, "__init__", _aliaser_sharing_names)
        shared_work.apply(patch)
        yield


@pytest.fixture(autouse=True, scope="session")
def _moto_behaves_like_aws() -> None:
    """Every test's moto obeys the local cloud's rules (local_cloud/moto_patches.py), the same ones
    ``local serve`` applies: what a test proves is what the local cloud enforces."""
    moto_patches.apply()
    # What the local cloud's server remembers of moto's per-request work (same answers): from the first test on,
    # not from whichever test first serves a cloud in this process.
    moto_caches.install()
    # The local cloud's StackSets, with operations that take milliseconds instead of seconds.
    stacksets.configure(start_seconds=0.01, batch_seconds=0.01)


@pytest.fixture(autouse=True)
def _aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never let a test reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "expel-cloudtrail-onboarding-test",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    clients.reset()
    _BOTO_CLIENTS.clear()


@pytest.fixture
def aws() -> Iterator[None]:
    """A fresh moto account for one test."""
    with mock_aws():
        clients.reset()
        _BOTO_CLIENTS.clear()
        yield
    clients.reset()
    _BOTO_CLIENTS.clear()


@pytest.fixture
def config() -> Config:
    return Config(
        stack_name="expel-onboarding",
        region=REGION,
        account_id=ACCOUNT_ID,
        partition="aws",
        workbench_guid=WORKBENCH_GUID,
        trail_name="ExpelCloudTrail",
        bucket_name=f"expel-cloudtrail-{ACCOUNT_ID}-{REGION}",
        kms_alias="alias/expel-cloudtrail",
        topic_name="ExpelCloudTrailTopic",
        queue_name="ExpelCloudTrailQueue",
        role_name="ExpelAssumeRole",
        role_stack_name="expel-onboarding-expel-role",
        access_log_bucket_name=f"expel-cloudtrail-access-logs-{ACCOUNT_ID}-{REGION}",
    )


_BOTO_CLIENTS: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}


def boto(service: str) -> Any:
    """A plain boto3 client for reading back what AWS holds after a step: one per service in a test while the
    environment's AWS settings (credentials, endpoint) stay the same."""
    key = (service, tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))
    if key not in _BOTO_CLIENTS:
        _BOTO_CLIENTS[key] = boto3.client(service, region_name=REGION)
    return _BOTO_CLIENTS[key]


@pytest.fixture(autouse=True, scope="session")
def _programs_from_fork_servers() -> Iterator[None]:
    """``local deploy`` and ``local delete`` run in the tests' process start SAM from a fork server, as
    harness.serve_child starts local clouds (tests/fork_server.py): the SAM CLI's imports once per test process
    instead of about a second and a half of CPU per run. Its fork servers stop with the session."""
    from local_cloud import deploy
    from tests import fork_server
    from tests.local_cloud import harness

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(deploy, "start_sam", harness.start_sam)
        try:
            yield
        finally:
            fork_server.stop_all()

