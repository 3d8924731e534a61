"""Virtualenvs: pyvenv.cfg, the base interpreter a venv runs, and the venvs found."""

import os

from .base import is_executable_file, read_text
from .interpreters import walk


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
