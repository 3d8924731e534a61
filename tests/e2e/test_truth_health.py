"""Truth under failure, on a real fleet: first adoption and health that belongs to the release.

Through the real `oxzep7-deploy` command and the release steps, on a 2-host fleet of its own.
The interpreter is the hosts' own python3.11 (`existing`): what is shown is where the tool goes
back to and what it checks there, not the interpreter build.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from oxzep7_deploy.runner import HostResult
from oxzep7_deploy.runner.ansible import AnsibleRunner
from oxzep7_deploy.spec.model import (
    Application,
    ExistingInstall,
    Health,
    HttpCheck,
    Interpreter,
    Rollout,
    Spec,
)
from oxzep7_deploy.steps import release as steps
from tests.fleet.harness import Fleet
from tests.fleet.sample_app import SampleApp, install_sample_app
from tests.fleet.scenario import Controller, write

pytestmark = [pytest.mark.e2e]
HOSTS = ["h1", "h2"]
SYSTEM = Interpreter(version="3.11.2", prefix="/usr",
                     install=ExistingInstall(executable="/usr/bin/python3.11"))


@pytest.fixture(scope="module")
def fleet2(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(2)


@pytest.fixture(scope="module")
def app(fleet2: Fleet) -> SampleApp:
    return install_sample_app(fleet2)


def assert_ok(results: Mapping[str, HostResult]) -> None:
    bad = {h: (r.status.value, r.failed_task, r.message) for h, r in results.items() if not r.ok}
    assert not bad, bad


# -- item 6: a rollback to release X checks X with X's own checks -------------------------------


def version_checked_spec(app: SampleApp, rid: str, env: str) -> Spec:
    """Health checks that name what this release must run: its Python and its release id (as
    `contains: "3.13.5"` would), and its own application.env."""
    url = app.health_url
    return Spec(
        name="pinned", targets="all", interpreter=SYSTEM,
        application=Application(
            name="pinned", root=app.root, code=app.code, requirements=app.requirements,
            pip_args=app.pip_args, services=(app.service,), keep_releases=5,
            env=MappingProxyType({"OXZ_TOKEN": env})),
        health=Health(checks=(HttpCheck(url=url, contains=f'"python": "{SYSTEM.version}"'),
                              HttpCheck(url=url, contains=f'"release": "{rid}"')),
                      retries=15, interval=1),
        rollout=Rollout(dead_man=120, lock_ttl=600), digest=f"sha-{rid}",
    )


def test_rollback_checks_the_release_it_goes_to_with_that_release_s_own_checks(
    fleet2: Fleet, app: SampleApp, tmp_path: Path
) -> None:
    runner = AnsibleRunner(fleet2.ansible_env(tmp_path))
    inv = str(fleet2.inventory)
    calls = iter(range(1, 100))

    def run_dir(step: str) -> Path:
        return tmp_path / f"{next(calls):03d}-{step}"

    for rid in ("r-one", "r-two"):  # two releases the tool deployed, each with its own checks
        spec = version_checked_spec(app, rid, env=f"token-{rid}")
        deploy = f"pinned/{rid}"
        assert_ok(steps.prepare_release(spec, inv, HOSTS, runner, run_dir("prepare"), rid, deploy))
        assert_ok(steps.switch_release(spec, inv, HOSTS, runner, run_dir("switch"), rid, deploy))
        assert_ok(steps.confirm_release(spec, inv, HOSTS, runner, run_dir("confirm"), rid, deploy))
    assert {app.wait_healthy(h)["release"] for h in HOSTS} == {"r-two"}

    ctl = Controller(fleet2, tmp_path)  # the operator's `rollback`: no spec, host state alone
    proc = ctl.run("rollback", "-i", ctl.inventory(), "--app", "pinned", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "INCOMPLETE" not in proc.stdout + proc.stderr
    for host in HOSTS:
        body = app.wait_healthy(host)
        assert (body["release"], body["python"]) == ("r-one", SYSTEM.version), body
    code, status = ctl.json("status", "-i", ctl.inventory(), "--app", "pinned")
    assert code == 0, status
    for host in HOSTS:
        assert status["hosts"][host]["current"] == "r-one", status["hosts"][host]
    states = steps.read_status(inv, "pinned", HOSTS, runner, run_dir("status"))
    for state in states.values():
        assert state.lock is None
    # what each host checked during the rollback: r-one's checks, not r-two's
    for host in HOSTS:
        history = fleet2.sh(host, "cat /var/lib/oxzep7/pinned/state.json")
        assert '"rollback-unhealthy"' not in history


# -- item 5: first adoption: pre-flight, and rolling back a first release -----------------------


FIRST_SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: first
targets: "all"
interpreter:
  version: "3.11.2"
  install: {{method: existing, executable: /usr/bin/python3.11}}
application:
  name: {name}
  root: {root}
  code: {code}
  requirements: requirements.lock
  pip_args: {pip_args}
  services: [{service}]
health:
  checks:
    - http: {{url: "{url}", status: 200, contains: '"status": "ok"'}}
  retries: 3
  interval: 1s
rollout:
  strategy: canary
  stages:
    - {{name: canary, hosts: 1}}
    - {{name: all, hosts: "100%"}}
  dead_man: 120s
"""


