"""systemd units: their files, which are enabled or running, and the python each runs."""

import glob
import os
import re

from .base import read_text
from .commands import python_of_argv, resolve_python, split_command
from .versions import run_quiet

UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
             "/lib/systemd/system", "/usr/lib/systemd/system")
EXEC_KEYS = ("ExecStart", "ExecStartPre", "ExecStartPost")


def parse_unit(texts):
    """Exec lines of a unit from its file then its drop-ins, in order; an empty value resets."""
    execs = {key: [] for key in EXEC_KEYS}  # type: dict[str, list[str]]
    for text in texts:
        section = None
        lines = (text or "").replace("\\\n", " ").splitlines()
        for raw in lines:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                continue
            if section != "Service" or "=" not in line:
                continue
            key, _, value = line.partition("=")
            key, value = key.strip(), value.strip()
            if key in execs:
                if value:
                    execs[key].append(value)
                else:
                    execs[key] = []
    return execs


def unit_files(unit):
    """The unit's file (first of UNIT_DIRS that has it; templates for instances) and drop-ins."""
    names = [unit]
    match = re.match(r"^([^@]+@)[^.]*(\.service)$", unit)
    if match:
        names.append(match.group(1) + match.group(2))
    main = None
    for name in names:
        for folder in UNIT_DIRS:
            path = os.path.join(folder, name)
            if os.path.exists(path):
                main = os.path.realpath(path) if os.path.islink(path) else path
                break
        if main:
            break
    dropins = {}
    for folder in reversed(UNIT_DIRS):  # /etc last: its drop-ins win over same-named ones
        for name in names:
            for path in glob.glob(os.path.join(folder, name + ".d", "*.conf")):
                dropins[os.path.basename(path)] = path
    return main, [dropins[k] for k in sorted(dropins)]


def enabled_units():
    """Units enabled by a link in a *.wants or *.requires folder (what `systemctl enable` makes).

    Read from the file system: `systemctl list-unit-files` takes seconds on a busy host.
    A service started by an enabled timer counts as enabled through it ("enabled by x.timer"):
    between two runs it is inactive, yet it runs Python every day.
    """
    out = {}  # type: dict[str, dict[str, str]]
    for folder in ("/etc/systemd/system", "/run/systemd/system"):
        state = "enabled" if folder.startswith("/etc") else "enabled-runtime"
        for kind in ("wants", "requires"):
            for path in glob.glob(os.path.join(folder, "*." + kind, "*.service")):
                out.setdefault(os.path.basename(path), {"enabled": state})
            for path in glob.glob(os.path.join(folder, "*." + kind, "*.timer")):
                service = timer_service(os.path.basename(path), read_text(path, 65536))
                out.setdefault(service, {"enabled": "enabled by " + os.path.basename(path)})
    return out


def timer_service(timer, text):
    """The service a timer starts: its [Timer] Unit=, or the timer's own name as .service."""
    section = None
    for raw in (text or "").splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Timer" and line.startswith("Unit=") and line[5:].strip():
            return line[5:].strip()
    return timer[: -len(".timer")] + ".service"


def systemctl_states():
    """{unit: {"enabled", "active", "sub"}}; None when systemctl does not answer (no systemd)."""
    states = enabled_units()
    rc, out = run_quiet(["systemctl", "list-units", "--type=service", "--all", "--no-legend",
                         "--no-pager", "--plain"], 10)
    if rc != 0:
        return None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0].endswith(".service"):
            states.setdefault(parts[0], {}).update(active=parts[2], sub=parts[3])
    return states


def unit_matters(state):
    """Enabled, running, or failed (a unit that fails on a broken venv is what we look for)."""
    return (str(state.get("enabled")).startswith("enabled")
            or state.get("active") in ("active", "activating", "reloading", "failed"))


def find_units(venvs):
    states = systemctl_states()
    warning = None
    if states is None:
        states = enabled_units()
        warning = "systemctl did not answer: units judged from /etc/systemd/system/*.wants only"
    units = []
    for unit in sorted(states):
        state = states[unit]
        if unit.endswith("@.service") or not unit_matters(state):
            continue
        main, dropins = unit_files(unit)
        if not main:
            continue
        execs = parse_unit([read_text(p, 262144) for p in [main, *dropins]])
        for key in EXEC_KEYS:
            for value in execs[key]:
                named, how = python_of_argv(split_command(value.lstrip("@-:+!")))
                if not named:
                    continue
                entry = {"unit": unit, "file": main, "dropins": dropins, "key": key,
                         "command": value, "enabled": state.get("enabled"),
                         "active": state.get("active"), "sub": state.get("sub"), "how": how}
                entry.update(resolve_python(named, venvs, "unit " + unit))
                units.append(entry)
    return units, warning
