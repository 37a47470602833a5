"""Run a deployed Lambda function's artifact in Python 3.13 execution environments, kept warm as Lambda does.

moto can only run Lambda code in Docker. Here ``LambdaFunction._invoke_lambda`` is replaced by a runner
that takes the code zip and layer zips moto holds (what was deployed, not the source tree), extracts
them like ``/var/task`` and ``/opt``, and runs the handler with the interpreter named by
``LAMBDA_RUNTIME_PYTHON`` (a venv holding only boto3/botocore, as the Lambda runtime does), isolated
(``-I``: no user site, no PYTHON* variables, no script directory on sys.path; ``-u``: output survives
a kill) and with a clean environment: the function's Environment variables, the variables the Lambda
service sets, the execution role's credentials (or fake ones) and ``AWS_ENDPOINT_URL`` pointing back
at the emulator. A handler exception comes back as the Lambda error payload (``errorType``/
``errorMessage``/``stackTrace``) with FunctionError set, so ASL Retry/Catch match on the exception's
class name as on AWS.

Execution environments live as on AWS: an invocation with no idle environment of the function's
current code and configuration (code, layers, handler, memory, timeout, variables, role credentials)
starts one (a cold start: a new process imports the handler module and runs its init code, reported
as ``Init Duration``); later invocations reuse it, one at a time, with the module's state intact; a
concurrent invocation gets another environment. A timeout or a crash discards the environment, as
does a configuration change or credentials the local STS is about to expire; idle ones are stopped
after ``settings.idle_seconds`` (and beyond ``settings.max_idle``, the least recently used), all of
them when the local cloud stops. Each environment writes one log stream, as on AWS.

A cold start forks a fork server (``_lambda_bootstrap.py --fork-server``, one per set of layers) that has
imported what the runtime provides (boto3, botocore, the standard library they use) with the layers ahead
of it on sys.path, as Lambda orders them, and then the layers' own top-level modules; the fork then becomes
the environment (its variables, output, session, directory) and runs the handler's Init. A function whose code
shadows a preloaded module (or provides one the layers' import looked for), or whose variables differ from
those the layers' import read, gets a new interpreter instead, so every import resolves as it would on AWS.
``LOCAL_LAMBDA_FORK=0`` turns the fork server off.

A handler module that begins by importing the layers' modules (as the template's handlers import
``expel_onboarding``'s submodules and powertools) is forked from a layer server instead: a fork of the fork server
that has run leading import statements this handler module shares with another (it begins with them too, so the
server holds nothing the function's own code could import later), with the values of the variables they read
(powertools' service name and log level, which the template's Globals give every function of the stack), so the
stack's environments share one import of them; each variable such an import reads must agree, as above
(``WorkerPool.fork_server_for``).

Lambda may initialize an on-demand function's execution environment before any invocation asks for it
(proactive initialization, which AWS documents: the Init phase and the first invocation are then apart in
time). So does the runner, once a function is created: an environment is forked with the function's
variables and credentials and runs its Init at once, and the first invocation finds it warm, its log stream
starting with that Init and its REPORT line carrying the Init Duration. An invocation that arrives during
that Init waits for it instead of starting a second one; an Init that fails leaves the first invocation to
start anew and report the failure. Not under ``--iam-propagation-delay`` (taking the role's credentials
early would read the role before the function's first use), nor with ``LOCAL_LAMBDA_PREINIT=0``.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import hashlib
import io
import json
import logging
import math
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local_cloud import forking, iam_propagation, time_scale

REPO_ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = Path(__file__).resolve().parent / "_lambda_bootstrap.py"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIALOCALCLOUDTESTING",
    "AWS_SECRET_ACCESS_KEY": "local-cloud-secret",
    "AWS_SESSION_TOKEN": "local-cloud-session-token",
}
# The services whose botocore data (models, endpoint rules, endpoints) a fork server parses once for the
# environments it forks: those the local cloud serves to functions. Any other service is parsed when used.
PREPARSED_SERVICES = ("cloudformation", "cloudtrail", "cloudwatch", "events", "iam", "kms", "lambda", "logs",
                      "organizations", "s3", "s3control", "secretsmanager", "sns", "sqs", "stepfunctions", "sts")
# The variables each execution environment has its own value of (``Worker``): never a server's.
PER_ENVIRONMENT = ("HOME", "TMPDIR", "AWS_LAMBDA_LOG_STREAM_NAME")
# Layer servers started per /opt (each a fork of its fork server: see ``WorkerPool.fork_server_for``).
LAYER_SERVER_STARTS = 4
# Where fork servers keep botocore's parsed data for the next (``_lambda_bootstrap.preparse``), among the artifacts.
PARSED_BOTOCORE = "parsed-botocore"
# Lambda's limit on an on-demand function's Init phase; past it, Lambda runs init again inside the
# first invocation, bounded by the function's timeout. Here init simply gets both budgets.
INIT_LIMIT_SECONDS = 10.0

log = logging.getLogger(__name__)
_extract_lock = threading.Lock()
# Set by IAM enforcement: the function's execution role credentials, as Lambda provides them. Called
# for each invocation (cached by the local STS); an environment keeps the ones it started with, and
# new ones (a refresh before they expire) start a new environment. Without it: fake keys (root user).
credential_provider: Callable[[Any], dict[str, str]] | None = None


@dataclass
class Settings:
    """How execution environments are kept (``local serve --no-warm-lambdas`` sets keep_warm off)."""

    keep_warm: bool = field(default_factory=lambda: os.environ.get("LOCAL_LAMBDA_WARM", "1") != "0")
    fork: bool = field(default_factory=lambda: os.environ.get("LOCAL_LAMBDA_FORK", "1") != "0")
    preinitialize: bool = field(default_factory=lambda: os.environ.get("LOCAL_LAMBDA_PREINIT", "1") != "0")
    idle_seconds: float = 120.0
    max_idle: int = 32


settings = Settings()


def runtime_python() -> str:
    """The interpreter standing in for the Lambda python3.13 runtime."""
    configured = os.environ.get("LAMBDA_RUNTIME_PYTHON")
    path = Path(configured) if configured else REPO_ROOT / ".venv-lambda-runtime" / "bin" / "python"
    if not path.exists():
        raise FileNotFoundError(
            f"Lambda runtime interpreter {path} not found: run `make` (it creates .venv-lambda-runtime) "
            "or set LAMBDA_RUNTIME_PYTHON"
        )
    return str(path)


# Extracted code and layers, shared by every local cloud of this user: a build's artifacts are extracted once
# and their bytecode compiled once, with the runtime's interpreter, not again in each local cloud (half a second
# of CPU for the layer's modules at each first Init). Lambda mounts /var/task and /opt read-only: an extracted
# tree is then made read-only (file modes), and the runtime refuses a function's writes there with Lambda's
# EROFS (``_lambda_bootstrap``), so no function changes the code other local clouds run. Artifacts no local
# cloud used for a week are removed.
SHARED_ARTIFACTS = Path(tempfile.gettempdir()) / f"local-lambda-artifacts-{os.getuid()}"
UNUSED_ARTIFACT_SECONDS = 7 * 86400


def _shared_artifacts() -> Path | None:
    """The shared directory (made, and cleared of what nobody used for a week), or None when it is not ours."""
    try:
        SHARED_ARTIFACTS.mkdir(mode=0o700, exist_ok=True)
        if SHARED_ARTIFACTS.stat().st_uid != os.getuid() or SHARED_ARTIFACTS.is_symlink():
            return None
        now = time.time()
        stale = [str(entry) for entry in SHARED_ARTIFACTS.iterdir()
                 if now - entry.stat().st_mtime > (3600 if entry.name.startswith(".") else UNUSED_ARTIFACT_SECONDS)]
    except OSError:
        return None
    if stale:
        _remove_later(stale)
    return SHARED_ARTIFACTS


def _remove_later(paths: list[str]) -> None:
    """Remove ``paths`` in the background (unlinking a layer's thousand-odd files takes a second). Extracted trees
    are read-only: their directories are made writable first, or nobody but root could empty them."""
    try:
        remover = subprocess.Popen(["sh", "-c", 'chmod -R u+w -- "$@"; rm -rf -- "$@"', "remove", *paths],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
    except OSError:  # no shell here: remove them ourselves
        for path in paths:
            _remove_now(Path(path))
        return
    threading.Thread(target=remover.wait, name="remove-lambda-artifacts", daemon=True).start()


def _remove_now(tree: Path) -> None:
    def writable_and_again(function: Callable[..., Any], path: str, _: BaseException) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), 0o700)
            os.chmod(path, 0o700)
            function(path)

    shutil.rmtree(tree, onexc=writable_and_again)


def _seal(tree: Path) -> None:
    """Compile the tree's bytecode with the runtime's interpreter (an environment cannot write it later), then
    take every write permission away, as Lambda mounts /var/task and /opt read-only."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run([runtime_python(), "-I", "-m", "compileall", "-q", "-q", str(tree)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300, check=False)
    for directory, _, files in os.walk(tree):
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode & ~0o222)
        os.chmod(directory, os.stat(directory).st_mode & ~0o222)


