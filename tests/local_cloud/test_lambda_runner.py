"""The Lambda runner on its own: a zip in, an isolated Python 3.13 process, the Lambda result out; and its
execution environments, kept and discarded as Lambda keeps and discards them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from moto import mock_aws

from local_cloud import lambda_runner
from tests.support import function_zip

pytestmark = pytest.mark.e2e  # starts real interpreters; a few hundred ms each

CODE = """
import json, os, sys, time

def context_handler(event, context):
    return {
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb,
        "group": context.log_group_name,
        "stream": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "env": {k: os.environ.get(k) for k in (
            "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_LAMBDA_FUNCTION_TIMEOUT", "_HANDLER", "STAGE", "PYTHONPATH", "VIRTUAL_ENV")},
        "path": sys.path,
        "event": event,
    }

def slow_handler(event, context):
    print("going to sleep")
    time.sleep(30)

class TransientError(Exception):
    pass

def failing_handler(event, context):
    raise TransientError("try again later")

def process_handler(event, context):
    import tempfile
    return {"pid": os.getpid(), "ppid": os.getppid(), "sid": os.getsid(0), "tmp": tempfile.gettempdir(),
            "home": os.environ.get("HOME"), "stage": os.environ.get("STAGE")}

def shadow_handler(event, context):
    import jmespath  # this function's own jmespath.py, not the one botocore brings
    return jmespath.VALUE

