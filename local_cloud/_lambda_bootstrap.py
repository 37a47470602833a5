"""The Lambda Python runtime inside one execution environment (LAMBDA_RUNTIME_PYTHON, started with -I).

This file is executed as a script by ``lambda_runner``; it imports nothing from the dev tree. Like the
AWS runtime it has two phases:

- Init, once per process (a cold start): put the function code (``/var/task``) and the layers
  (``/opt/python``) on ``sys.path``, import the handler module (running its module-level code), and say
  ``{"ready": ...}`` (or report the import failure and exit).
- Invoke, for each request read from the request pipe, one at a time: build the context, call the
  handler, write the outcome as one JSON line to the result pipe. Module state (loggers, cached
  clients) lives on between invocations, as in a warm execution environment on AWS.

Everything the function prints goes to stdout/stderr: the runner's log file for this environment. A
request pipe closed by the runner ends the process.

argv: task_root opt_root request_fd result_fd
env:  _HANDLER, AWS_LAMBDA_* and the function's variables (set once, by the runner)
request line: {"request_id", "event" (JSON text), "deadline_ms" (epoch ms), "trace_id"}

The same file is also the runner's fork server (``--fork-server opt_root control_fd kept services``): one process
per set of layers that has imported what the runtime itself provides (boto3, botocore and the standard
library they use; with the layers ahead of the runtime on sys.path, as Lambda orders them), parsed botocore's
data for the given services (comma-separated; see ``preparse``) and forks an execution environment on
request. The fork then sets the environment's variables, output and working directory (and what botocore
derived from the home directory) and runs the Init phase above, so a cold start does not parse boto3 again.
The runner forks only for code that shadows none of the preloaded modules (see ``lambda_runner``).

The server then imports the layers' own top-level modules too (``preload_layers``), as the function's Init would
import them with the layers first on sys.path: each fork gets a copy of them, as new as a fresh import, unless what
they did as they were imported depends on the environment. The server says which variables they read (and their
values: the variables every environment of the runtime has); the runner forks only environments whose variables
agree. A layer whose import did what a copy cannot give every environment (wrote or listed the environment,
printed, started a thread) is not preloaded: the server starts again with the runtime's modules only.

A server also forks servers (``become_server``): one that runs a handler module's leading imports of the layers'
modules (the submodules the function's Init imports first), with the variables the runner gives it set, watched the
same way; the environments forked from it skip that import. One whose import was not for every environment ends.
"""

import contextlib
import functools
import gc
import importlib
import json
import os
import sys
import time
import traceback

TASK_ROOT = OPT_ROOT = ""
REQUESTS = RESULTS = None


class LambdaContext:
    """The attributes and method the Python runtime's context object has."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ["_LOCAL_LAMBDA_FUNCTION_ARN"]
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def _send(message: dict) -> None:
    """One JSON line to the runner, after everything printed so far reached the log."""
    sys.stdout.flush()
    sys.stderr.flush()
    RESULTS.write(json.dumps(message).encode("utf-8") + b"\n")


def _frames(exc: BaseException) -> list[str]:
    """The traceback as the runtime reports it: without this bootstrap's own frames."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    return traceback.format_list(frames)


def _error(error_type: str, message: str, stack: list[str], request_id: str | None = None) -> dict:
    payload = {"errorMessage": message, "errorType": error_type, "stackTrace": stack}
    if request_id:
        payload["requestId"] = request_id
    sys.stderr.write(f"[ERROR] {error_type}: {message}\n" + "".join(stack) + "\n")
    return {"error": payload}


def layer_paths(opt_root: str) -> list[str]:
    return [os.path.join(opt_root, "python", "lib", "python3.13", "site-packages"), os.path.join(opt_root, "python")]


