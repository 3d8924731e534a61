"""The dead-man switch: armed before a switch, it reverts the switch unless confirmed in time
(a systemd timer, or a detached process without systemd)."""

import contextlib
import os
import re
import shutil
import signal
import sys

from .base import AgentError, iso, now
from .context import last_line
from .files import guarded
from .health import has_systemd
from .state import load_state, save_state


def arm(ctx, seconds, deploy, old, new, mode="auto"):
    paths = ctx.paths
    token = "{}-{}".format(re.sub(r"[^A-Za-z0-9]", "", deploy or "x")[:24], os.urandom(4).hex())
    record = {
        "token": token,
        "deploy": deploy,
        "from": old,
        "to": new,
        "seconds": seconds,
        "armed": iso(),
        "fires": iso(now() + seconds),
        "fires_epoch": now() + seconds,
    }
    argv = [
        sys.executable,
        program(),
        "--state-dir",
        paths.base,
        "deadman-fire",
        "--app",
        paths.app,
        "--token",
        token,
    ]
    if mode == "auto":
        mode = "systemd" if has_systemd() and shutil.which("systemd-run") else "process"
    if mode == "systemd":
        unit = f"oxzep7-deadman-{paths.app}-{token}"
        rc, out = ctx.run(
            [
                "systemd-run",
                "--unit",
                unit,
                f"--on-active={seconds}s",
                "--timer-property=AccuracySec=1s",
                "--description",
                f"oxzep7 dead-man for {paths.app}",
                *argv,
            ],
            dict(os.environ),
            timeout=60,
        )
        if rc != 0:
            raise AgentError("deadman", f"systemd-run could not arm the dead-man: {last_line(out)}")
        record.update(mode="systemd", unit=unit)
    else:
        sleeper = [
            sys.executable,
            "-c",
            "import os,sys,time;time.sleep(float(sys.argv[1]));os.execv(sys.argv[2],sys.argv[2:])",
            str(seconds),
        ]
        record.update(mode="process", pid=spawn_detached(sleeper + argv))
    return record


def program():
    """The file the dead-man runs to fire: the zipapp this agent runs from
    (/var/lib/oxzep7/bin/oxzep7-host), i.e. the parent of this package's directory."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def spawn_detached(argv):
    """A process of its own session (argv sleeps, then fires); it outlives its parents."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # first child: a new session, then fork again and leave
        try:
            os.close(read_end)
            os.setsid()
            grandchild = os.fork()
            if grandchild:
                os.write(write_end, str(grandchild).encode())
                os._exit(0)
            os.close(write_end)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.closerange(3, 65536)
            os.execv(argv[0], argv)
        finally:
            os._exit(1)
    os.close(write_end)
    os.waitpid(pid, 0)
    data = os.read(read_end, 32)
    os.close(read_end)
    return int(data)


def disarm(ctx, st):
    """Stop the pending dead-man (if any) and forget it; the fire also checks the token."""
    record = st.get("deadman")
    st["deadman"] = None
    if not record:
        return None
    if record.get("mode") == "systemd":
        for suffix in (".timer", ".service"):
            ctx.run(["systemctl", "stop", record["unit"] + suffix], dict(os.environ), timeout=60)
    elif record.get("pid"):
        pid = int(record["pid"])
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                mine = record["token"].encode() in handle.read()
        except OSError:
            mine = False
        if mine:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
    return record


def arm_deadman(ctx, deploy, seconds, mode="auto"):
    paths = ctx.paths
    with guarded(paths):
        st, _ = load_state(paths)
        disarm(ctx, st)
        st["deadman"] = arm(
            ctx, seconds, deploy, st["previous"], st["current"], mode
        )
        save_state(paths, st)
    return {"changed": True, "deadman": st["deadman"]}
