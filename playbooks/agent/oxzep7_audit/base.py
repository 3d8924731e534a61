"""Constants and small helpers every probe uses: the time budget, reading files, PATH lookups."""

import glob
import os
import pwd
import re
import stat
import time

DESCRIPTION = "oxzep7-audit: the read-only host probe of `oxzep7-deploy audit`."
PROBE_FORMAT = 1
PYTHON_NAME = re.compile(r"^python(\d+(\.\d+)?[a-z]?)?$")  # python, python3, python3.11, python3.7m
DEFAULT_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


class Deadline:
    """A time budget shared by the walks: past it, they stop and say so."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds
        self.hit = False

    def over(self):
        if time.monotonic() > self.end:
            self.hit = True
        return self.hit


def read_text(path, limit=1 << 20):
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def shebang(path):
    """The interpreter line of a script, split ("#!/usr/bin/env python3 -u" -> [env, python3, -u])."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    try:
        return first[2:].decode("utf-8", "replace").split()
    except ValueError:
        return None


def is_python_name(path):
    return bool(PYTHON_NAME.match(os.path.basename(path)))


def which(name, path=DEFAULT_PATH):
    if "/" in name:
        return name
    for folder in path:
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def is_executable_file(path):
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)


def venv_of(python):
    """The venv a python path belongs to (<venv>/bin/python*), judged on the path as named."""
    bindir = os.path.dirname(python)
    if os.path.basename(bindir) not in ("bin", "Scripts"):
        return None
    root = os.path.dirname(bindir)
    return root if os.path.isfile(os.path.join(root, "pyvenv.cfg")) else None


def home_dirs():
    """root's home and every login user's home that exists (pyenv and uv live there)."""
    homes = ["/root"]
    try:
        users = pwd.getpwall()
    except (OSError, KeyError):
        users = []
    for user in users:
        if user.pw_uid >= 1000 and user.pw_dir not in ("/", "/nonexistent"):
            homes.append(user.pw_dir)
    homes.extend(sorted(glob.glob("/home/*")))
    seen, out = set(), []
    for home in homes:
        if home not in seen and os.path.isdir(home):
            seen.add(home)
            out.append(home)
    return out
