"""End to end on the real fleet: the sample app's release on each host, through real ansible-runner.

One fleet for the module (h1 can compile, h2 cannot). The "new" interpreter is CPython 3.13.5
installed by the interpreter step from the tool's cache (built once if the cache lacks it);
OXZ_RELEASE_NEW_PYTHON=system uses the hosts' own python3.11 instead, for a quick run. Every
test installs its own copy of the sample app (tests/app/) under its own name and port, made by
hand as an existing deployment would be: `<root>/releases/initial`, `<root>/current` -> it, a
systemd unit, and no oxzep7 state at all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from oxzep7_deploy.errors import ExitCode, LockHeldError
from oxzep7_deploy.runner import HostResult
from oxzep7_deploy.runner.ansible import AnsibleRunner
from oxzep7_deploy.spec.model import (
    CommandCheck,
    ExistingInstall,
    Health,
    HttpCheck,
    Interpreter,
    Rollout,
    SourceInstall,
    Spec,
)
from oxzep7_deploy.state import ReleaseStatus
from oxzep7_deploy.steps import release as steps
from oxzep7_deploy.steps.interpreter import install_interpreter
from tests.e2e.release_kit import (
    REPO,
    SECRET,
    App,
    Controller,
    Poller,
    assert_ok,
    etc_fingerprint,
    install_sample_app,
    task_actions,
)
from tests.fleet import build
from tests.fleet.harness import Fleet

pytestmark = pytest.mark.e2e

OLD_VERSION = "3.11.2"  # Debian 12's python3

NEW_VERSION = build.VERSION

TIMINGS: dict[str, float] = {}



# -- the fleet, the controller, the new interpreter --------------------------------------------


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Iterator[Fleet]:
    """This module's own hosts (h1 can compile, h2 cannot), named apart from any other
    session's, so parallel runs never take down each other's fleet."""
    yield fleet_factory(2, build_hosts=["h1"])
    if TIMINGS:
        print("\nrelease timings (s):", json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))



@pytest.fixture(scope="module")
def ctl(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Controller:
    work = tmp_path_factory.mktemp("release")
    return Controller(fleet, work, AnsibleRunner(fleet.ansible_env(work)))


@pytest.fixture(scope="module")
def new_interpreter(request: pytest.FixtureRequest, fleet: Fleet, ctl: Controller) -> Interpreter:
    """3.13.5 on every host of this fleet, shipped from the session build's artifact in the tool
    cache (`cpython_build`), and checked to run on each host."""
    if os.environ.get("OXZ_RELEASE_NEW_PYTHON") == "system":
        return Interpreter(version=OLD_VERSION, prefix="/usr",
                           install=ExistingInstall(executable="/usr/bin/python3.11"))
    built = request.getfixturevalue("cpython_build")
    # h1 can compile and is the build_host: with the artifact cached, it gets the tree shipped too
    spec = replace(build.source_spec(built.source, built.sha256, build_host="h1"),
                   name="release-e2e-interp")
    started = time.monotonic()
    outcome = install_interpreter(spec, ctl.inventory, fleet.hosts, ctl.runner,
                                  ctl.run_dir("interpreter"), built.cache)
    TIMINGS["interpreter install (shipped from the cache)"] = time.monotonic() - started
    assert outcome.ok, outcome.problems()
    assert outcome.builds == () and dict(outcome.actions) == {h: "shipped" for h in fleet.hosts}
    for host in fleet.hosts:
        assert build.interpreter_runs(fleet, host) == NEW_VERSION, f"no {NEW_VERSION} on {host}"
    return spec.interpreter




# -- must show: upgrade, then rollback in seconds ----------------------------------------------


def test_upgrade_switches_the_app_and_rollback_restores_it_in_seconds(
    fleet: Fleet, ctl: Controller, new_interpreter: Interpreter
) -> None:
    app = install_sample_app(fleet, "up", 8101)
    spec = app.spec(new_interpreter)
    rid, deploy = "r20250101-up", "up-py/r20250101-up"
    before = {h: app.healthz(h) for h in fleet.hosts}
    assert {b["python"] for b in before.values()} == {OLD_VERSION}

    with Poller(app, "h1") as poll:
        started = time.monotonic()
        assert_ok(ctl.prepare(spec, rid, deploy))
        TIMINGS["prepare (2 hosts)"] = time.monotonic() - started
    assert {(s, r, p) for s, r, p in poll.seen} == {(200, "initial", before["h1"]["pid"])}, \
        "preparing must not touch what is live"
    assert all(app.link(h) == "releases/initial" for h in fleet.hosts)

    started = time.monotonic()
    switched = ctl.switch(spec, rid, deploy)
    TIMINGS["switch + restart + health (2 hosts)"] = time.monotonic() - started
    assert_ok(switched)
    for host in fleet.hosts:
        body = app.healthz(host)
        assert (body["python"], body["release"]) == (new_interpreter.version, rid), body
        assert switched[host].result["from"] == "initial"
        assert switched[host].result["deadman"]["mode"] == "systemd"
    assert_ok(ctl.confirm(spec, rid, deploy))
    baked = steps.check_health(spec, ctl.inventory, fleet.hosts, ctl.runner, ctl.run_dir("health"),
                               rid, retries=1)  # the engine's bake gate
    assert_ok(baked)
    assert all(r.result["health"]["checks"][0]["ok"] for r in baked.values())
    states = ctl.status(app.name)
    for state in states.values():
        assert (state.current, state.previous, state.last_good) == (rid, "initial", rid)
        assert state.releases[rid].status is ReleaseStatus.GOOD
        assert state.interpreter_version == new_interpreter.version
        assert state.lock is None and state.deadman is None, "confirm disarms and unlocks"
        assert state.releases[rid].interpreter.executable == new_interpreter.executable

    venv_mtimes = {h: fleet.sh(h, f"stat -c %Y {app.root}/releases/*/venv/pyvenv.cfg")
                   for h in fleet.hosts}
    started = time.monotonic()
    rolled = ctl.rollback(app.name)
    elapsed = time.monotonic() - started
    TIMINGS["rollback (2 hosts, to healthy)"] = elapsed
    assert_ok(rolled)
    for host in fleet.hosts:
        body = app.healthz(host)
        assert (body["python"], body["release"]) == (OLD_VERSION, "initial"), body
        assert rolled[host].result["from"] == rid and rolled[host].result["health"]["ok"]
    assert elapsed < 30, f"rollback took {elapsed:.1f}s"
    # no download, no build: only the agent ran; no venv or interpreter was touched
    assert task_actions(ctl.run_dirs[-1]) <= {"oxzep7.deploy.oxzep7_agent", "ansible.builtin.set_fact"}
    assert {h: fleet.sh(h, f"stat -c %Y {app.root}/releases/*/venv/pyvenv.cfg")
            for h in fleet.hosts} == venv_mtimes
    states = ctl.status(app.name)
    assert all(s.releases[rid].status is ReleaseStatus.BAD for s in states.values())
    assert all(s.current == "initial" and s.interpreter_version == OLD_VERSION for s in states.values())

    again = ctl.rollback(app.name)  # initial is the only good release left: nothing to go to
    for host, res in again.items():
        assert not res.ok and res.result["code"] == "nothing-to-roll-back", res
        assert app.healthz(host)["release"] == "initial"

    # nothing secret in any record: run directories, host state, release.json, the journal
    leaks = subprocess.run(["grep", "-rl", SECRET, str(ctl.work)], capture_output=True, text=True)
    assert leaks.stdout == "", f"application.env value written to {leaks.stdout}"
    # on the host: in the one root-only file that rollback and the dead-man read it from
    env_file = f"/var/lib/oxzep7/{app.name}/env.json"
    for host in fleet.hosts:
        found = fleet.run_on(host, f"grep -rl {SECRET} /var/lib/oxzep7 {app.root} /tmp /root /home;"
                                   f" journalctl --no-pager | grep -c {SECRET}")
        assert found.stdout.split() == [env_file, "0"], f"{host}: {found.stdout}"
        assert fleet.sh(host, f"stat -c '%a %U' {env_file}").strip() == "600 root"
        perms = fleet.sh(host, f"stat -c '%a %U' /var/lib/oxzep7 /var/lib/oxzep7/{app.name}"
                               f" /var/lib/oxzep7/{app.name}/snapshots /var/lib/oxzep7/bin")
        assert set(perms.split("\n")[:-1]) == {"700 root"}


# -- must show: a failed verify switches nothing and the service keeps serving ------------------


@pytest.mark.parametrize("failure", ["requirement", "verify"])
def test_a_failed_prepare_switches_nothing_and_the_service_keeps_serving(
    fleet: Fleet, ctl: Controller, new_interpreter: Interpreter, failure: str
) -> None:
    app = install_sample_app(fleet, f"vf{failure[0]}", 8102 if failure == "requirement" else 8103)
    if failure == "requirement":  # a pinned requirement that is not in the offline wheel dir
        for host in fleet.hosts:
            fleet.write_file(host, f"{app.code}/requirements-new.lock", "six==1.17.0\nno-such-pkg==1.0\n")
        spec = app.spec(new_interpreter)
        spec = replace(spec, application=replace(spec.application, pip_args=spec.application.pip_args[:3],
                                                 requirements=f"{app.code}/requirements-new.lock"))
    elif new_interpreter.version.startswith("3.13"):  # the app needs a module 3.13 removed
        spec = app.spec(new_interpreter, verify=("{venv}/bin/python -c 'import cgi'",))
    else:
        spec = app.spec(new_interpreter, verify=("{venv}/bin/python -c 'raise SystemExit(\"smoke\")'",))
    before = {h: app.healthz(h)["pid"] for h in fleet.hosts}
    with Poller(app, "h1") as poll:
        results = ctl.prepare(spec, "r-broken", "broken/r-broken")
    for res in results.values():
        assert not res.ok, res
        want = "requirements failed" if failure == "requirement" else "verify failed"
        assert res.message and want in res.message, res.message
    assert poll.seen and all(s == (200, "initial", before["h1"]) for s in poll.seen), poll.seen[:5]
    for host in fleet.hosts:
        assert app.link(host) == "releases/initial"
        assert app.healthz(host)["pid"] == before[host]
    states = ctl.status(app.name)
    assert all(s.releases["r-broken"].status is ReleaseStatus.FAILED for s in states.values())
    refused = ctl.switch(spec, "r-broken", "broken/r-broken")
    assert all(not r.ok and r.result["code"] == "release-failed" for r in refused.values())
    assert all(app.healthz(h)["pid"] == before[h] for h in fleet.hosts)
    ctl.unlock(app.name, deploy_id="broken/r-broken")


def test_a_misspelt_service_is_refused_while_preparing_before_any_switch(
    fleet: Fleet, ctl: Controller, new_interpreter: Interpreter
) -> None:
    app = install_sample_app(fleet, "typo", 8107)
    spec = app.spec(new_interpreter)
    spec = replace(spec, application=replace(spec.application, services=("typo-sampel.service",)))
    results = ctl.prepare(spec, "r-typo", "typo/r-typo")
    for host, res in results.items():
        assert not res.ok and res.result["code"] == "unit-not-found", res
        assert "typo-sampel.service" in (res.message or ""), res.message
        assert app.link(host) == "releases/initial"
    ctl.unlock(app.name, deploy_id="typo/r-typo")


# -- must show: a failed health check puts the previous release back, snapshot byte for byte --


def test_failed_health_puts_the_previous_release_back_and_restores_the_snapshot(
    fleet: Fleet, ctl: Controller, new_interpreter: Interpreter
) -> None:
    app = install_sample_app(fleet, "hf", 8104)
    # the new release rewrites its configuration, then fails its check; the old one passes
    breaks = (f"if [ -e {{release}}/UNHEALTHY ]; then echo 'workers = 0' > {app.etc}/app.conf;"
              f" rm {app.etc}/conf.d/key.pem; touch {app.etc}/stray; exit 1; fi")
    spec = app.spec(new_interpreter, health=Health(
        checks=(HttpCheck(url=f"http://127.0.0.1:{app.port}/healthz"), CommandCheck(breaks)),
        retries=3, interval=1))
    rid, deploy = "r-unhealthy", "hf-py/r-unhealthy"
    assert_ok(ctl.prepare(spec, rid, deploy))
    for host in fleet.hosts:
        fleet.sh(host, f"touch {app.root}/releases/{rid}/UNHEALTHY")
    before = {h: etc_fingerprint(app, h) for h in fleet.hosts}

    results = ctl.switch(spec, rid, deploy)
    for host, res in results.items():
        assert not res.ok
        r = res.result
        assert r["switched"] and r["revert_ok"], r
        assert r["failed_check"].startswith("command if [ -e "), r["failed_check"]
        assert res.message and "back on release initial" in res.message, res.message
        body = app.healthz(host)
        assert (body["release"], body["http_status"]) == ("initial", 200)
        assert app.link(host) == "releases/initial"
        assert etc_fingerprint(app, host) == before[host], "snapshot paths not restored byte for byte"
    assert steps.rollback_incomplete(results) == ()
    states = ctl.status(app.name)
    for state in states.values():
        assert state.releases[rid].status is ReleaseStatus.BAD
        assert (state.current, state.last_good) == ("initial", "initial")
        assert state.deadman is None
    ctl.unlock(app.name, deploy_id=deploy)


# -- must show: the dead-man restores the host when the controller dies -------------------------

KILLED_CONTROLLER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("release_e2e", sys.argv[1])
mod = importlib.util.module_from_spec(spec); sys.modules["release_e2e"] = mod
spec.loader.exec_module(mod)
mod.switch_then_confirm(*sys.argv[2:])
"""


