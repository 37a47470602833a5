"""A loop the local cloud runs beside its server: ``tick()`` every ``interval`` seconds, from ``start()`` until
``stop()`` (scheduled rules and alarms, CloudTrail's deliveries). One thread each, a daemon, so a server
that exits without stopping leaves none behind; a tick that raises is logged and the loop goes on.

Also how its HTTP servers (moto's, the Workbench emulator's) serve without waking up while idle (``serve`` and
``stop_serving``)."""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading

log = logging.getLogger(__name__)
# How often an idle HTTP server's loop wakes up on its own; ``stop_serving`` wakes it at once. Each wake-up
# costs about 0.1 ms of CPU: the 20 a second a stop-at-once poll needed were most of an idle local cloud's CPU.
SERVE_POLL_SECONDS = 5.0


def serve(server: socketserver.BaseServer, name: str) -> threading.Thread:
    """A daemon thread that runs ``server.serve_forever`` (not started); stop it with ``stop_serving``."""
    return threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SERVE_POLL_SECONDS}, name=name,
                            daemon=True)


def stop_serving(server: socketserver.BaseServer) -> None:
    """``server.shutdown()``, returning at once: the serving loop notices a shutdown only when its ``select``
    returns, so a connection to the server wakes it (until the loop has ended)."""
    stopper = threading.Thread(target=server.shutdown, name="stop-serving", daemon=True)
    stopper.start()
    address = server.server_address
    while stopper.is_alive():
        with contextlib.suppress(OSError):
            socket.create_connection((str(address[0]), int(address[1])), timeout=1).close()
        stopper.join(0.05)


class Loop:
    """Subclasses set ``interval`` (seconds) and ``thread_name`` and implement ``tick``."""

    interval: float
    thread_name = "background"
    stop_seconds = 10.0  # how long ``stop`` waits for a tick in progress
    _stopping: threading.Event | None = None
    _thread: threading.Thread | None = None

    def tick(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._stopping,), name=self.thread_name,
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.stop_seconds)

    def _run(self, stopping: threading.Event) -> None:
        while not stopping.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.exception("%s", self.thread_name)
