#!/usr/bin/env python3
# (stdlib-only and Python 3.6-compatible: it runs on hosts' system python3; tested by
#  tests/unit/audit/test_probe.py, which imports this file; mypy checks its bodies, see pyproject.toml)
"""oxzep7-audit: the read-only host probe of `oxzep7-deploy audit`.

Copied to a temporary path by Ansible's `script` module and run as root with the host's system
python3 (3.6+, standard library only). It writes nothing: no file, no bytecode (run with -B;
the interpreters it finds are asked their version with -B -E -S, which imports nothing from
site-packages and writes nothing), no systemctl call that changes state.

Reads one JSON document of options (base64, `--config-b64`):
    {"prefix": "/opt/oxzep7/python", "app_roots": ["/srv/billing"], "paths": ["/srv/other"],
     "app_venv": "/srv/billing/current/venv", "target": "/opt/oxzep7/python/3.13.5/bin/python3.13",
     "budget": 40}
and prints one JSON document on stdout:
    {"probe": 1, "os": {...}, "disk": [...], "interpreters": [...], "venvs": [...],
     "units": [...], "cron": [...], "app": {...} | null, "warnings": [...], "seconds": 1.2}

Interpreters, venvs, units and cron entries refer to interpreters by realpath; versions come
from running each interpreter once (`-c` with a timeout), never from its file name. End-of-life
and Requires-Python are judged on the controller.
"""

import sys

sys.dont_write_bytecode = True  # before anything else is imported: read-only means no .pyc either

import argparse  # noqa: E402
import base64  # noqa: E402
import contextlib  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import pwd  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import socket  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

PROBE_FORMAT = 1
PYTHON_NAME = re.compile(r"^python(\d+(\.\d+)?[a-z]?)?$")  # python, python3, python3.11, python3.7m
VERSION_TIMEOUT = 5.0
MAX_DEPTH = 6  # how deep the walks of /opt, app roots and --path go
SKIP_DIRS = frozenset(("node_modules", ".git", "__pycache__", "site-packages", "dist-packages",
                       "include", "share", "man", ".cache", "proc", "sys", "dev"))
DEFAULT_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
             "/lib/systemd/system", "/usr/lib/systemd/system")
SYSTEM_CRONTABS = ("/etc/crontab",)
CRON_D = "/etc/cron.d"
USER_CRONTABS = ("/var/spool/cron/crontabs", "/var/spool/cron")
CRON_PERIODIC = ("hourly", "daily", "weekly", "monthly")
EXEC_KEYS = ("ExecStart", "ExecStartPre", "ExecStartPost")
SHELLS = frozenset(("sh", "bash", "dash", "zsh", "ksh"))
# the version probe: works on every CPython and PyPy since 2.6, prints e.g. "3.11.2 final 0 cpython"
VERSION_CODE = (
    "import sys; v = sys.version_info; "
    "print('%d.%d.%d %s %d %s' % (v[0], v[1], v[2], v[3], v[4], "
    "getattr(getattr(sys, 'implementation', None), 'name', 'cpython')))"
)
_LEVELS = {"alpha": "a", "beta": "b", "candidate": "rc"}


