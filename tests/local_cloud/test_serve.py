"""``local serve``'s command line behaviour."""

from __future__ import annotations

import socket

from tests.local_cloud.harness import free_port, run_cli


def test_busy_port_is_one_clear_line_and_a_failure_exit() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("local", "serve", "--port", str(port), "--workbench-port", str(free_port()), timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip() == f"port {port} is in use: stop the other process or pass --port"
    assert result.stdout == ""


def test_help_documents_the_schedule_interval() -> None:
    result = run_cli("local", "serve", "--help", timeout=60)
    assert result.returncode == 0
    assert "--schedule-interval" in result.stdout and "rate(1 minute)" in result.stdout
