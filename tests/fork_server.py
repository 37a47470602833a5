"""Programs the tests start again and again (``sam``, ``local serve``), started by forking a parent that has
imported them already.

A new Python process spends 1.5-2 s of CPU importing the SAM CLI or the local cloud before it does anything, and a
test run starts about sixty of them. A fork server imports a program's modules once (``preload``); each start is a
fork of it that takes the arguments, variables, working directory and output it is given and runs the program's
script as ``python SCRIPT ARGS`` runs it (``__main__``, ``sys.argv``, the script's folder first on ``sys.path``,
the exit status of ``sys.exit`` or of an uncaught exception, atexit handlers, waiting for non-daemon threads). What
the program does is unchanged; only the imports are shared, as the Lambda runner's fork server shares a runtime's.

The server runs this file as a script (standard library only; ``python -P``: nothing of the tests on its path):
``fork_server.py CONTROL_FD MODULE...`` where a MODULE ``a.b:f`` also calls ``f()`` once imported (a warm-up), and
``a.b:f=x,y`` calls ``f(["x", "y"])``.
The conversation with the server is local_cloud/forking.py's (the Lambda runner's fork servers speak it too).

Only what the preloaded modules read from the environment while they are imported is the server's (its own
environment: the first start's). The variables known to be read then are part of what a server serves
(``IMPORT_TIME_VARIABLES``): PYTHONPATH decides the path, and the terminal's size is read by SAM's table printer as
its module is imported; a start with other values of them gets a server of its own.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

if __name__ == "__main__":  # the server (python -P): the protocol's module by its path, before any preload
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "_local_cloud_forking", Path(__file__).resolve().parents[1] / "local_cloud" / "forking.py")
    forking = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
    _spec.loader.exec_module(forking)  # type: ignore[union-attr]
else:
    from local_cloud import forking

IMPORT_TIME_VARIABLES = ("PYTHONPATH", "COLUMNS", "LINES")


def _import_time(env: dict[str, str]) -> tuple[str, ...]:
    return tuple(env.get(name, "") for name in IMPORT_TIME_VARIABLES)


class ForkServer(forking.Client):
    """A started fork server for one script and its preloaded modules (the client side)."""

    def __init__(self, script: str, preload: Sequence[str], env: dict[str, str], ready_timeout: float = 60) -> None:
        self.script = script
        self.import_time = _import_time(env)
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - the server's own stderr, told when it fails
        started = forking.start(lambda control_fd: [sys.executable, "-P", __file__, str(control_fd), *preload],
                                env=env, stderr=self._errors)
        super().__init__(Path(script).name, *started)
        if not self.handshake(ready_timeout):
            self.stop()
            self._errors.seek(0)
            said = self._errors.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"the fork server for {script} did not start: {self.refusal}\n{said}")

    def serves(self, argv: Sequence[str], env: dict[str, str]) -> bool:
        """Whether a start of ``argv`` with ``env`` is one this server can fork."""
        return self.alive() and bool(argv) and argv[0] == self.script and _import_time(env) == self.import_time

    def popen(self, argv: Sequence[str], env: dict[str, str], cwd: str | Path, stderr_to_stdout: bool = True
              ) -> ForkedProcess:
        """``argv`` started as ``subprocess.Popen(argv, env=env, cwd=cwd, stdin=DEVNULL, stdout=PIPE,
        stderr=STDOUT, text=True)`` starts it (``stderr_to_stdout=False``: stderr also piped, apart)."""
        if not self.serves(argv, env):
            known = dict(zip(IMPORT_TIME_VARIABLES, self.import_time, strict=True))
            raise ValueError(f"this fork server starts {self.script} with {known}")
        out_read, out_write = os.pipe()
        err_read, err_write = (out_read, out_write) if stderr_to_stdout else os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            pid = self.fork({"argv": list(argv), "env": env, "cwd": str(cwd)}, [null, out_write, err_write])
        finally:
            os.close(null)
            os.close(out_write)
            if not stderr_to_stdout:
                os.close(err_write)
        stdout = open(out_read, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by the process's owner
        stderr = None if stderr_to_stdout else open(err_read, encoding="utf-8", errors="replace")  # noqa: SIM115
        return ForkedProcess(self, pid, list(argv), stdout, stderr)


class ForkedProcess(forking.Forked):
    """A program a fork server started: what the tests and ``local deploy`` use of ``subprocess.Popen``."""

    def __init__(self, server: ForkServer, pid: int, args: list[str], stdout: IO[str],
                 stderr: IO[str] | None) -> None:
        super().__init__(server, pid, args)
        self.stdout = stdout
        self.stderr = stderr

    def communicate(self, timeout: float | None = None) -> tuple[str | None, str | None]:
        """Read the output to its end and wait for the exit, as ``Popen.communicate`` (no input)."""
        read: dict[str, str] = {}
        readers = [threading.Thread(target=lambda n=name, s=stream: read.__setitem__(n, s.read()), daemon=True)
                   for name, stream in (("out", self.stdout), ("err", self.stderr)) if stream is not None]
        for reader in readers:
            reader.start()
        self.wait(timeout)
        for reader in readers:
            reader.join()
        return read.get("out"), read.get("err")

    def __enter__(self) -> ForkedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        for stream in (self.stdout, self.stderr):
            if stream is not None:
                stream.close()
        self.wait()


# One server per script, variables read at import and preload, started on first use in this process and stopped
# by ``stop_all``.
_servers: dict[tuple[str, tuple[str, ...], tuple[str, ...]], ForkServer] = {}
_servers_lock = threading.Lock()


def enabled() -> bool:
    """Fork servers are on unless TESTS_FORK_SERVER=0 (then every start is a new process, as before)."""
    return os.environ.get("TESTS_FORK_SERVER", "1") != "0"


def start(argv: Sequence[str], env: dict[str, str], cwd: str | Path, preload: Sequence[str],
          stderr_to_stdout: bool = True) -> ForkedProcess:
    """``argv`` (a Python script first) started by the fork server for it, its variables read at import
    (``IMPORT_TIME_VARIABLES``) and ``preload``."""
    key = (argv[0], _import_time(env), tuple(preload))
    with _servers_lock:
        server = _servers.get(key)
        if server is None or not server.serves(argv, env):
            if server is not None:
                server.stop()
            server = _servers[key] = ForkServer(argv[0], preload, env)
    return server.popen(argv, env, cwd, stderr_to_stdout)


def stop_all() -> None:
    with _servers_lock:
        for server in _servers.values():
            server.stop()
        _servers.clear()


# ------------------------------------------------------------------------------------------- the server
def serve(control_fd: int, preload: Sequence[str]) -> tuple[dict[str, Any], list[int]] | None:
    """Preload, then serve (``forking.serve``) until the client closes its end. In a fork, returns the request and
    its file descriptors (its caller runs the program there); the server itself returns None."""
    import gc
    import importlib

    # No collection while preloading: what the imports make lives as long as the server (a sixth of a local cloud's
    # preload went into collections that found nearly nothing to free).
    gc.disable()
    try:
        for entry in preload:
            module, _, call = entry.partition(":")
            call, _, arguments = call.partition("=")
            loaded = importlib.import_module(module)
            if call:
                getattr(loaded, call)(*([arguments.split(",")] if arguments else []))
        if threading.active_count() != 1:  # a fork copies only the thread that forks
            raise RuntimeError(f"preloading started threads: {[t.name for t in threading.enumerate()]}")
        # What the preload made stays out of the forks' garbage collections: a collection that visits an object
        # writes to it, which copies its memory page into the fork (copy-on-write), for every page of the preload.
        gc.collect()
        gc.freeze()
        gc.enable()
    except BaseException as error:  # noqa: BLE001 - told to the client, which starts programs as new processes
        forking.refuse(control_fd, f"{type(error).__name__}: {error}")
        raise SystemExit(1) from None
    return forking.serve(control_fd, {})


def become(request: dict[str, Any], fds: list[int]) -> None:
    """In the fork: what a new process of ``request["argv"]`` would have (output, variables, directory, path,
    random state), then its script as ``__main__``. Returns when the script ends; the interpreter's exit follows."""
    import runpy

    stdin, stdout, stderr = fds
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
    for fd in set(fds):
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    if "random" in sys.modules:
        sys.modules["random"].seed()
    if "tempfile" in sys.modules:
        sys.modules["tempfile"].tempdir = None  # TMPDIR is the program's own
    os.chdir(request["cwd"])
    script = request["argv"][0]
    sys.argv = list(request["argv"])
    sys.path.insert(0, str(Path(script).resolve().parent))  # as ``python SCRIPT`` puts the script's folder first
    runpy.run_path(script, run_name="__main__")


def _exit_as_the_interpreter_does(code: int) -> None:
    """The end of a Python process: non-daemon threads joined, atexit handlers run, output flushed; then the
    process ends without tearing down the server's modules one by one (a second of CPU for nothing)."""
    import atexit

    threading._shutdown()  # type: ignore[attr-defined]  # what the interpreter calls first at its exit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120  # as the interpreter's exit status when flushing its output fails
    os._exit(code)


if __name__ == "__main__":
    forked = serve(int(sys.argv[1]), sys.argv[2:])
    if forked is not None:
        try:
            become(*forked)
            status = 0
        except SystemExit as exit_:
            if exit_.code is None or isinstance(exit_.code, int):
                status = exit_.code or 0
            else:  # sys.exit("message"): the message to stderr, status 1
                print(exit_.code, file=sys.stderr)
                status = 1
        except KeyboardInterrupt:  # the interpreter's way: the traceback, then ended by the signal itself
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
            status = 130
        except BaseException:  # noqa: BLE001 - what an uncaught exception does to a process
            import traceback

            traceback.print_exc()
            status = 1
        _exit_as_the_interpreter_does(status)
