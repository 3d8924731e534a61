"""Interpreter versions: run each interpreter once (-B -E -S, with a timeout) and parse its answer."""

import re
import subprocess

from .base import DEFAULT_PATH

VERSION_TIMEOUT = 5.0


# the version probe: works on every CPython and PyPy since 2.6, prints e.g. "3.11.2 final 0 cpython"
VERSION_CODE = (
    "import sys; v = sys.version_info; "
    "print('%d.%d.%d %s %d %s' % (v[0], v[1], v[2], v[3], v[4], "
    "getattr(getattr(sys, 'implementation', None), 'name', 'cpython')))"
)
_LEVELS = {"alpha": "a", "beta": "b", "candidate": "rc"}


def parse_version_output(text):
    """(version, implementation) from the -c probe ("3.13.0 candidate 1 cpython" -> 3.13.0rc1)."""
    parts = (text or "").split()
    if not parts or not re.match(r"^\d+\.\d+\.\d+$", parts[0]):
        return None, None
    version = parts[0]
    if len(parts) >= 3 and parts[1] in _LEVELS and parts[2].isdigit():
        version += _LEVELS[parts[1]] + parts[2]
    impl = parts[3] if len(parts) >= 4 else "cpython"
    return version, impl


def parse_version_flag(text):
    """The version from `python --version` ("Python 3.8.18", "Python 3.13.0rc1")."""
    match = re.search(r"Python (\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?)", text or "")
    return match.group(1) if match else None


def run_quiet(argv, timeout, env=None):
    """(returncode, stdout) of argv; (None, why) when it cannot run or times out."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, cwd="/", env=env)
    except OSError as exc:
        return None, "cannot run: %s" % (exc.strerror or exc)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, f"timed out after {timeout:g} s"
    return proc.returncode, out.decode("utf-8", "replace")


def interpreter_version(path, timeout=VERSION_TIMEOUT):
    """{"version", "implementation", "error"} by running the interpreter (never by its name)."""
    env = {"PATH": ":".join(DEFAULT_PATH), "PYTHONDONTWRITEBYTECODE": "1", "LC_ALL": "C"}
    rc, out = run_quiet([path, "-B", "-E", "-S", "-c", VERSION_CODE], timeout, env)
    if rc == 0:
        version, impl = parse_version_output(out.strip().splitlines()[-1] if out.strip() else "")
        if version:
            return {"version": version, "implementation": impl, "error": None}
    if rc is None and out.startswith("timed out"):
        return {"version": None, "implementation": None, "error": out}
    rc2, out2 = run_quiet([path, "--version"], timeout, env)
    version = parse_version_flag(out2) if rc2 == 0 else None
    if version:
        return {"version": version, "implementation": "cpython", "error": None}
    why = out.strip().splitlines()[-1] if out and out.strip() else "no version printed"
    return {"version": None, "implementation": None, "error": why[:300]}