def botocore_handler(event, context):
    import tempfile
    import botocore.credentials, botocore.loaders, botocore.session, botocore.utils
    models = os.path.join(tempfile.gettempdir(), "models", "localprobe", "2020-01-01")  # a model of its own
    os.makedirs(models, exist_ok=True)
    with open(os.path.join(models, "service-2.json"), "w") as model:
        model.write("{}")
    loader = botocore.loaders.create_loader(os.path.dirname(os.path.dirname(models)))
    session = botocore.session.Session()
    try:
        session.register("before-call", lambda model: None)  # botocore refuses a handler without **kwargs
        refused = False
    except ValueError:
        refused = True
    events = session.get_component("event_emitter")
    return {
        "services": {kind: loader.list_available_services(kind)
                     for kind in ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2")},
        "refused": refused,
        "aliased": [events._alias_event_name(name) for name in (
            "before-call.apigateway.GetRestApi", "service-data-loaded.api.sagemaker", "before-call.s3.GetObject")],
        "home": os.environ["HOME"],
        "homed": [botocore.loaders.Loader.CUSTOMER_DATA_PATH, botocore.credentials.SSOProvider._SSO_TOKEN_CACHE_DIR,
                  botocore.utils.JSONFileCache()._working_dir],
    }

def layer_handler(event, context):
    import helper
    return helper.VALUE

INVOCATIONS = 0  # module state: lives as long as the execution environment
INITIALIZED_AT = time.time()  # when the Init phase ran this module

def init_time_handler(event, context):
    return {"initialized_at": INITIALIZED_AT, "pid": os.getpid()}

def stateful_handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    if event.get("crash"):
        os._exit(3)
    if event.get("fail"):
        raise TransientError("handled by the runtime")
    time.sleep(event.get("sleep", 0))
    return {"pid": os.getpid(), "invocations": INVOCATIONS, "stream": context.log_stream_name,
            "key": os.environ["AWS_ACCESS_KEY_ID"], "stage": os.environ.get("STAGE")}
"""


def _function(handler: str, timeout: int = 5, layers: list | None = None, code: str = CODE,
              stage: str = "test") -> SimpleNamespace:
    return SimpleNamespace(
        account_id="123456789012",
        region="eu-west-1",
        function_name="probe",
        function_arn="arn:aws:lambda:eu-west-1:123456789012:function:probe",
        handler=handler,
        run_time="python3.13",
        version="$LATEST",
        memory_size=256,
        timeout=timeout,
        logs_group_name="/aws/lambda/probe",
        environment_vars={"STAGE": stage, "AWS_ENDPOINT_URL": "https://real.example"},
        code_bytes=function_zip({"app.py": code}),
        layers=layers or [],
    )


class _KeptForkServer(lambda_runner.ForkServer):
    """A fork server that outlives the pool of one test: the pool's ``stop`` leaves it running for the next test's
    pool (a local cloud keeps one per /opt for every function; starting one costs half a second of CPU)."""

    def stop(self) -> None:
        pass

    def end(self) -> None:
        super().stop()


# The services whose botocore data this file's fork servers parse ahead for their environments: its functions call no
# AWS service, so STS alone (about a third of a second less per server, some twenty servers); the tests of what a
# forked environment's botocore holds ask for every service a local cloud's servers parse (``all_services_preparsed``).
FEW_PREPARSED = ("sts",)
PREPARSED_BY_LOCAL_CLOUDS = lambda_runner.PREPARSED_SERVICES


@pytest.fixture
def all_services_preparsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_runner, "PREPARSED_SERVICES", PREPARSED_BY_LOCAL_CLOUDS)


@pytest.fixture(scope="module")
def _fork_servers(tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[Path, dict[tuple[Path, tuple[str, ...]], _KeptForkServer]]]:
    """The extracted zips (so each /opt is the same directory in every test) and the fork server of each /opt and
    services parsed ahead, kept for this file's tests."""
    servers: dict[tuple[Path, tuple[str, ...]], _KeptForkServer] = {}
    yield tmp_path_factory.mktemp("lambda-artifacts"), servers
    for server in servers.values():
        server.end()


@pytest.fixture(autouse=True)
def _moto(tmp_path, monkeypatch: pytest.MonkeyPatch, _fork_servers):  # noqa: ANN001
    artifacts, servers = _fork_servers

    def fork_server(opt_root: Path) -> _KeptForkServer:
        key = (opt_root, lambda_runner.PREPARSED_SERVICES)
        server = servers.get(key)
        if server is None or not server.alive():
            server = servers[key] = _KeptForkServer(opt_root)
        return server

    monkeypatch.setattr(lambda_runner, "_cache", lambda_runner.ArtifactCache(tmp_path, artifacts))
    monkeypatch.setattr(lambda_runner, "_pool", lambda_runner.WorkerPool())
    monkeypatch.setattr(lambda_runner, "ForkServer", fork_server)
    monkeypatch.setattr(lambda_runner, "PREPARSED_SERVICES", FEW_PREPARSED)
    monkeypatch.setattr(lambda_runner, "settings", lambda_runner.Settings(keep_warm=True))
    with mock_aws():
        yield
    lambda_runner.shutdown()


def _invoke(fn: SimpleNamespace, event: dict | None = None) -> tuple[dict, bool, str]:
    payload, errored, logs, _ = lambda_runner.invoke_artifact(fn, event or {}, "http://127.0.0.1:1")
    return json.loads(payload), errored, logs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_handler_gets_a_lambda_context_and_environment() -> None:
    payload, errored, logs, stream = lambda_runner.invoke_artifact(
        _function("app.context_handler"), {"hello": "world"}, "http://127.0.0.1:1"
    )
    result = json.loads(payload)
    assert not errored
    assert result["event"] == {"hello": "world"}
    assert result["function_name"] == "probe" and result["memory"] == 256
    assert result["arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:probe"
    assert result["group"] == "/aws/lambda/probe" and result["stream"] == stream
    assert 0 < result["remaining"] <= 5000
    env = result["env"]
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"  # never the real cloud
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "5" and env["_HANDLER"] == "app.context_handler"
    assert env["STAGE"] == "test" and env["PYTHONPATH"] is None and env["VIRTUAL_ENV"] is None
    assert not any("/.venv/" in p for p in result["path"])
    assert f"\nSTART RequestId: {result['request_id']} Version: $LATEST\n" in logs
    assert logs.rstrip().splitlines()[-2:][0] == f"END RequestId: {result['request_id']}"


def test_handler_exception_becomes_the_lambda_error_payload() -> None:
    payload, errored, logs, _ = lambda_runner.invoke_artifact(_function("app.failing_handler"), {}, "http://x")
    error = json.loads(payload)
    assert errored
    assert error["errorType"] == "TransientError" and error["errorMessage"] == "try again later"
    assert any("failing_handler" in frame for frame in error["stackTrace"])
    assert "[ERROR] TransientError: try again later" in logs


def test_run_past_the_timeout_is_killed_with_the_lambda_message() -> None:
    payload, errored, logs, _ = lambda_runner.invoke_artifact(_function("app.slow_handler", timeout=1), {}, "http://x")
    error = json.loads(payload)
    assert errored
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    assert "going to sleep" in logs


def test_layer_python_directory_is_importable_like_opt_python() -> None:
    from moto.awslambda.utils import get_backend

    layer = get_backend("123456789012", "eu-west-1").publish_layer_version(
        {"LayerName": "helpers",
         "Content": {"ZipFile": base64.b64encode(function_zip({"python/helper.py": "VALUE = 7\n"}))}}
    )
    payload, errored, _, _ = lambda_runner.invoke_artifact(
        _function("app.layer_handler", layers=[{"Arn": layer.arn}]), {}, "http://x"
    )
    assert not errored and json.loads(payload) == 7


def test_a_new_layer_version_is_what_the_function_imports_next() -> None:
    from moto.awslambda.utils import get_backend

    backend = get_backend("123456789012", "eu-west-1")
    for value in (7, 8):
        layer = backend.publish_layer_version(
            {"LayerName": "helpers",
             "Content": {"ZipFile": base64.b64encode(function_zip({"python/helper.py": f"VALUE = {value}\n"}))}})
        for _ in range(2):  # the zip hashed, then its digest read back
            assert _invoke(_function("app.layer_handler", layers=[{"Arn": layer.arn}]))[0] == value


def test_each_zip_is_known_by_the_digest_of_its_bytes() -> None:
    import hashlib

    zips = [function_zip({"app.py": f"VALUE = {n}\n"}) for n in range(lambda_runner.DIGESTS_KEPT + 8)]
    for data in [*zips, *zips, bytes(bytearray(zips[0]))]:  # again after older ones were forgotten; a copy
        assert lambda_runner._sha256(data) == hashlib.sha256(data).digest()


def test_missing_handler_is_reported_as_the_runtime_does() -> None:
    payload, errored, _, _ = lambda_runner.invoke_artifact(_function("app.nothing_here"), {}, "http://x")
    assert errored and json.loads(payload)["errorType"] == "Runtime.HandlerNotFound"


def test_second_invocation_reuses_the_environment_with_its_module_state() -> None:
    fn = _function("app.stateful_handler")

    first, _, first_logs = _invoke(fn)
    second, errored, second_logs = _invoke(fn)

    assert not errored
    assert second["pid"] == first["pid"]
    assert (first["invocations"], second["invocations"]) == (1, 2)
    assert second["stream"] == first["stream"]  # one log stream per execution environment, as on AWS
    assert first_logs.startswith("INIT_START Runtime Version: python:3.13")
    assert "\tInit Duration: " in first_logs.splitlines()[-1]
    assert "INIT_START" not in second_logs and "Init Duration" not in second_logs
    assert second_logs.splitlines()[-1].startswith("REPORT RequestId: ")
    assert "\tBilled Duration: " in second_logs and "\tMax Memory Used: " in second_logs


def test_handler_exception_keeps_the_environment() -> None:
    fn = _function("app.stateful_handler")
    first, _, _ = _invoke(fn)

    error, errored, _ = _invoke(fn, {"fail": True})
    after, _, _ = _invoke(fn)

    assert errored and error["errorType"] == "TransientError"
    assert after["pid"] == first["pid"] and after["invocations"] == 3


@pytest.mark.parametrize("change", [
    {"code": CODE + "\n# a new deployment package\n"},
    {"stage": "prod"},  # an environment variable
    {"timeout": 6},
])
def test_new_code_or_configuration_starts_a_new_environment_and_retires_the_old(change: dict) -> None:
    first, _, _ = _invoke(_function("app.stateful_handler"))

    changed, _, logs = _invoke(_function("app.stateful_handler", **change))

    assert changed["pid"] != first["pid"] and changed["invocations"] == 1
    assert "Init Duration" in logs
    assert not _alive(first["pid"])
    assert lambda_runner.pool().counts() == (1, 0)


def test_new_code_of_the_same_function_runs_in_a_new_environment() -> None:
    fn = _function("app.stateful_handler")  # UpdateFunctionCode: the function holds another zip from now on
    first, _, _ = _invoke(fn)
    fn.code_bytes = function_zip({"app.py": CODE + "\nINVOCATIONS = 100\n"})

    changed, _, logs = _invoke(fn)

    assert changed["pid"] != first["pid"] and changed["invocations"] == 101
    assert "Init Duration" in logs


def test_timeout_discards_the_environment() -> None:
    fn = _function("app.stateful_handler", timeout=1)
    first, _, _ = _invoke(fn)

    error, errored, logs = _invoke(fn, {"sleep": 30})
    after, _, after_logs = _invoke(fn)

    assert errored and error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    assert "Task timed out after 1.00 seconds" in logs and "\tStatus: timeout" in logs
    assert not _alive(first["pid"])
    assert after["pid"] != first["pid"] and after["invocations"] == 1 and "Init Duration" in after_logs


def test_crash_discards_the_environment_and_reports_runtime_exit_error() -> None:
    fn = _function("app.stateful_handler")
    first, _, _ = _invoke(fn)

    error, errored, logs = _invoke(fn, {"crash": True})
    after, _, after_logs = _invoke(fn)

    assert errored and error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")
    assert "\tError Type: Runtime.ExitError" in logs
    assert after["pid"] != first["pid"] and after["invocations"] == 1 and "Init Duration" in after_logs


def test_init_failure_discards_the_environment_and_the_next_invocation_starts_anew() -> None:
    fn = _function("app.nothing_here")

    first, _, first_logs = _invoke(fn)
    second, _, second_logs = _invoke(fn)

    assert first["errorType"] == second["errorType"] == "Runtime.HandlerNotFound"
    assert "INIT_START" in first_logs and "INIT_START" in second_logs
    assert lambda_runner.pool().counts() == (0, 0)


def test_concurrent_invocations_get_separate_environments() -> None:
    fn = _function("app.stateful_handler")
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(_invoke(fn, {"sleep": 1})[0])) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({r["pid"] for r in results}) == 2
    assert lambda_runner.pool().counts() == (2, 0)
    again, _, _ = _invoke(fn)
    assert again["pid"] in {r["pid"] for r in results} and again["invocations"] == 2


def test_new_role_credentials_start_a_new_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = iter(["ASIAFIRSTSESSION", "ASIAFIRSTSESSION", "ASIAREFRESHED"])
    monkeypatch.setattr(lambda_runner, "credential_provider", lambda fn: {
        "AWS_ACCESS_KEY_ID": next(keys), "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"})
    fn = _function("app.stateful_handler")

    first, second, refreshed = (_invoke(fn)[0] for _ in range(3))

    assert first["key"] == second["key"] == "ASIAFIRSTSESSION" and second["pid"] == first["pid"]
    assert refreshed["key"] == "ASIAREFRESHED" and refreshed["pid"] != first["pid"]


def test_idle_environments_are_stopped_after_the_idle_time() -> None:
    first, _, _ = _invoke(_function("app.stateful_handler"))

    assert lambda_runner.pool().reap() == 0  # just used
    stopped = lambda_runner.pool().reap(now=10**9)

    assert stopped == 1 and not _alive(first["pid"])
    assert lambda_runner.pool().counts() == (0, 0)


def test_idle_environments_beyond_the_cap_stop_least_recently_used_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_runner.settings, "max_idle", 1)
    first, _, _ = _invoke(_function("app.stateful_handler"))
    other = _function("app.stateful_handler")
    other.function_arn = other.function_arn.replace(":probe", ":other")

    second, _, _ = _invoke(other)

    assert not _alive(first["pid"]) and _alive(second["pid"])
    assert lambda_runner.pool().counts() == (1, 0)


