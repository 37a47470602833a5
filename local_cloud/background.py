"""A loop the local cloud runs beside its server: ``tick()`` every ``interval`` seconds, from ``start()`` until
``stop()`` (scheduled rules and alarms, CloudTrail's deliveries). One thread each, a daemon, so a server
that exits without stopping leaves none behind; a tick that raises is logged and the loop goes on."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


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