def never_deployed(fleet: Fleet, app: SampleApp, host: str) -> None:
    """The app's code and unit are there, but nothing runs: no `current`, the unit stopped."""
    q = shlex.quote
    fleet.sh(host, f"systemctl stop {q(app.service)}; rm -f {q(app.root + '/current')};"
                   f" rm -rf /var/lib/oxzep7/sample")


def host_view(fleet: Fleet, app: SampleApp, host: str) -> dict[str, Any]:
    q = shlex.quote
    return {
        "current": fleet.run_on(host, f"readlink {q(app.root + '/current')}").stdout.strip(),
        "unit": fleet.run_on(host, f"systemctl is-active {q(app.service)}").stdout.strip(),
        "lock": fleet.run_on(host, "test -e /var/lib/oxzep7/sample/lock").returncode == 0,
        "releases": fleet.sh(host, f"ls {q(app.root + '/releases')}").split(),
    }


def test_first_adoption_preflight_refuses_then_a_failed_first_release_leaves_hosts_as_they_were(
    fleet2: Fleet, app: SampleApp, tmp_path: Path
) -> None:
    for host in HOSTS:
        never_deployed(fleet2, app, host)
    before = {h: host_view(fleet2, app, h) for h in HOSTS}
    assert all(v["current"] == "" and v["unit"] != "active" for v in before.values()), before
    spec = write(tmp_path, "first.yaml", FIRST_SPEC.format(
        name="sample", root=app.root, code=app.code, pip_args=list(app.pip_args),
        service=app.service, url=app.health_url))
    ctl = Controller(fleet2, tmp_path)

    # pre-flight: the unhealthy hosts are named before anything changes; exit 2
    proc = ctl.run("apply", str(spec), "-i", ctl.inventory(), "--yes")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "pre-flight" in out and "h1: unhealthy" in out and "h2: unhealthy" in out, out
    assert "--allow-unhealthy" in out
    assert {h: host_view(fleet2, app, h) for h in HOSTS} == before, "the pre-flight changed a host"

    # the first release fails its health checks on the canary: back to no `current`, exit 1
    for host in HOSTS:
        app.set_unhealthy(host, note="the new release is broken")
    try:
        code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes",
                                "--allow-unhealthy")
    finally:
        for host in HOSTS:
            app.set_unhealthy(host, False)
    assert code == 1, report
    assert report["outcome"] != "rollback-incomplete", report
    after = {h: host_view(fleet2, app, h) for h in HOSTS}
    for host in HOSTS:
        assert after[host]["current"] == "", f"{host}: current left at {after[host]['current']}"
        assert after[host]["unit"] == before[host]["unit"], after[host]
        assert not after[host]["lock"], f"{host}: lock left behind"
    canary = [h for h, r in report["hosts"].items() if r["failed_step"] == "switch"]
    assert len(canary) == 1, report
    assert "back to no current release" in (report["hosts"][canary[0]]["message"] or ""), report
    code, status = ctl.json("status", "-i", ctl.inventory(), "--app", "sample")
    for host in HOSTS:
        assert status["hosts"][host]["current"] is None, status["hosts"][host]
        assert status["hosts"][host]["lock"] is None, status["hosts"][host]

    # put the module's app back for anyone after us: the hand-made release, running
    for host in HOSTS:
        fleet2.sh(host, f"ln -sfn releases/initial {app.root}/current &&"
                        f" systemctl start {app.service}")
        app.wait_healthy(host)
