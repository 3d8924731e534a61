"""Probe documents as the host probe prints them, built small for the merge and upgrade tests."""

from __future__ import annotations

from typing import Any

from oxzep7_deploy.audit.model import Target

TARGET = Target("app-py313", "app", "/srv/app", "3.13.5", "/opt/oxzep7/python/3.13.5/bin/python3.13",
                "/opt/oxzep7/python/3.13.5")
SYSTEM = "/usr/bin/python3.11"
PYENV38 = "/home/deploy/.pyenv/versions/3.8.18/bin/python3.8"


def interpreter(real: str, version: str | None, *sources: str, paths: tuple[str, ...] = ()
                ) -> dict[str, Any]:
    return {"realpath": real, "path": (paths or (real,))[0], "paths": list(paths or (real,)),
            "sources": list(sources), "version": version, "implementation": "cpython",
            "error": None if version else "no version printed"}


def venv(path: str, base: str, version: str = "3.11.2", running: str | None = "3.11.2",
         problems: tuple[str, ...] = (), realpath: str | None = None) -> dict[str, Any]:
    exists = not problems
    return {"path": path, "realpath": realpath or path, "version": version, "home": base.rsplit("/", 1)[0],
            "base": base, "base_from": "pyvenv.cfg executable", "base_exists": exists,
            "base_realpath": base if exists else None, "python": f"{path}/bin/python",
            "python_realpath": base if exists else None, "system_site_packages": False,
            "creator": "venv", "problems": list(problems), "aliases": [], "found_via": ["/srv/app"],
            "running_version": running}


def unit(name: str, python: str, venv_path: str | None, interpreter_real: str | None,
         exists: bool = True) -> dict[str, Any]:
    return {"unit": name, "file": f"/etc/systemd/system/{name}", "dropins": [], "key": "ExecStart",
            "command": f"{python} -m app", "enabled": "enabled", "active": "active", "sub": "running",
            "how": "exec", "python": python, "path": python, "exists": exists, "venv": venv_path,
            "interpreter": interpreter_real}


def cron(python: str, interpreter_real: str | None, user: str = "deploy") -> dict[str, Any]:
    return {"file": f"/var/spool/cron/crontabs/{user}", "line": 2, "schedule": "*/10 * * * *",
            "user": user, "command": f"{python} r.py", "how": "exec", "python": python,
            "path": python, "exists": True, "venv": None, "interpreter": interpreter_real}


def dist(name: str, version: str, requires_python: str | None = None,
         extensions: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"name": name, "version": version, "requires_python": requires_python,
            "extensions": list(extensions), "extension_count": len(extensions)}


def probe_doc(**over: Any) -> dict[str, Any]:
    """A host with the system Python, a fake pyenv 3.8 run by cron, a unit on the system
    Python, the app's venv and a broken one: the planted cases of the end-to-end test."""
    current = venv("/srv/app/current/venv", SYSTEM, realpath="/srv/app/releases/r1/venv")
    broken = venv("/srv/app/releases/r0/venv", "/opt/tmpy/bin/python3.11", running=None,
                  problems=("the interpreter it was built on is gone: /opt/tmpy/bin/python3.11",))
    doc: dict[str, Any] = {
        "probe": 1,
        "os": {"id": "debian", "name": "Debian GNU/Linux 12 (bookworm)", "release": "12",
               "arch": "x86_64", "kernel": "6.1", "hostname": "h1"},
        "python": "3.11.2",
        "disk": [{"path": TARGET.prefix, "role": "prefix", "measured_at": "/opt", "mount": "/",
                  "free_bytes": 20 << 30, "total_bytes": 40 << 30},
                 {"path": "/srv/app", "role": "application", "measured_at": "/srv/app",
                  "mount": "/", "free_bytes": 20 << 30, "total_bytes": 40 << 30}],
        "interpreters": [interpreter(PYENV38, "3.8.18", "pyenv", "referenced"),
                         interpreter(SYSTEM, "3.11.2", "system", "venv base",
                                     paths=("/usr/bin/python3", SYSTEM))],
        "venvs": [current, broken],
        "units": [unit("pyhttp.service", "/usr/bin/python3", None, SYSTEM),
                  unit("app.service", "/srv/app/current/venv/bin/python", "/srv/app/current/venv",
                       SYSTEM)],
        "cron": [cron(PYENV38, PYENV38)],
        "app": {"venv": TARGET.venv, "exists": True, "realpath": "/srv/app/releases/r1/venv",
                "site_packages": ["/srv/app/current/venv/lib/python3.11/site-packages"],
                "distributions": [
                    dist("oldpkg", "1.0", ">=3.6, <3.12"),
                    dist("fastpkg", "2.0", ">=3.8",
                         ("fastpkg/_speedups.cpython-311-x86_64-linux-gnu.so",)),
                    dist("stablepkg", "1.1", ">=3.7", ("stablepkg/_native.abi3.so",)),
                    dist("okpkg", "3.0", ">=3.8")],
                "unowned_extensions": [], "size_bytes": 30 << 20},
        "warnings": [],
        "seconds": 0.4,
    }
    doc.update(over)
    return doc
