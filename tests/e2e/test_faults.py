"""Faults on a real fleet, through the real CLI (issue 18, items 1 to 5): a reboot while a release
is unconfirmed, a disk that fills while a release is built, the network lost mid-switch, the
controller SIGKILLed mid-wave, two operators at once.

A 2-host fleet of its own with the sample app. The "new" interpreter is the hosts' own python3.11
(`existing`): no CPython build. A health command that sleeps holds every switch open for a few
seconds, so a fault lands inside it; the dead-man is 20 s. Every test starts and ends with both
hosts on the hand-made release `initial`, unlocked. docs/faults.md tabulates what is asserted here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.harness import Fleet, podman_env
from tests.fleet.sample_app import SampleApp, install_sample_app
from tests.fleet.scenario import CLI, Controller, write

pytestmark = [pytest.mark.e2e]
HOSTS = ["h1", "h2"]
INITIAL = "initial"
DEAD_MAN = 20
STATE = "/var/lib/oxzep7/sample/state.json"

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
health:
  checks:
    - http: {{url: "{url}", status: 200, contains: '"status": "ok"'}}
    - command: "sleep {hold}"
  retries: 5
  interval: 1s
rollout:
  strategy: canary
  stages:
    - {{name: canary, hosts: 1}}
    - {{name: all, hosts: "100%"{gate}}}
  dead_man: {dead_man}s
  max_failed: {max_failed}
"""


