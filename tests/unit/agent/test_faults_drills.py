"""The agent when the host misbehaves: the dead-man across a reboot, the agent killed between its
writes, and a release build that fills the disk (issue "Faults")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.agent.hosts import AGENT_PATH, Host, agent, prepare_request, wait_for

# -- the dead-man across a reboot of the host ----------------------------------------------------


def reboot(host: Host) -> None:
    """What a reboot does to an armed dead-man: its timer or process is gone, its record stays."""
    pid = host.state["deadman"]["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists() or
                    "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], 5)


def test_an_unconfirmed_switch_survives_a_reboot_the_dead_man_is_re_armed_for_the_time_left(
        host: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    units = tmp_path / "etc-systemd-system"
    monkeypatch.setenv("OXZEP7_SYSTEMD_UNIT_DIR", str(units))
    host.register("r1")
    proc = host.process("switch", "--release", "r1", "--deploy", "d1", "--deadman", "4",
                        "--deadman-mode", "process")
    assert proc.returncode == 0, proc.stdout
    # armed: the unit that runs at boot is installed and enabled for this app
    template = (units / "oxzep7-deadman@.service").read_text()
    assert "deadman-boot --app %i" in template and "WantedBy=multi-user.target" in template
    assert (units / "multi-user.target.wants" / "oxzep7-deadman@demo.service").resolve() == \
        (units / "oxzep7-deadman@.service").resolve()
    armed = host.state["deadman"]
    reboot(host)
    doc = json.loads(host.process("deadman-boot").stdout)
    assert doc["ok"] and doc["rearmed"], doc
    again = host.state["deadman"]
    assert again["token"] == armed["token"] and again["pid"] != armed["pid"]
    assert again["fires_epoch"] == armed["fires_epoch"], "the deadline is the one armed at switch"
    assert host.state["history"][-1]["event"] == "deadman-boot"
    assert host.link() == "releases/r1"
    assert wait_for(lambda: host.link() == "releases/initial", 15), "the re-armed dead-man did not fire"
    assert wait_for(lambda: host.state["deadman"] is None, 5)
    reason = host.state["releases"]["r1"]["bad_reason"]
    assert reason.startswith("dead-man: deploy d1 was not confirmed within 4s"), reason
    assert "the host restarted at" in reason, reason


def test_a_reboot_past_the_deadline_reverts_at_boot_and_a_confirmed_release_stays(
        host: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OXZEP7_SYSTEMD_UNIT_DIR", str(tmp_path / "units"))
    host.register("r1")
    host.process("switch", "--release", "r1", "--deploy", "d1", "--deadman", "60",
                 "--deadman-mode", "process")
    reboot(host)
    state = host.state  # the host was down for longer than the dead-man's time
    state["deadman"]["fires_epoch"] = time.time() - 5
    agent.write_json_atomic(str(host.state_dir / "demo" / "state.json"), state)
    doc = host.ok("deadman-boot")
    assert doc["fired"] and doc["to"] == "initial", doc
    assert host.link() == "releases/initial"
    state = host.state
    assert state["deadman"] is None and state["releases"]["r1"]["status"] == "bad"
    assert [e["event"] for e in state["history"][-2:]] == ["deadman-boot", "deadman"]
    # a confirmed switch: the boot unit finds nothing armed and changes nothing
    host.register("r2")
    host.process("switch", "--release", "r2", "--deploy", "d2", "--deadman", "60",
                 "--deadman-mode", "process")
    pid = host.state["deadman"]["pid"]
    host.ok("confirm", "--release", "r2", "--deploy", "d2")
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists(), 5)
    before = host.state
    doc = host.ok("deadman-boot")
    assert doc["changed"] is False and doc["reason"] == "nothing armed", doc
    assert host.link() == "releases/r2" and host.state["history"] == before["history"]


# -- the agent killed between its writes -----------------------------------------------------------

SWITCH_POINTS = ["switch:lock", "switch:deadman", "switch:tmp-link", "switch:link", "switch:state"]


def stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


@pytest.mark.parametrize("point", SWITCH_POINTS)
def test_a_switch_killed_between_any_two_writes_leaves_the_old_or_the_new_truth_and_goes_on(
        host: Host, point: str) -> None:
    host.register("r1")
    argv = [sys.executable, str(AGENT_PATH), "--state-dir", str(host.state_dir), "switch",
            "--app", host.app, "--release", "r1", "--deploy", "d1", "--deadman", "60",
            "--deadman-mode", "process", "--lock-ttl", "600", "--lock-owner", "ops@here"]
    proc = subprocess.Popen(argv, env={**os.environ, "OXZEP7_AGENT_PAUSE_AT": point},
                            stdout=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: stopped(proc.pid), 20), f"the agent did not stop at {point}"
    finally:
        proc.kill()
        proc.communicate()
    # the state file is whole, and with the link it tells one truth: old or new, never a mix
    state = json.loads((host.state_dir / "demo" / "state.json").read_text())
    report = host.ok("state")
    assert report["current_link"] in ("initial", "r1"), report
    assert report["state"]["current"] == report["current_link"] == host.link().split("/")[-1]
    if point in ("switch:lock", "switch:deadman", "switch:tmp-link"):
        assert host.link() == "releases/initial" and state["current"] == "initial", point
    else:
        assert host.link() == "releases/r1", point
    armed = state["deadman"]
    if point != "switch:lock":  # the dead-man was armed before the link moved
        assert armed and armed["to"] == "r1" and armed["from"] == "initial", state
    # the lock is the killed deploy's: another deploy is refused, the same one goes on
    rc, doc = host.call("switch", "--release", "r1", "--deploy", "d2", "--lock-ttl", "600",
                        "--lock-owner", "ops@elsewhere")
    assert rc == 2 and doc["code"] == "locked", doc
    host.ok("switch", "--release", "r1", "--deploy", "d1", "--lock-ttl", "600",
            "--lock-owner", "ops@here")
    host.ok("confirm", "--release", "r1", "--deploy", "d1", "--unlock")
    after = host.state
    assert host.link() == "releases/r1" and after["current"] == "r1" and after["deadman"] is None
    assert after["releases"]["r1"]["status"] == "good"
    if armed:
        assert wait_for(lambda: not Path(f"/proc/{armed['pid']}").exists(), 5), \
            "the killed switch's dead-man lives on"
    assert not [p.name for p in host.root.iterdir() if p.name.startswith(".current.tmp-")]
    assert not (host.state_dir / "demo" / "lock").exists()
    # and a rollback from here works as ever
    host.ok("rollback", "--to", "initial", "--no-health")
    assert host.link() == "releases/initial"


def test_the_pause_hook_is_inert_without_its_variable(host: Host,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OXZEP7_AGENT_PAUSE_AT", raising=False)
    host.register("r1")
    proc = host.process("switch", "--release", "r1", "--deploy", "d1", "--lock-ttl", "60")
    assert proc.returncode == 0, proc.stdout
    monkeypatch.setenv("OXZEP7_AGENT_PAUSE_AT", "confirm:nowhere")  # a point no write has
    host.ok("confirm", "--release", "r1", "--deploy", "d1", "--unlock")
    assert host.link() == "releases/r1"


FILLS_THE_DISK = """#!/bin/sh
# an interpreter whose venv fills the disk: it writes 300 KiB, then fails as pip does on ENOSPC
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    mkdir -p "$3/lib" && head -c 307200 /dev/zero > "$3/lib/partial.whl"
    echo "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device"
    exit 1
fi
exec {python} "$@"
"""


def test_a_release_whose_build_fills_the_disk_is_removed_and_the_error_says_needed_and_free(
        host: Host, tmp_path: Path) -> None:
    fake = tmp_path / "python3-full-disk"
    fake.write_text(FILLS_THE_DISK.format(python=sys.executable))
    fake.chmod(0o755)
    req = json.loads(prepare_request(host, "r1", []))
    req["interpreter"]["executable"] = str(fake)
    rc, doc = host.call("prepare", stdin=json.dumps(req))
    assert rc == 1 and doc["code"] == "no-space", doc
    assert doc["needed_bytes"] >= 300 * 1024 and doc["free_bytes"] > 0 and doc["no_space"], doc
    msg = doc["error"]
    assert msg.startswith(f"no space left on device under {host.root} while building release r1"), msg
    assert "it needs more than 0.3 MB" in msg and "MB free" in msg, msg
    assert "nothing was switched" in msg and "[Errno 28]" in doc["cause"], doc
    assert not (host.root / "releases" / "r1").exists(), "the partial release is left behind"
    state = host.state
    assert state["releases"]["r1"]["status"] == "failed" and state["current"] == "initial"
    assert host.link() == "releases/initial"
