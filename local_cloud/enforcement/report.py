"""``local serve --iam-report FILE``: every authorized call, per role, with the statement that allowed it.

One JSON line per distinct (principal, action, resource, statement), appended as it happens, so a test
can read the file while the local cloud still runs.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from local_cloud.iam import Decision


class Report:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: set[tuple[str, str, str, str]] = set()
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")

    def record(self, decision: Decision) -> None:
        principal = decision.principal
        if principal.kind != "assumed-role" or decision.matched is None:
            return  # the report is about what roles' grants allowed
        statement = decision.matched.describe()
        key = (principal.name, decision.action, decision.resource, statement)
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
            entry = {
                "role": principal.name,
                "role_arn": principal.role_arn,
                "session": principal.session_name,
                "action": decision.action,
                "resource": decision.resource,
                "policy": decision.matched.source,
                "statement": decision.matched.statement.label,
                "statement_index": decision.matched.statement.index,
                "granted": dict(decision.matched.statement.raw),
                "reason": decision.reason.value,
            }
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry, sort_keys=True) + "\n")


def read(path: Path) -> list[dict]:
    """The report's entries (for tests and people)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