class Deadline:
    """A time budget shared by the walks: past it, they stop and say so."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds
        self.hit = False

    def over(self):
        if time.monotonic() > self.end:
            self.hit = True
        return self.hit


# ---------------------------------------------------------------------------------------------
# small helpers


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


# ---------------------------------------------------------------------------------------------
# interpreter versions


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


# ---------------------------------------------------------------------------------------------
# finding interpreters


class Interpreters:
    """Interpreters found, one per realpath, with every path that leads to each."""

    def __init__(self):
        self.by_real = {}

    def add(self, path, source, named=True):
        """Note an interpreter; `named=False` for one something runs, whatever its file name."""
        if named and (not is_python_name(path) or venv_of(path)):
            return None  # a venv's python is reported as a venv, not as an interpreter
        if not is_executable_file(path):
            return None
        real = os.path.realpath(path)
        entry = self.by_real.get(real) or self._same_file(real)
        if entry is None:
            st = os.stat(real)
            entry = {"realpath": real, "path": path, "paths": [], "sources": [],
                     "_inode": (st.st_dev, st.st_ino)}
            self.by_real[real] = entry
        if path not in entry["paths"]:
            entry["paths"].append(path)
        if source not in entry["sources"]:
            entry["sources"].append(source)
        return real

    def _same_file(self, real):
        """A hard link of an interpreter already found (python3.6m and python3.6 are one file)."""
        try:
            st = os.stat(real)
        except OSError:
            return None
        for entry in self.by_real.values():
            if entry.get("_inode") == (st.st_dev, st.st_ino):
                return entry
        return None

    def add_glob(self, pattern, source):
        for path in sorted(glob.glob(pattern)):
            self.add(path, source)

    def finish(self, workers=8):
        """Run every interpreter once for its version (in parallel); the sorted list."""
        entries = sorted(self.by_real.values(), key=lambda e: e["realpath"])
        with ThreadPoolExecutor(max_workers=workers) as pool:
            versions = list(pool.map(lambda e: interpreter_version(e["realpath"]), entries))
        for index, entry in enumerate(entries):
            entry.update(versions[index])
            entry["path"] = preferred_path(entry["paths"])
            del entry["_inode"]
        return entries


def preferred_path(paths):
    """The name a person would use: the shortest alias in a bin/ of the usual places."""
    return sorted(paths, key=lambda p: (p.startswith("/etc/alternatives"), len(p), p))[0]


def opt_source(path, prefix):
    if prefix and (path + "/").startswith(prefix.rstrip("/") + "/"):
        return "oxzep7"
    return "opt"


def walk(root, deadline, visit, max_depth=MAX_DEPTH):
    """Call visit(dirpath, names) for directories under root (no symlinked dirs, bounded depth).

    visit returns False to stop descending into that directory.
    """
    stack = [(root, 0)]
    while stack:
        if deadline.over():
            return
        path, depth = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        names = sorted(e.name for e in entries)
        if visit(path, names) is False or depth >= max_depth:
            continue
        for entry in sorted(entries, key=lambda e: e.name, reverse=True):
            try:
                if entry.is_dir(follow_symlinks=False) and entry.name not in SKIP_DIRS:
                    stack.append((entry.path, depth + 1))
            except OSError:
                continue


def find_interpreters(found, venvs, prefix, deadline):
    found.add_glob("/usr/bin/python*", "system")
    if os.path.realpath("/bin") != "/usr/bin":  # not merged-/usr: /bin is a place of its own
        found.add_glob("/bin/python*", "system")
    found.add_glob("/usr/local/bin/python*", "local")
    found.add_glob("/etc/alternatives/python*", "alternatives")
    for home in home_dirs():
        found.add_glob(os.path.join(home, ".pyenv/versions/*/bin/python*"), "pyenv")
        found.add_glob(os.path.join(home, ".local/share/uv/python/*/bin/python*"), "uv")
        for cfg in glob.glob(os.path.join(home, ".pyenv/versions/*/pyvenv.cfg")):
            venvs.note(os.path.dirname(cfg), "pyenv")

    def visit(path, names):
        if "pyvenv.cfg" in names:
            venvs.note(path, "/opt")
            return False
        if os.path.basename(path) == "bin":
            for name in names:
                found.add(os.path.join(path, name), opt_source(path, prefix))
            return False
        return os.path.basename(path) != "lib"

    if os.path.isdir("/opt"):
        walk("/opt", deadline, visit)


# ---------------------------------------------------------------------------------------------
# virtualenvs


def parse_pyvenv_cfg(text):
    """pyvenv.cfg's `key = value` lines, keys lowercased."""
    out = {}
    for line in (text or "").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip().lower()] = value.strip()
    return out


def venv_base(venv, cfg):
    """(path of the interpreter the venv was built on, how we know it)."""
    if cfg.get("executable"):  # venv of Python 3.11+
        return cfg["executable"], "pyvenv.cfg executable"
    if cfg.get("base-executable"):  # virtualenv 20+
        return cfg["base-executable"], "pyvenv.cfg base-executable"
    version = cfg.get("version") or cfg.get("version_info") or ""
    home = cfg.get("home")
    python = venv_python(venv)
    if os.path.islink(python):  # followed to the end even when it dangles
        target = os.path.realpath(python)
        if not (target + "/").startswith(os.path.realpath(venv) + "/"):
            return target, f"bin/{os.path.basename(python)} symlink"
    if home:
        minor = ".".join(version.split(".")[:2])
        for name in (("python" + minor) if minor else None, "python3", "python"):
            if name and os.path.lexists(os.path.join(home, name)):
                return os.path.join(home, name), "pyvenv.cfg home"
        return os.path.join(home, "python" + minor if minor else "python3"), "pyvenv.cfg home"
    return None, "no home in pyvenv.cfg"


def venv_python(venv):
    for name in ("python", "python3"):
        path = os.path.join(venv, "bin", name)
        if os.path.lexists(path):
            return path
    return os.path.join(venv, "bin", "python")


