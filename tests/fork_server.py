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
Messages, one JSON object per SOCK_SEQPACKET packet: out ``{"ready": true}`` once, or ``{"ready": false,
"error"}``; in ``{"argv", "env", "cwd"}`` with stdin, stdout and stderr attached, out ``{"spawned": pid}`` for each,
``{"exited": pid, "status": returncode}`` when one ends (the server is their parent and reaps them). The client
closing its end stops the server.

Only what the preloaded modules read from the environment while they are imported is the server's (its own
environment: the first start's). The variables known to be read then are part of what a server serves
(``IMPORT_TIME_VARIABLES``): PYTHONPATH decides the path, and the terminal's size is read by SAM's table printer as
its module is imported; a start with other values of them gets a server of its own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

IMPORT_TIME_VARIABLES = ("PYTHONPATH", "COLUMNS", "LINES")


def _import_time(env: dict[str, str]) -> tuple[str, ...]:
    return tuple(env.get(name, "") for name in IMPORT_TIME_VARIABLES)


class ForkServer:
    """A started fork server for one script and its preloaded modules (the client side)."""

    def __init__(self, script: str, preload: Sequence[str], env: dict[str, str], ready_timeout: float = 60) -> None:
        self.script = script
        self.import_time = _import_time(env)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - the server's own stderr, told when it fails
        self.process = subprocess.Popen(
            [sys.executable, "-P", __file__, str(theirs.fileno()), *preload],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._errors,
            pass_fds=(theirs.fileno(),), start_new_session=True,
        )
        theirs.close()
        self._socket = ours
        self._spawn_lock = threading.Lock()
        self._changed = threading.Condition()
        self._spawned: list[int] = []
        self._exits: dict[int, int] = {}
        self._closed = False
        ours.settimeout(ready_timeout)
        try:
            ready = json.loads(ours.recv(1 << 20) or b"{}")
        except (OSError, ValueError) as error:
            ready = {"error": str(error)}
        if not ready.get("ready"):
            self.stop()
            self._errors.seek(0)
            said = self._errors.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"the fork server for {script} did not start: {ready.get('error', 'no answer')}\n{said}")
        ours.settimeout(None)
        threading.Thread(target=self._read, name=f"fork-server-{Path(script).name}", daemon=True).start()

    def serves(self, argv: Sequence[str], env: dict[str, str]) -> bool:
        """Whether a start of ``argv`` with ``env`` is one this server can fork."""
        return (not self._closed and self.process.poll() is None and bool(argv) and argv[0] == self.script
                and _import_time(env) == self.import_time)

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
        request = json.dumps({"argv": list(argv), "env": env, "cwd": str(cwd)}).encode("utf-8")
        try:
            with self._spawn_lock:
                socket.send_fds(self._socket, [request], [null, out_write, err_write])
                pid = self._next_spawned()
        finally:
            os.close(null)
            os.close(out_write)
            if not stderr_to_stdout:
                os.close(err_write)
        stdout = open(out_read, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by the process's owner
        stderr = None if stderr_to_stdout else open(err_read, encoding="utf-8", errors="replace")  # noqa: SIM115
        return ForkedProcess(self, pid, list(argv), stdout, stderr)

    def _next_spawned(self) -> int:
        deadline = time.monotonic() + 30
        with self._changed:
            while not self._spawned:
                if self._closed or time.monotonic() > deadline:
                    raise RuntimeError(f"the fork server for {self.script} stopped answering")
                self._changed.wait(0.1)
            return self._spawned.pop(0)

    def _read(self) -> None:
        while True:
            try:
                data = self._socket.recv(1 << 16)
            except OSError:
                data = b""
            with self._changed:
                if not data:
                    self._closed = True
                    self._changed.notify_all()
                    return
                message = json.loads(data)
                if "spawned" in message:
                    self._spawned.append(int(message["spawned"]))
                else:
                    self._exits[int(message["exited"])] = int(message["status"])
                self._changed.notify_all()

    def exit_status(self, pid: int) -> int | None:
        with self._changed:
            if pid in self._exits:
                return self._exits.pop(pid)
            if self._closed and not Path(f"/proc/{pid}").exists():
                return -signal.SIGKILL  # the server is gone and cannot tell
        return None

    def wait_for_exit(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)

    def stop(self) -> None:
        """End the server; what it started and what they started (its session) go with it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait(timeout=5)
        self._socket.close()


class ForkedProcess:
    """A program a fork server started: what the tests and ``local deploy`` use of ``subprocess.Popen``."""

    def __init__(self, server: ForkServer, pid: int, args: list[str], stdout: IO[str],
                 stderr: IO[str] | None) -> None:
        self.server = server
        self.pid = pid
        self.args = args
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.exit_status(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self.server.wait_for_exit(0.05)
        return self.returncode  # type: ignore[return-value]

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

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

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
def serve(control_fd: int, preload: Sequence[str]) -> Any:
    """Preload, say so, then fork a program per request until the client closes its end. In a fork, returns
    the request (its caller runs the program there); the server itself never returns."""
    import importlib
    import select

    control = socket.socket(fileno=control_fd)
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
        import gc

        gc.collect()
        gc.freeze()
    except BaseException as error:  # noqa: BLE001 - told to the client, which starts programs as new processes
        control.send(json.dumps({"ready": False, "error": f"{type(error).__name__}: {error}"}).encode())
        raise SystemExit(1) from None
    wake_read, wake_write = os.pipe()  # a child's exit wakes the loop at once
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def say(message: dict[str, Any]) -> None:
        control.send(json.dumps(message).encode("utf-8"))

    say({"ready": True})
    while True:
        while True:  # reap the programs that ended
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            say({"exited": pid, "status": os.waitstatus_to_exitcode(status)})
        ready = select.select([control, wake_read], [], [], 1.0)[0]
        if wake_read in ready:
            while True:
                try:
                    if not os.read(wake_read, 4096):
                        break
                except BlockingIOError:
                    break
        if control not in ready:
            continue
        data, fds, _, _ = socket.recv_fds(control, 1 << 20, 3)
        if not data:
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            control.close()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(wake_read)
            os.close(wake_write)
            request = json.loads(data)
            request["fds"] = fds
            return request
        for fd in fds:
            os.close(fd)
        say({"spawned": pid})


def become(request: dict[str, Any]) -> None:
    """In the fork: what a new process of ``request["argv"]`` would have (output, variables, directory, path,
    random state), then its script as ``__main__``. Returns when the script ends; the interpreter's exit follows."""
    import runpy

    stdin, stdout, stderr = request["fds"]
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
    for fd in set(request["fds"]):
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
            become(forked)
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