def test_shutdown_stops_every_environment() -> None:
    result, _, _ = _invoke(_function("app.stateful_handler"))

    lambda_runner.shutdown()

    assert not _alive(result["pid"]) and lambda_runner.pool().counts() == (0, 0)


def test_without_warm_environments_every_invocation_is_a_cold_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_runner.settings, "keep_warm", False)
    fn = _function("app.stateful_handler")

    first, _, _ = _invoke(fn)
    second, _, logs = _invoke(fn)

    assert second["pid"] != first["pid"] and second["invocations"] == 1 and "Init Duration" in logs
    assert not _alive(first["pid"])


def test_cold_start_forks_an_environment_of_its_own_from_the_fork_server() -> None:
    first, _, logs = _invoke(_function("app.process_handler", stage="one"))
    second, _, _ = _invoke(_function("app.process_handler", stage="two"))  # other configuration

    assert "Init Duration" in logs
    assert first["ppid"] == second["ppid"] != os.getpid()  # forked by the fork server, not started by us
    assert first["pid"] != second["pid"] and first["sid"] == first["pid"]  # its own session
    assert (first["stage"], second["stage"]) == ("one", "two")  # its own variables
    assert first["tmp"] == first["home"] != second["home"]  # its own /tmp


def test_code_shadowing_a_preloaded_module_gets_a_new_interpreter_and_imports_its_own() -> None:
    fn = _function("app.shadow_handler")
    fn.code_bytes = function_zip({"app.py": CODE, "jmespath.py": "VALUE = 'the function bundled this'\n"})

    payload, errored, _, _ = lambda_runner.invoke_artifact(fn, {}, "http://x")

    assert not errored and json.loads(payload) == "the function bundled this"


