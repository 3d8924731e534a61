"""The sample app on the controller, no fleet: health answers, the unhealthy switches, crash mode."""

from __future__ import annotations

import json
import platform
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().with_name("app.py")
VERSION = platform.python_version()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    """<root>/releases/r1/venv (this Python), <root>/current -> releases/r1, <root>/app/app.py."""
    root = tmp_path / "root"
    venv.create(root / "releases" / "r1" / "venv", with_pip=False)
    (root / "current").symlink_to("releases/r1")
    (root / "app").mkdir()
    shutil.copy(APP, root / "app" / "app.py")
    stub = tmp_path / "stub"  # stands in for the pinned six: the app only reads its version
    stub.mkdir()
    (stub / "six.py").write_text('__version__ = "0.0-stub"\n')
    return root


def start(root: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(root / "current" / "venv" / "bin" / "python"), str(root / "app" / "app.py"),
         "--bind", "127.0.0.1", "--port", str(port), "--root", str(root)],
        env={"PYTHONPATH": str(root.parent / "stub")}, stderr=subprocess.PIPE, text=True)


def get(port: int, path: str = "/healthz") -> tuple[int, dict[str, object]]:
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def served(deployment: Path) -> Iterator[tuple[Path, int]]:
    port = free_port()
    proc = start(deployment, port)
    yield deployment, port
    proc.terminate()
    proc.wait(timeout=10)


def test_healthz_reports_the_interpreter_and_the_release(served: tuple[Path, int]) -> None:
    _, port = served
    status, body = get(port)
    assert status == 200
    assert body["status"] == "ok" and body["python"] == VERSION
    assert (body["release"], body["current"], body["six"]) == ("r1", "r1", "0.0-stub")


def test_current_moving_without_a_restart_shows(served: tuple[Path, int]) -> None:
    root, port = served
    assert get(port)[1]["release"] == "r1"  # started from r1
    (root / "releases" / "r2").mkdir()
    (root / "current").unlink()
    (root / "current").symlink_to("releases/r2")
    _, body = get(port)
    assert (body["release"], body["current"]) == ("r1", "r2")


def test_the_unhealthy_file_turns_it_503_until_removed(served: tuple[Path, int]) -> None:
    root, port = served
    (root / "unhealthy").write_text("drill\n")
    status, body = get(port)
    assert status == 503 and body["status"] == "unhealthy"
    assert body["reasons"] == [f"{root / 'unhealthy'} exists: drill"]
    (root / "unhealthy").unlink()
    assert get(port)[0] == 200


@pytest.mark.parametrize(("listed", "healthy"), [
    (VERSION, False), (VERSION.rsplit(".", 1)[0], False), ("# comment only", True),
    ("2.7", True), (VERSION + "1", True),
])
def test_fail_on_python_matches_version_or_minor(served: tuple[Path, int], listed: str,
                                                 healthy: bool) -> None:
    root, port = served
    (root / "app" / "fail-on-python").write_text(f"3.99\n{listed}\n")
    assert get(port)[0] == (200 if healthy else 503)


def test_crash_on_python_refuses_to_start(deployment: Path) -> None:
    (deployment / "app" / "crash-on-python").write_text(VERSION.rsplit(".", 1)[0] + "\n")
    proc = start(deployment, free_port())
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 3 and "refusing to start" in err


def test_unknown_paths_are_404(served: tuple[Path, int]) -> None:
    _, port = served
    get(port)  # up
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=2)
    assert exc.value.code == 404


def test_a_graceful_reload_moves_to_current_with_no_refused_request(served: tuple[Path, int]
                                                                     ) -> None:
    import threading

    root, port = served
    assert get(port)[1]["release"] == "r1"
    venv.create(root / "releases" / "r2" / "venv", with_pip=False)
    (root / "current").unlink()
    (root / "current").symlink_to("releases/r2")
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as r:
                    r.read()
            except Exception as exc:
                failures.append(repr(exc))

    loops = [threading.Thread(target=hammer) for _ in range(4)]
    for loop in loops:
        loop.start()
    pid = get(port)[1]["pid"]
    reload = subprocess.run(
        [str(root / "current" / "venv" / "bin" / "python"), str(root / "app" / "app.py"),
         "--port", str(port), "--root", str(root), "--reload", str(pid)],
        env={"PYTHONPATH": str(root.parent / "stub")}, capture_output=True, text=True, timeout=60)
    stop.set()
    for loop in loops:
        loop.join()
    assert reload.returncode == 0, reload.stderr
    _, body = get(port)
    assert (body["release"], body["pid"]) == ("r2", pid), "the same process, re-executed"
    assert failures == []


def test_it_serves_on_an_inherited_socket(deployment: Path) -> None:
    """As systemd's socket activation starts it: LISTEN_FDS=1, the socket as fd 3."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    proc = subprocess.Popen(
        [str(deployment / "current" / "venv" / "bin" / "python"), "-c",
         "import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_PID'] = str(os.getpid());"
         " os.execv(sys.argv[2], sys.argv[2:])", str(listener.fileno()),
         str(deployment / "current" / "venv" / "bin" / "python"), str(deployment / "app" / "app.py"),
         "--port", "1", "--root", str(deployment)],
        env={"PYTHONPATH": str(deployment.parent / "stub"), "LISTEN_FDS": "1"},
        pass_fds=(listener.fileno(),), stderr=subprocess.PIPE, text=True)
    listener.close()
    try:
        assert get(port)[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