def inspect_venv(venv):
    """What a venv was built on, whether that still exists, and what it runs now."""
    cfg = parse_pyvenv_cfg(read_text(os.path.join(venv, "pyvenv.cfg"), 65536))
    base, how = venv_base(venv, cfg)
    python = venv_python(venv)
    base_exists = bool(base) and is_executable_file(base)
    python_ok = is_executable_file(python)
    problems = []
    if not base_exists:
        problems.append(f"the interpreter it was built on is gone: {base or '(unknown)'}")
    if not python_ok and not (not base_exists and os.path.realpath(python) == base):
        target = os.path.realpath(python) if os.path.islink(python) else None
        dangling = f" (dangling link to {target})" if target else ""
        problems.append(f"{python} does not run{dangling}")
    return {
        "path": venv,
        "realpath": os.path.realpath(venv),
        "version": cfg.get("version") or cfg.get("version_info"),
        "home": cfg.get("home"),
        "base": base,
        "base_from": how,
        "base_exists": base_exists,
        "base_realpath": os.path.realpath(base) if base_exists else None,
        "python": python,
        "python_realpath": os.path.realpath(python) if python_ok else None,
        "system_site_packages": cfg.get("include-system-site-packages", "false").lower() == "true",
        "creator": "uv" if cfg.get("uv") else ("virtualenv" if cfg.get("virtualenv") else "venv"),
        "problems": problems,
    }


class Venvs:
    """Venvs found under the roots, and those named by units and cron; each inspected once.

    One entry per realpath: `<root>/current/venv` and `<root>/releases/<id>/venv` are one venv,
    shown under the name first noted (the application's is noted first) with the other as alias.
    """

    def __init__(self):
        self.found = {}

    def note(self, path, via):
        path = os.path.normpath(path)
        real = os.path.realpath(path)
        entry = self.found.get(real)
        if entry is None:
            entry = inspect_venv(path)
            entry["aliases"] = []
            entry["found_via"] = []
            self.found[real] = entry
        elif path != entry["path"] and path not in entry["aliases"]:
            entry["aliases"].append(path)
        if via not in entry["found_via"]:
            entry["found_via"].append(via)
        return entry

    def scan(self, root, deadline):
        def visit(path, names):
            if "pyvenv.cfg" in names:
                self.note(path, root)
                return False
            return True

        if os.path.isfile(os.path.join(root, "pyvenv.cfg")):
            self.note(root, root)
        elif os.path.isdir(root):
            walk(root, deadline, visit)

    def entries(self):
        return sorted(self.found.values(), key=lambda e: e["path"])


# ---------------------------------------------------------------------------------------------
# which python a command runs (units and cron)


def split_command(command):
    try:
        return shlex.split(command, comments=False, posix=True)
    except ValueError:
        return command.split()


def python_of_argv(argv, depth=0):
    """(python as named, how) for a command line, or (None, None) if it runs no Python.

    Looks at the program itself, `env python3 ...`, a shell's -c string, and every simple
    command of a shell line (cron), then at the shebang of scripts run directly.
    """
    commands, current = [], []
    for token in argv:
        if token in ("&&", "||", ";", "|", "&") or token.endswith(";"):
            head = token.rstrip(";")
            if head and token not in ("&&", "||", "|", "&"):
                current.append(head)
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    if current:
        commands.append(current)
    for command in commands:
        found = _python_of_simple(command, depth)
        if found[0]:
            return found
    return None, None


# commands that run the command after them: {name: options that take a value}
WRAPPERS = {"exec": (), "nohup": (), "time": (), "chronic": (), "nice": ("-n",),
            "ionice": ("-c", "-n"), "sudo": ("-u", "-g"), "runuser": ("-u", "-g"),
            "setpriv": (), "timeout": ("-s", "-k")}


def _strip_wrappers(words):
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]  # VAR=value prefixes
    while words and os.path.basename(words[0]) in WRAPPERS:
        takes_value = WRAPPERS[os.path.basename(words[0])]
        timeout = os.path.basename(words[0]) == "timeout"
        words = words[1:]
        while words and words[0].startswith("-"):
            words = words[2:] if words[0] in takes_value else words[1:]
        if timeout and words:
            words = words[1:]  # the duration
        if words and words[0] == "--":
            words = words[1:]
    return words