def test_without_the_fork_server_every_cold_start_is_a_new_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_runner.settings, "fork", False)

    result, errored, logs = _invoke(_function("app.process_handler"))

    assert not errored and "Init Duration" in logs
    assert result["ppid"] == os.getpid() and result["sid"] == result["pid"]


def test_a_forked_environment_has_botocore_as_a_new_interpreter_has_it(monkeypatch: pytest.MonkeyPatch,
                                                                       all_services_preparsed: None) -> None:
    # The fork server lists botocore's services and answers botocore's per-session questions once for its forks.
    forked, forked_error, _ = _invoke(_function("app.botocore_handler", stage="forked"))
    monkeypatch.setattr(lambda_runner.settings, "fork", False)
    new, new_error, _ = _invoke(_function("app.botocore_handler", stage="new"))

    assert not forked_error and not new_error, (forked, new)
    assert forked["home"] != new["home"]
    for result in (forked, new):  # what botocore derives from the home directory: this environment's
        home = result.pop("home")
        result["homed"] = [path.replace(home, "~") for path in result["homed"]]
    assert forked == new
    assert forked["homed"] == ["~/.aws/models", "~/.aws/sso/cache", "~/.aws/boto/cache"]
    assert "localprobe" in forked["services"]["service-2"] and "s3" in forked["services"]["service-2"]
    assert "localprobe" not in forked["services"]["endpoint-rule-set-1"] and "s3" in forked["services"]["waiters-2"]
    assert forked["refused"] and forked["aliased"] == [
        "before-call.api-gateway.GetRestApi", "service-data-loaded.sagemaker", "before-call.s3.GetObject"]


def test_each_session_of_a_forked_environment_loads_botocore_data_of_its_own(all_services_preparsed: None) -> None:
    code = CODE + """
def loads_handler(event, context):
    import botocore.session
    first = botocore.session.Session().get_component("data_loader").load_data("endpoints")
    partitions = len(first["partitions"])
    first["partitions"].clear()  # what one session does with its data is its own
    second = botocore.session.Session().get_component("data_loader").load_data("endpoints")
    return {"first": partitions, "second": len(second["partitions"])}
"""

    result, errored, _ = _invoke(_function("app.loads_handler", code=code))

    assert not errored and result["first"] == result["second"] > 0


def _sts_documentation(kept: Path, models: Path) -> list[str]:
    """The STS model's documentation as two sessions of a fork server read it, in the runtime's interpreter: the
    session whose clients the server made (``preparse``, keeping the data in ``kept``) and a later one."""
    script = "\n".join([
        "import json, sys",
        f"sys.path.insert(0, {str(lambda_runner.BOOTSTRAP.parent)!r})",
        "import _lambda_bootstrap, botocore.session",
        f"_lambda_bootstrap.preparse(['sts'], {str(kept)!r})",
        "print(json.dumps([botocore.session.get_session().get_service_model('sts').documentation,",
        "                  botocore.session.Session().get_service_model('sts').documentation]))",
    ])
    done = subprocess.run([lambda_runner.runtime_python(), "-I", "-c", script], env={"AWS_DATA_PATH": str(models)},
                          capture_output=True, text=True, timeout=60, check=True)
    return list(json.loads(done.stdout))


def test_a_fork_server_reads_botocore_data_an_earlier_one_kept_only_while_the_file_is_unchanged(
        tmp_path: Path) -> None:
    import gzip
    import pickle as pickles

    import botocore

    shipped = Path(botocore.__file__).parent / "data" / "sts" / "2011-06-15" / "service-2.json.gz"
    model = json.loads(gzip.decompress(shipped.read_bytes()))
    ours = tmp_path / "models" / "sts" / "2011-06-15" / "service-2.json"  # AWS_DATA_PATH comes before botocore's
    ours.parent.mkdir(parents=True)
    kept = tmp_path / "kept"

    ours.write_text(json.dumps({**model, "documentation": "first"}))
    assert _sts_documentation(kept, tmp_path / "models") == ["first", "first"]
    for pickle in kept.iterdir():  # what the next server reads is what this one kept
        data = pickles.loads(pickle.read_bytes())  # noqa: S301 - made by the server above
        if data.get("documentation") == "first":
            pickle.write_bytes(pickles.dumps({**data, "documentation": "kept"}))
    assert _sts_documentation(kept, tmp_path / "models") == ["kept", "kept"]
    for pickle in kept.iterdir():  # unreadable: parsed again, and kept anew
        pickle.write_bytes(b"not a pickle")
    assert _sts_documentation(kept, tmp_path / "models") == ["first", "first"]
    assert len(list(kept.iterdir())) > 1 and all(pickle.read_bytes() != b"not a pickle" for pickle in kept.iterdir())
    ours.write_text(json.dumps({**model, "documentation": "changed"}))
    assert _sts_documentation(kept, tmp_path / "models") == ["changed", "changed"]


