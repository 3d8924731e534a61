"""Rollouts across a 4-host fleet with the sample app, through the real CLI (issue: rollout).

Every test starts with all hosts on the sample app's hand-made 3.11 release and leaves them so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.build import Built
from tests.fleet.harness import Fleet
from tests.fleet.sample_app import SampleApp, install_sample_app
from tests.fleet.scenario import CLI, VERSION, Controller, sample_spec, write

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
HOSTS = ["h1", "h2", "h3", "h4"]
INITIAL = "initial"


@pytest.fixture(scope="module")
def fleet4(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(4, build_hosts=["h1"])


@pytest.fixture(scope="module")
def app(fleet4: Fleet) -> SampleApp:
    return install_sample_app(fleet4)


@pytest.fixture(scope="module")
def source(cpython_build: Built) -> tuple[Path, str]:
    """The session build's source: its artifact is in the tool cache, so apply ships it."""
    return cpython_build.source, cpython_build.sha256


@pytest.fixture
def ctl(fleet4: Fleet, app: SampleApp, tmp_path: Path) -> Iterator[Controller]:
    controller = Controller(fleet4, tmp_path)
    yield controller
    reset_to_initial(controller, app)


def reset_to_initial(ctl: Controller, app: SampleApp) -> None:
    """Every host back on the hand-made 3.11 release, healthy, unlocked."""
    inv = ctl.inventory()
    for host in HOSTS:
        app.set_unhealthy(host, False)
        app.fail_on_python(host, [])
    ctl.run("unlock", "-i", inv, "--app", "sample", "--force", "--yes")
    _, status = ctl.json("status", "-i", inv, "--app", "sample")
    off = [h for h, s in status["hosts"].items() if (s.get("current") or INITIAL) != INITIAL]
    if off:
        ctl.run("rollback", "-i", inv, "--app", "sample", "--to", INITIAL, "--limit", ",".join(off),
                "--yes", check=True)
    for host in HOSTS:
        app.wait_healthy(host)


def spec_text(source: tuple[Path, str], name: str, rollout: str) -> str:
    return sample_spec(source[0], source[1], name=name, rollout=rollout)


def versions(fleet: Fleet) -> dict[str, str]:
    return {h: fleet.http(h, 8000, "/healthz").json()["python"] for h in HOSTS}


def state_files(fleet: Fleet, hosts: list[str]) -> dict[str, str]:
    return {h: fleet.run_on(h, "cat /var/lib/oxzep7/sample/state.json 2>/dev/null || true").stdout
            for h in hosts}


class Poller:
    """Polls /healthz on every host while a deploy runs; remembers which were down when."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.rounds: list[set[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            down = set()
            for host in HOSTS:
                try:
                    if self.fleet.http(host, 8000, "/healthz", timeout=2).status != 200:
                        down.add(host)
                except Exception:
                    down.add(host)
            self.rounds.append(down)
            time.sleep(0.3)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


CANARY_50_100 = """\
rollout:
  strategy: canary
  stages:
    - {name: canary, hosts: 1}
    - {name: half, hosts: "50%"}
    - {name: all, hosts: "100%"}
  batch_size: 1
  dead_man: 120s
"""


def test_canary_to_half_to_all(ctl: Controller, fleet4: Fleet,
                               source: tuple[Path, str]) -> None:
    spec = write(ctl.work, "canary.yaml", spec_text(source, "sample-canary", CANARY_50_100))
    with Poller(fleet4) as poller:
        code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 0, report
    assert report["outcome"] == "succeeded"
    assert report["waves_done"] == ["canary", "half", "all"]
    assert versions(fleet4) == dict.fromkeys(HOSTS, VERSION)
    assert len(poller.rounds) > 10
    assert all(len(down) <= 1 for down in poller.rounds), \
        "batch_size 1: at most one host is ever out of service; the others answer throughout"
    _, status = ctl.json("status", "-i", ctl.inventory(), "--app", "sample")
    assert status["summary"] == f"4 hosts: 4 on {VERSION}"
    assert {s["current"] for s in status["hosts"].values()} == {report["release"]}
    _, history = ctl.json("history", "-i", ctl.inventory(), "--app", "sample")
    deploys = {e["deploy"] for e in history["events"] if e["event"] == "switch"}
    assert f"sample-canary/{report['release']}" in deploys


def split_inventory(fleet: Fleet, work: Path) -> list[str]:
    """The fleet's inventory as two -i, relative to `work`: h1 alone, and the other hosts with
    the group's connection vars, which reach h1 too (one group across both sources)."""
    lines = fleet.inventory.read_text().splitlines()
    first = [line for line in lines if line.startswith("h1 ")]
    write(work, "h1.ini", "\n".join(["[fleet]", *first]) + "\n")
    write(work, "rest.ini", "\n".join(line for line in lines if line not in first) + "\n")
    return ["-i", "h1.ini", "-i", "rest.ini"]


