"""The tests' fork server starts a Python script as a new process would run it (tests/fork_server.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fork_server import ForkServer

SCRIPT = """\
import atexit, gc, json, os, sys, threading, time

def late():
    time.sleep(0.2)
    print("thread done", flush=True)

atexit.register(lambda: print("atexit ran"))
what = sys.argv[1]
if what == "show":
    print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "var": os.environ.get("ONLY_HERE"),
                      "path0": sys.path[0], "name": __name__, "stdin": sys.stdin.read(),
                      "gc": [gc.isenabled(), gc.get_threshold()]}))
    print("to stderr", file=sys.stderr)
elif what == "exit":
    sys.exit(int(sys.argv[2]))
elif what == "message":
    sys.exit("gone wrong")
elif what == "raise":
    raise ValueError("uncaught")
elif what == "thread":
    threading.Thread(target=late).start()
elif what == "wait":
    print("waiting", flush=True)
    time.sleep(30)
"""


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("program") / "program.py"
    path.write_text(SCRIPT)
    return path


@pytest.fixture(scope="module")
def server(script: Path) -> Iterator[ForkServer]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    started = ForkServer(str(script), ["json", "threading"], env)
    yield started
    started.stop()


def run(server: ForkServer, script: Path, *args: str, **env: str) -> tuple[int, str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | env
    with server.popen([str(script), *args], environment, script.parent, stderr_to_stdout=False) as process:
        out, err = process.stdout.read(), process.stderr.read()  # type: ignore[union-attr]
    return process.returncode, out, err  # type: ignore[return-value]


def as_new_process(script: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, str(script), *args], cwd=script.parent, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, check=False)


def test_a_fork_runs_the_script_with_its_arguments_variables_directory_and_output(server: ForkServer,
                                                                                   script: Path) -> None:
    code, out, err = run(server, script, "show", ONLY_HERE="yes")
    shown = __import__("json").loads(out.splitlines()[0])
    assert code == 0
    # The garbage collector as a new process has it (the server preloads without it).
    assert shown.pop("gc") == __import__("json").loads(as_new_process(script, "show").stdout.splitlines()[0])["gc"]
    assert shown == {"argv": [str(script), "show"], "cwd": str(script.parent), "var": "yes",
                     "path0": str(script.parent), "name": "__main__", "stdin": ""}
    assert out.splitlines()[1:] == ["atexit ran"]
    assert err == "to stderr\n"
    assert run(server, script, "show")[1].startswith('{"argv"')  # the variable was that start's only
    assert '"var": null' in run(server, script, "show")[1]


@pytest.mark.parametrize("args", [("exit", "3"), ("exit", "0"), ("message",), ("raise",), ("thread",)])
def test_exit_status_and_output_are_a_new_process_s(server: ForkServer, script: Path, args: tuple[str, ...]) -> None:
    code, out, err = run(server, script, *args)
    alone = as_new_process(script, *args)
    assert (code, out) == (alone.returncode, alone.stdout)
    assert err.splitlines()[-1:] == alone.stderr.splitlines()[-1:]  # the traceback's last line, the message


def test_a_signal_ends_a_fork_as_it_ends_a_process(server: ForkServer, script: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    process = server.popen([str(script), "wait"], env, script.parent)
    assert process.stdout.readline() == "waiting\n"  # type: ignore[union-attr]
    assert process.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=0.1)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == -signal.SIGTERM
    assert time.monotonic() - started < 5
    process.stdout.close()  # type: ignore[union-attr]


def test_it_starts_only_its_script_with_what_was_read_at_import(server: ForkServer, script: Path,
                                                                 tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    assert server.serves([str(script)], env)
    assert not server.serves([str(tmp_path / "other.py")], env)
    assert not server.serves([str(script)], env | {"PYTHONPATH": str(tmp_path)})
    assert not server.serves([str(script)], env | {"COLUMNS": "400"})  # SAM's tables read it as they are imported
    with pytest.raises(ValueError, match="PYTHONPATH"):
        server.popen([str(script)], env | {"PYTHONPATH": str(tmp_path)}, tmp_path)


def test_a_preload_that_fails_is_told(script: Path) -> None:
    with pytest.raises(RuntimeError, match="did not start: ModuleNotFoundError: No module named 'no_such_module'"):
        ForkServer(str(script), ["no_such_module"], dict(os.environ))


def test_a_preload_that_starts_a_thread_is_refused(tmp_path: Path) -> None:
    (tmp_path / "threaded.py").write_text(textwrap.dedent("""\
        import threading, time
        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
    """))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    with pytest.raises(RuntimeError, match="preloading started threads"):
        ForkServer(str(tmp_path / "threaded.py"), ["threaded"], env)


def test_communicate_reads_the_output_to_its_end_and_waits(server: ForkServer, script: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    process = server.popen([str(script), "thread"], env, script.parent)
    out, err = process.communicate(timeout=30)
    assert (out, err, process.returncode) == ("thread done\natexit ran\n", None, 0)