LAYER_USER = """
import os
import sys

def state_handler(event, context):
    import shared
    shared.SEEN.append(event["n"])
    return {"seen": shared.SEEN, "pid": os.getpid(), "ppid": os.getppid(), "imported_by": shared.IMPORTED_BY}

def level_handler(event, context):
    import settings
    return settings.LEVEL

def printer_handler(event, context):
    import loud
    return loud.VALUE

def optional_handler(event, context):
    import tries
    return tries.FOUND

def busy_handler(event, context):
    import busy
    return {"thread": busy.THREAD.is_alive(), "variable": os.environ.get("SET_BY_LAYER")}
"""


def _layer(files: dict[str, str]) -> list[dict]:
    from moto.awslambda.utils import get_backend

    layer = get_backend("123456789012", "eu-west-1").publish_layer_version(
        {"LayerName": "shared", "Content": {"ZipFile": base64.b64encode(function_zip(
            {f"python/{name}": text for name, text in files.items()}))}})
    return [{"Arn": layer.arn}]


def test_each_environment_has_a_fresh_copy_of_the_layers_modules_the_fork_server_imported() -> None:
    # The fork server imports the layer's modules once; each environment's state of them is still its own.
    layers = _layer({"shared.py": "import os\nSEEN = []\nIMPORTED_BY = os.getpid()\n"})
    one, two = (_function("app.state_handler", code=LAYER_USER, layers=layers, stage=stage) for stage in ("1", "2"))

    first, _, _ = _invoke(one, {"n": 1})
    again, _, _ = _invoke(one, {"n": 2})
    other, _, _ = _invoke(two, {"n": 3})  # another configuration: another environment, forked after the first

    assert first["imported_by"] == first["ppid"] != first["pid"]  # imported by the fork server, before the fork
    assert again["pid"] == first["pid"] and again["seen"] == [1, 2]  # a warm environment keeps its module state
    assert other["pid"] != first["pid"] and other["seen"] == [3]  # a new one starts from the module as imported


def test_a_layer_module_reading_a_variable_as_it_is_imported_sees_the_functions_value() -> None:
    layers = _layer({"settings.py": "import os\nLEVEL = os.environ.get('LAYER_LEVEL', 'unset')\n"})
    plain = _function("app.level_handler", code=LAYER_USER, layers=layers)
    tuned = _function("app.level_handler", code=LAYER_USER, layers=layers, stage="tuned")
    tuned.environment_vars["LAYER_LEVEL"] = "debug"

    assert _invoke(plain)[0] == "unset"
    assert _invoke(tuned)[0] == "debug"


def test_a_layer_module_printing_as_it_is_imported_prints_into_each_cold_starts_log() -> None:
    layers = _layer({"loud.py": "print('layer module imported')\nVALUE = 1\n"})

    for stage in ("1", "2"):
        result, errored, logs = _invoke(_function("app.printer_handler", code=LAYER_USER, layers=layers, stage=stage))
        assert not errored and result == 1
        assert "layer module imported" in logs


@pytest.mark.parametrize("starts", ["thread", "variable"])
def test_a_layer_module_starting_a_thread_or_setting_a_variable_as_it_is_imported_does_so_in_each_environment(
        starts: str) -> None:
    module = {"thread": "import threading, time\nTHREAD = threading.Thread(target=time.sleep, args=(60,), daemon=True)"
                        "\nTHREAD.start()\n",
              "variable": "import os, threading\nos.environ['SET_BY_LAYER'] = 'yes'\n"
                          "THREAD = threading.current_thread()\n"}
    layers = _layer({"busy.py": module[starts]})

    result, errored, _ = _invoke(_function("app.busy_handler", code=LAYER_USER, layers=layers))

    assert not errored and result == {"thread": True, "variable": "yes" if starts == "variable" else None}


def test_a_layer_module_finds_an_optional_module_the_functions_code_provides() -> None:
    layers = _layer({"tries.py": "try:\n    import extra\n    FOUND = extra.NAME\nexcept ImportError:\n"
                                 "    FOUND = None\n"})
    without = _function("app.optional_handler", code=LAYER_USER, layers=layers)
    bundled = _function("app.optional_handler", code=LAYER_USER, layers=layers, stage="bundled")
    bundled.code_bytes = function_zip({"app.py": LAYER_USER, "extra.py": "NAME = 'from the function'\n"})

    assert _invoke(without)[0] is None
    assert _invoke(bundled)[0] == "from the function"


# A handler module that begins by importing a layer package's submodule (as the template's handlers import
# expel_onboarding's): a layer server imports it once for the environments it forks.
IMPORTER = """
import os

from pkg import mod


def handler(event, context):
    mod.SEEN.append(event.get("n"))
    return {"pid": os.getpid(), "ppid": os.getppid(), "imported_by": mod.IMPORTED_BY, "seen": mod.SEEN,
            "value": mod.VALUE}
"""
SUBMODULE = "import os\nIMPORTED_BY = os.getpid()\nSEEN = []\n"


def _package(module: str) -> list[dict]:
    """A layer holding ``pkg`` (imported by the fork server, as a top-level module) and ``pkg/mod.py``."""
    return _layer({"pkg/__init__.py": "", "pkg/mod.py": SUBMODULE + module})


