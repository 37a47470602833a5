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
# Every e2e file on the local cloud that conftest serves once per pytest process (the package fixture
# ``local_cloud``); the e2e conftest refuses a collection where one is missing here. With two workers they are one
# unit too, so one worker starts that cloud: a second one costs its start and, while it runs, its trails'
# deliveries, and the other worker's own-cloud files (Organizations, drift, faults) balance that unit. With more
# workers the unit would be the run's longest, so only the shared stacks' readers stay together.
SHARED_CLOUD_FILES = (*SHARED_STACK_FILES, "tests/e2e/test_existing_trail_e2e.py",
                      "tests/e2e/test_existing_trail_entry_e2e.py", "tests/e2e/test_iam_bite.py",
                      "tests/e2e/test_local_cloud.py")
ONE_CLOUD_UP_TO_WORKERS = 2
# Files that spend much of their time waiting on a local cloud (its compressed schedules, StackSet batches): three
# workers in them at once left a tenth of the CPU idle. While other work remains, at most this many workers run them
# and the others run the in-process files, which keep a core busy.
E2E = "tests/e2e/"
E2E_WORKERS = 2
# The files that take longest (make test on two cores: 60 to 10 s), longest first within e2e and in-process files: a
# worker draws these before the others, so that the run does not end with one worker in a long file while the others
# have nothing left. The rest follow in collection order.
LONGEST_FIRST = (
    "tests/e2e/test_onboarding_e2e.py", "tests/e2e/test_drift_doctor.py", "tests/e2e/test_organizations_e2e.py",
    "tests/e2e/test_local_cloud.py", "tests/e2e/test_organization_existing_trail_e2e.py",
    "tests/e2e/test_faults_e2e.py", "tests/e2e/test_existing_trail_e2e.py", "tests/e2e/test_iam_propagation_e2e.py",
    "tests/e2e/test_iam_bite.py", "tests/e2e/test_existing_trail_entry_e2e.py",
    "tests/local_cloud/test_fixture_app.py", "tests/steps/test_step08_organizations.py",
    "tests/unit/test_template_policies.py", "tests/steps/test_existing_trail.py",
    "tests/local_cloud/test_lambda_runner.py", "tests/local_cloud/test_stacksets.py",
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None  # pytest-xdist's own scheduler for that mode
    from xdist.scheduler import LoadFileScheduling

    class SharedStacksTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            together = SHARED_CLOUD_FILES if self.numnodes <= ONE_CLOUD_UP_TO_WORKERS else SHARED_STACK_FILES
            return together[0] if path in together else path

        def _assign_work_unit(self, node: Any) -> None:
            """The next file (LONGEST_FIRST, then collection order), but an in-process one when E2E_WORKERS other
            workers are in e2e files already (and an e2e one when no other work is left). A worker in e2e files keeps
            drawing them, so the e2e package's shared local cloud is started by few workers, once each."""
            in_e2e = sum(1 for other, units in self.assigned_work.items() if other is not node and any(
                scope.startswith(E2E) and not all(done.values()) for scope, done in units.items()))
            want_e2e = in_e2e < E2E_WORKERS
            fitting = [scope for scope in self.workqueue if scope.startswith(E2E) == want_e2e] or list(self.workqueue)
            rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
            self.workqueue.move_to_end(min(fitting, key=lambda scope: rank.get(scope, len(rank))), last=False)
            super()._assign_work_unit(node)

    return SharedStacksTogether(config, log)