def test_one_command_rollback_from_a_fresh_directory(ctl: Controller, fleet4: Fleet,
                                                     source: tuple[Path, str],
                                                     tmp_path_factory: pytest.TempPathFactory
                                                     ) -> None:
    """Also: apply and rollback with the inventory split across two -i, as Ansible takes it."""
    spec = write(ctl.work, "canary.yaml", spec_text(source, "sample-rb", CANARY_50_100))
    done = ctl.run("apply", str(spec), *split_inventory(fleet4, ctl.work), "--yes")
    assert done.returncode == 0, done.stderr[-3000:]
    assert versions(fleet4) == dict.fromkeys(HOSTS, VERSION)
    fresh = Controller(fleet4, tmp_path_factory.mktemp("elsewhere"))  # no records, no spec
    started = time.monotonic()
    code, doc = fresh.json("rollback", *split_inventory(fleet4, fresh.work), "--app", "sample",
                           "--yes")
    elapsed = time.monotonic() - started
    assert code == 0 and doc["complete"], doc
    assert sorted(doc["hosts"]) == HOSTS
    assert versions(fleet4) == dict.fromkeys(HOSTS, "3.11.2")
    assert elapsed < 60, f"a rollback is a switch, not a rebuild ({elapsed:.0f} s)"


def test_canary_failure_rolls_back_the_canary_only(ctl: Controller, fleet4: Fleet, app: SampleApp,
                                                  source: tuple[Path, str]) -> None:
    for host in HOSTS:
        app.fail_on_python(host, ["3.13"])  # the app is unhealthy on the new release only
    others_before = state_files(fleet4, HOSTS[1:])
    spec = write(ctl.work, "canary.yaml", spec_text(source, "sample-drill", CANARY_50_100))
    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 1, report
    assert report["outcome"] == "rolled-back"
    h1 = report["hosts"]["h1"]
    assert h1["failed_step"] == "switch" and "healthz" in (h1["message"] or ""), h1
    assert versions(fleet4) == dict.fromkeys(HOSTS, "3.11.2")
    after = state_files(fleet4, HOSTS[1:])
    for host in HOSTS[1:]:
        assert report["hosts"][host]["state"] in ("prepared", "pending")
        before_doc = json.loads(others_before[host] or "{}")
        after_doc = json.loads(after[host] or "{}")
        assert after_doc.get("current", INITIAL) == before_doc.get("current", INITIAL), \
            f"{host} was never switched"
    _, status = ctl.json("status", "-i", ctl.inventory(), "--app", "sample")
    assert all(s["lock"] is None for s in status["hosts"].values()), "no lock is left behind"
    assert report["release"] in status["hosts"]["h1"]["releases"]
    assert status["hosts"]["h1"]["releases"][report["release"]]["status"] == "bad"


BLUE_GREEN = """\
rollout:
  strategy: blue-green
  stages:
    - {name: all, hosts: "100%", promote: manual}
  dead_man: 120s
"""


def test_blue_green_abort_then_promote(ctl: Controller, fleet4: Fleet,
                                       source: tuple[Path, str]) -> None:
    spec = write(ctl.work, "bg.yaml", spec_text(source, "sample-bg", BLUE_GREEN))
    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 0 and report["outcome"] == "paused" and report["paused_at"] == "all", report
    assert all(h["state"] == "prepared" for h in report["hosts"].values()), "every host prestaged"
    assert versions(fleet4) == dict.fromkeys(HOSTS, "3.11.2"), "nothing switched before promote"
    code, report = ctl.json("abort", "sample-bg", "--yes")
    assert code == 1 and report["outcome"] == "failed", "nothing was switched: no rollback to report"
    assert versions(fleet4) == dict.fromkeys(HOSTS, "3.11.2")
    _, status = ctl.json("status", "-i", ctl.inventory(), "--app", "sample")
    assert all(s["lock"] is None for s in status["hosts"].values())

    spec = write(ctl.work, "bg2.yaml", spec_text(source, "sample-bg2", BLUE_GREEN))
    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 0 and report["outcome"] == "paused"
    code, report = ctl.json("promote", "sample-bg2", "--yes")
    assert code == 0 and report["outcome"] == "succeeded", report
    assert versions(fleet4) == dict.fromkeys(HOSTS, VERSION)


CANARY_GATE = """\
rollout:
  strategy: canary
  stages:
    - {name: canary, hosts: 1}
    - {name: all, hosts: "100%", promote: manual}
  dead_man: 120s
"""