def _importer(layers: list[dict], stage: str = "test", code: str = IMPORTER, **variables: str) -> SimpleNamespace:
    fn = _function("app.handler", code=code, layers=layers, stage=stage)
    fn.environment_vars.update(variables)
    return fn


def test_the_layer_modules_a_handler_begins_by_importing_are_imported_once_for_each_environment_forked() -> None:
    layers = _package("VALUE = os.environ.get('LAYER_LEVEL', 'unset')\n")
    one, two = (_importer(layers, stage, LAYER_LEVEL="debug") for stage in ("1", "2"))
    seed, _, _ = _invoke(_importer(layers, "0", LAYER_LEVEL="debug"))
    assert seed["imported_by"] == seed["pid"]  # the first handler of its kind imports them itself

    first, _, logs = _invoke(one, {"n": 1})
    again, _, _ = _invoke(one, {"n": 2})
    other, _, _ = _invoke(two, {"n": 3})  # another configuration: another environment, of the same server

    assert "Init Duration" in logs
    assert first["imported_by"] == first["ppid"] == other["ppid"] != first["pid"]  # imported before the fork
    assert first["value"] == other["value"] == "debug"  # with the functions' value of the variable it read
    assert again["pid"] == first["pid"] and again["seen"] == [1, 2]  # a warm environment keeps its module state
    assert other["pid"] != first["pid"] and other["seen"] == [3]  # a new one starts from the module as imported


def test_a_layer_module_a_handler_imports_sees_each_functions_own_value_of_a_variable_it_reads() -> None:
    layers = _package("VALUE = os.environ.get('LAYER_LEVEL', 'unset')\n")

    values = [_invoke(_importer(layers, level, **({"LAYER_LEVEL": level} if level else {})))[0]["value"]
              for level in ("debug", "info", "", "debug")]

    assert values == ["debug", "info", "unset", "debug"]


@pytest.mark.parametrize("reads", ["AWS_SECRET_ACCESS_KEY", "HOME"])
def test_a_layer_module_reading_the_roles_credentials_or_its_home_is_imported_in_each_environment(
        reads: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never given to a server: the role's credentials (each function's own, secret) and what each environment
    # has its own value of. The environment is still a fork (of the server without the module).
    keys = iter(["first-secret", "second-secret"])
    monkeypatch.setattr(lambda_runner, "credential_provider", lambda fn: {
        "AWS_ACCESS_KEY_ID": "ASIAFUNCTION", "AWS_SECRET_ACCESS_KEY": next(keys), "AWS_SESSION_TOKEN": "t"})
    layers = _package(f"VALUE = os.environ.get({reads!r})\n")

    first, second = (_invoke(_importer(layers, stage))[0] for stage in ("1", "2"))

    for result in (first, second):
        assert result["imported_by"] == result["pid"] and result["ppid"] != os.getpid()
    if reads == "HOME":
        assert first["value"] != second["value"] and all(r["value"].startswith("/") for r in (first, second))
    else:
        assert (first["value"], second["value"]) == ("first-secret", "second-secret")


@pytest.mark.parametrize("does", ["print", "thread", "variable"])
def test_a_layer_module_a_handler_imports_that_prints_or_starts_a_thread_or_sets_a_variable_does_so_in_each_environment(
        does: str) -> None:
    module = {"print": "print('layer module imported')\nVALUE = 'printed'\n",
              "thread": "import threading, time\nTHREAD = threading.Thread(target=time.sleep, args=(60,), daemon=True)"
                        "\nTHREAD.start()\nVALUE = 'started'\n",
              "variable": "os.environ['SET_BY_LAYER'] = 'yes'\nVALUE = 'set'\n"}
    layers = _package(module[does])
    code = IMPORTER.replace('"value": mod.VALUE}', '"value": mod.VALUE, "variable": os.environ.get("SET_BY_LAYER"),'
                                                   ' "threads": __import__("threading").active_count()}')

    for stage in ("1", "2"):
        result, errored, logs = _invoke(_importer(layers, stage, code=code))
        assert not errored and result["imported_by"] == result["pid"]
        assert ("layer module imported" in logs) == (does == "print")
        assert result["threads"] == (2 if does == "thread" else 1)
        assert result["variable"] == ("yes" if does == "variable" else None)


def test_a_layer_module_a_handler_imports_after_code_of_its_own_is_imported_by_the_environment() -> None:
    # What the handler runs first may change what the import does (here: the variable it reads).
    layers = _package("VALUE = os.environ.get('LAYER_LEVEL', 'unset')\n")
    code = IMPORTER.replace("import os\n", "import os\nos.environ['LAYER_LEVEL'] = 'set by the handler'\n", 1)

    result, errored, _ = _invoke(_importer(layers, code=code))

    assert not errored and result["value"] == "set by the handler" and result["imported_by"] == result["pid"]


def test_a_new_layer_version_is_imported_anew_by_the_handlers_that_import_it() -> None:
    values = []
    for version in (1, 2):
        layers = _package(f"VALUE = {version}\n")
        _invoke(_importer(layers, "first"))
        result, errored, _ = _invoke(_importer(layers, "second"))
        assert not errored and result["imported_by"] == result["ppid"]
        values.append(result["value"])

    assert values == [1, 2]


