"""Fork servers, both ends: a process that has imported once what many short-lived processes would each import
again, and forks one of them per request.

Two kinds use it: the Lambda runner's (execution environments forked from a runtime that has imported boto3,
``_lambda_bootstrap.serve_forks``) and the tests' (the SAM CLI and ``local serve``, ``tests/fork_server.py``).
What a fork then does is theirs; the conversation is this module's.

Messages, one JSON object per SOCK_SEQPACKET packet: out a ready message once (``{"ready": true, ...}`` with what the
server holds, or ``{"ready": false, "error"}``); in a request with file descriptors attached, out ``{"spawned": pid}``
for each; out ``{"exited": pid, "status": returncode}`` for each fork that ended (the server is their parent and
reaps them). The client closing its end stops the server.

Standard library only: the server end runs in interpreters that import nothing else of this tree (the Lambda
runtime's, started with ``-I``; the tests' server, with ``-P``), which load this file by its path.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any


def start(argv: Callable[[int], Sequence[str]], env: dict[str, str], cwd: str | Path | None = None,
          stderr: int | IO[bytes] = subprocess.DEVNULL) -> tuple[socket.socket, subprocess.Popen[bytes]]:
    """Start a server (``argv`` given the number of its end of the socket): the client's end, and the process."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        process = subprocess.Popen(
            list(argv(theirs.fileno())), env=env, cwd=None if cwd is None else str(cwd), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=stderr, pass_fds=(theirs.fileno(),),
            start_new_session=True,  # a group of its own: see ``stop``
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return ours, process


class Client:
    """The client end of a server (its socket, and its process: one ``start`` started, or a fork of another server):
    what it spawned and how each ended, from its messages."""

    def __init__(self, name: str, control: socket.socket, process: subprocess.Popen[bytes] | Forked) -> None:
        self.name = name
        self.process = process
        self._socket = control
        self._spawn_lock = threading.Lock()
        self._ready_lock = threading.Lock()
        self._changed = threading.Condition()
        self._ready: dict[str, Any] | None = None
        self._spawned: list[int] = []
        self._exits: dict[int, int] = {}
        self._closed = False

    def handshake(self, timeout: float) -> dict[str, Any]:
        """The server's ready message, waited for on the first call (``{}``: no answer, or not one that says ready).
        The server can thus start ahead of its first use."""
        with self._ready_lock:
            if self._ready is None:
                self._socket.settimeout(timeout)
                try:
                    message = json.loads(self._socket.recv(1 << 20) or b"{}")
                except (OSError, ValueError) as error:
                    message = {"error": str(error)}
                self._socket.settimeout(None)
                self._ready = message
                if message.get("ready"):
                    threading.Thread(target=self._read, name=f"fork-server-{self.name}", daemon=True).start()
                else:
                    self._closed = True
        return self._ready if self._ready.get("ready") else {}

    @property
    def refusal(self) -> str:
        """Why the server is not ready, as it said (or that it said nothing)."""
        return str((self._ready or {}).get("error", "no answer"))

    def alive(self) -> bool:
        return not self._closed and self.process.poll() is None

    def fork(self, request: dict[str, Any], fds: Sequence[int]) -> int:
        """Ask for a fork serving ``request`` with ``fds`` attached: its pid."""
        with self._spawn_lock:
            socket.send_fds(self._socket, [json.dumps(request).encode("utf-8")], list(fds))
            deadline = time.monotonic() + 30
            with self._changed:
                while not self._spawned:
                    if self._closed or time.monotonic() > deadline:
                        raise RuntimeError(f"the fork server for {self.name} stopped answering")
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
        """End the server and its process group: what it forked, unless a fork has left the group (a Lambda
        environment leads a session of its own, which its worker stops)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait(timeout=5)
        self._socket.close()


class Forked:
    """A process a fork server started: what its users use of ``subprocess.Popen`` (the server is its parent and
    tells its exit status)."""

    def __init__(self, server: Client, pid: int, args: Any) -> None:
        self.server = server
        self.pid = pid
        self.args = args
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


def refuse(control_fd: int, reason: str) -> None:
    """The server end when it cannot serve: say why (its client then does without it)."""
    message = {"ready": False, "error": reason}
    control = socket.socket(fileno=control_fd)
    control.send(json.dumps(message).encode("utf-8"))
    control.detach()


def serve(control_fd: int, ready: dict[str, Any], before_fork: Callable[[], None] = lambda: None,
          ) -> tuple[dict[str, Any], list[int]] | None:
    """The server end: say ``ready``, then fork once per request until the client closes its end (None). In a fork,
    returns the request and its file descriptors, for the caller to become what was asked."""
    import sys

    control = socket.socket(fileno=control_fd)
    wake_read, wake_write = os.pipe()  # a fork's exit wakes the loop at once (a client may be waiting for it)
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def say(message: dict[str, Any]) -> None:
        control.send(json.dumps(message).encode("utf-8"))

    say({**ready, "ready": True})
    while True:
        while True:  # reap the forks that ended
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            say({"exited": pid, "status": os.waitstatus_to_exitcode(status)})
        readable = select.select([control, wake_read], [], [], 1.0)[0]
        if wake_read in readable:
            while True:
                try:
                    if not os.read(wake_read, 4096):
                        break
                except BlockingIOError:
                    break
        if control not in readable:
            continue
        data, fds, _, _ = socket.recv_fds(control, 1 << 20, 3)
        if not data:
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        before_fork()
        pid = os.fork()
        if pid == 0:
            control.close()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(wake_read)
            os.close(wake_write)
            return json.loads(data), fds
        for fd in fds:
            os.close(fd)
        say({"spawned": pid})