def test_a_paused_deploy_runs_its_stored_plan_after_the_spec_was_edited(
        ctl: Controller, fleet4: Fleet, source: tuple[Path, str]) -> None:
    """Issue 12, item 2: promote continues the plan apply made; apply of the edited spec is
    refused while the deploy is paused, naming the change and promote/abort."""
    text = spec_text(source, "sample-gate", CANARY_GATE)
    spec = write(ctl.work, "gate.yaml", text)
    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 0 and report["outcome"] == "paused" and report["paused_at"] == "all", report
    assert versions(fleet4) == {"h1": VERSION, **dict.fromkeys(HOSTS[1:], "3.11.2")}
    write(ctl.work, "gate.yaml", text.replace("{name: canary, hosts: 1}",
                                              "{name: canary, hosts: 2}"))
    code, refused = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 2, refused
    assert "deploy sample-gate is paused before wave all" in refused["error"]
    assert "rollout.stages[0].hosts: 1 -> 2" in refused["error"]
    assert "oxzep7-deploy promote sample-gate" in refused["hint"]
    assert "oxzep7-deploy abort sample-gate" in refused["hint"]
    assert versions(fleet4) == {"h1": VERSION, **dict.fromkeys(HOSTS[1:], "3.11.2")}
    code, report = ctl.json("promote", "sample-gate", "--yes")
    assert code == 0 and report["outcome"] == "succeeded", report
    assert report["waves_done"] == ["canary", "all"] and set(report["hosts"]) == set(HOSTS)
    assert versions(fleet4) == dict.fromkeys(HOSTS, VERSION)


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _progress(work: Path) -> dict[str, object]:
    found = list(work.glob(".oxzep7/deploys/*/*/progress.json"))
    return json.loads(found[0].read_text()) if found else {}


def test_host_down_mid_wave_spends_the_budget_and_rolls_back(
        ctl: Controller, fleet4: Fleet, source: tuple[Path, str]) -> None:
    spec = write(ctl.work, "down.yaml", spec_text(source, "sample-down", CANARY_50_100))
    proc = subprocess.Popen([str(CLI), "apply", str(spec), "-i", ctl.inventory(), "--yes", "--json"],
                            cwd=ctl.work, env=ctl.env(), stdout=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _progress(ctl.work).get("waves_done", 0) >= 1, 600, "the canary wave")
        fleet4.stop("h4")
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        fleet4.start("h4")
    report = json.loads(out)
    assert proc.returncode == 1 and report["outcome"] == "rolled-back", report
    assert report["hosts"]["h4"]["state"] == "unreachable"
    up = ["h1", "h2", "h3"]
    assert {h: v for h, v in versions(fleet4).items() if h in up} == dict.fromkeys(up, "3.11.2")
    _, status = ctl.json("status", "-i", ctl.inventory(), "--app", "sample")
    h4 = status["hosts"]["h4"]
    assert h4["error"] is None and (h4["current"] or INITIAL) == INITIAL, "back and on 3.11"


