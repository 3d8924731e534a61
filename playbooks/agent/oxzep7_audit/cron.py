"""Cron: system and user crontabs, cron.d and the periodic folders, and the python each job runs."""

import glob
import os
import re

from .base import read_text, shebang
from .commands import python_of_argv, resolve_python, split_command

SYSTEM_CRONTABS = ("/etc/crontab",)
CRON_D = "/etc/cron.d"
USER_CRONTABS = ("/var/spool/cron/crontabs", "/var/spool/cron")
CRON_PERIODIC = ("hourly", "daily", "weekly", "monthly")
CRON_FIELDS = re.compile(r"^\s*(@\w+|\S+\s+\S+\s+\S+\s+\S+\s+\S+)\s+(.*)$")
CRON_ENV = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=")


def parse_crontab(text, with_user):
    """Entries of a crontab: [(line number, schedule, user or None, command)].

    System crontabs (/etc/crontab, /etc/cron.d) have a user field; users' crontabs do not.
    In the command, an unescaped % ends it (what follows is stdin), as cron reads it.
    """
    entries = []
    for number, raw in enumerate((text or "").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or CRON_ENV.match(line):
            continue
        match = CRON_FIELDS.match(line)
        if not match:
            continue
        schedule, rest = match.group(1), match.group(2)
        user = None
        if with_user:
            fields = rest.split(None, 1)
            if len(fields) < 2:
                continue
            user, rest = fields
        command = re.split(r"(?<!\\)%", rest, maxsplit=1)[0].strip()
        if command:
            entries.append((number, " ".join(schedule.split()), user, command))
    return entries


def crontab_files():
    """(path, owner if it is a user's crontab else None, has a user field)."""
    files = [(p, None, True) for p in SYSTEM_CRONTABS if os.path.isfile(p)]  # type: list[tuple[str, str | None, bool]]
    files += [(p, None, True) for p in sorted(glob.glob(os.path.join(CRON_D, "*")))
              if os.path.isfile(p) and not os.path.basename(p).startswith(".")]
    for folder in USER_CRONTABS:
        for path in sorted(glob.glob(os.path.join(folder, "*"))):
            if os.path.isfile(path):
                files.append((path, os.path.basename(path), False))
    return files


def find_cron(venvs):
    jobs = []
    for path, owner, with_user in crontab_files():
        for number, schedule, user, command in parse_crontab(read_text(path, 262144), with_user):
            named, how = python_of_argv(split_command(command))
            if not named:
                continue
            entry = {"file": path, "line": number, "schedule": schedule, "user": user or owner,
                     "command": command, "how": how}
            entry.update(resolve_python(named, venvs, f"cron {path}:{number}"))
            jobs.append(entry)
    for period in CRON_PERIODIC:
        for path in sorted(glob.glob(f"/etc/cron.{period}/*")):
            line = shebang(path) if os.path.isfile(path) else None
            named, how = python_of_argv([path]) if line else (None, None)
            if named:
                entry = {"file": path, "line": None, "schedule": "@" + period, "user": "root",
                         "command": path, "how": how}
                entry.update(resolve_python(named, venvs, "cron " + path))
                jobs.append(entry)
    return jobs