@pytest.fixture(scope="module")
def fleet2(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(2)


@pytest.fixture(scope="module")
def app(fleet2: Fleet) -> SampleApp:
    return install_sample_app(fleet2)


@pytest.fixture
def work(fleet2: Fleet, app: SampleApp, tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    reset(Controller(fleet2, tmp_path / "reset"), app)


def reset(ctl: Controller, app: SampleApp) -> None:
    """Both hosts back on `initial`, healthy, unlocked, reachable."""
    for host in HOSTS:
        app.fleet.mend(host)
    inv = ctl.inventory()
    ctl.run("unlock", "-i", inv, "--app", "sample", "--force", "--yes")
    _, status = ctl.json("status", "-i", inv, "--app", "sample")
    off = [h for h, s in status["hosts"].items() if (s.get("current") or INITIAL) != INITIAL]
    if off:
        ctl.run("rollback", "-i", inv, "--app", "sample", "--to", INITIAL, "--limit", ",".join(off),
                "--yes", check=True)
    for host in HOSTS:
        app.wait_healthy(host)


def spec_file(work: Path, app: SampleApp, name: str, *, hold: int = 4, gate: str = "",
              dead_man: int = DEAD_MAN, max_failed: int = 0) -> Path:
    return write(work, f"{name}.yaml", SPEC.format(
        name=name, root=app.root, code=app.code, pip_args=list(app.pip_args), service=app.service,
        url=app.health_url, hold=hold, gate=gate, dead_man=dead_man, max_failed=max_failed))


def state(fleet: Fleet, host: str) -> dict[str, Any]:
    """The host's state file, read inside its container (no network needed)."""
    text = fleet.run_on(host, f"cat {STATE} 2>/dev/null || true").stdout
    return json.loads(text) if text.strip() else {}


def on(app: SampleApp, host: str) -> str:
    """The release `current` points to on `host`, read inside its container."""
    return app.current(host).removeprefix("releases/")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def armed(fleet: Fleet, host: str) -> bool:
    """The host is inside its switch: the dead-man is armed for a release not yet confirmed."""
    return bool((state(fleet, host).get("deadman") or {}).get("to"))


def start_apply(ctl: Controller, spec: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(CLI), "apply", str(spec), "-i", ctl.inventory(), "--yes",
                             "--json", *extra], cwd=ctl.work, env=ctl.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, dict[str, Any], str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    try:
        doc = json.loads(out)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not JSON (exit {proc.returncode}): {out[-2000:]}\n{err[-2000:]}"
                             ) from exc
    return proc.returncode, doc, err


def owner_of(work: Path) -> str:
    """How a lock names a controller working in `work` (user@host:directory)."""
    return str(work.resolve())


# -- item 3: the network lost mid-switch -----------------------------------------------------------


def test_network_cut_mid_switch_the_dead_man_reverts_and_apply_finishes_once_it_is_back(
        fleet2: Fleet, app: SampleApp, work: Path) -> None:
    ctl = Controller(fleet2, work / "ops")
    spec = spec_file(ctl.work, app, "sample-cut")
    proc = start_apply(ctl, spec)
    try:
        wait_for(lambda: armed(fleet2, "h1"), 240, "the canary h1 inside its switch")
        fleet2.cut("h1")  # its switch goes on on the host; nothing it says reaches us
        release = state(fleet2, "h1")["deadman"]["to"]
        code, report, err = finish(proc)
        assert code == 1, report
        assert report["outcome"] == "rolled-back", report  # by h1's dead-man, not from here
        h1 = report["hosts"]["h1"]
        assert h1["state"] == "unreachable" and h1["failed_step"] == "switch", h1
        assert "not rolled back from here" in h1["message"], h1
        assert f"dead-man puts back the release it ran before {DEAD_MAN}s" in h1["message"], h1
        assert report["hosts"]["h2"]["state"] == "prepared", "h2 was never switched"
        assert on(app, "h2") == INITIAL
        assert "Traceback" not in err
        # the dead-man protects h1 while it is cut off: back on `initial` by itself, and says why
        wait_for(lambda: on(app, "h1") == INITIAL, DEAD_MAN + 60, "h1's dead-man")
        doc = state(fleet2, "h1")
        assert doc["current"] in (None, INITIAL) and doc["deadman"] is None, doc
        assert doc["history"][-1]["event"] == "deadman", doc["history"][-3:]
        assert doc["releases"][release]["status"] == "bad", doc["releases"][release]
    finally:
        fleet2.mend("h1")
    # the network is back: status tells the truth, h1's lock is this deploy's and named as such
    code, status = ctl.json("status", "-i", ctl.inventory(), "--app", "sample")
    assert code == 0, status
    assert all((s["current"] or INITIAL) == INITIAL for s in status["hosts"].values()), status
    assert status["hosts"]["h1"]["releases"][release]["status"] == "bad"
    # the same apply again finishes as the spec says (a new attempt: the release went bad on h1)
    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 0 and report["outcome"] == "succeeded", report
    assert report["release"] == f"{release}.2", "a new attempt, not the bad release again"
    assert {on(app, h) for h in HOSTS} == {report["release"]}
    _, status = ctl.json("status", "-i", ctl.inventory(), "--app", "sample")
    assert all(s["lock"] is None for s in status["hosts"].values()), status


# -- item 4: the controller SIGKILLed mid-wave -----------------------------------------------------


def test_controller_killed_mid_wave_hosts_revert_locks_are_diagnosed_and_apply_resumes_here_only(
        fleet2: Fleet, app: SampleApp, work: Path) -> None:
    ctl = Controller(fleet2, work / "ops")
    other = Controller(fleet2, work / "colleague")
    spec = spec_file(ctl.work, app, "sample-kill")
    proc = start_apply(ctl, spec)
    try:
        wait_for(lambda: on(app, "h1") != INITIAL and not armed(fleet2, "h1") and armed(fleet2, "h2"),
                 300, "the canary confirmed and h2 inside its switch (wave all)")
        os.killpg(proc.pid, signal.SIGKILL)  # no handler, no cleanup
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    release = on(app, "h1")
    (record,) = ctl.work.glob(".oxzep7/deploys/sample-kill/*")
    assert record.name == release
    # another directory: the same apply is refused, naming the holder; it changes nothing
    other_spec = write(other.work, "sample-kill.yaml", spec.read_text())
    code, refused = other.json("apply", str(other_spec), "-i", other.inventory(), "--yes",
                               "--allow-unhealthy")
    assert code == 2, refused
    assert f"deploy sample-kill/{release}" in refused["error"], refused
    assert owner_of(ctl.work) in refused["error"], "the holder's directory is named"
    assert "unlock" in refused["hint"], refused
    # status shows each lock with its owner and age; unlock from elsewhere says whose it is
    code, status = other.json("status", "-i", other.inventory(), "--app", "sample")
    for host in HOSTS:
        lock = status["hosts"][host]["lock"]
        assert lock and lock["deploy"] == f"sample-kill/{release}", status["hosts"][host]
        assert owner_of(ctl.work) in lock["owner"] and lock["age_seconds"] >= 0, lock
    text = other.run("status", "-i", other.inventory(), "--app", "sample").stdout
    # the lock column: the last of status's 7 (no "not read because" column: every host was read)
    column = "".join(line.split("│")[7].strip() for line in text.splitlines()
                     if line.count("│") == 8)
    assert f":{owner_of(ctl.work)}," in column and "taken" in column and "ago," in column, text
    proc2 = other.run("unlock", "-i", other.inventory(), "--app", "sample", "--yes")
    assert proc2.returncode == 2, proc2.stdout + proc2.stderr
    assert f"sample-kill/{release}" in proc2.stdout and owner_of(ctl.work) in proc2.stdout
    # the hosts revert through their dead-man: h2 (unconfirmed) goes back, h1 (confirmed) stays
    wait_for(lambda: on(app, "h2") == INITIAL, DEAD_MAN + 60, "h2's dead-man")
    assert state(fleet2, "h2")["history"][-1]["event"] == "deadman"
    assert on(app, "h1") == release
    # the same apply from the same directory resumes the killed deploy and finishes it
    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 0 and report["outcome"] == "succeeded", report
    assert report["release"] == release, "resumed, not a new attempt"
    assert {on(app, h) for h in HOSTS} == {release}
    _, status = ctl.json("status", "-i", ctl.inventory(), "--app", "sample")
    assert all(s["lock"] is None for s in status["hosts"].values()), status


# -- item 5: two operators -------------------------------------------------------------------------


def test_two_operators_one_apply_proceeds_the_other_and_a_rollback_are_refused_unless_forced(
        fleet2: Fleet, app: SampleApp, work: Path) -> None:
    alice, bob, carol = (Controller(fleet2, work / n) for n in ("alice", "bob", "carol"))
    gate = ", promote: manual"  # the winner stops (locked) before wave all
    specs = [spec_file(c.work, app, "sample-race", gate=gate) for c in (alice, bob)]
    procs = [start_apply(c, s) for c, s in zip((alice, bob), specs, strict=True)]
    try:
        wait_for(lambda: any(p.poll() is not None for p in procs), 300, "one apply to end")
        loser = next(i for i, p in enumerate(procs) if p.poll() is not None)
        winner = 1 - loser
        code, refused, err = finish(procs[loser], 60)
        assert code == 2, refused
        holder = (alice, bob)[winner]
        assert "locked by deploy sample-race/" in refused["error"], refused
        assert owner_of(holder.work) in refused["error"], "the holder's directory is named"
        assert "Traceback" not in err
        # a rollback while the winner runs is refused the same way, and touches nothing
        if procs[winner].poll() is None:
            proc = carol.run("rollback", "-i", carol.inventory(), "--app", "sample", "--yes")
            assert proc.returncode == 2, proc.stdout + proc.stderr
            assert owner_of(holder.work) in proc.stdout + proc.stderr
        code, report, _ = finish(procs[winner])
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    assert code == 0 and report["outcome"] == "paused", report
    release = report["release"]
    assert (on(app, "h1"), on(app, "h2")) == (release, INITIAL)
    # the deploy waits at its gate holding its locks: rollback is refused, --force goes through
    code, doc = carol.json("rollback", "-i", carol.inventory(), "--app", "sample", "--yes")
    assert code == 2, doc
    assert f"sample-race/{release}" in doc["error"] and owner_of(holder.work) in doc["error"], doc
    assert "--force" in doc["hint"], doc
    assert on(app, "h1") == release
    code, doc = carol.json("rollback", "-i", carol.inventory(), "--app", "sample", "--limit",
                           "h1", "--yes", "--force")
    assert code == 0 and doc["complete"], doc
    assert {on(app, h) for h in HOSTS} == {INITIAL}


# -- item 1: a reboot while a release is unconfirmed -----------------------------------------------

BOOT_UNIT = "oxzep7-deadman@sample.service"


def boot_unit_ran(fleet: Fleet, host: str) -> bool:
    """The dead-man's boot unit has run to its end since the host last started."""
    out = fleet.run_on(host, f"systemctl show -p ExecMainExitTimestampMonotonic --value {BOOT_UNIT}"
                       ).stdout.strip()
    return out not in ("", "0")


def test_a_host_rebooted_while_its_release_is_unconfirmed_reverts_after_the_deadline(
        fleet2: Fleet, app: SampleApp, work: Path) -> None:
    dead_man = 60  # the reboot is over well before it: the dead-man is re-armed, not fired
    ctl = Controller(fleet2, work / "ops")
    spec = spec_file(ctl.work, app, "sample-reboot", dead_man=dead_man)
    proc = start_apply(ctl, spec)
    try:
        wait_for(lambda: armed(fleet2, "h1"), 240, "the canary h1 inside its switch")
        os.killpg(proc.pid, signal.SIGKILL)  # nobody is left to confirm or revert h1
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    record = state(fleet2, "h1")["deadman"]
    release = record["to"]
    assert on(app, "h1") == release
    fleet2.restart("h1")  # power cycled: the transient timer under /run is gone
    wait_for(lambda: boot_unit_ran(fleet2, "h1"), 60, "the dead-man's boot unit on h1")
    doc = state(fleet2, "h1")
    assert on(app, "h1") == release, "before the deadline the host stays on the new release"
    assert doc["deadman"]["fires_epoch"] == record["fires_epoch"], "the deadline armed at switch"
    assert doc["deadman"]["unit"] != record["unit"], "a timer of its own after the boot"
    boot = doc["history"][-1]
    assert boot["event"] == "deadman-boot" and "re-armed" in boot["detail"], boot
    # the deadline passes: back on `initial`, healthy, and the state says why
    wait_for(lambda: on(app, "h1") == INITIAL, dead_man + 60, "h1's re-armed dead-man")
    app.wait_healthy("h1")
    doc = state(fleet2, "h1")
    assert doc["deadman"] is None and doc["history"][-1]["event"] == "deadman", doc["history"][-3:]
    assert on(app, "h2") == INITIAL, "h2 was never switched"
    for cp in fleet2.control_path_dir(ctl.work).glob("*"):  # masters to the host before its reboot
        cp.unlink()
    code, status = ctl.json("status", "-i", ctl.inventory(), "--app", "sample")
    assert code == 0, status
    assert (status["hosts"]["h1"]["current"] or INITIAL) == INITIAL, status["hosts"]["h1"]
    bad = status["hosts"]["h1"]["releases"][release]
    assert bad["status"] == "bad", bad
    assert f"not confirmed within {dead_man}s" in bad["bad_reason"], bad
    assert "the host restarted at" in bad["bad_reason"], bad
    # a confirmed release survives a reboot: the same apply resumes and finishes, then h1 reboots
    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 0 and report["outcome"] == "succeeded", report
    assert report["release"] == release, "resumed, not a new attempt"
    before = state(fleet2, "h1")
    assert before["deadman"] is None and before["releases"][release]["status"] == "good"
    fleet2.restart("h1")
    wait_for(lambda: boot_unit_ran(fleet2, "h1"), 60, "the dead-man's boot unit on h1")
    app.wait_healthy("h1")
    assert on(app, "h1") == release
    after = state(fleet2, "h1")
    assert after["history"] == before["history"] and after["current"] == release, \
        after["history"][-3:]
    for cp in fleet2.control_path_dir(ctl.work).glob("*"):
        cp.unlink()


# -- item 2: the disk fills while a release is built -----------------------------------------------


def test_a_release_build_that_fills_the_disk_fails_that_host_alone_and_leaves_nothing_behind(
        fleet2: Fleet, app: SampleApp, work: Path) -> None:
    ctl = Controller(fleet2, work / "ops")
    spec = spec_file(ctl.work, app, "sample-full", hold=1, max_failed=1)
    releases = f"{app.root}/releases"
    before = set(fleet2.sh("h2", f"ls -A {releases}").split())  # earlier drills' releases too
    fleet2.fill("h2", app.root, free_mb=4)  # the new venv (pip alone) needs more than that
    try:
        code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
        left = fleet2.sh("h2", f"ls -A {releases}").split()
    finally:
        fleet2.unfill("h2", app.root)
    assert code == 0 and report["outcome"] == "succeeded-within-budget", report
    h2 = report["hosts"]["h2"]
    assert h2["state"] == "failed" and h2["failed_step"] == "prepare", h2
    message = h2["message"]
    assert f"no space left on device under {app.root} while building release" in message, message
    assert "it needs more than " in message and "MB free" in message, message
    assert "nothing was switched" in message, message
    assert report["release"] not in left and set(left) <= before, \
        f"a partial release is left on h2: {left} (before: {sorted(before)})"
    assert on(app, "h2") == INITIAL
    app.wait_healthy("h2")
    assert on(app, "h1") == report["release"], "the other host switched"
    doc = state(fleet2, "h2")
    assert doc["releases"][report["release"]]["status"] == "failed"


# -- item 6: state written at the worst moment -----------------------------------------------------

AGENT = "/var/lib/oxzep7/bin/oxzep7-host"


def agent_stopped(fleet: Fleet, host: str) -> str | None:
    """The pid of an agent `switch` on `host` that stopped itself at its pause point."""
    out = fleet.run_on(host, "ps -eo pid=,stat=,args= | grep '[o]xzep7-host.* switch '").stdout
    for line in out.splitlines():
        pid, stat, *_ = line.split()
        if stat.startswith("T"):
            return pid
    return None


def test_an_agent_killed_between_the_link_and_the_state_leaves_a_readable_truth_and_goes_on(
        fleet2: Fleet, app: SampleApp, work: Path) -> None:
    ctl = Controller(fleet2, work / "ops")
    spec = spec_file(ctl.work, app, "sample-torn", hold=1, gate=", promote: manual")
    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 0 and report["outcome"] == "paused", report
    release = report["release"]
    assert (on(app, "h1"), on(app, "h2")) == (release, INITIAL)
    deploy = next(e["deploy"] for e in reversed(state(fleet2, "h1")["history"])
                  if e["event"] == "switch")
    # h2's own agent switches to the prepared release and is SIGKILLed right after the link
    # moved, before the state says so
    drill = subprocess.Popen(
        ["podman", "exec", fleet2.container("h2"), "env", "OXZEP7_AGENT_PAUSE_AT=switch:link",
         "python3", AGENT, "switch", "--app", "sample", "--release", release, "--deploy", deploy,
         "--deadman", "600"], env=podman_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        wait_for(lambda: agent_stopped(fleet2, "h2") is not None, 60, "h2's agent at switch:link")
        fleet2.sh("h2", f"kill -9 {agent_stopped(fleet2, 'h2')}")
        drill.communicate(timeout=60)
    finally:
        if drill.poll() is None:
            drill.kill()
    torn = state(fleet2, "h2")  # a whole JSON document: the old truth, the dead-man armed
    assert torn["current"] == INITIAL and torn["deadman"]["to"] == release, torn
    assert on(app, "h2") == release, "the link had moved"
    # status reads it and tells the new truth (the link wins); the deploy goes on from its gate
    code, status = ctl.json("status", "-i", ctl.inventory(), "--app", "sample")
    assert code == 0, status
    assert status["hosts"]["h2"]["current"] == release, status["hosts"]["h2"]
    code, report = ctl.json("promote", "sample-torn", "--yes")
    assert code == 0 and report["outcome"] == "succeeded", report
    assert {on(app, h) for h in HOSTS} == {release}
    doc = state(fleet2, "h2")
    assert doc["current"] == release and doc["deadman"] is None, doc
    assert doc["releases"][release]["status"] == "good"
    # and a rollback from there works as ever
    code, doc = ctl.json("rollback", "-i", ctl.inventory(), "--app", "sample", "--yes")
    assert code == 0 and doc["complete"], doc
    assert {on(app, h) for h in HOSTS} == {INITIAL}
