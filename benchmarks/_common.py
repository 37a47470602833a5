"""What the benchmarks share: the repository on the import path, the built template, the onboarding's create
execution, and stopping cleanly on SIGTERM (a client of the local cloud is ``tests.local_cloud.harness.client``).

Import it first (a benchmark runs as a script, so this folder is on the path): it makes the layer's package,
``local_cloud`` and ``tests`` importable.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "onboarding"), str(ROOT)]

from local_cloud.deploy import build_is_stale  # noqa: E402
from tests.local_cloud.harness import client, sam_build  # noqa: E402

log = logging.getLogger("benchmark")


def built_template(scratch: Path) -> Path:
    """make's fresh ``.aws-sam/build`` when there is one, else ``sam build`` into ``scratch``."""
    made = ROOT / ".aws-sam" / "build" / "template.yaml"
    if not build_is_stale(made, ROOT):
        return made
    log.info("building the template (sam build) ...")
    return sam_build(ROOT / "template.yaml", scratch / "build")


def create_execution(url: str, stack: str) -> dict[str, Any]:
    """``describe_execution`` of the onboarding execution that created ``stack``."""
    sfn = client(url, "stepfunctions")
    machines = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
                if m["name"] == f"{stack}-onboarding"]
    if not machines:
        raise RuntimeError(f"{stack}: no state machine")
    executions = [e for e in sfn.list_executions(stateMachineArn=machines[0])["executions"]
                  if e["name"].startswith("create-")]
    if not executions:
        raise RuntimeError(f"{stack}: no create execution")
    return dict(sfn.describe_execution(executionArn=executions[0]["executionArn"]))


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, through the ``finally`` and ``with`` blocks that stop the local cloud."""

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