def test_a_layer_module_one_handler_begins_by_importing_and_another_imports_after_code_of_its_own_is_its_own(
        ) -> None:
    # Both kinds of handler begin by importing pkg.sub: the server they share holds that, not pkg.mod, which the
    # second kind imports after it changed the variable pkg.mod reads.
    files = {"pkg/__init__.py": "", "pkg/sub.py": SUBMODULE,
             "pkg/mod.py": SUBMODULE + "VALUE = os.environ.get('LAYER_LEVEL', 'unset')\n"}
    layers = _layer(files)
    first = IMPORTER.replace("from pkg import mod\n", "from pkg import sub\nfrom pkg import mod\n", 1)
    later = IMPORTER.replace("from pkg import mod\n", "from pkg import sub\n"
                             "os.environ['LAYER_LEVEL'] = 'set by the handler'\nfrom pkg import mod\n", 1)
    later = later.replace('"value": mod.VALUE}', '"value": mod.VALUE, "sub": sub.IMPORTED_BY}')

    for stage in ("1", "2"):  # the second of its kind forks from a server holding pkg.sub and pkg.mod
        assert _invoke(_importer(layers, stage, code=first))[0]["value"] == "unset"
    result, errored, _ = _invoke(_importer(layers, "3", code=later))

    assert not errored and result["sub"] == result["ppid"]  # forked from the server that imported pkg.sub
    assert result["value"] == "set by the handler" and result["imported_by"] == result["pid"]


def test_a_layer_module_a_handler_imports_finds_an_optional_module_the_functions_code_provides() -> None:
    layers = _package("try:\n    import extra\n    VALUE = extra.NAME\nexcept ImportError:\n    VALUE = None\n")
    without = _importer(layers)
    bundled = _importer(layers, "bundled")
    bundled.code_bytes = function_zip({"app.py": IMPORTER, "extra.py": "NAME = 'from the function'\n"})

    assert _invoke(without)[0]["value"] is None
    assert _invoke(bundled)[0]["value"] == "from the function"


@pytest.mark.parametrize(("code", "imports"), [
    ('"""doc"""\nfrom __future__ import annotations\nimport os, json\nfrom a.b import c as d, e\nx = 1\nimport f\n',
     [["os", None], ["json", None], ["a.b", ["c", "e"]]]),
    ("import a\nimport own\nimport b\n", [["a", None]]),  # the function's own module: its code runs there
    ("import a\nfrom . import b\n", [["a", None]]),
    ("import a\ntry:\n    import b\nexcept ImportError:\n    pass\n", [["a", None]]),
    ("def handler(event, context):\n    import a\n", []),
    ("import a\ndef (:\n", []),  # a syntax error: the Init reports it
])
def test_the_leading_imports_of_a_handler_module_are_its_first_statements_importing_others_code(
        tmp_path: Path, code: str, imports: list) -> None:
    (tmp_path / "app.py").write_text(code)
    (tmp_path / "own.py").write_text("")

    assert lambda_runner.leading_imports(tmp_path, "app.handler") == imports
    assert lambda_runner.leading_imports(tmp_path, "package/app.handler") == []  # the package's code runs first


def test_two_handler_modules_share_the_leading_imports_of_the_same_modules_and_submodules(tmp_path: Path) -> None:
    for module in ("pkg/__init__.py", "pkg/models.py", "pkg/steps/one.py", "pkg/steps/two.py"):
        (tmp_path / "python" / module).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "python" / module).write_text("")
    one = [["lib", ["Logger"]], ["pkg.models", ["Config", "Trail"]], ["pkg.steps", ["one"]], ["pkg", ["models"]]]
    two = [["lib", ["Logger", "Metrics"]], ["pkg.drift", None], ["pkg.models", ["Config"]], ["pkg.steps", ["two"]]]

    shared = lambda_runner.shared_imports(one, two, tmp_path)

    # Names that are not modules of the layers are attributes: importing them imports nothing more.
    assert shared == [["lib", None], ["pkg.models", None], ["pkg.steps", None]]
    assert lambda_runner.runs_first(shared, one) and lambda_runner.runs_first(shared, two)
    assert lambda_runner.shared_imports(one, one, tmp_path) == [["lib", None], ["pkg.models", None],
                                                                ["pkg.steps", ["one"]], ["pkg", ["models"]]]
    assert not lambda_runner.runs_first([["pkg.steps", ["one"]]], two)  # two imports pkg.steps.two only
    assert not lambda_runner.runs_first([["pkg.steps", None], ["pkg.models", None]], two)  # not in this order


def test_a_function_initialized_proactively_serves_its_first_invocation_warm_and_reports_that_init() -> None:
    fn = _function("app.init_time_handler")
    lambda_runner.preinitialize(fn, "http://127.0.0.1:1")
    assert lambda_runner.pool().counts() == (1, 0)  # initialized, waiting for an invocation
    asked_at = time.time()

    first, errored, first_logs = _invoke(fn)
    second, _, second_logs = _invoke(fn)

    assert not errored and first["initialized_at"] < asked_at  # its Init ran before it was asked for
    assert first_logs.startswith("INIT_START Runtime Version: python:3.13")
    assert "\tInit Duration: " in first_logs.splitlines()[-1]
    assert second["pid"] == first["pid"] and "Init Duration" not in second_logs


def test_an_invocation_during_the_proactive_init_waits_for_it_instead_of_starting_another() -> None:
    # An Init of a second: the invocation comes while it runs (an Init over before this thread looked would
    # leave the loop below nothing to wait for, so it stops when the Init's thread does).
    fn = _function("app.init_time_handler", code=CODE + "\ntime.sleep(1.0)\n")
    initializing = threading.Thread(target=lambda_runner.preinitialize, args=(fn, "http://127.0.0.1:1"))
    initializing.start()
    while not lambda_runner.pool().counts()[1] and initializing.is_alive():  # the proactive Init is under way
        time.sleep(0.01)

    result, errored, logs = _invoke(fn)
    initializing.join()

    assert not errored and "Init Duration" in logs
    assert lambda_runner.pool().counts() == (1, 0)  # one environment, not two


