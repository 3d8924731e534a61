"""Serving while switching (issue: real applications): the restart gap of each switched host,
measured by the agent and seen by a request loop, with a plain restart, socket activation and a
graceful reload; `pip check` in prepare; rollback in batches. One 3-host fleet; the "new"
interpreter is the hosts' own python3.11 (`existing`): what is measured here is the switch, not
the interpreter.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.harness import Fleet
from tests.fleet.load import RequestLoop
from tests.fleet.sample_app import SampleApp, install_sample_app
from tests.fleet.scenario import Controller, write
from tests.wheelmaker import make_wheel

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
HOSTS = ["h1", "h2", "h3"]
SLACK = 0.5  # s: a request started just before a window opened may fail inside it


@pytest.fixture(scope="module")
def fleet3(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(3)


@pytest.fixture(scope="module")
def plain(fleet3: Fleet) -> SampleApp:
    """The sample app binding its port itself: a restart refuses connections for a moment."""
    return install_sample_app(fleet3)


@pytest.fixture(scope="module")
def socketed(fleet3: Fleet) -> SampleApp:
    """The same app under a .socket unit: systemd holds the port across restarts."""
    return install_sample_app(fleet3, root="/srv/sock", port=8001,
                              service="oxzep7-sock.service", socket_activated=True)


@pytest.fixture
def ctl(fleet3: Fleet, tmp_path: Path) -> Controller:
    return Controller(fleet3, tmp_path)


def spec(app: SampleApp, name: str, restart: str = "restart", extra_app: str = "",
         rollout: str = "rollout: {strategy: canary, batch_size: 1, dead_man: 120s}\n") -> str:
    return f"""\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: {name}
targets: fleet
interpreter:
  version: "3.11.2"
  install: {{method: existing, executable: /usr/bin/python3.11}}