class ArtifactCache:
    """Extracted code and layer zips, keyed by content hash so later environments skip the unzip.

    ``root`` holds this local cloud's environments (their /tmp and logs); ``artifacts`` the extracted zips:
    ``SHARED_ARTIFACTS`` unless a ``root`` is given (then ``root`` holds both)."""

    def __init__(self, root: Path | None = None, artifacts: Path | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="local-lambda-"))
        self.artifacts = artifacts or (root if root else _shared_artifacts() or self.root)
        self._used: set[Path] = set()

    def task_root(self, code: bytes) -> Path:
        return self._extract([code], "task")

    def opt_root(self, layers: list[bytes]) -> Path:
        """All layers extracted into one directory in order, later ones overwriting: Lambda's /opt."""
        return self._extract(layers, "opt")

    def _extract(self, zips: list[bytes], kind: str) -> Path:
        digest = hashlib.sha256(b"".join(_sha256(z) for z in zips)).hexdigest()[:24]
        target = self.artifacts / f"{kind}-{digest}"
        with _extract_lock:
            if not target.exists():
                staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.artifacts))
                for data in zips:
                    if data:
                        with zipfile.ZipFile(io.BytesIO(data)) as archive:
                            archive.extractall(staging)
                try:
                    staging.rename(target)
                except OSError:  # another local cloud extracted the same zips meanwhile
                    _remove_now(staging)
                    if not target.is_dir():
                        raise
            if target.stat().st_mode & 0o222:  # new, or extracted before trees were sealed
                _seal(target)
            if target not in self._used:  # used now: not unused for a week
                self._used.add(target)
                with contextlib.suppress(OSError):
                    os.utime(target)
        return target

    def cleanup(self) -> None:
        """Remove this local cloud's files without waiting (its environments', and the extracted code when it
        is not shared): unlinking a layer's thousand-odd files took a second at the end of every demo and test
        local cloud, which nothing after it reads."""
        _remove_later([str(self.root)])


# Digests of the zips invocations asked for, by object: a layer's zip (megabytes) is the same bytes object in
# moto for every invocation of every function that uses it, and hashing it took milliseconds per invocation.
# Each entry holds its bytes (immutable), so an id is never mistaken for a later object's.
_digests: dict[int, tuple[bytes, bytes]] = {}
_digests_lock = threading.Lock()
DIGESTS_KEPT = 64


