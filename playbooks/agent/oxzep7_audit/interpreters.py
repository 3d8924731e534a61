"""Finding interpreters: PATH, the usual prefixes, /opt and the walks of the given roots."""

import glob
import os
from concurrent.futures import ThreadPoolExecutor

from .base import home_dirs, is_executable_file, is_python_name, venv_of
from .versions import interpreter_version

MAX_DEPTH = 6  # how deep the walks of /opt, app roots and --path go
SKIP_DIRS = frozenset(("node_modules", ".git", "__pycache__", "site-packages", "dist-packages",
                       "include", "share", "man", ".cache", "proc", "sys", "dev"))


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
