"""``local serve``'s command line behaviour."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.local_cloud.harness import REPO, child_env, cli_command, free_port, run_cli_process

# Generous: a stop takes a second or two, many more on a machine busy with a parallel test run.
STOP_SECONDS = 60


def test_busy_port_is_one_clear_line_and_a_failure_exit() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli_process("local", "serve", "--port", str(port), "--workbench-port", str(free_port()),
                                 timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip() == f"port {port} is in use: stop the other process or pass --port"
    assert result.stdout == ""


def test_help_documents_the_schedule_interval() -> None:
    result = run_cli_process("local", "serve", "--help", timeout=60)
    assert result.returncode == 0
    assert "--schedule-interval" in result.stdout and "rate(1 minute)" in result.stdout


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, nor a zombie nobody reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_sigterm_stops_it_and_frees_its_ports() -> None:
    port, workbench_port = free_port(), free_port()
    serve = subprocess.Popen(cli_command() + ["local", "serve", "--port", str(port), "--workbench-port",
                                              str(workbench_port)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env(), cwd=REPO)
    try:
        assert serve.stdout is not None
        for line in serve.stdout:
            if line.startswith("local cloud ready"):
                break
        assert _listening(port) and _listening(workbench_port)
        serve.send_signal(signal.SIGTERM)
        rest = serve.communicate(timeout=STOP_SECONDS)[0]
    finally:
        serve.kill()
    assert serve.returncode == 0
    assert rest.splitlines()[-1] == "stopping the local cloud"
    assert not _listening(port) and not _listening(workbench_port)


# A parent that starts ``local serve``, says its pid once it is ready, then waits to be killed.
PARENT = """
import subprocess, sys, time
serve = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
print(serve.pid, flush=True)
for line in serve.stdout:
    if line.startswith("local cloud ready"):
        print("ready", flush=True)
        break
time.sleep(600)
"""


def test_it_stops_when_the_process_that_started_it_is_killed() -> None:
    """A test run killed (SIGKILL: nothing stops its local clouds) leaves no local cloud running."""
    port = free_port()
    command = cli_command() + ["local", "serve", "--port", str(port), "--workbench-port", str(free_port())]
    parent = subprocess.Popen([sys.executable, "-c", PARENT, *command], stdout=subprocess.PIPE, text=True,
                              env=child_env(), cwd=REPO)
    assert parent.stdout is not None
    serve_pid = int(parent.stdout.readline())
    try:
        assert parent.stdout.readline().strip() == "ready"
        assert _running(serve_pid) and _listening(port)
        parent.kill()
        parent.wait()
        assert _gone_within(serve_pid, STOP_SECONDS), "local serve still runs after its parent was killed"
        assert not _listening(port)
    finally:
        parent.kill()
        if _running(serve_pid):
            os.kill(serve_pid, signal.SIGKILL)


def _one_request_logged_at(level: int, monkeypatch) -> list[str]:  # noqa: ANN001 - pytest's MonkeyPatch
    """The request lines werkzeug formats for one request to the local cloud's request handler."""
    import logging
    import threading
    import urllib.request

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    from local_cloud.server import HOST, request_handler

    formatted: list[str] = []
    original = MotoRequestHandler.log_request
    monkeypatch.setattr(MotoRequestHandler, "log_request",
                        lambda self, code="-", size="-": (formatted.append(f"{self.path} {code}"),
                                                          original(self, code, size))[-1])
    werkzeug_log = logging.getLogger("werkzeug")
    previous = werkzeug_log.level
    werkzeug_log.setLevel(level)

    def app(environ, start_response):  # noqa: ANN001, ANN202 - WSGI's signature
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    server = make_server(HOST, 0, app, threaded=True, request_handler=request_handler())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://{HOST}:{server.server_address[1]}/probe") as answer:  # noqa: S310
            assert answer.read() == b"ok"
    finally:
        server.shutdown()
        server.server_close()
        werkzeug_log.setLevel(previous)
    return formatted


def test_request_lines_are_made_only_when_werkzeugs_logger_would_show_them(monkeypatch) -> None:  # noqa: ANN001
    import logging

    assert _one_request_logged_at(logging.ERROR, monkeypatch) == []  # local serve without --verbose
    assert _one_request_logged_at(logging.INFO, monkeypatch) == ["/probe 200"]  # --verbose
    assert _one_request_logged_at(logging.NOTSET, monkeypatch) == ["/probe 200"]  # werkzeug's own default