def _sha256(data: bytes) -> bytes:
    with _digests_lock:
        known = _digests.get(id(data))
    if known is not None and known[0] is data:
        return known[1]
    digest = hashlib.sha256(data).digest()
    with _digests_lock:
        _digests[id(data)] = (data, digest)
        while len(_digests) > DIGESTS_KEPT:
            del _digests[next(iter(_digests))]
    return digest


_cache: ArtifactCache | None = None


def cache() -> ArtifactCache:
    global _cache
    if _cache is None:
        _cache = ArtifactCache()
    return _cache


class WorkerGone(Exception):
    """The environment's process ended (a crash, ``os._exit``, a kill)."""


class ForkServer(forking.Client):
    """A runtime process holding the preloaded runtime modules, forking execution environments for one /opt.

    The constructor starts it (or takes one forked from another: ``LayerServer``); ``ready()`` waits for its
    preload (once), so it can be started ahead of its first use."""

    def __init__(self, opt_root: Path, control: socket.socket | None = None,
                 process: forking.Forked | None = None) -> None:
        self.opt_root = opt_root
        if control is None or process is None:
            # What every environment of the runtime has: what the layers' modules, imported here, may read of it.
            control, process = forking.start(
                lambda control_fd: [runtime_python(), "-I", "-u", str(BOOTSTRAP), "--fork-server", str(opt_root),
                                    str(control_fd), str(cache().artifacts / PARSED_BOTOCORE),
                                    ",".join(PREPARSED_SERVICES)],
                env=_runtime_variables(), cwd=opt_root)
        super().__init__(str(opt_root), control, process)
        self.preloaded: frozenset[str] | None = None
        self.environ: dict[str, str | None] = {}  # the variables the layers' import read: name -> value (None: unset)
        self.layers: frozenset[str] = frozenset()  # the layers' top-level modules

    def ready(self) -> bool:
        """Wait for the server's preload (the first call); False when it did not start."""
        said = self.handshake(30)
        if said and self.preloaded is None:
            self.environ = dict(said.get("environ") or {})
            self.layers = frozenset(said.get("layers") or ())
            self.preloaded = frozenset(said["preloaded"])
        return self.preloaded is not None

    def serves(self, task_root: Path) -> bool:
        """Whether a fork resolves ``task_root``'s imports as a new interpreter would: none of its
        top-level modules is one the server preloaded."""
        names = {entry.name.split(".", 1)[0] for entry in task_root.iterdir()}
        return self.alive() and not names & (self.preloaded or frozenset())

    def fits(self, env: dict[str, str]) -> bool:
        """Whether an environment with these variables would have imported the layers' modules as the server did:
        each variable their import read has the value it saw there."""
        return all(env.get(name) == value for name, value in self.environ.items())

    def spawn(self, task_root: Path, cwd: Path, env: dict[str, str], fds: tuple[int, int, int]) -> forking.Forked:
        pid = self.fork({"task_root": str(task_root), "cwd": str(cwd), "env": env}, fds)
        return forking.Forked(self, pid, str(pid))


