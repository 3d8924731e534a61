"""The sample app's upgrade to CPython 3.13.5 on a fleet: the spec and the CLI, for the demo and
the end-to-end tests. Everything goes through the real `oxzep7-deploy` command."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fleet.build import CONFIGURE, VERSION, tool_cache
from tests.fleet.harness import FLEET_SH, Fleet, FleetError

# the session build's configuration (tests/fleet/build.py), so its cached artifact serves the
# CLI tests; the demo has a cache of its own (build.tool_cache() outside a test run)
CLI = Path(sys.executable).with_name("oxzep7-deploy")


def cpython_source() -> tuple[Path, str]:
    """The pristine Python-3.13.5 tarball (cached by tests/fleet/cpython.sh) and its sha256."""
    proc = subprocess.run(["bash", str(FLEET_SH.with_name("cpython.sh")), "python3.13"],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise FleetError(f"cpython.sh failed:\n{proc.stderr[-2000:]}")
    path = Path(proc.stdout.strip().splitlines()[-1])
    sha = Path(f"{path}.sha256").read_text().split()[0]
    return path, sha


def sample_spec(tarball: Path, sha256: str, *, name: str = "sample-py313", targets: str = "fleet",
                rollout: str | None = None, extra: str = "") -> str:
    """The upgrade spec of the sample app, as an ops engineer would write it."""
    configure = ", ".join(json.dumps(c) for c in CONFIGURE)
    rollout = rollout or """\
rollout:
  strategy: canary
  stages:
    - {name: canary, hosts: 1}
    - {name: all, hosts: "100%"}
  dead_man: 120s
"""
    return f"""\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: {name}
description: The sample app moves from the system Python 3.11 to CPython {VERSION}
targets: "{targets}"
interpreter:
  version: "{VERSION}"
  install:
    method: source
    url: {tarball}
    sha256: "{sha256}"
    configure: [{configure}]
    build: once-per-platform
application:
  name: sample
  root: /srv/sample
  code: /srv/sample/app
  requirements: requirements.lock
  pip_args: ["--no-index", "--find-links", "/srv/sample/app/wheels", "--require-hashes"]
  services: [oxzep7-sample.service]
verify:
  - "{{python}} -m compileall -q {{code}}"
health:
  checks:
    - http: {{url: "http://127.0.0.1:8000/healthz", status: 200, contains: '"status": "ok"'}}
  retries: 10
  interval: 1s
{rollout}{extra}"""


@dataclass
class Controller:
    """Runs `oxzep7-deploy` against a fleet from a working directory (its records live there)."""

    fleet: Fleet
    work: Path

    def env(self) -> dict[str, str]:
        env = self.fleet.ansible_env(self.work)
        env["OXZEP7_CACHE"] = str(tool_cache())
        env.pop("OXZEP7_RECORDS", None)
        return env

    def run(self, *args: str, timeout: float = 1200, check: bool = False,
            echo: bool = False, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """`input` is the command's stdin (e.g. the password -K asks for); else the caller's."""
        argv = [str(CLI), *args]
        if echo:  # the demo: the user sees the tool's own output as it comes
            proc = subprocess.run(argv, cwd=self.work, env=self.env(), timeout=timeout,
                                  stdout=subprocess.PIPE, text=True)
            print(proc.stdout, end="", flush=True)
        else:
            proc = subprocess.run(argv, cwd=self.work, env=self.env(), timeout=timeout,
                                  capture_output=True, text=True, input=input)
        if check and proc.returncode != 0:
            raise FleetError(f"oxzep7-deploy {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout[-3000:]}\n{(proc.stderr or '')[-3000:]}")
        return proc

    def json(self, *args: str, **kw: Any) -> tuple[int, Any]:
        proc = self.run(*args, "--json", **kw)
        try:
            return proc.returncode, json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            raise FleetError(f"not JSON from {args}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
                             ) from exc

    def inventory(self) -> str:
        return str(self.fleet.inventory)


def write(work: Path, name: str, text: str) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    path = work / name
    path.write_text(text)
    return path


__all__ = ["CLI", "CONFIGURE", "VERSION", "Controller", "cpython_source",
           "sample_spec", "write"]