def _tagged(tag: str, only: tuple[str, ...] = ()) -> list[str]:
    """Live processes (not zombies) whose environment has OXZ_E2E_RUN=<tag>: the controller and
    everything it started, ssh's ControlPersist masters included. `only`: cmdlines containing
    one of these words."""
    needle = f"OXZ_E2E_RUN={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and (not only or any(word in cmdline for word in only)):
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def _consistent(app: SampleApp, release: str, report: dict[str, Any]) -> dict[str, str]:
    """Per host, what it runs: the old release, the new one confirmed by this deploy, or the new
    one with its dead-man armed (reverted by itself unless a resume confirms it); else why not."""
    found = {}
    for host, text in state_files(app.fleet, HOSTS).items():
        state = json.loads(text) if text.strip() else {}
        current = state.get("current") or INITIAL
        deadman = state.get("deadman") or {}
        link = app.current(host)
        if link != f"releases/{current}":
            found[host] = f"INCONSISTENT: current -> {link}, the state says {current}"
        elif current == INITIAL:
            found[host] = "old"
        elif current == release and report["hosts"][host]["state"] == "live":
            found[host] = "new, confirmed"
        elif current == release and deadman.get("to") == release:
            found[host] = "new, dead-man armed"
        else:
            found[host] = f"INCONSISTENT: current {current}, dead-man {deadman or None}"
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["sigint", "sigterm", "sigkill"])
def test_interrupted_controller_resumes_then_rolls_back(ctl: Controller, fleet4: Fleet,
                                                        app: SampleApp, source: tuple[Path, str],
                                                        sig: signal.Signals) -> None:
    """Interrupted inside an Ansible run of wave 2: nothing of Ansible outlives the tool, exit
    130, every host on the old release or on the new with its dead-man armed; the same apply
    resumes and finishes. SIGKILL cannot be handled: only the resume is asserted."""
    name = f"sample-{sig.name.lower()}"
    spec = write(ctl.work, "int.yaml", spec_text(source, name, CANARY_50_100))
    tag = f"{name}-{os.getpid()}-{time.monotonic_ns()}"
    env = {**ctl.env(), "OXZ_E2E_RUN": tag}
    proc = subprocess.Popen([str(CLI), "apply", str(spec), "-i", ctl.inventory(), "--yes", "--json"],
                            cwd=ctl.work, env=env, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _wait_for(lambda: _progress(ctl.work).get("waves_done", 0) >= 1, 600, "the canary wave")
        _wait_for(lambda: bool(_tagged(tag, ("ansible-playbook",))), 120,
                  "an Ansible run of wave 2")
        time.sleep(1)  # well inside it: workers and ssh started
        os.killpg(proc.pid, sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    left = _tagged(tag)
    if sig is signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        # its playbook runs on for a while (its ssh masters too, idle, until ControlPersist ends)
        _wait_for(lambda: not _tagged(tag, ("ansible-playbook",)), 120,
                  "the killed controller's playbook to end")
    else:
        assert proc.returncode == 130, out
        assert left == [], "ansible-playbook or ssh outlived the tool"
        doc = json.loads(out)
        assert doc["exit_code"] == 130 and doc["error"] == "interrupted", doc
        (found,) = ctl.work.glob(f".oxzep7/deploys/{name}/*/report.json")
        report = json.loads(found.read_text())
        assert report["outcome"] == "interrupted" and report["exit_code"] == 130, report
        hosts = _consistent(app, report["release"], report)
        assert not [h for h, v in hosts.items() if v.startswith("INCONSISTENT")], hosts
        assert "new, confirmed" in hosts.values(), f"the canary wave was done: {hosts}"
    interrupted = {r.name for r in ctl.work.glob(f".oxzep7/deploys/{name}/*")}
    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 0 and report["outcome"] == "succeeded", report
    assert {report["release"]} == interrupted, "resumed, not a new attempt"
    assert versions(fleet4) == dict.fromkeys(HOSTS, VERSION)
    code, doc = ctl.json("rollback", "-i", ctl.inventory(), "--app", "sample", "--yes")
    assert code == 0 and doc["complete"], doc
    assert versions(fleet4) == dict.fromkeys(HOSTS, "3.11.2")
    _, status = ctl.json("status", "-i", ctl.inventory(), "--app", "sample")
    assert all(s["lock"] is None for s in status["hosts"].values()), "nothing left locked"


# the tool's own `apply`, with the install of the second wave failing as an unreadable archive
# does (ArtifactError): monkeypatched in the subprocess, so everything else is the real thing
_APPLY_WITH_BROKEN_INSTALL = """\
import sys
from oxzep7_deploy.artifacts import ArtifactError
from oxzep7_deploy.cli.main import cli
from oxzep7_deploy.steps import host_steps

real = host_steps.AnsibleHostSteps.install
calls = []

def install(self, hosts):
    calls.append(tuple(hosts))
    if len(calls) > 1:
        raise ArtifactError("/srv/cpython.tar.xz is not a readable tar archive: truncated",
                            hint="fetch the archive again")
    return real(self, hosts)

host_steps.AnsibleHostSteps.install = install
cli.main(args=sys.argv[1:], prog_name="oxzep7-deploy")
"""


def test_an_error_inside_install_in_wave_2_rolls_back_the_canary_and_unlocks(
        ctl: Controller, fleet4: Fleet, source: tuple[Path, str]) -> None:
    rollout = CANARY_50_100.replace("  batch_size: 1\n", "  batch_size: 1\n  prestage: false\n")
    spec = write(ctl.work, "broken.yaml", spec_text(source, "sample-broken", rollout))
    proc = subprocess.run([str(CLI.with_name("python")), "-c", _APPLY_WITH_BROKEN_INSTALL,
                           "apply", str(spec), "-i", ctl.inventory(), "--yes", "--json"],
                          cwd=ctl.work, env=ctl.env(), capture_output=True, text=True, timeout=1200)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and report["outcome"] == "rolled-back", (report, proc.stderr[-2000:])
    assert "not a readable tar archive" in report["error"] and report["error"].startswith("install")
    assert report["hosts"]["h1"]["state"] == "rolled-back", "the canary was switched, then put back"
    assert report["hosts"]["h2"]["failed_step"] == "install"
    assert "Traceback" not in proc.stderr
    assert versions(fleet4) == dict.fromkeys(HOSTS, "3.11.2"), "every host runs what it ran before"
    code, status = ctl.json("status", "-i", ctl.inventory(), "--app", "sample")
    assert code == 0 and all(s["lock"] is None for s in status["hosts"].values()), \
        "no lock is left behind"