class LayerServer(ForkServer):
    """A fork of a fork server that has also run import statements of the layers' modules that handler modules begin
    with (``imports``: see ``leading_imports``, ``shared_imports``), with the variables ``environ`` set that this
    import reads: forks of it skip that part of the Init. It serves the environments of handler modules that begin
    with these statements (``runs_first``) and whose variables agree with what both imports read (``fits``): the
    functions of a stack, whose shared settings (powertools' service name and log level, set in the template's
    Globals) the layer's modules read as they are imported. What else a handler imports, its environment imports."""

    def __init__(self, parent: ForkServer, environ: dict[str, str | None], imports: list[list[Any]]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = parent.fork({"server": {"environ": environ, "imports": imports}}, (theirs.fileno(),))
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        super().__init__(parent.opt_root, ours, forking.Forked(parent, pid, str(pid)))
        self.imports = imports

    def stop(self) -> None:
        """End this server (its parent's process group holds it: a kill of that group ends it too)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self._socket.close()


def leading_imports(task_root: Path, handler: str) -> list[list[Any]]:
    """The import statements the handler module begins with (after its docstring): ``[module, fromlist or None]``
    each, in order, what the Init runs first. They end at the first other statement, or import of a module of the
    function's own code: what runs there may change what later imports do (set a variable, put a path first). A
    handler module inside a package has none: the package's own code runs first."""
    module = handler.rpartition(".")[0].replace("/", ".")
    if not module or "." in module:
        return []
    try:
        tree = ast.parse((task_root / f"{module}.py").read_bytes())
        own = {entry.name.partition(".")[0] for entry in task_root.iterdir()}
    except (OSError, SyntaxError, ValueError):
        return []
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    imports: list[list[Any]] = []
    for statement in body:
        if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
            continue
        if isinstance(statement, ast.Import):
            names: list[list[Any]] = [[alias.name, None] for alias in statement.names]
        elif isinstance(statement, ast.ImportFrom) and not statement.level and statement.module:
            names = [[statement.module, [alias.name for alias in statement.names]]]
        else:
            break
        if any(name.partition(".")[0] in own for name, _ in names):
            break
        imports += names
    return imports


def runs_first(statements: list[list[Any]], leading: list[list[Any]]) -> bool:
    """Whether a handler module beginning with the ``leading`` import statements runs each of ``statements`` first,
    in their order: a statement of the same module, importing at least the same names."""
    position = 0
    for module, names in statements:
        while position < len(leading):
            other, other_names = leading[position]
            position += 1
            if other == module and (not names or set(names) <= set(other_names or ())):
                break
        else:
            return False
    return True


def _submodule(opt_root: Path, module: str, name: str) -> bool:
    """Whether the layers have a module ``module.name`` (what ``from module import name`` imports, unless ``module``
    has an attribute of that name)."""
    for path in (opt_root / "python", opt_root / "python" / "lib" / "python3.13" / "site-packages"):
        package = path.joinpath(*module.split("."))
        if (package / name).is_dir() or (package / f"{name}.py").is_file():
            return True
    return False


def _beyond_top_level(statements: list[list[Any]]) -> bool:
    """Whether the statements import a module of the layers below the top level."""
    return any("." in module or names for module, names in statements)


def shared_imports(leading: list[list[Any]], other: list[list[Any]], opt_root: Path) -> list[list[Any]]:
    """The import statements two handler modules both begin with, in order: ``leading``'s of a module ``other`` also
    imports (after the last one matched), with only the submodules both import from it (``runs_first`` of each);
    other names are attributes, which import nothing more."""
    shared: list[list[Any]] = []
    position = 0
    for module, names in leading:
        for index in range(position, len(other)):
            if other[index][0] == module:
                both = [name for name in names or () if name in (other[index][1] or ())
                        and _submodule(opt_root, module, name)]
                shared.append([module, both or None])
                position = index + 1
                break
    return shared


class Worker:
    """One execution environment: a runtime process that serves one invocation at a time."""

    def __init__(self, function_arn: str, key: str, environment: dict[str, str], version: str,
                 task_root: Path, opt_root: Path, fork_server: ForkServer | None = None) -> None:
        self.function_arn = function_arn
        self.key = key
        self.created = time.monotonic()
        self.last_used = self.created
        self.init_ms: float | None = None  # the Init phase, reported in the first invocation's REPORT line
        self.init_output = ""
        # A proactive Init's log lines and duration, until the first invocation reports them.
        self.pending_init: tuple[str, float] | None = None
        self.directory = Path(tempfile.mkdtemp(prefix="env-", dir=cache().root))  # its /tmp
        self.log_path = self.directory.with_suffix(".log")
        self.stream = f"{datetime.now(UTC):%Y/%m/%d}/[{version}]{uuid.uuid4().hex}"
        self._offset = 0
        self._buffer = b""
        self._stopped = False
        self._stop_lock = threading.Lock()
        request_read, request_write = os.pipe()
        result_read, result_write = os.pipe()
        env = {**environment, "HOME": str(self.directory), "TMPDIR": str(self.directory),
               "AWS_LAMBDA_LOG_STREAM_NAME": self.stream}
        command = [runtime_python(), "-I", "-u", str(BOOTSTRAP), str(task_root), str(opt_root),
                   str(request_read), str(result_write)]
        self.process: subprocess.Popen[bytes] | forking.Forked
        with open(self.log_path, "wb") as output:
            if fork_server is not None and fork_server.fits(env):
                self.process = fork_server.spawn(task_root, self.directory, env,
                                                 (request_read, result_write, output.fileno()))
            else:
                self.process = subprocess.Popen(
                    command, env=env, cwd=str(self.directory), stdin=subprocess.DEVNULL, stdout=output,
                    stderr=subprocess.STDOUT, pass_fds=(request_read, result_write),
                    start_new_session=True,  # a kill reaches whatever the function started too
                )
        os.close(request_read)
        os.close(result_write)
        self._requests = os.fdopen(request_write, "wb", buffering=0)
        self._results = result_read

    def init(self, timeout: float) -> dict[str, Any] | None:
        """Wait for the Init phase: None when ready, else the error it reported; raises TimeoutError."""
        message = self._receive(timeout)
        self.init_ms = (time.monotonic() - self.created) * 1000
        self.init_output = self.output()
        return None if message.get("ready") else message

    def invoke(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one invocation and wait for its outcome; raises TimeoutError or WorkerGone."""
        try:
            self._requests.write(json.dumps(request).encode("utf-8") + b"\n")
        except (BrokenPipeError, OSError) as exc:
            raise WorkerGone(str(exc)) from exc
        return self._receive(timeout)

    def _receive(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            try:
                ready, _, _ = select.select([self._results], [], [], remaining)
                chunk = os.read(self._results, 65536) if ready else None
            except (OSError, ValueError) as exc:  # stopped meanwhile
                raise WorkerGone(str(exc)) from exc
            if chunk is None:
                raise TimeoutError
            if not chunk:
                raise WorkerGone("the runtime process exited")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return dict(json.loads(line))

    def output(self) -> str:
        """What the environment printed since the last call (its share of the log stream)."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return ""
        self._offset += len(data)
        return data.decode("utf-8", "replace")

    def exit_status(self) -> int:
        try:
            return self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode

    def max_memory_mb(self) -> int | None:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return math.ceil(int(line.split()[1]) / 1024)
        return None

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_kill(self) -> None:
        """Send the kill without waiting for it (``kill`` waits)."""
        for kill in (os.killpg, os.kill):  # its own session: the pid is the group id (a fork may not be there yet)
            try:
                kill(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def kill(self) -> None:
        """End the process and anything it started; its log file stays readable."""
        self.signal_kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("runtime process %s of %s did not stop", self.process.pid, self.function_arn)

    def stop(self) -> None:
        """Kill it and remove its pipes, /tmp and log file (once; later calls do nothing)."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self.kill()
        self._requests.close()
        os.close(self._results)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.log_path.unlink(missing_ok=True)


class WorkerPool:
    """The execution environments of every function, idle ones keyed by code and configuration."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[str, list[Worker]] = {}
        self._busy: set[Worker] = set()
        self._current: dict[str, str] = {}  # function ARN -> the key of its current configuration
        self._reaper: threading.Thread | None = None
        self._wake = threading.Event()
        self._fork_servers: dict[Path, ForkServer | None] = {}  # None: it could not start, use new processes
        self._fork_lock = threading.Lock()
        self._layer_servers: dict[Path, list[LayerServer]] = {}
        self._layer_variables: dict[Path, set[str]] = {}  # /opt -> the variables its layer servers' imports read
        self._layer_imports: dict[Path, list[list[list[Any]]]] = {}  # /opt -> the handlers' leading imports seen
        self._layer_starts: dict[Path, int] = {}
        self._layer_lock = threading.Lock()
        self._initializing: dict[str, threading.Event] = {}  # key -> set when its proactive Init is over
        self._generation = 0  # shutdowns so far: an Init that outlived one does not join the pool

    def fork_server(self, opt_root: Path, task_root: Path | None = None) -> ForkServer | None:
        """The fork server for ``opt_root`` when one may start this code (``task_root``), else None. Started
        on first use; without ``task_root``, only started (a function was created: see ``prepare``)."""
        if not settings.fork:
            return None
        with self._fork_lock:
            server = self._fork_servers.get(opt_root)
            if server is not None and not server.alive():
                server.stop()
                server = None
                self._fork_servers.pop(opt_root)
            if opt_root not in self._fork_servers:
                try:
                    server = ForkServer(opt_root)
                except Exception:
                    log.exception("Lambda fork server for %s: cold starts use new processes", opt_root)
                    server = None
                self._fork_servers[opt_root] = server
            if task_root is None:
                return server
            if server is not None and not server.ready():
                log.error("the Lambda fork server for %s did not start: cold starts use new processes", opt_root)
                server.stop()
                server = self._fork_servers[opt_root] = None
        return server if server is not None and server.serves(task_root) else None

    def fork_server_for(self, opt_root: Path, task_root: Path, environment: dict[str, str]) -> ForkServer | None:
        """The server to fork an environment of this code and these variables from: a layer server
        (``LayerServer``) that has run import statements of the layers' modules that this handler module also begins
        with (``runs_first``: so it holds nothing the function's own code could import later, after changing what
        the import sees), when one fits or can be made to; else ``fork_server``'s. A layer server runs the leading
        imports two handler modules share (``shared_imports``: the functions of a stack share most), so the first
        environment of each kind imports its own. The first layer server for /opt is started with none of the
        function's variables: the variables its import read that the environment sets are then given to the next
        (which may read more, up to ``LAYER_SERVER_STARTS``). Never the role's credentials, nor the variables each
        environment has its own value of: an import that reads them is the environment's own."""
        server = self.fork_server(opt_root, task_root)
        if server is None or not server.fits(environment):
            return server
        leading = [[module, names] for module, names in leading_imports(task_root, environment.get("_HANDLER", ""))
                   if module.partition(".")[0] in server.layers]
        if not leading:
            return server
        own = {**environment, **dict.fromkeys(PER_ENVIRONMENT, "")}  # a value no server's import saw
        with self._layer_lock:
            servers = self._layer_servers.setdefault(opt_root, [])
            for layered in list(servers):
                if not layered.alive():
                    servers.remove(layered)
                    layered.stop()
            serving = [layered for layered in servers if runs_first(layered.imports, leading)
                       and layered.fits(own) and layered.serves(task_root)]
            if serving:
                return max(serving, key=lambda layered: len(layered.imports))
            seen = self._layer_imports.setdefault(opt_root, [])
            # Worth a server: imports beyond the layers' top-level modules (the fork server holds those).
            imports = next((shared for shared in (shared_imports(leading, other, opt_root) for other in reversed(seen))
                            if _beyond_top_level(shared)), None)
            if leading not in seen:
                seen.append(leading)
            learned = self._layer_variables.setdefault(opt_root, set())
            while imports and self._layer_starts.get(opt_root, 0) < LAYER_SERVER_STARTS:
                self._layer_starts[opt_root] = self._layer_starts.get(opt_root, 0) + 1
                try:
                    layered = LayerServer(server, {name: environment.get(name) for name in sorted(learned)}, imports)
                except Exception:
                    log.exception("Lambda layer server for %s", opt_root)
                    break
                if not layered.ready():  # its import did what a copy cannot give every environment
                    layered.stop()
                    break
                if layered.fits(own) and layered.serves(task_root):
                    servers.append(layered)
                    return layered
                layered.stop()
                wanted = {name for name, value in layered.environ.items() if own.get(name) != value} - learned
                if not wanted or wanted & {*PER_ENVIRONMENT, *FAKE_CREDENTIALS}:
                    break
                learned |= wanted
        return server

    def acquire(self, function_arn: str, key: str, start: Callable[[], Worker]) -> tuple[Worker, bool]:
        """An idle environment of ``key`` (warm), or a new one (cold): (worker, cold). A proactive Init of
        ``key`` under way is waited for first."""
        with self._lock:
            initializing = None if self._idle.get(key) else self._initializing.get(key)
        if initializing is not None:
            initializing.wait(INIT_LIMIT_SECONDS)
        retired: list[Worker] = []
        worker = None
        with self._lock:
            if self._current.get(function_arn) != key:  # new code or configuration: old ones retire
                self._current[function_arn] = key
                for other in [k for k, found in self._idle.items() if found and found[0].function_arn == function_arn]:
                    if other != key:
                        retired.extend(self._idle.pop(other))
            idle = self._idle.get(key)
            if idle and settings.keep_warm:
                worker = idle.pop()
                self._busy.add(worker)
        for old in retired:
            old.stop()
        if worker is not None and worker.alive():
            return worker, False
        if worker is not None:  # died while idle
            self._discard(worker)
        worker = start()
        with self._lock:
            self._busy.add(worker)
            self._start_reaper()
        return worker, True

    def initialize(self, function_arn: str, key: str, start: Callable[[], Worker],
                   init: Callable[[Worker], bool]) -> None:
        """A proactive Init: a new environment of ``key`` that, once ``init`` succeeded, waits idle for the
        function's first invocation. Nothing when one of ``key`` is idle or initializing already."""
        with self._lock:
            if self._idle.get(key) or key in self._initializing or not settings.keep_warm:
                return
            done = self._initializing[key] = threading.Event()
            generation = self._generation
        worker = None
        try:
            worker = start()
            with self._lock:
                self._busy.add(worker)  # a shutdown meanwhile stops it
            ready = init(worker)
        except Exception:
            log.debug("proactive Init of %s", function_arn, exc_info=True)
            ready = False
        with self._lock:
            self._initializing.pop(key, None)
            if worker is not None:
                self._busy.discard(worker)
            keep = ready and worker is not None and generation == self._generation
            if keep:
                assert worker is not None
                if self._current.get(function_arn) != key:  # as an invocation of new code would: old ones retire
                    self._current[function_arn] = key
                worker.last_used = time.monotonic()
                self._idle.setdefault(key, []).append(worker)
                self._start_reaper()
        done.set()
        if worker is not None and not keep:
            worker.stop()

    def release(self, worker: Worker, reusable: bool) -> None:
        evicted: list[Worker] = []
        with self._lock:
            self._busy.discard(worker)
            keep = (reusable and settings.keep_warm and worker.alive()
                    and self._current.get(worker.function_arn) == worker.key)
            if keep:
                worker.last_used = time.monotonic()
                self._idle.setdefault(worker.key, []).append(worker)
                idle = sorted((w for ws in self._idle.values() for w in ws), key=lambda w: w.last_used)
                for oldest in idle[: max(len(idle) - settings.max_idle, 0)]:
                    self._idle[oldest.key].remove(oldest)
                    evicted.append(oldest)
        if not keep:
            worker.stop()
        for old in evicted:
            old.stop()

    def _discard(self, worker: Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
        worker.stop()

    def reap(self, now: float | None = None) -> int:
        """Stop environments idle for longer than ``settings.idle_seconds``; returns how many."""
        now = time.monotonic() if now is None else now
        expired: list[Worker] = []
        with self._lock:
            for key, idle in list(self._idle.items()):
                for worker in list(idle):
                    if now - worker.last_used > settings.idle_seconds or not worker.alive():
                        idle.remove(worker)
                        expired.append(worker)
                if not idle:
                    del self._idle[key]
        for worker in expired:
            worker.stop()
        return len(expired)

    def counts(self) -> tuple[int, int]:
        """(idle, busy) environments."""
        with self._lock:
            return sum(len(ws) for ws in self._idle.values()), len(self._busy)

    def shutdown(self) -> None:
        """Stop every environment, busy ones too (their invocations end as a crash would)."""
        with self._lock:
            idle = [w for ws in self._idle.values() for w in ws]
            busy = list(self._busy)
            self._idle.clear()
            self._busy.clear()
            self._current.clear()
            self._generation += 1
            self._wake.set()
            reaper, self._reaper = self._reaper, None
        for worker in idle + busy:  # all at once, then wait for each
            worker.signal_kill()
        for worker in idle:
            worker.stop()
        for worker in busy:  # its invocation sees the exit, answers, and releases (stops) it
            worker.kill()
        if reaper is not None:
            reaper.join(timeout=5)
        with self._layer_lock:
            layered = [server for servers in self._layer_servers.values() for server in servers]
            self._layer_servers.clear()
        with self._fork_lock:
            servers = [server for server in self._fork_servers.values() if server is not None]
            self._fork_servers.clear()
        for server in [*layered, *servers]:
            server.stop()

    def _start_reaper(self) -> None:  # with self._lock held
        if self._reaper is None:
            self._wake = threading.Event()
            wake = self._wake
            self._reaper = threading.Thread(target=self._reap_until, args=(wake,), name="lambda-reaper", daemon=True)
            self._reaper.start()

    def _reap_until(self, wake: threading.Event) -> None:
        while not wake.wait(min(settings.idle_seconds / 4, 15.0)):
            try:
                self.reap()
            except Exception:
                log.exception("stopping idle Lambda environments")


_pool = WorkerPool()


def pool() -> WorkerPool:
    return _pool


def shutdown() -> None:
    """Stop every execution environment (the local cloud is stopping)."""
    _pool.shutdown()


def _runtime_variables(run_time: str = "python3.13") -> dict[str, str]:
    """What Lambda sets in every execution environment of a runtime."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_RUNTIME_DIR": str(Path(runtime_python()).parent.parent),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{run_time}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    }


def _environment(fn: Any, endpoint_url: str, task_root: Path, timeout: int) -> dict[str, str]:
    """What Lambda sets in an execution environment at init (the per-environment ones are added by Worker)."""
    return {
        **_runtime_variables(fn.run_time or "python3.13"),
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": _version(fn),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout),
        "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
        "_HANDLER": fn.handler or "",
        "AWS_REGION": fn.region,
        "AWS_DEFAULT_REGION": fn.region,
        **(credential_provider(fn) if credential_provider else FAKE_CREDENTIALS),
        **{k: str(v) for k, v in (fn.environment_vars or {}).items()},
        # After the function's own variables: the emulator is the only cloud a local function may reach.
        "AWS_ENDPOINT_URL": endpoint_url,
        "_LOCAL_LAMBDA_FUNCTION_ARN": fn.function_arn,
        **({time_scale.SDK_BACKOFF_VARIABLE: repr(time_scale.scale())} if time_scale.scale() != 1 else {}),
    }


def _version(fn: Any) -> str:
    return str(fn.version if fn.version not in (1, "1") else "$LATEST")


@dataclass
class Outcome:
    payload: dict[str, Any]
    errored: bool
    reusable: bool
    output: str = ""
    status: str | None = None  # the REPORT line's Status when not a success: timeout, error
    error_type: str | None = None


def _run(worker: Worker, request: dict[str, Any], timeout: int) -> Outcome:
    """One invocation in ``worker``: its outcome, and whether the environment may serve another."""
    request_id = request["request_id"]
    try:
        result = worker.invoke(request, timeout)
    except TimeoutError:
        worker.kill()
        message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
        line = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ} {request_id} Task timed out after {timeout:.2f} seconds\n"
        return Outcome({"errorType": "Sandbox.Timedout", "errorMessage": message}, True, False,
                       worker.output() + line, "timeout")
    except WorkerGone:
        status = worker.exit_status()
        message = f"RequestId: {request_id} Error: Runtime exited with error: {_exit_text(status)}"
        return Outcome({"errorType": "Runtime.ExitError", "errorMessage": message}, True, False,
                       worker.output(), "error", "Runtime.ExitError")
    if "error" in result:
        return Outcome(result["error"], True, True, worker.output())
    return Outcome(result["result"], False, True, worker.output())


def _exit_text(status: int) -> str:
    return f"signal: {signal.Signals(-status).name.lower().removeprefix('sig')}" if status < 0 else \
        f"exit status {status}"


def _init(worker: Worker, fn: Any, timeout: int, request_id: str) -> tuple[str, float, Outcome | None]:
    """A cold start's Init phase: (its log lines, Init Duration in ms, the invocation's failure if it failed).

    An environment whose init failed serves nothing: the invocation fails and the next one starts anew.
    """
    runtime = str(fn.run_time or "python3.13").replace("python", "python:")
    logs = f"INIT_START Runtime Version: {runtime}\tRuntime Version ARN: local\n"
    try:
        reported = worker.init(INIT_LIMIT_SECONDS + timeout)
    except TimeoutError:
        worker.kill()
        message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
        error = {"errorType": "Sandbox.Timedout", "errorMessage": message}
        return logs + worker.output(), (time.monotonic() - worker.created) * 1000, Outcome(
            error, True, False, status="timeout")
    except WorkerGone:
        message = f"RequestId: {request_id} Error: Runtime exited with error: {_exit_text(worker.exit_status())}"
        error = {"errorType": "Runtime.ExitError", "errorMessage": message}
        return logs + worker.output(), (time.monotonic() - worker.created) * 1000, Outcome(
            error, True, False, status="error", error_type="Runtime.ExitError")
    logs += worker.init_output
    if reported is None:
        return logs, worker.init_ms or 0.0, None
    error = {**reported["error"], "requestId": request_id}
    return logs, worker.init_ms or 0.0, Outcome(error, True, False, status="error", error_type=error["errorType"])


def _layer_zips(fn: Any) -> list[bytes]:
    from moto.awslambda.utils import get_backend

    backend = get_backend(fn.account_id, fn.region)
    layer_zips = []
    for layer in fn.layers:
        version = backend.layers_versions_by_arn(layer["Arn"])
        layer_zips.append(version.code_bytes if version else b"")
    return layer_zips


def prepare(fn: Any) -> None:
    """What Lambda does while a new function is Pending, before its first invocation: its layers extracted
    (``/opt``) and the fork server for them started, so a cold start does not wait for the runtime's own
    start-up; then, in the background, an environment initialized proactively (``preinitialize``). A
    failure here leaves the work to the first invocation."""
    if not settings.fork:
        return
    try:
        pool().fork_server(cache().opt_root(_layer_zips(fn)))
    except Exception:
        log.debug("preparing %s", getattr(fn, "function_name", fn), exc_info=True)
        return
    if settings.preinitialize and settings.keep_warm and _endpoint_url and not iam_propagation.delay:
        threading.Thread(target=preinitialize, args=(fn, _endpoint_url), name=f"lambda-init-{fn.function_name}",
                         daemon=True).start()


def _environment_of(fn: Any, endpoint_url: str) -> tuple[Path, Path, int, dict[str, str], str]:
    """(task root, /opt, timeout, variables, key): what an environment of ``fn``'s current code and
    configuration is, and the key its warm environments are kept under."""
    task_root = cache().task_root(fn.code_bytes)
    opt_root = cache().opt_root(_layer_zips(fn))
    timeout = int(fn.timeout or 3)
    environment = _environment(fn, endpoint_url, task_root, timeout)
    key = hashlib.sha256(json.dumps([str(task_root), str(opt_root), environment], sort_keys=True).encode()).hexdigest()
    return task_root, opt_root, timeout, environment, key


def _starter(fn: Any, key: str, environment: dict[str, str], task_root: Path, opt_root: Path) -> Callable[[], Worker]:
    def start() -> Worker:
        fork_server = pool().fork_server_for(opt_root, task_root, environment)
        return Worker(fn.function_arn, key, environment, _version(fn), task_root, opt_root, fork_server)

    return start


def preinitialize(fn: Any, endpoint_url: str) -> None:
    """Lambda's proactive initialization: an environment of ``fn`` runs its Init now and waits, warm, for the
    first invocation (which reports that Init). Credentials the role cannot give yet, or an Init that fails,
    leave it to the first invocation, as if nothing had happened."""
    try:
        task_root, opt_root, timeout, environment, key = _environment_of(fn, endpoint_url)
    except Exception:
        log.debug("proactive Init of %s", getattr(fn, "function_name", fn), exc_info=True)
        return

    def init(worker: Worker) -> bool:
        logs, init_ms, failure = _init(worker, fn, timeout, "")
        if failure is not None:
            return False
        worker.pending_init = (logs, init_ms)
        return True

    with _primed_lock:
        primed = _primed.get(opt_root)
        first = primed is None
        if first:
            primed = _primed[opt_root] = threading.Event()
    assert primed is not None
    if not first:
        # The functions of a stack are created within moments of one another. The first Init with these
        # layers compiles the modules they share and writes their bytecode; the others wait for it, so that
        # each loads what it compiled instead of all compiling the same modules at once.
        primed.wait(INIT_LIMIT_SECONDS)
    try:
        pool().initialize(fn.function_arn, key, _starter(fn, key, environment, task_root, opt_root), init)
    finally:
        primed.set()


def invoke_artifact(fn: Any, event: Any, endpoint_url: str) -> tuple[str, bool, str, str]:
    """Run ``fn`` (a moto LambdaFunction) on ``event`` in one of its execution environments.

    Returns (payload JSON, errored, logs, log stream name), the shape moto's ``_invoke_lambda`` uses
    plus the stream the logs belong in.
    """
    task_root, opt_root, timeout, environment, key = _environment_of(fn, endpoint_url)
    worker, cold = pool().acquire(fn.function_arn, key, _starter(fn, key, environment, task_root, opt_root))
    request_id = str(uuid.uuid4())
    init_logs, init_ms, failure = _init(worker, fn, timeout, request_id) if cold else ("", None, None)
    if not cold and worker.pending_init is not None:  # initialized proactively: this invocation reports it
        (init_logs, init_ms), worker.pending_init = worker.pending_init, None
    started = time.monotonic()
    if failure is None:
        request = {
            "request_id": request_id,
            "event": event if isinstance(event, str) else json.dumps(event),
            "deadline_ms": int(time.time() * 1000) + timeout * 1000,
            "trace_id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
        }
        outcome = _run(worker, request, timeout)
    else:
        outcome = failure
    duration_ms = (time.monotonic() - started) * 1000
    memory = worker.max_memory_mb()
    pool().release(worker, outcome.reusable)

    report = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
              f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {fn.memory_size} MB")
    if memory is not None:
        report += f"\tMax Memory Used: {memory} MB"
    if init_ms is not None:
        report += f"\tInit Duration: {init_ms:.2f} ms"
    if outcome.status:
        report += f"\tStatus: {outcome.status}"
    if outcome.error_type:
        report += f"\tError Type: {outcome.error_type}"
    logs = (f"{init_logs}START RequestId: {request_id} Version: {_version(fn)}\n{outcome.output}"
            f"END RequestId: {request_id}\n{report}\n")
    return json.dumps(outcome.payload), outcome.errored, logs, worker.stream


def save_logs(fn: Any, stream: str, logs: str) -> None:
    """Append one invocation's output to its environment's stream of /aws/lambda/<function> in CloudWatch Logs."""
    fn.logs_backend.ensure_log_group(fn.logs_group_name)
    fn.logs_backend.ensure_log_stream(fn.logs_group_name, stream)
    now_ms = int(time.time() * 1000)
    events = [{"timestamp": now_ms, "message": line} for line in logs.splitlines() if line]
    if events:
        fn.logs_backend.put_log_events(fn.logs_group_name, stream, events)
def install(endpoint_url: str) -> None:
    """Patch moto's LambdaFunction so invocations run the artifact (and Event invocations do not block)."""
    from moto.awslambda.models import LambdaFunction

    global _endpoint_url
    _endpoint_url = endpoint_url

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        try:
            payload, errored, logs, stream = invoke_artifact(self, event if event is not None else {}, endpoint_url)
        except Exception as exc:  # the runner itself failed: report it like the service would
            log.exception("local Lambda runner failed for %s", self.function_name)
            return json.dumps({"errorType": "Runtime.Unknown", "errorMessage": str(exc)}), True, ""
        try:
            save_logs(self, stream, logs)
        except Exception:
            log.exception("could not store logs of %s", self.function_name)
        return payload, errored, logs

    original_invoke = LambdaFunction.invoke

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        """As moto's, plus: Event invocations run in the background (202 at once), as on AWS, and errors
        are marked Unhandled (the runtime's word for an exception escaping the handler)."""
        headers = request_headers or {}
        inv_type = headers.get("x-amz-invocation-type") or headers.get("X-Amz-Invocation-Type")
        if inv_type == "Event":
            thread = threading.Thread(
                target=original_invoke, args=(self, body, {}, {}), name=f"event-{self.function_name}", daemon=True
            )
            thread.start()
            return b""
        result = original_invoke(self, body, request_headers, response_headers)
        if response_headers.get("x-amz-function-error"):
            response_headers["x-amz-function-error"] = "Unhandled"
        if isinstance(result, bytes) and "x-amz-log-result" in response_headers:
            # The API returns only the last 4 KB of the log.
            tail = base64.b64decode(response_headers["x-amz-log-result"])[-4096:]
            response_headers["x-amz-log-result"] = base64.b64encode(tail).decode()
        return result

    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]
    LambdaFunction.invoke = invoke  # type: ignore[method-assign]
    _prepare_created_functions()


def _prepare_created_functions() -> None:
    """CreateFunction (also CloudFormation's) prepares the function's runtime (``prepare``)."""
    global _preparing
    from moto.awslambda.models import LambdaBackend

    if _preparing:
        return
    _preparing = True
    original = LambdaBackend.create_function

    def create_function(self: Any, spec: dict[str, Any]) -> Any:
        fn = original(self, spec)
        prepare(fn)
        return fn

    LambdaBackend.create_function = create_function  # type: ignore[method-assign]


_preparing = False
_endpoint_url: str | None = None  # the local cloud's, once ``install``ed: proactive Inits need it
_primed: dict[Path, threading.Event] = {}  # /opt -> set once the first proactive Init with it is over
_primed_lock = threading.Lock()

