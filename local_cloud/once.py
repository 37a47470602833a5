"""The one guard every patch module's ``install``/``apply`` shares: patch moto once per process.

A second call returns at once, so ``local serve``, the in-process tests and each module that needs another's
patch can all call it. The flag is set only when the install returns, so one that raised is tried again.
The lock is re-entrant: an install that calls another (``moto_patches.apply`` calls them all) cannot block
itself, and two threads never patch the same method twice (a double wrap would run a check twice).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable


def once(install: Callable[[], None]) -> Callable[[], None]:
    """``install``, run the first time the result is called; later calls do nothing."""
    lock = threading.RLock()
    done = False

    @functools.wraps(install)
    def guarded() -> None:
        nonlocal done
        with lock:
            if done:
                return
            install()
            done = True

    return guarded
