"""The dead-man switch: armed before a switch, it reverts the switch unless confirmed in time
(a systemd timer, or a detached process without systemd). Neither outlives a reboot: the armed
dead-man is in the state (its deadline included) and a unit enabled at boot
(oxzep7-deadman@<app>.service, installed when the dead-man is armed) re-arms it for the time left,
or has it fire at once when its time has passed (`deadman-boot`)."""

import contextlib
import os
import re
import shutil
import signal
import sys

from oxzep7_deploy.rules import write_bytes_atomic

from .base import AgentError, iso, now
from .context import last_line
from .files import guarded
from .health import has_systemd
from .state import load_state, save_state

BOOT_UNIT = "oxzep7-deadman@.service"


def boot_unit_dir():
    """Where the boot unit goes: OXZEP7_SYSTEMD_UNIT_DIR (tests), else /etc/systemd/system on a
    host run by systemd; None without systemd (nothing survives a reboot there)."""
    override = os.environ.get("OXZEP7_SYSTEMD_UNIT_DIR")
    if override:
        return override
    return "/etc/systemd/system" if has_systemd() else None


def boot_unit_text(state_dir):
    agent = program()  # the zipapp, which stays where it is across a reboot
    return (
        "# written by oxzep7-host: an unconfirmed switch survives a reboot of this host\n"
        "[Unit]\n"
        "Description=oxzep7 dead-man of %i after a restart of the host\n"
        "After=local-fs.target network.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={sys.executable} {agent} --state-dir {state_dir} deadman-boot --app %i\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def install_boot_unit(paths):
    """The template unit and its instance for this app enabled at boot (files written directly:
    no daemon-reload, systemd reads them when it starts); the path of the instance's link."""
    unit_dir = boot_unit_dir()
    if unit_dir is None:
        return None
    template = os.path.join(unit_dir, BOOT_UNIT)
    wants = os.path.join(unit_dir, "multi-user.target.wants")
    if not os.path.isdir(wants):
        os.makedirs(wants, 0o755)
    text = boot_unit_text(os.path.abspath(paths.base))
    try:
        with open(template) as handle:
            same = handle.read() == text
    except OSError:
        same = False
    if not same:
        write_bytes_atomic(template, text.encode("utf-8"), 0o644)
    link = os.path.join(wants, f"oxzep7-deadman@{paths.app}.service")
    if os.path.realpath(link) != os.path.realpath(template):
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(template, link)
    return link


def arm(ctx, seconds, deploy, old, new, mode="auto", token=None):
    paths = ctx.paths
    fresh = token is None
    token = token or "{}-{}".format(re.sub(r"[^A-Za-z0-9]", "", deploy or "x")[:24], os.urandom(4).hex())
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
    try:
        record["boot_unit"] = install_boot_unit(paths)
    except OSError as exc:
        raise AgentError("deadman", f"could not install the dead-man's boot unit in "
                         f"{boot_unit_dir()}: {exc} (it must survive a reboot of this host): make "
                         "that directory writable by root and deploy again") from None
    if mode == "systemd":
        unit = f"oxzep7-deadman-{paths.app}-{token}"
        if not fresh:  # re-armed after a reboot: a name of its own
            unit += "-" + os.urandom(2).hex()
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


def timer_alive(ctx, record):
    """Whether the timer or process armed for `record` still runs (a reboot ends both)."""
    if record.get("mode") == "systemd" and record.get("unit"):
        rc, _ = ctx.run(["systemctl", "is-active", "--quiet", record["unit"] + ".timer"],
                        dict(os.environ), timeout=60)
        return rc == 0
    if record.get("pid"):
        try:
            with open("/proc/{}/cmdline".format(int(record["pid"])), "rb") as handle:
                return record["token"].encode() in handle.read()
        except OSError:
            return False
    return False


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
