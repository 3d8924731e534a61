"""The operating system and the free disk of the prefix and the application roots."""

import os
import platform
import shlex
import socket

from .base import read_text


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
