"""The controller and the sample app of the release e2e tests (tests/e2e/test_release.py).

`Controller` runs the release steps against a fleet, one run directory per call; `App` is a copy
of the sample app (tests/app/) installed by hand as an existing deployment would be.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from oxzep7_deploy.runner import HostResult
from oxzep7_deploy.runner.ansible import AnsibleRunner
from oxzep7_deploy.spec.model import (
    Application,
    Health,
    HttpCheck,
    Interpreter,
    Rollout,
    Snapshot,
    Spec,
)
from oxzep7_deploy.steps import release as steps
from tests.fleet.harness import CACHE_DIR, Fleet, FleetError

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "tests" / "app"
SECRET = "oxz-secret-7f3a9c1e"  # an application.env value: must never be written anywhere
SECRET_SHA16 = hashlib.sha256(SECRET.encode()).hexdigest()[:16]


@dataclass
class Controller:
    """Runs the release steps against the fleet; each call gets its own run directory."""

    fleet: Fleet
    work: Path
    runner: AnsibleRunner
    calls: int = 0
    run_dirs: list[Path] = field(default_factory=list)

    def run_dir(self, step: str) -> Path:
        self.calls += 1
        path = self.work / f"{self.calls:03d}-{step}"
        self.run_dirs.append(path)
        return path

    @property
    def inventory(self) -> str:
        return str(self.fleet.inventory)

    def prepare(self, spec: Spec, rid: str, deploy: str, owner: str | None = None,
                hosts: list[str] | None = None) -> Mapping[str, HostResult]:
        return steps.prepare_release(spec, self.inventory, hosts or self.fleet.hosts, self.runner,
                                     self.run_dir("prepare"), rid, deploy, owner)

    def switch(self, spec: Spec, rid: str, deploy: str) -> Mapping[str, HostResult]:
        return steps.switch_release(spec, self.inventory, self.fleet.hosts, self.runner,
                                    self.run_dir("switch"), rid, deploy)

    def confirm(self, spec: Spec, rid: str, deploy: str) -> Mapping[str, HostResult]:
        return steps.confirm_release(spec, self.inventory, self.fleet.hosts, self.runner,
                                     self.run_dir("confirm"), rid, deploy)

    def rollback(self, app: str, **kw: Any) -> Mapping[str, HostResult]:
        return steps.rollback_release(self.inventory, app, self.fleet.hosts, self.runner,
                                      self.run_dir("rollback"), **kw)

    def status(self, app: str, root: str | None = None) -> dict[str, steps.HostState]:
        return steps.read_status(self.inventory, app, self.fleet.hosts, self.runner,
                                 self.run_dir("status"), root=root)

    def unlock(self, app: str, **kw: Any) -> Mapping[str, HostResult]:
        return steps.unlock(self.inventory, app, self.fleet.hosts, self.runner,
                            self.run_dir("unlock"), **kw)



def six_wheel() -> Path:
    for folder in (CACHE_DIR / "wheels", Path("/var/tmp/oxzep7-t5/wheels")):
        found = sorted(folder.glob("six-1.17.0-*.whl")) if folder.is_dir() else []
        if found:
            return found[0]
    (CACHE_DIR / "wheels").mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "-d", str(CACHE_DIR / "wheels"), "six==1.17.0"], check=True, capture_output=True)
    return sorted((CACHE_DIR / "wheels").glob("six-1.17.0-*.whl"))[0]


@dataclass(frozen=True)
class App:
    name: str
    port: int
    fleet: Fleet

    @property
    def root(self) -> str:
        return f"/srv/{self.name}"

    @property
    def code(self) -> str:
        return f"{self.root}/app"

    @property
    def etc(self) -> str:
        return f"/etc/{self.name}"

    def spec(self, interp: Interpreter, **changes: Any) -> Spec:
        app = Application(
            name=self.name, root=self.root, code=self.code,
            requirements=f"{self.code}/requirements.lock",
            pip_args=("--no-index", "--find-links", f"{self.code}/wheels", "--require-hashes"),
            services=(f"{self.name}.service",), keep_releases=3,
            # a short value too: reports must come back intact (Ansible masks no_log substrings)
            env=MappingProxyType({"OXZ_SECRET": SECRET, "OXZ_WORKERS": "1"}),
        )
        spec = Spec(
            name=f"{self.name}-py", targets="all", interpreter=interp, application=app,
            verify=("{venv}/bin/python -m py_compile {code}/app.py",
                    "{venv}/bin/python -c 'import six'",
                    # the env reaches verify (compared by checksum: the value is in no command)
                    f'test "$(printf %s "$OXZ_SECRET" | sha256sum | cut -c1-16)" = {SECRET_SHA16}'),
            health=Health(checks=(HttpCheck(url=f"http://127.0.0.1:{self.port}/healthz",
                                            contains='"status": "ok"'),), retries=15, interval=1),
            snapshot=Snapshot(paths=(self.etc,)),
            rollout=Rollout(dead_man=120, lock_ttl=600), digest=f"sha-{self.name}",
        )
        return replace(spec, **changes)

    def healthz(self, host: str) -> dict[str, Any]:
        resp = self.fleet.http(host, self.port, "/healthz", timeout=3)
        body: dict[str, Any] = resp.json()
        body["http_status"] = resp.status
        return body

    def link(self, host: str) -> str:
        return self.fleet.sh(host, f"readlink {self.root}/current").strip()

    def wait_for(self, host: str, predicate: Callable[[dict[str, Any]], bool],
                 timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.healthz(host)
                if predicate(last):
                    return last
            except FleetError as exc:
                last = str(exc)
            time.sleep(0.25)
        raise AssertionError(f"{host}: /healthz never matched in {timeout:.0f}s; last: {last}")


def install_sample_app(fleet: Fleet, name: str, port: int) -> App:
    app = App(name, port, fleet)
    wheel = six_wheel()
    unit = (APP_DIR / "oxzep7-sample.service").read_text()
    unit = unit.replace("@ROOT@", app.root).replace("@CODE@", app.code).replace("@PORT@", str(port))
    for host in fleet.hosts:
        fleet.sh(host, f"id sample >/dev/null 2>&1 || useradd -r -s /usr/sbin/nologin sample;"
                       f" mkdir -p {app.code}/wheels {app.root}/releases {app.etc}/conf.d")
        for src in ("app.py", "requirements.lock"):
            fleet.copy_to(host, APP_DIR / src, f"{app.code}/{src}")
        fleet.copy_to(host, wheel, f"{app.code}/wheels/{wheel.name}")
        venv = f"{app.root}/releases/initial/venv"
        fleet.sh(host, f"python3 -m venv {venv} && {venv}/bin/pip install -q --no-index"
                       f" --find-links {app.code}/wheels --require-hashes -r {app.code}/requirements.lock"
                       f" && ln -s releases/initial {app.root}/current", timeout=300)
        fleet.write_file(host, f"{app.etc}/app.conf", f"# {name} on {host}\nworkers = 2\n")
        fleet.write_file(host, f"{app.etc}/conf.d/key.pem", f"not-a-real-key-{host}\n", mode="0640")
        fleet.sh(host, f"chown -R root:sample {app.etc}/conf.d && ln -s ../app.conf {app.etc}/conf.d/link")
        fleet.write_file(host, f"/etc/systemd/system/{name}.service", unit)
        fleet.sh(host, f"systemctl daemon-reload && systemctl enable --now {name}.service")
    for host in fleet.hosts:
        fleet.wait_http(host, port, "/healthz")
    return app


def etc_fingerprint(app: App, host: str) -> str:
    """Every path under the snapshot path: type, mode, owner, size, target, content checksum."""
    return app.fleet.sh(host, f"cd {app.etc} && find . -printf '%p %y %m %u:%g %s %l\\n' | sort &&"
                              " find . -type f -exec sha256sum {} + | sort")


class Poller:
    """GET /healthz on a host every 0.2 s in the background; what it saw."""

    def __init__(self, app: App, host: str) -> None:
        self.app, self.host = app, host
        self.seen: list[tuple[int | None, str | None, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                body = self.app.healthz(self.host)
                self.seen.append((body["http_status"], body.get("release"), body.get("pid")))
            except FleetError as exc:
                self.seen.append((None, None, str(exc)))
            time.sleep(0.2)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def assert_ok(results: Mapping[str, HostResult]) -> None:
    bad = {h: (r.status.value, r.failed_task, r.message) for h, r in results.items() if not r.ok}
    assert not bad, bad


def task_actions(run_dir: Path) -> set[str]:
    actions = set()
    for path in run_dir.glob("artifacts/*/job_events/*.json"):
        data = json.loads(path.read_text()).get("event_data", {})
        if data.get("task_action"):
            actions.add(data["task_action"])
    return actions