def resolve_account_hosts() -> None:
    """AWS's DNS for the hosts that name an account: S3 Control sends every call to
    ``<account id>.s3-control.<region>.amazonaws.com``, and botocore puts the account id before the local cloud's
    endpoint host the same way (``<account id>.127.0.0.1``), which no resolver knows: resolve it as the endpoint."""
    import re
    import socket
    from urllib.parse import urlsplit

    endpoint = urlsplit(os.environ.get("AWS_ENDPOINT_URL", "")).hostname
    if not endpoint or getattr(socket.getaddrinfo, "account_hosts", False):
        return
    original = socket.getaddrinfo
    account_host = re.compile(r"\d{12}\." + re.escape(endpoint))

    def getaddrinfo(host, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - socket's own signature
        if isinstance(host, str) and account_host.fullmatch(host):
            host = endpoint
        return original(host, *args, **kwargs)

    getaddrinfo.account_hosts = True
    socket.getaddrinfo = getaddrinfo


def init() -> object | None:
    """The Init phase: the handler function, or None after reporting why it cannot be loaded."""
    resolve_account_hosts()
    # What the runtime puts first on sys.path: the function code, then the layers' python dirs (a fork
    # server has put those there already).
    layers = layer_paths(OPT_ROOT)
    sys.path[:0] = [TASK_ROOT] + [path for path in layers if path not in sys.path]
    os.chdir(TASK_ROOT)
    mount_read_only(TASK_ROOT, OPT_ROOT)
    _scale_sdk_backoff()
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:  # the runtime reports every import-time failure this way
        _send(_error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}", _frames(exc)))
        return None
    handler = getattr(module, function_name, None)
    if handler is None:
        _send(_error("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'", []))
        return None
    _send({"ready": True})
    return handler


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def mount_read_only(*roots: str) -> None:
    """Lambda mounts /var/task and /opt read-only: a write there fails with ``OSError: [Errno 30] Read-only
    file system``. Here they are directories the runner shares between local clouds (read-only by file mode,
    which root ignores), so the function's writes under them get that error from here: open and os.open for
    writing, and os's calls that create, change or remove a path (relative to a ``dir_fd`` too). The import
    system's own bytecode write is let through (the trees are compiled beforehand; on Lambda it fails quietly)."""
    import builtins
    import errno
    import io

    real = tuple(os.path.realpath(root) for root in roots if root)

    def inside(path) -> bool:  # noqa: ANN001 - whatever os accepts
        if isinstance(path, int):
            return False
        try:
            where = os.fsdecode(os.path.realpath(os.fspath(path)))
        except (TypeError, ValueError):
            return False
        return any(where == root or where.startswith(root + os.sep) for root in real)

    def at(dir_fd, path):  # noqa: ANN001, ANN202 - a path relative to an open directory (shutil.rmtree's way)
        if dir_fd is None or isinstance(path, int) or os.path.isabs(path):
            return path
        try:
            return os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), os.fsdecode(path))
        except OSError:
            return path

    def refuse(*paths) -> None:  # noqa: ANN002
        for path in paths:
            if inside(path):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    original_open = io.open

    def guarded_open(file, mode="r", *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - open's own
        if any(flag in mode for flag in "wax+"):
            refuse(file)
        return original_open(file, mode, *args, **kwargs)

    builtins.open = io.open = guarded_open

    def guard(name: str, *written: tuple[int, str], flags: bool = False) -> None:
        """os.<name>, refused when a path it writes (argument number, and the keyword of the directory it is
        relative to) lies under a root; with ``flags``, only when its flags (os.open's) ask to write."""
        original = getattr(os, name)

        def guarded(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - os's own signatures
            if not flags or (args[1] if len(args) > 1 else kwargs.get("flags", 0)) & _WRITE_FLAGS:
                refuse(*(at(kwargs.get(fd), args[n]) for n, fd in written if n < len(args)))
            return original(*args, **kwargs)

        setattr(os, name, guarded)

    guard("open", (0, "dir_fd"), flags=True)
    for name in ("mkdir", "rmdir", "remove", "unlink", "chmod", "truncate", "utime", "mkfifo", "chown"):
        guard(name, (0, "dir_fd"))
    for name in ("rename", "replace"):
        guard(name, (0, "src_dir_fd"), (1, "dst_dir_fd"))
    guard("link", (1, "dst_dir_fd"))  # the new name is written; what it points to is only read
    guard("symlink", (1, "dir_fd"))


def _scale_sdk_backoff() -> None:
    """``local serve --time-scale``: the SDK's retry backoff takes that fraction of its time (every retry
    still happens). botocore sleeps a retry's delay in one place, whatever the retry mode. The variable is
    the runner's, not the function's: it is taken out before the handler's module is imported."""
    factor = os.environ.pop("_LOCAL_SDK_BACKOFF_SCALE", "")
    if not factor:
        return
    import types

    import botocore.endpoint

    scale = float(factor)
    botocore.endpoint.time = types.SimpleNamespace(sleep=lambda seconds: time.sleep(seconds * scale))


def invoke(handler, request: dict) -> dict:  # noqa: ANN001 - any callable the module defines
    request_id = request["request_id"]
    os.environ["_X_AMZN_TRACE_ID"] = request["trace_id"]
    try:
        event = json.loads(request["event"])
    except ValueError as exc:
        return _error("Runtime.UnmarshalError", f"Unable to unmarshal input: {exc}", [], request_id)
    try:
        result = handler(event, LambdaContext(request_id, request["deadline_ms"]))
    except Exception as exc:
        return _error(type(exc).__name__, str(exc), _frames(exc), request_id)
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        return _error("Runtime.MarshalError", f"Unable to marshal response: {exc}", [], request_id)
    return {"result": result}


def main(task_root: str, opt_root: str, request_fd: int, result_fd: int) -> None:
    global TASK_ROOT, OPT_ROOT, REQUESTS, RESULTS
    TASK_ROOT, OPT_ROOT = task_root, opt_root
    REQUESTS = os.fdopen(request_fd, "rb")
    RESULTS = os.fdopen(result_fd, "wb", buffering=0)
    handler = init()
    if handler is None:
        return
    for line in REQUESTS:
        _send(invoke(handler, json.loads(line)))


# What the Lambda runtime provides besides the standard library, imported once by the fork server (boto3.s3.inject:
# what boto3 imports for an S3 client).
PRELOAD = ("boto3", "boto3.session", "boto3.s3.inject", "botocore.session", "botocore.client", "botocore.endpoint",
           "botocore.parsers", "botocore.serialize", "botocore.credentials", "botocore.httpsession",
           "botocore.regions", "botocore.retries.standard", "json", "logging", "decimal", "uuid")


def preparse(services: list[str], kept: str = "") -> None:
    """Parse the botocore data a client of each service reads (its model, endpoint rules, the endpoints and
    partitions), once, for every environment this server forks. In a fork, botocore's first load of each
    of these files gets the parsed data (an untouched copy of its own: fork memory is copy-on-write), and
    any later load (another session's) a copy of it made from its pickle (2-5 times faster than botocore's parse
    into OrderedDicts, and the same objects): what a client sees is what botocore would read, minus ~0.1 s of JSON
    parsing per cold start. The sessions that make these clients also answer, for the forks, what every session
    works out the same way (``list_builtin_services_once``, ``share_pure_botocore_caches``).

    ``kept``: a directory of this user's where the pickles are kept for the next server, each under the file's
    path, size and modification time and this Python's and botocore's versions: it loads them instead of parsing
    the files again. A pickle that cannot be read is made again."""
    import hashlib
    import pickle
    import stat

    import botocore
    import botocore.session
    from botocore import loaders
    from botocore.loaders import JSONFileLoader

    parse = JSONFileLoader.load_file
    parsed: dict = {}
    pickles: dict[str, bytes] = {}
    extensions = tuple(getattr(loaders, "_JSON_OPEN_METHODS", ()))  # the files botocore tries, in its order
    versions = f"{sys.version}\0{getattr(botocore, '__version__', '')}\0{pickle.HIGHEST_PROTOCOL}"

    def kept_as(file_path: str) -> str | None:
        """Where the pickle of the file botocore reads for ``file_path``, as it is now, is kept (None: nowhere)."""
        for extension in extensions if kept else ():
            try:
                found = os.stat(file_path + extension)
            except OSError:
                continue
            if not stat.S_ISREG(found.st_mode):
                continue
            origin = f"{versions}\0{file_path}{extension}\0{found.st_size}\0{found.st_mtime_ns}"
            return os.path.join(kept, hashlib.sha256(origin.encode()).hexdigest()[:40] + ".pickle")
        return None

    def record(self, file_path):  # noqa: ANN001, ANN202 - botocore's signature
        where = kept_as(file_path)
        data = blob = None
        if where is not None:
            try:
                with open(where, "rb") as stored:
                    blob = stored.read()
                data = pickle.loads(blob)  # noqa: S301 - made by this user's servers, in a directory of its own
            except Exception:  # noqa: BLE001 - none kept (or unreadable): parsed as botocore parses it
                data = blob = None
        if data is None:
            data = parse(self, file_path)
            if data is None:
                return None
            blob = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
            if where is not None:
                keep(where, blob)
        parsed[file_path], pickles[file_path] = data, blob
        return data

    JSONFileLoader.load_file = record
    for shortcut in (list_builtin_services_once, share_pure_botocore_caches):
        try:
            shortcut()
        except Exception:  # noqa: BLE001, S112 - a botocore without these internals (a layer's own): none taken
            continue
    try:
        session = botocore.session.get_session()
        for service in services:
            try:
                session.create_client(service, region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                                      aws_access_key_id="preparse", aws_secret_access_key="preparse")  # noqa: S106
            except Exception:  # noqa: BLE001, S112 - not in this botocore: parsed when (if ever) used
                continue
    finally:
        JSONFileLoader.load_file = parse

    def load_file(self, file_path):  # noqa: ANN001, ANN202 - botocore's signature
        data = parsed.pop(file_path, None)
        if data is not None:
            return data
        blob = pickles.get(file_path)
        return parse(self, file_path) if blob is None else pickle.loads(blob)  # noqa: S301 - made here

    JSONFileLoader.load_file = load_file


def keep(path: str, blob: bytes) -> None:
    """Write ``blob`` to ``path`` whole or not at all (other servers read it meanwhile)."""
    import tempfile

    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, staging = tempfile.mkstemp(prefix=".", dir=os.path.dirname(path))
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as staged:
            staged.write(blob)
        os.replace(staging, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(staging)


RUNTIME_ONLY = "_LOCAL_LAMBDA_RUNTIME_ONLY"  # set for a server started again without the layers' modules


def layer_modules(opt_root: str) -> list[str]:
    """The top-level modules and packages in the layers' python directories."""
    names = set()
    for path in layer_paths(opt_root):
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        for entry in entries:
            name, dot, suffix = entry.name.partition(".")
            if not name.isidentifier():
                continue
            if entry.is_dir() and not dot and os.path.isfile(os.path.join(entry.path, "__init__.py")):
                names.add(name)
            elif entry.is_file() and suffix == "py":
                names.add(name)
        entries.clear()
    return sorted(names)


def preload_layers(opt_root: str) -> tuple[dict[str, str | None], set[str]] | None:
    """Import the layers' top-level modules (a function's imports of them then find them loaded), watched as
    ``watched`` says. A module whose import fails is left to the function's own import."""
    def load() -> bool:
        for module in layer_modules(opt_root):
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001, S112 - the function's own import fails (or not) as it would
                continue
        return True

    return watched(load)


def preload_imports(imports: list[list]) -> tuple[dict[str, str | None], set[str]] | None:
    """Run a handler module's leading import statements (``[module, fromlist or None]`` each, in order: see
    ``lambda_runner.leading_imports``), watched as ``watched`` says: what the handler's own Init would import first.
    None also when one fails (the function's Init then fails there, and imports none of those after it)."""
    def load() -> bool:
        for module, fromlist in imports:
            try:
                importlib.__import__(module, fromlist=fromlist or ())
            except Exception:  # noqa: BLE001 - the function's own import reports it
                return False
        return True

    return watched(load)


def watched(load) -> tuple[dict[str, str | None], set[str]] | None:  # noqa: ANN001 - a callable: True when done
    """Run ``load`` (imports), watching what it does: the variables it read, with the values it saw (None: unset),
    and the top-level names it looked for and did not find (code that provides one would change what the import
    did). None when ``load`` gave up, or did what a copy of it cannot give every environment: set or deleted a
    variable, read the environment as a whole, printed (output an environment's log would have), or left a thread
    running (a fork has only the thread that forks). Not watched: the working directory and sys.argv, which are
    the server's here (a library reading them as it is imported is rare); nor a variable the function's own code
    sets before it imports a module the fork server preloaded (``preload_layers``: a layer's top-level module),
    which it then finds imported with the server's value (``fits`` compares the variables an environment starts
    with). Layer servers are safe from that: they serve only handler modules that begin with their imports."""
    import tempfile
    import threading

    environ = type(os.environ)
    originals = {name: getattr(environ, name) for name in ("__getitem__", "__iter__", "__len__", "__setitem__",
                                                              "__delitem__", "__repr__", "copy")}
    read: dict[str, str | None] = {}
    wholly: list[str] = []

    def getitem(self, key):  # noqa: ANN001, ANN202 - os._Environ's signature
        if self is not os.environ:  # os.environb
            wholly.append("environb")
            return originals["__getitem__"](self, key)
        try:
            value = originals["__getitem__"](self, key)
        except KeyError:
            read.setdefault(key, None)
            raise
        read.setdefault(key, value)
        return value

    def whole(name: str):  # noqa: ANN202
        def method(self, *args):  # noqa: ANN001, ANN002, ANN202
            wholly.append(name)
            return originals[name](self, *args)
        return method

    missing: set[str] = set()

    class Missing:
        """Last on sys.meta_path: the top-level names no finder found."""

        @staticmethod
        def find_spec(name, path=None, target=None):  # noqa: ANN001, ANN205, ARG004 - the finder protocol
            if path is None:
                missing.add(name.partition(".")[0])

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as output:
        os.dup2(output.fileno(), 1)
        os.dup2(output.fileno(), 2)
        for name in originals:
            setattr(environ, name, getitem if name == "__getitem__" else whole(name))
        sys.meta_path.append(Missing)
        try:
            done = load()
        finally:
            sys.meta_path.remove(Missing)
            for name, method in originals.items():
                setattr(environ, name, method)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        printed = os.fstat(output.fileno()).st_size > 0
    if not done or wholly or printed or threading.active_count() > 1:
        return None
    return read, missing


def list_builtin_services_once() -> None:
    """Which services botocore's own data directory holds, listed once. Every session's loader lists them (for each
    kind of file it loads: models, endpoint rules) before it loads a model, by listing every API version directory of
    400-odd services: about an eighth of a cold start's CPU. Forks read this listing of the same (installed, unchanging)
    directory instead; other directories on the loader's search path (``~/.aws/models``, ``AWS_DATA_PATH``) are
    listed as botocore lists them, and the result is what botocore's own method returns."""
    from botocore import loaders

    builtin = loaders.Loader.BUILTIN_DATA_PATH
    extensions = tuple(loaders._JSON_OPEN_METHODS)  # what JSONFileLoader.exists looks for
    files: dict[str, list[frozenset[str]]] = {}  # service -> the file names in each of its API version directories
    for service in os.scandir(builtin):
        if service.is_dir():
            files[service.name] = [frozenset(entry.name for entry in os.scandir(version.path) if entry.is_file())
                                   for version in os.scandir(service.path) if version.is_dir()]
    botocores = loaders.Loader.list_available_services
    holding: dict[str, frozenset[str]] = {}  # kind of file -> the services holding one (each kind worked out once)

    @loaders.instance_cache
    def list_available_services(self, type_name):  # noqa: ANN001, ANN202 - botocore's signature
        if type(self.file_loader) is not loaders.JSONFileLoader:
            return botocores(self, type_name)
        services = set()
        for location in self._potential_locations():
            if location == builtin:
                if type_name not in holding:
                    names = {type_name + extension for extension in extensions}
                    holding[type_name] = frozenset(name for name, versions in files.items()
                                                   if any(names & held for held in versions))
                services.update(holding[type_name])
            else:
                elsewhere = loaders.Loader([location], self.file_loader, include_default_search_paths=False)
                services.update(botocores(elsewhere, type_name))
        return sorted(services)

    loaders.Loader.list_available_services = list_available_services


def share_pure_botocore_caches() -> None:
    """Two answers every botocore session works out again for each of the hundred-odd handlers it registers, that
    depend on nothing but their question: which name an event has under botocore's own aliases (each session's
    aliaser keeps its own cache), and whether a handler function takes ``**kwargs``. Here they are remembered
    across sessions, and the fork server's own sessions have answered them for its forks: a new session costs a
    third of the CPU it did."""
    import types
    import weakref

    from botocore import hooks

    aliases = dict(hooks.EVENT_ALIASES)  # the names below are these aliases' (a function may change botocore's)
    aliased: dict[str, str] = {}
    new_aliaser = hooks.EventAliaser.__init__

    def aliaser(self, event_emitter, event_aliases=None):  # noqa: ANN001, ANN202 - botocore's signature
        new_aliaser(self, event_emitter, event_aliases)
        if self._event_aliases == aliases:
            self._alias_name_cache = aliased

    hooks.EventAliaser.__init__ = aliaser
    takes_kwargs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    botocores = hooks.accepts_kwargs

    def accepts_kwargs(func):  # noqa: ANN001, ANN202 - botocore's signature
        plain = func.__func__ if isinstance(func, types.MethodType) else func
        if type(plain) is not types.FunctionType:  # partials, callable objects: as botocore does
            return botocores(func)
        if plain not in takes_kwargs:
            takes_kwargs[plain] = botocores(plain)
        return takes_kwargs[plain]

    hooks.accepts_kwargs = accepts_kwargs


def rehome_botocore() -> None:
    """The paths under the home directory that botocore works out when it is imported, worked out again for this
    environment's HOME (the fork server imported botocore without one), as a new interpreter would have them.
    A module the server did not import works them out itself when the function imports it."""
    def home(*parts: str) -> str:
        return os.path.expanduser(os.path.join("~", *parts))

    modules = sys.modules
    if "botocore.loaders" in modules:
        modules["botocore.loaders"].Loader.CUSTOMER_DATA_PATH = home(".aws", "models")
    if "botocore.credentials" in modules:
        modules["botocore.credentials"].SSOProvider._SSO_TOKEN_CACHE_DIR = home(".aws", "sso", "cache")
    if "botocore.tokens" in modules:
        modules["botocore.tokens"].SSOTokenProvider._SSO_TOKEN_CACHE_DIR = home(".aws", "sso", "cache")
    if "botocore.utils" in modules:
        cache = modules["botocore.utils"].JSONFileCache
        defaults = cache.__init__.__defaults__ or ()
        if defaults and defaults[0] == getattr(cache, "CACHE_DIR", None):  # its working_dir default: the same path
            cache.__init__.__defaults__ = (home(".aws", "boto", "cache"), *defaults[1:])
        cache.CACHE_DIR = home(".aws", "boto", "cache")


def serve_forks(opt_root: str, control_fd: int, kept: str, services: list[str]) -> None:
    """The fork server: preload, then serve (``serve``) until the runner closes its end. ``kept``: where botocore's
    parsed data is kept between servers (see ``preparse``)."""
    sys.path[:0] = layer_paths(opt_root)
    for name in PRELOAD:
        importlib.import_module(name)
    preparse(services, kept)
    read: dict[str, str | None] = {}
    missing: set[str] = set()
    if not os.environ.get(RUNTIME_ONLY):
        layers = preload_layers(opt_root)
        if layers is None:  # what the layers' import did is not for every environment: the runtime's modules only
            os.set_inheritable(control_fd, True)
            os.execve(sys.executable, sys.orig_argv, {**os.environ, RUNTIME_ONLY: "1"})  # noqa: S606 - this server again
        read, missing = layers
    os.environ.pop(RUNTIME_ONLY, None)
    serve(control_fd, opt_root, read, missing)


def serve(control_fd: int, opt_root: str, read: dict[str, str | None], missing: set[str]) -> None:
    """Say what this server holds, then fork (``forking.serve``) until the runner closes its end: environments
    (``{"task_root", "cwd", "env"}`` with the request, result and log file descriptors attached), or servers
    (``{"server": {"environ", "imports"}}`` with the new server's end of its socket attached: ``become_server``)."""
    forking = _load_sibling("forking")
    # preloaded: the names the function's code must not provide (see ``ForkServer.serves``); environ: the variables
    # the preload read, with the values an environment must have for its fork (see ``ForkServer.fits``); layers: the
    # layers' top-level modules (what a handler's imports may preload, see ``lambda_runner.leading_imports``).
    # Before each fork, what the server holds (the preloaded modules, botocore's parsed data) goes out of the
    # collector's reach: a fork's collections then neither walk it nor write to its pages (shared until written).
    forked = forking.serve(control_fd, {"preloaded": sorted({name.partition(".")[0] for name in sys.modules} | missing),
                                        "environ": read, "layers": layer_modules(opt_root)}, before_fork=gc.freeze)
    if forked is None:
        return
    request, fds = forked
    if "server" in request:
        become_server(request["server"], opt_root, read, missing, *fds)
    _become_environment(request, opt_root, *fds)


@functools.cache
def _load_sibling(name: str):  # noqa: ANN202 - a module of this folder
    """A standard-library-only module beside this file, by its path: nothing of the tree is on this runtime's path
    (nor is put there: the function's code must not find it), and it is kept out of ``sys.modules``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_local_cloud_{name}", os.path.join(os.path.dirname(__file__),
                                                                                        f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def become_server(spec: dict, opt_root: str, read: dict[str, str | None], missing: set[str], control_fd: int) -> None:
    """In a fork of a server: a server that also holds what a handler module's leading imports load (``spec``:
    ``imports``, see ``preload_imports``), imported with the variables ``environ`` set, the values the runner's
    environments for it have (each a variable an earlier import read). What this server's environments must then
    agree on is what both imports read: this one's and its parent's. Says ``{"ready": false}`` and ends when the
    import did what a copy cannot give every environment (see ``watched``). Never returns to the parent's loop."""
    code = 0
    try:
        # The runner forks a server only from one whose import agrees with these values (see ``ForkServer.fits``).
        for name, value in spec["environ"].items():  # None: unset
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        imported = preload_imports(spec["imports"])
        if imported is None:
            _load_sibling("forking").refuse(control_fd, "the imports did what a copy cannot give every environment")
            return
        serve(control_fd, opt_root, {**imported[0], **read}, missing | imported[1])
    except BaseException:  # noqa: BLE001 - what an uncaught exception does to a process
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _become_environment(request: dict, opt_root: str, request_fd: int, result_fd: int, log_fd: int) -> None:
    """In the fork: what a new runtime process would have (own session, output, variables, directory,
    random state), then the Init and Invoke phases. Never returns to the server's loop."""
    code = 0
    try:
        os.setsid()  # the runner kills the environment's process group
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(null)
        os.close(log_fd)
        os.environ.clear()
        os.environ.update(request["env"])
        rehome_botocore()
        time.tzset()
        if "random" in sys.modules:
            sys.modules["random"].seed()
        if "tempfile" in sys.modules:
            sys.modules["tempfile"].tempdir = None  # TMPDIR is the environment's own
        os.chdir(request["cwd"])
        main(request["task_root"], opt_root, request_fd, result_fd)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - what an uncaught exception does to a process
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    if sys.argv[1] == "--fork-server":
        serve_forks(sys.argv[2], int(sys.argv[3]), sys.argv[4],
                    [name for name in ",".join(sys.argv[5:]).split(",") if name])
    else:
        main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    sys.stdout.flush()
    sys.stderr.flush()