def _python_of_simple(argv, depth):
    words = _strip_wrappers(list(argv))
    if not words:
        return None, None
    prog = words[0].lstrip("@-:+!")
    name = os.path.basename(prog)
    if is_python_name(prog):
        return prog, "exec"
    if name == "env":
        rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        if rest and is_python_name(rest[0]):
            return rest[0], "env"
        return None, None
    if name in SHELLS and "-c" in words and depth < 2:
        index = words.index("-c")
        if index + 1 < len(words):
            return python_of_argv(split_command(words[index + 1]), depth + 1)
    path = which(prog) if "/" not in prog else prog
    if path and os.path.isabs(path) and os.path.isfile(path):
        line = shebang(path)
        if line:
            if is_python_name(line[0]):
                return line[0], f"shebang of {path}"
            if os.path.basename(line[0]) == "env" and len(line) > 1:
                rest = [w for w in line[1:] if not w.startswith("-")]
                if rest and is_python_name(rest[0]):
                    return rest[0], f"shebang of {path}"
    return None, None


def resolve_python(named, venvs, via):
    """Where a python as named leads: its path, its venv (if any), the base interpreter's realpath."""
    path = which(named) if "/" not in named else named
    out = {"python": named, "path": path, "exists": bool(path) and is_executable_file(path),
           "venv": None, "interpreter": None}
    if not path:
        return out
    venv = venv_of(path)
    if venv:
        entry = venvs.note(venv, via)
        out["venv"] = entry["path"]
        out["interpreter"] = entry["base_realpath"] or entry["base"]
    elif out["exists"]:
        out["interpreter"] = os.path.realpath(path)
    return out


# ---------------------------------------------------------------------------------------------
# systemd units


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


# ---------------------------------------------------------------------------------------------
# cron


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


# ---------------------------------------------------------------------------------------------
# os and disk


def os_release():
    fields = {}
    for line in (read_text("/etc/os-release") or read_text("/usr/lib/os-release") or "").splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            try:
                value = " ".join(shlex.split(value))
            except ValueError:
                value = value.strip("'\"")
            fields[key.strip()] = value
    return {
        "id": fields.get("ID", "linux"),
        "name": fields.get("PRETTY_NAME") or fields.get("NAME") or "Linux",
        "release": fields.get("VERSION_ID", ""),
        "codename": fields.get("VERSION_CODENAME", ""),
        "like": fields.get("ID_LIKE", ""),
        "arch": platform.machine(),
        "kernel": platform.release(),
        "hostname": socket.gethostname(),
    }


def mount_point(path):
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def disk(path, role):
    """Free space on the filesystem that holds (or would hold) `path`."""
    existing = path
    while existing and not os.path.exists(existing):
        existing = os.path.dirname(existing)
    try:
        st = os.statvfs(existing or "/")
    except OSError as exc:
        return {"path": path, "role": role, "error": str(exc)}
    return {
        "path": path, "role": role, "measured_at": existing, "mount": mount_point(existing),
        "free_bytes": st.f_bavail * st.f_frsize, "total_bytes": st.f_blocks * st.f_frsize,
    }


# ---------------------------------------------------------------------------------------------
# the application's venv: installed distributions and compiled extensions


def metadata_headers(text):
    """Name, Version and Requires-Python from a METADATA / PKG-INFO header block."""
    out = {}
    for line in (text or "").splitlines():
        if not line.strip():
            break  # the body (description) starts
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key in ("name", "version", "requires-python") and key not in out:
            out[key] = value.strip()
    return out


def site_packages(venv):
    dirs = []  # type: list[str]
    for lib in ("lib", "lib64"):
        for path in sorted(glob.glob(os.path.join(venv, lib, "python*", "site-packages"))):
            real = os.path.realpath(path)
            if real not in [os.path.realpath(d) for d in dirs]:
                dirs.append(path)
    return dirs


def record_files(dist_info):
    text = read_text(os.path.join(dist_info, "RECORD"), 4 << 20) or ""
    return [line.split(",", 1)[0] for line in text.splitlines() if line]