def test_a_proactive_init_that_fails_leaves_the_first_invocation_to_start_anew_and_report_it() -> None:
    fn = _function("app.no_such_handler")
    lambda_runner.preinitialize(fn, "http://127.0.0.1:1")
    assert lambda_runner.pool().counts() == (0, 0)

    payload, errored, logs = _invoke(fn)

    assert errored and payload["errorType"] == "Runtime.HandlerNotFound"
    assert logs.startswith("INIT_START")


WRITER = """
import os, pathlib, shutil

def write_handler(event, context):
    def attempt(write):
        try:
            write()
        except OSError as exc:
            return {"errno": exc.errno, "message": str(exc)}
        return "written"

    def make_tmp():
        path = f"/tmp/to-move-{os.getpid()}"
        pathlib.Path(path).write_text("x")
        return path

    task, layer = os.environ["LAMBDA_TASK_ROOT"], event["layer_dir"]
    return {
        "task_file": attempt(lambda: open(os.path.join(task, "app.py"), "a").write("# changed")),
        "task_new": attempt(lambda: pathlib.Path(task, "new.txt").write_text("x")),
        "task_remove": attempt(lambda: os.remove(os.path.join(task, "app.py"))),
        "task_os_open": attempt(lambda: os.open(os.path.join(task, "fd.txt"), os.O_WRONLY | os.O_CREAT)),
        "task_rename": attempt(lambda: os.rename(make_tmp(), os.path.join(task, "moved.txt"))),
        "layer_file": attempt(lambda: open(os.path.join(layer, "helper.py"), "w").write("VALUE = 8")),
        "layer_dir": attempt(lambda: os.makedirs(os.path.join(layer, "made"))),
        "layer_tree": attempt(lambda: shutil.rmtree(layer)),
        "tmp": attempt(lambda: pathlib.Path("/tmp", f"written-{os.getpid()}").write_text("x")),
        "read": open(os.path.join(task, "app.py")).read().endswith("# changed"),
    }
"""


def test_a_function_cannot_write_its_code_or_layers_read_only_as_on_lambda(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.awslambda.utils import get_backend

    layer = get_backend("123456789012", "eu-west-1").publish_layer_version(
        {"LayerName": "helpers",
         "Content": {"ZipFile": base64.b64encode(function_zip({"python/helper.py": "VALUE = 7\n"}))}}
    )
    fn = _function("app.write_handler", code=WRITER, layers=[{"Arn": layer.arn}])
    shared = tmp_path / "shared"
    shared.mkdir()
    cache = lambda_runner.ArtifactCache(tmp_path / "root", shared)
    (tmp_path / "root").mkdir()
    monkeypatch.setattr(lambda_runner, "_cache", cache)
    opt = cache.opt_root(lambda_runner._layer_zips(fn))

    outcome, errored, _ = _invoke(fn, {"layer_dir": str(opt / "python")})

    assert not errored, outcome
    for attempt in ("task_file", "task_new", "task_remove", "task_os_open", "task_rename", "layer_file", "layer_dir",
                    "layer_tree"):
        assert outcome[attempt]["errno"] == 30, (attempt, outcome[attempt])
        assert outcome[attempt]["message"].startswith("[Errno 30] Read-only file system: "), outcome[attempt]
    assert outcome["tmp"] == "written" and outcome["read"] is False  # readable, and unchanged
    assert (opt / "python" / "helper.py").read_text() == "VALUE = 7\n"
    assert sorted(p.name for p in cache.task_root(fn.code_bytes).iterdir() if p.name != "__pycache__") == ["app.py"]
    task = cache.task_root(fn.code_bytes)
    for tree in (task, opt):  # by file mode too (what a user other than root meets, from any process)
        assert all(not path.stat().st_mode & 0o222 for path in [tree, *tree.rglob("*")]), tree

    lambda_runner.shutdown()
    lambda_runner._remove_later([str(task), str(opt)])  # the clean-up of what no local cloud used for a week
    deadline = time.monotonic() + 30
    while (task.exists() or opt.exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not task.exists() and not opt.exists()


def test_local_clouds_share_extracted_layers_and_the_bytecode_their_environments_compiled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.awslambda.utils import get_backend

    layer = get_backend("123456789012", "eu-west-1").publish_layer_version(
        {"LayerName": "helpers",
         "Content": {"ZipFile": base64.b64encode(function_zip({"python/helper.py": "VALUE = 7\n"}))}}
    )
    fn = _function("app.layer_handler", layers=[{"Arn": layer.arn}])
    shared, first_root, second_root = tmp_path / "shared", tmp_path / "first", tmp_path / "second"
    for directory in (shared, first_root, second_root):
        directory.mkdir()
    first = lambda_runner.ArtifactCache(first_root, shared)
    monkeypatch.setattr(lambda_runner, "_cache", first)
    assert _invoke(fn)[0] == 7
    lambda_runner.shutdown()
    first.cleanup()

    second = lambda_runner.ArtifactCache(second_root, shared)
    monkeypatch.setattr(lambda_runner, "_cache", second)
    opt = second.opt_root(lambda_runner._layer_zips(fn))

    assert opt == first.opt_root(lambda_runner._layer_zips(fn)) and opt.parent == shared
    assert list((opt / "python" / "__pycache__").glob("helper.*.pyc"))  # compiled by the first local cloud
    assert _invoke(fn)[0] == 7
