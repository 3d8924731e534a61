"""Rehearse before: the preview and `rehearse`, on a real 2-host fleet (issue #17, items 1 and 2).

Through the real `oxzep7-deploy` command. The interpreter is the hosts' own python3.11
(`existing`): what is shown is the preview beside the running app, not the interpreter build.
The sample app's unit runs `... app.py --port 8000`; PORT, when set, wins (the preview's default
preview.env), so the default preview (the unit's ExecStart pointed at the new release) serves on
preview.port.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.harness import Fleet
from tests.fleet.sample_app import SampleApp, install_sample_app
from tests.fleet.scenario import Controller, write

pytestmark = [pytest.mark.e2e]
HOSTS = ["h1", "h2"]
INITIAL = "initial"
STATE = "/var/lib/oxzep7/sample/state.json"
UNIT = "oxzep7-preview-sample.service"
PREVIEW_PORT = 18000

SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: {name}
targets: "all"
interpreter:
  version: "3.11.2"
  install: {{method: existing, executable: /usr/bin/python3.11}}
application:
  name: sample
  root: {root}
  code: {code}
  requirements: requirements.lock
  pip_args: {pip_args}
  services: [{service}]
  port: {port}
health:
  checks:
    - http: {{url: "http://127.0.0.1:{{port}}/healthz", status: 200, contains: '"status": "ok"'}}
  retries: 4
  interval: 1s
preview:
  port: {preview_port}
{preview_extra}rollout:
  strategy: canary
  stages:
    - {{name: canary, hosts: 1}}
    - {{name: all, hosts: "100%"}}
  dead_man: 120s
"""


@pytest.fixture(scope="module")
def fleet2(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(2)


@pytest.fixture(scope="module")
def app(fleet2: Fleet) -> SampleApp:
    return install_sample_app(fleet2)


@pytest.fixture
def ctl(fleet2: Fleet, app: SampleApp, tmp_path: Path) -> Iterator[Controller]:
    yield Controller(fleet2, tmp_path / "ops")
    reset(Controller(fleet2, tmp_path / "reset"), app)


def reset(ctl: Controller, app: SampleApp) -> None:
    """Both hosts back on `initial`, healthy, unlocked."""
    inv = ctl.inventory()
    ctl.run("unlock", "-i", inv, "--app", "sample", "--force", "--yes")
    _, status = ctl.json("status", "-i", inv, "--app", "sample")
    off = [h for h, s in status["hosts"].items() if (s.get("current") or INITIAL) != INITIAL]
    if off:
        ctl.run("rollback", "-i", inv, "--app", "sample", "--to", INITIAL, "--limit", ",".join(off),
                "--yes", check=True)
    for host in HOSTS:
        app.wait_healthy(host)


def spec_file(ctl: Controller, app: SampleApp, name: str, command: str | None = None) -> Path:
    extra = f"  command: {json.dumps(command)}\n" if command else ""
    return write(ctl.work, f"{name}.yaml", SPEC.format(
        name=name, root=app.root, code=app.code, pip_args=list(app.pip_args), service=app.service,
        port=app.port, preview_port=PREVIEW_PORT, preview_extra=extra))


def on(app: SampleApp, host: str) -> str:
    return app.current(host).removeprefix("releases/")


def state(fleet: Fleet, host: str) -> dict[str, Any]:
    text = fleet.run_on(host, f"cat {STATE} 2>/dev/null || true").stdout
    return json.loads(text) if text.strip() else {}


def assert_no_preview_left(fleet: Fleet) -> None:
    for host in HOSTS:
        active = fleet.run_on(host, f"systemctl is-active {UNIT} || true").stdout.strip()
        assert active in ("inactive", "unknown", ""), f"{host}: the preview unit is {active}"
        answered = fleet.run_on(
            host, f"python3 -c 'import socket; s=socket.socket(); "
                  f"print(s.connect_ex((\"127.0.0.1\", {PREVIEW_PORT})))'").stdout.strip()
        assert answered != "0", f"{host}: something still listens on the preview port"


def python_inode(fleet: Fleet, app: SampleApp, host: str, release: str) -> str:
    path = shlex.quote(f"{app.root}/releases/{release}/venv/pyvenv.cfg")
    return fleet.sh(host, f"stat -c '%i %Y' {path}").strip()


def test_a_preview_that_fails_its_health_check_never_switches_the_host(
    fleet2: Fleet, app: SampleApp, ctl: Controller
) -> None:
    # the new release's preview cannot start (a bad preview.command): its health check on the
    # preview port fails, so the host is never switched
    spec = spec_file(ctl, app, "preview-fails",
                     command="{venv}/bin/python {code}/no-such-app.py --port {port}")
    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 1, report
    assert report["outcome"] == "failed", report
    failed = {h: r for h, r in report["hosts"].items() if r["failed_step"]}
    assert list(failed) == ["h1"], report  # the canary; h2 was never tried
    message = failed["h1"]["message"]
    assert f"port {PREVIEW_PORT}" in message and "no-such-app.py" in message, message
    for host in HOSTS:
        assert on(app, host) == INITIAL
        body = app.wait_healthy(host)
        assert body["release"] == INITIAL, body
        rid = report["release"]
        assert (state(fleet2, host).get("releases", {}).get(rid) or {}).get("status") != "live"
    _, status = ctl.json("status", "-i", ctl.inventory(), "--app", "sample")
    assert {h: s["current"] for h, s in status["hosts"].items()} == dict.fromkeys(HOSTS, INITIAL)
    assert_no_preview_left(fleet2)


def test_a_preview_that_passes_lets_apply_switch(
    fleet2: Fleet, app: SampleApp, ctl: Controller
) -> None:
    # the default preview: the unit's own ExecStart, pointed at the new release, on PORT=18000
    spec = spec_file(ctl, app, "preview-passes")
    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 0, report
    rid = report["release"]
    for host in HOSTS:
        assert on(app, host) == rid
        assert app.wait_healthy(host)["release"] == rid
    (progress,) = ctl.work.glob(f".oxzep7/deploys/preview-passes/{rid}/progress.json")
    steps = [e for e in json.loads(progress.read_text())["timeline"] if "step" in e]
    previewed = [h for e in steps if e["step"] == "preview" and not e["failed"] for h in e["hosts"]]
    assert sorted(previewed) == HOSTS, steps
    order = [e["step"] for e in steps if e["step"] in ("preview", "switch")]
    assert order == ["preview", "switch", "preview", "switch"], order  # each batch: preview first
    assert_no_preview_left(fleet2)


def test_rehearse_switches_nothing_and_apply_reuses_the_prepared_release(
    fleet2: Fleet, app: SampleApp, ctl: Controller
) -> None:
    spec = spec_file(ctl, app, "preview-rehearsed")
    code, report = ctl.json("rehearse", str(spec), "-i", ctl.inventory())
    assert code == 0, report
    rid = report["release"]
    for host in HOSTS:
        assert report["hosts"][host]["state"] == "previewed", report
        assert on(app, host) == INITIAL  # nothing switched
        assert app.wait_healthy(host)["release"] == INITIAL
        assert state(fleet2, host)["releases"][rid]["status"] == "prepared"
    assert_no_preview_left(fleet2)
    built = {h: python_inode(fleet2, app, h, rid) for h in HOSTS}

    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 0, report
    assert report["release"] == rid
    for host in HOSTS:
        assert "already prepared here: reused" in (report["hosts"][host]["message"] or ""), report
        assert python_inode(fleet2, app, host, rid) == built[host]  # the same venv, not rebuilt
        assert on(app, host) == rid
        assert app.wait_healthy(host)["release"] == rid