application:
  name: {app.root.rsplit('/', 1)[-1]}
  root: {app.root}
  code: {app.code}
  requirements: requirements.lock
  pip_args: ["--no-index", "--find-links", "{app.wheels}", "--require-hashes"]
  services: [{app.service}]
  port: {app.port}
  restart: {restart}
{extra_app}health:
  checks:
    - http: {{url: "http://127.0.0.1:{{port}}/healthz", contains: '"status": "ok"'}}
  retries: 30
  interval: 1s
{rollout}"""


def windows(entries: dict[str, Any]) -> dict[str, tuple[float, float]]:
    return {h: (e["restart_window"][0], e["restart_window"][1])
            for h, e in entries.items() if e.get("restart_window")}


def check_serving(loop: RequestLoop, entries: dict[str, Any], switched: list[str],
                  zero_gap: bool) -> None:
    """What a user of the app would notice while hosts switch."""
    assert len(loop.records) > 50, "the loop ran"
    wins = windows(entries)
    assert sorted(wins) == sorted(switched), entries
    for host in HOSTS:
        start, end = wins.get(host, (0.0, 0.0))
        outside = [r for r in loop.failed(host) if not start - SLACK <= r.start <= end + SLACK]
        assert outside == [], f"{host} failed requests outside its switch window {wins.get(host)}"
        if zero_gap:
            assert loop.failed(host) == [], f"{host}: {loop.failed(host)[:3]}"
            assert entries[host]["restart_gap_s"] == 0, entries[host]
        else:
            measured, seen = entries[host]["restart_gap_s"], loop.gap(host)
            assert measured is not None and abs(measured - seen) <= max(1.0, 0.5 * seen), \
                f"{host}: the agent measured {measured} s, the loop saw {seen:.2f} s"
    # the fleet never had every host down at the same moment
    outages = [loop.outages(h) for h in HOSTS]
    for combo in itertools.product(*outages):
        assert max(s for s, _ in combo) >= min(e for _, e in combo), \
            f"every host was down at once: {combo}"


def apply_and_roll_back(ctl: Controller, fleet: Fleet, app: SampleApp, name: str,
                        restart: str, zero_gap: bool) -> None:
    try:
        _apply_and_roll_back(ctl, fleet, app, name, restart, zero_gap)
    except AssertionError as exc:
        journals = "\n".join(
            f"--- {h}:\n" + fleet.run_on(h, f"journalctl -u {app.service} --no-pager -n 12 "
                                          "-o short-unix").stdout for h in HOSTS)
        raise AssertionError(f"{exc}\n{journals}") from None


def _apply_and_roll_back(ctl: Controller, fleet: Fleet, app: SampleApp, name: str,
                         restart: str, zero_gap: bool) -> None:
    path = write(ctl.work, f"{name}.yaml", spec(app, name, restart))
    with RequestLoop(fleet, app.port) as loop:
        code, report = ctl.json("apply", str(path), "-i", ctl.inventory(), "--yes")
    assert code == 0, report
    assert report["outcome"] == "succeeded" and report["waves_done"] == ["canary", "all"]
    check_serving(loop, report["hosts"], HOSTS, zero_gap)
    table = ctl.run("status", "-i", ctl.inventory(), "--app", app.root.rsplit("/", 1)[-1])
    assert table.returncode == 0
    with RequestLoop(fleet, app.port) as loop:
        code, back = ctl.json("rollback", "-i", ctl.inventory(), "--app",
                              app.root.rsplit("/", 1)[-1], "--yes")
    assert code == 0 and back["complete"], back
    assert back["batches"] == [["h1"], ["h2"], ["h3"]], "half of 3 hosts is one at a time"
    check_serving(loop, back["hosts"], HOSTS, zero_gap)
    for host in HOSTS:
        assert app.wait_healthy(host)["release"] == "initial"


def test_a_plain_restart_fails_requests_only_on_the_host_switching(
        ctl: Controller, fleet3: Fleet, plain: SampleApp) -> None:
    apply_and_roll_back(ctl, fleet3, plain, "serve-restart", "restart", zero_gap=False)


def test_socket_activation_serves_every_request_through_restarts(
        ctl: Controller, fleet3: Fleet, socketed: SampleApp) -> None:
    apply_and_roll_back(ctl, fleet3, socketed, "serve-socket", "restart", zero_gap=True)


def test_a_graceful_reload_serves_every_request(ctl: Controller, fleet3: Fleet,
                                                plain: SampleApp) -> None:
    """The switch reloads: no request fails. The rollback goes back to the release adopted from
    before oxzep7, which has no restart mode of its own (the first spec here may have said
    `restart`): it is reloaded as the release left was, and no request fails either."""
    apply_and_roll_back(ctl, fleet3, plain, "serve-reload", "reload", zero_gap=True)


def test_a_dependency_set_that_does_not_hold_together_never_switches(
        ctl: Controller, fleet3: Fleet, plain: SampleApp, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    app_wheel = make_wheel(wheels, "oxz-app", "2.0", requires=["oxz-helper>=2.0"])
    helper = make_wheel(wheels, "oxz-helper", "1.0")
    folder = f"{plain.code}/conflict"
    for host in HOSTS:
        fleet3.sh(host, f"mkdir -p {folder}")
        for wheel in (app_wheel, helper):
            fleet3.copy_to(host, wheel, f"{folder}/{wheel.name}")
        # the lock pins a helper the app refuses; --no-deps installs it as written
        fleet3.write_file(host, f"{folder}/requirements.lock", "oxz-app==2.0\noxz-helper==1.0\n")
    text = spec(plain, "serve-conflict").replace(
        "  requirements: requirements.lock\n", f"  requirements: {folder}/requirements.lock\n"
    ).replace(f'"{plain.wheels}", "--require-hashes"', f'"{folder}", "--no-deps"')
    path = write(ctl.work, "conflict.yaml", text)
    done = ctl.run("apply", str(path), "-i", ctl.inventory(), "--yes")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    _, report = ctl.json("apply", str(path), "-i", ctl.inventory(), "--yes")  # its report again
    assert report["outcome"] == "failed", "nothing switched: failed, not rolled-back"
    failed = {h: e for h, e in report["hosts"].items() if e["failed_step"]}
    assert failed, report
    for entry in failed.values():
        assert "pip check failed" in entry["message"], entry
        assert "oxz-app 2.0 has requirement oxz-helper>=2.0, but you have oxz-helper 1.0" \
            in entry["message"], entry
    assert "pip check failed" in done.stdout + done.stderr
    assert any(f"{h}" in line and "pip check failed" in line
               for line in (done.stdout + done.stderr).splitlines() for h in failed), \
        "the failure names the host"
    for host in HOSTS:
        assert plain.wait_healthy(host)["release"] == "initial", f"{host} switched"
