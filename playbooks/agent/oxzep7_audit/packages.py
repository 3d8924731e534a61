"""The application's venv: installed distributions and their compiled extensions."""

import contextlib
import glob
import os
import re

from .base import read_text


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