def switch_then_confirm(fleet_name: str, work: str, interp_json: str, name: str, port: str,
                        dead_man: str, rid: str, deploy: str) -> None:
    """The controller that gets killed: switch, then (never reached) confirm."""
    fleet = Fleet.attach(fleet_name)
    ctl = Controller(fleet, Path(work), AnsibleRunner(fleet.ansible_env(Path(work))))
    app = App(name, int(port), fleet)
    spec = dead_man_spec(app, interpreter_from_json(interp_json), int(dead_man))
    ctl.switch(spec, rid, deploy)
    ctl.confirm(spec, rid, deploy)


def dead_man_spec(app: App, interp: Interpreter, dead_man: int) -> Spec:
    # health passes, slowly: the controller is killed while it waits
    checks = (HttpCheck(url=f"http://127.0.0.1:{app.port}/healthz"), CommandCheck("sleep 6"))
    return app.spec(interp, health=Health(checks=checks, retries=3, interval=1),
                    rollout=Rollout(dead_man=dead_man, lock_ttl=600))


def interpreter_to_json(interp: Interpreter) -> str:
    install = interp.install
    if isinstance(install, SourceInstall):
        return json.dumps({"version": interp.version, "prefix": interp.prefix, "url": install.url,
                           "sha256": install.sha256, "configure": list(install.configure)})
    return json.dumps({"version": interp.version, "executable": interp.executable})