def test_a_server_that_polls_rarely_stops_when_asked_and_answers_until_then() -> None:
    import threading
    import urllib.request

    from local_cloud.background import stop_serving
    from local_cloud.server import HOST, MotoServer
    from local_cloud.workbench_emulator import WorkbenchEmulator

    moto, workbench = MotoServer(0), WorkbenchEmulator(port=0)
    moto.start()
    workbench.start()
    with urllib.request.urlopen(f"http://{HOST}:{moto.port}/moto-api/data.json") as answer:  # noqa: S310
        assert answer.status == 200
    moto.stop()
    workbench.stop()
    assert not moto._thread.is_alive() and workbench._thread is not None and not workbench._thread.is_alive()

    # A loop that would otherwise notice the shutdown only after an hour.
    from werkzeug.serving import make_server

    server = make_server(HOST, 0, lambda environ, start_response: [], threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 3600}, daemon=True)
    thread.start()
    stop_serving(server)
    thread.join(timeout=STOP_SECONDS)
    server.server_close()
    assert not thread.is_alive()


def _echo_server() -> Any:
    """A MotoServer whose application, in place of moto's, answers each request with its connection's client port
    and the body it read (none for /unread, whose body it leaves unread)."""
    from local_cloud.server import MotoServer

    def app(environ, start_response):  # noqa: ANN001, ANN202 - WSGI's signature
        length = int(environ.get("CONTENT_LENGTH") or 0)
        chunked = environ.get("wsgi.input_terminated")  # werkzeug's: read to the end, no length known
        body = b"" if environ["PATH_INFO"] == "/unread" else environ["wsgi.input"].read(*(() if chunked else (length,)))
        answer = f"{environ['REMOTE_PORT']} ".encode() + body
        start_response("200 OK", [("Content-Length", str(len(answer)))])
        return [answer]

    server = MotoServer(0, [lambda moto: app])
    server.start()
    return server


def test_a_connection_stays_open_for_the_next_requests_as_an_aws_endpoint_keeps_it() -> None:
    import http.client

    from local_cloud.server import HOST

    server = _echo_server()
    connection = http.client.HTTPConnection(HOST, server.port, timeout=STOP_SECONDS)
    try:
        answers = []
        for method, path, body in (("POST", "/", b"first"), ("GET", "/", None), ("POST", "/unread", b"x" * 70000),
                                   ("POST", "/", b"after a body nobody read")):
            connection.request(method, path, body=body)
            response = connection.getresponse()
            answers.append((response.status, response.getheader("Connection"), response.read()))
    finally:
        connection.close()
        server.stop()
    assert [status for status, _, _ in answers] == [200] * 4
    assert [closing for _, closing, _ in answers] == [None] * 4  # no "Connection: close"
    assert len({answer.split(b" ", 1)[0] for _, _, answer in answers}) == 1  # one client port: one connection
    assert [answer.split(b" ", 1)[1] for _, _, answer in answers] == [b"first", b"", b"", b"after a body nobody read"]


def test_a_chunked_request_or_a_clients_close_is_answered_and_the_connection_closed() -> None:
    import http.client

    from local_cloud.server import HOST

    server = _echo_server()
    try:
        for headers, body in (({"Transfer-Encoding": "chunked"}, iter([b"in ", b"chunks"])),
                              ({"Connection": "close"}, b"last one")):
            connection = http.client.HTTPConnection(HOST, server.port, timeout=STOP_SECONDS)
            try:
                connection.request("POST", "/", body=body, headers=headers,
                                   encode_chunked="Transfer-Encoding" in headers)
                response = connection.getresponse()
                assert (response.status, response.getheader("Connection")) == (200, "close")
                assert response.read().split(b" ", 1)[1] in (b"in chunks", b"last one")
            finally:
                connection.close()
    finally:
        server.stop()


def test_a_stopped_server_answers_nothing_more_on_a_kept_connection() -> None:
    import http.client

    import pytest

    from local_cloud.server import HOST

    server = _echo_server()
    connection = http.client.HTTPConnection(HOST, server.port, timeout=STOP_SECONDS)
    try:
        connection.request("POST", "/", body=b"before")
        assert connection.getresponse().read().endswith(b" before")
        server.stop()
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            connection.request("POST", "/", body=b"after")
            connection.getresponse()
    finally:
        connection.close()
        server.stop()
