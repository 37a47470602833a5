"""pytest-xdist's scheduling for ``make test``: a plugin ``tests/conftest.py`` registers only when pytest-xdist is
loaded, since pytest refuses a hook no installed plugin declares (``pytest -p no:xdist`` must still run)."""

from __future__ import annotations

from typing import Any

import pytest

# The e2e files that read the stacks tests/e2e/conftest.py deploys once per pytest process (``onboarded``,
# ``preflight_refused``): make test's workers (--dist loadfile) take them as one unit, so one worker deploys
# those stacks, not each worker that happens to draw one of these files.
SHARED_STACK_FILES = ("tests/e2e/test_onboarding_e2e.py", "tests/e2e/test_expel_side_e2e.py",
                      "tests/e2e/test_status_cli.py")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None  # pytest-xdist's own scheduler for that mode
    from xdist.scheduler import LoadFileScheduling

    class SharedStacksTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return SHARED_STACK_FILES[0] if path in SHARED_STACK_FILES else path

    return SharedStacksTogether(config, log)