def interpreter_from_json(text: str) -> Interpreter:
    doc = json.loads(text)
    if "url" in doc:
        return Interpreter(version=doc["version"], prefix=doc["prefix"], install=SourceInstall(
            url=doc["url"], sha256=doc["sha256"], configure=tuple(doc["configure"])))
    return Interpreter(version=doc["version"], prefix="/usr",
                       install=ExistingInstall(executable=doc["executable"]))


def test_the_dead_man_restores_the_previous_release_when_the_controller_dies(
    fleet: Fleet, ctl: Controller, new_interpreter: Interpreter, tmp_path: Path
) -> None:
    app = install_sample_app(fleet, "dm", 8105)
    dead_man = 25
    spec = dead_man_spec(app, new_interpreter, dead_man)
    rid, deploy = "r-orphan", "dm-py/r-orphan"
    assert_ok(ctl.prepare(spec, rid, deploy))
    before = {h: etc_fingerprint(app, h) for h in fleet.hosts}
    log = (tmp_path / "controller.log").open("w")
    controller = subprocess.Popen(
        [sys.executable, "-c", KILLED_CONTROLLER, __file__, fleet.name, str(tmp_path),
         interpreter_to_json(new_interpreter), app.name, str(app.port), str(dead_man), rid, deploy],
        cwd=REPO, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not all(app.link(h) == f"releases/{rid}" for h in fleet.hosts):
            assert controller.poll() is None, (tmp_path / "controller.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the switch never happened"
            time.sleep(0.2)
        os.killpg(controller.pid, signal.SIGKILL)  # ansible-runner, ansible-playbook, ssh: all of it
        killed = time.monotonic()
    finally:
        if controller.poll() is None:
            os.killpg(controller.pid, signal.SIGKILL)
        controller.wait()
        log.close()
    for host in fleet.hosts:
        fleet.sh(host, f"echo 'changed while unconfirmed' > {app.etc}/app.conf")
    # the link was switched before the kill; the service may still be restarting onto it
    app.wait_for("h1", lambda b: b["current"] == rid, timeout=dead_man / 2)
    for host in fleet.hosts:  # `current`: where the link points; `release`: what the process runs
        app.wait_for(host, lambda b: (b["current"], b["release"], b["http_status"]) == (
            "initial", "initial", 200), timeout=dead_man + 30)
    restored_after = time.monotonic() - killed
    TIMINGS["dead-man restore after controller killed"] = restored_after
    assert restored_after <= dead_man + 30
    for host in fleet.hosts:
        assert app.link(host) == "releases/initial"
        assert etc_fingerprint(app, host) == before[host]
    states = ctl.status(app.name)
    for state in states.values():
        assert state.releases[rid].status is ReleaseStatus.BAD
        assert state.deadman is None and state.current == "initial"
        assert any(e.event == "deadman" and e.from_release == rid for e in state.history)
        assert state.lock is not None and state.lock.deploy == deploy, "the dead deploy's lock stays"
    late = ctl.confirm(spec, rid, deploy)
    assert all(not r.ok and r.message and "dead-man" in r.message for r in late.values())
    assert_ok(ctl.unlock(app.name, force=True))


# -- must show: locks ---------------------------------------------------------------------------


def test_a_concurrent_deploy_is_refused_naming_the_holder_and_locks_expire_or_break(
    fleet: Fleet, ctl: Controller, new_interpreter: Interpreter
) -> None:
    app = install_sample_app(fleet, "lk", 8106)
    spec = app.spec(new_interpreter)
    results: dict[str, Mapping[str, HostResult]] = {}

    def apply(deploy: str, owner: str) -> None:
        results[deploy] = ctl.prepare(spec, f"r-{deploy}", deploy, owner=owner)

    both = [threading.Thread(target=apply, args=(d, o)) for d, o in
            (("deploy-a", "alice@ctl-a"), ("deploy-b", "bob@ctl-b"))]
    for t in both:
        t.start()
    for t in both:
        t.join()
    for host in fleet.hosts:
        winners = [d for d in results if results[d][host].ok]
        assert len(winners) == 1, {d: results[d][host] for d in results}
        loser = "deploy-b" if winners == ["deploy-a"] else "deploy-a"
        refused = results[loser][host]
        holder = steps.lock_holders(results[loser])[host]
        assert holder.deploy == winners[0] and holder.owner in ("alice@ctl-a", "bob@ctl-b")
        assert refused.message and f"locked by deploy {winners[0]}" in refused.message
    with pytest.raises(LockHeldError) as raised:
        steps.raise_if_locked(results["deploy-b"] if steps.lock_holders(results["deploy-b"])
                              else results["deploy-a"])
    assert raised.value.exit_code is ExitCode.USAGE and "locked by deploy" in raised.value.message

    # unlock needs the holder, or --force
    refused_unlock = ctl.unlock(app.name, owner="mallory@elsewhere")
    assert all(not r.ok and r.result["code"] == "locked" for r in refused_unlock.values())
    assert_ok(ctl.unlock(app.name, force=True))
    assert all(s.lock is None for s in ctl.status(app.name).values())

    # a stale lock expires: deploy-c's lock (ttl 3 s) no longer stops deploy-d
    short = replace(spec, rollout=replace(spec.rollout, lock_ttl=3))
    assert_ok(ctl.prepare(short, "r-deploy-c", "deploy-c", owner="carol@ctl-c"))
    time.sleep(4)
    assert_ok(ctl.prepare(spec, "r-deploy-c", "deploy-d", owner="dave@ctl-d"))
    assert all(s.lock and s.lock.deploy == "deploy-d" for s in ctl.status(app.name).values())
    assert_ok(ctl.unlock(app.name, deploy_id="deploy-d"))


# -- status of a host oxzep7 never touched ------------------------------------------------------


def test_status_of_an_untouched_host_shows_what_it_runs_and_changes_nothing(
    fleet: Fleet, ctl: Controller
) -> None:
    app = install_sample_app(fleet, "st", 8107)
    states = ctl.status(app.name, root=app.root)
    for host, state in states.items():
        assert state.ok and not state.managed
        assert state.current == "initial" and state.interpreter_version == OLD_VERSION
        rel = state.current_release
        assert rel is not None and rel.adopted
        assert fleet.run_on(host, f"test -e /var/lib/oxzep7/{app.name}").returncode == 1
