"""pytest-xdist's scheduling for ``make test``: a plugin ``tests/conftest.py`` registers only when pytest-xdist is
loaded, since pytest refuses a hook no installed plugin declares (``pytest -p no:xdist`` must still run)."""

from __future__ import annotations

from typing import Any

import pytest

# The e2e files on the local cloud tests/e2e/conftest.py serves once per pytest process (the package fixture
# ``local_cloud``), with the stacks it deploys once (``onboarded``, ``preflight_refused``): make test's workers
# (--dist loadfile) take them as one unit, so one worker starts that cloud and deploys those stacks, not each worker
# that happens to draw one of these files (a second cloud costs its start and, while it runs, its trails' deliveries).
# The e2e conftest refuses a collection where a file on that cloud is missing here.
SHARED_STACK_FILES = ("tests/e2e/test_onboarding_e2e.py", "tests/e2e/test_expel_side_e2e.py",
                      "tests/e2e/test_status_cli.py", "tests/e2e/test_existing_trail_e2e.py",
                      "tests/e2e/test_existing_trail_entry_e2e.py", "tests/e2e/test_iam_bite.py",
                      "tests/e2e/test_local_cloud.py")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None  # pytest-xdist's own scheduler for that mode
    from xdist.scheduler import LoadFileScheduling

    class SharedStacksTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return SHARED_STACK_FILES[0] if path in SHARED_STACK_FILES else path

    return SharedStacksTogether(config, log)
