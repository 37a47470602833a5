"""Test helpers shared by the suites."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

from botocore.client import BaseClient

# Read-only API prefixes: anything else that reaches AWS counts as a mutation.
READ_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "Check", "Search", "Select", "Receive")


@contextlib.contextmanager
def count_mutating_calls() -> Iterator[list[str]]:
    """Collect ``service.Operation`` for every mutating AWS call made while the block runs.

    Wraps botocore's single entry point for API calls, so it sees every client however made.
    """
    calls: list[str] = []
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if not operation_name.startswith(READ_PREFIXES):
            calls.append(f"{self.meta.service_model.service_name}.{operation_name}")
        return original(self, operation_name, api_params)

    with mock.patch.object(BaseClient, "_make_api_call", record):
        yield calls
