"""The processes Ansible starts for this controller process: marked, found, and stopped.

No process group holds them all: ansible-runner starts ansible-playbook in a session of its own,
each Ansible worker calls setsid, and ssh's ControlPersist master leaves as a daemon. Killing
ansible-playbook's group (what ansible-runner does on cancel) leaves the workers and their ssh
running on, still changing hosts. So every run gets `OXZEP7_CONTROLLER=<mark>` in its
environment, which all of them inherit, and an interrupt stops every process that carries this
controller's mark. Linux (`/proc`); elsewhere nothing is found and nothing is stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

MARK_VAR = "OXZEP7_CONTROLLER"
_MARK = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


def mark() -> str:
    """This controller process's mark, put in the environment of every Ansible run."""
    return _MARK


def marked_processes(mark_value: str | None = None, proc: Path = Path("/proc")) -> list[int]:
    """The live processes (zombies excluded) whose environment carries the mark."""
    needle = f"{MARK_VAR}={mark_value or _MARK}".encode()
    me = os.getpid()
    found = []
    try:
        entries = list(proc.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()  # empty for a zombie
        except OSError:  # gone, or not ours
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def stop_marked(grace: float = 1.0, timeout: float = 10.0, mark_value: str | None = None
                ) -> list[int]:
    """Stop every process of this controller's Ansible runs: SIGTERM, then SIGKILL after
    `grace` seconds; returns the processes still alive after `timeout` (none, normally)."""
    deadline = time.monotonic() + timeout
    kill_after = time.monotonic() + grace
    while True:
        pids = marked_processes(mark_value)
        now = time.monotonic()
        if not pids or now >= deadline:
            return pids
        sig = signal.SIGTERM if now < kill_after else signal.SIGKILL
        for pid in pids:
            with contextlib.suppress(OSError):  # gone already
                os.kill(pid, sig)
        time.sleep(0.05)