def inspect_packages(venv, deadline, max_files=100):
    """Distributions in the venv with Requires-Python and their compiled extensions."""
    dists, owner = [], {}
    dirs = site_packages(venv)
    for sp in dirs:
        for meta_dir in sorted(glob.glob(os.path.join(sp, "*.dist-info")) +
                               glob.glob(os.path.join(sp, "*.egg-info"))):
            name = "METADATA" if meta_dir.endswith(".dist-info") else "PKG-INFO"
            meta = os.path.join(meta_dir, name) if os.path.isdir(meta_dir) else meta_dir
            headers = metadata_headers(read_text(meta, 262144))
            dist = {"name": headers.get("name") or os.path.basename(meta_dir).split("-")[0],  # type: dict | None
                    "version": headers.get("version"),
                    "requires_python": headers.get("requires-python"),
                    "extensions": [], "extension_count": 0}
            dists.append(dist)
            if meta_dir.endswith(".dist-info"):
                for rel in record_files(meta_dir):
                    owner[os.path.normpath(os.path.join(sp, rel))] = dist
    unowned = []  # type: list[str]
    size = 0
    for sp in dirs:
        for folder, subdirs, files in os.walk(sp):
            if deadline.over():
                break
            subdirs.sort()
            for name in sorted(files):
                path = os.path.join(folder, name)
                with contextlib.suppress(OSError):
                    size += os.lstat(path).st_size
                if not re.search(r"\.so(\.[\d.]+)?$", name):
                    continue
                rel = os.path.relpath(path, sp)
                dist = owner.get(os.path.normpath(path))
                bucket = dist["extensions"] if dist else unowned
                if dist:
                    dist["extension_count"] += 1
                if len(bucket) < max_files:
                    bucket.append(rel)
    return {"site_packages": dirs, "distributions": dists, "unowned_extensions": unowned,
            "size_bytes": size}


def inspect_app(venv, deadline, venvs):
    exists = os.path.isfile(os.path.join(venv, "pyvenv.cfg"))
    out = {"venv": venv, "exists": exists, "realpath": os.path.realpath(venv)}
    if not exists:
        out["current"] = os.path.realpath(os.path.dirname(venv))
        return out
    venvs.note(venv, "application")
    out.update(inspect_packages(venv, deadline))
    return out


# ---------------------------------------------------------------------------------------------
# main


def audit(config):
    started = time.monotonic()
    budget = float(config.get("budget") or 40)
    deadline = Deadline(budget)
    prefix = config.get("prefix") or "/opt/oxzep7/python"
    app_roots = list(config.get("app_roots") or [])
    found, venvs = Interpreters(), Venvs()
    warnings = []

    # the application's venv first, so that it is shown as <root>/current/venv
    app = inspect_app(config["app_venv"], deadline, venvs) if config.get("app_venv") else None
    find_interpreters(found, venvs, prefix, deadline)
    for root in app_roots + list(config.get("paths") or []) + list(config.get("venv_roots") or []):
        venvs.scan(root, deadline)
    units, unit_warning = find_units(venvs)
    if unit_warning:
        warnings.append(unit_warning)
    cron = find_cron(venvs)

    # every interpreter something names is run for its version too, wherever it lives
    for venv in venvs.entries():
        if venv["base_realpath"]:
            found.add(venv["base_realpath"], "venv base", named=False)
    for item in units + cron:
        if item.get("interpreter") and not item.get("venv"):
            found.add(item["interpreter"], "referenced", named=False)
    if config.get("target"):
        found.add(config["target"], "target", named=False)
    interpreters = found.finish()
    running_versions(venvs.entries(), {e["realpath"]: e for e in interpreters})
    if deadline.hit:
        warnings.append(f"the search ran out of its {budget:g} s budget: "
                        "some directories were not searched")
    disks = [disk(prefix, "prefix")] + [disk(root, "application") for root in app_roots]
    return {
        "probe": PROBE_FORMAT,
        "os": os_release(),
        "python": sys.version.split()[0],
        "disk": disks,
        "interpreters": interpreters,
        "venvs": venvs.entries(),
        "units": units,
        "cron": cron,
        "app": app,
        "warnings": warnings,
        "seconds": round(time.monotonic() - started, 3),
    }


def running_versions(venvs, by_real):
    """What each venv's bin/python runs now (a copied interpreter is run itself)."""
    for venv in venvs:
        real = venv["python_realpath"]
        known = by_real.get(real) if real else None
        if known is not None:
            venv["running_version"] = known.get("version")
        elif real:
            venv["running_version"] = interpreter_version(venv["python"]).get("version")
        else:
            venv["running_version"] = None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="oxzep7-audit", description=__doc__.splitlines()[0])
    parser.add_argument("--config-b64", default="", help="options, as base64 of a JSON object")
    args = parser.parse_args(argv)
    config = json.loads(base64.b64decode(args.config_b64).decode("utf-8")) if args.config_b64 else {}
    try:
        document = audit(config)
    except Exception as exc:  # one JSON document whatever happens: the controller reports it
        document = {"probe": PROBE_FORMAT, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(document) + "\n")
        return 1
    sys.stdout.write(json.dumps(document) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
