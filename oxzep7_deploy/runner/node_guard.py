"""Runs on the execution node, one per batch: `ansible-runner worker`, ended when the controller is gone.

Standard library only: the controller sends this file's text as `python3 -c` over SSH. Its stdin is
the controller's stream: the transmitted job (forwarded to the worker up to the `{"eof": true}`
line), then a heartbeat line every few seconds. When the stream ends (the controller cancelled, or
its SSH connection died) or stays silent too long (the network went away), the worker is told to
cancel (SIGTERM), then every process of the batch (they carry this guard's mark in their
environment, whatever session they made) is killed: nothing runs on after the controller is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

EOF_LINE = b'{"eof": true}\n'
MARK_VAR = "OXZEP7_NODE_RUN"


def marked(mark: str) -> list[int]:
    needle = f"{MARK_VAR}={mark}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    found.append(int(name))
        except OSError:
            continue
    return found


def stop(child: subprocess.Popen[bytes], mark: str, grace: float) -> None:
    try:
        child.send_signal(signal.SIGTERM)  # ansible-runner cancels the playbook
        child.wait(grace)
    except (OSError, subprocess.TimeoutExpired):
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = marked(mark)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


class Stream:
    """What the guard knows of the controller: when it last spoke, and whether it is gone."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.gone = ""


def forward(child: subprocess.Popen[bytes], state: Stream) -> None:
    """Copy the job to the worker; afterwards only note that the controller still speaks."""
    tail = b""
    feeding = True
    while True:
        try:
            chunk = os.read(0, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            state.gone = "the controller's stream ended"
            return
        state.last = time.monotonic()
        if not feeding:
            continue
        seen = tail + chunk
        at = seen.find(EOF_LINE)
        if at >= 0:
            chunk = chunk[:max(0, at + len(EOF_LINE) - len(tail))]
            feeding = False
        assert child.stdin is not None
        try:
            child.stdin.write(chunk)
            child.stdin.flush()
            if not feeding:
                child.stdin.close()
        except OSError:
            feeding = False
        tail = seen[-64:]


def main(silence: float) -> int:
    runner = shutil.which("ansible-runner")
    if runner is None:
        sys.stderr.write(f"ansible-runner is not on PATH on {os.uname().nodename}: install "
                         "ansible-runner and ansible-core there (the controller's versions)\n")
        return 127
    runner = os.path.realpath(runner)  # its venv's bin has the ansible-playbook it runs
    mark = uuid.uuid4().hex
    env = dict(os.environ, PATH=os.path.dirname(runner) + os.pathsep + os.environ.get("PATH", ""))
    env[MARK_VAR] = mark
    data_dir = tempfile.mkdtemp(prefix="oxzep7-batch-")
    try:
        child = subprocess.Popen([runner, "worker", "--private-data-dir", data_dir],
                                 stdin=subprocess.PIPE, env=env)
        state = Stream()
        threading.Thread(target=forward, args=(child, state), daemon=True).start()
        while child.poll() is None:
            quiet = time.monotonic() - state.last
            if state.gone or quiet > silence:
                why = state.gone or f"no word from the controller for {quiet:.0f} s"
                sys.stderr.write(f"oxzep7 node guard: {why}: stopping the batch\n")
                stop(child, mark, grace=5)
                return 130
            time.sleep(0.2)
        return child.returncode
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 30.0))
