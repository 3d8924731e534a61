"""The agent's prepare runs `pip check`, and a switch or rollback measures the app's restart gap
on application.port (issue "Real applications")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.agent.hosts import Host, prepare_request


def test_pip_check_fails_prepare_when_the_requirements_do_not_hold_together(
    host: Host, tmp_path: Path
) -> None:
    from tests.wheelmaker import make_wheel

    wheels = tmp_path / "wheels"
    make_wheel(wheels, "oxz-helper", "1.0")
    make_wheel(wheels, "oxz-app", "2.0", requires=["oxz-helper>=2.0"])
    lock = tmp_path / "requirements.lock"
    lock.write_text("oxz-app==2.0\noxz-helper==1.0\n")  # the lock pins a helper the app refuses
    req = json.loads(prepare_request(host, "r1", []))
    req.update(requirements=str(lock), pip_args=["--no-index", "--find-links", str(wheels),
                                                  "--no-deps"])
    rc, doc = host.call("prepare", stdin=json.dumps(req))
    assert rc == 1 and doc["code"] == "pip-check-failed", doc
    assert "oxz-app 2.0 has requirement oxz-helper>=2.0, but you have oxz-helper 1.0" in doc["error"]
    assert doc["pip_check"] and host.state["releases"]["r1"]["status"] == "failed"
    assert host.link() == "releases/initial"
    make_wheel(wheels, "oxz-helper", "2.0")
    lock.write_text("oxz-app==2.0\noxz-helper==2.0\n")
    req["release"] = "r2"
    doc = host.ok("prepare", stdin=json.dumps(req))
    assert [s["step"] for s in doc["steps"]] == ["venv", "requirements", "pip-check"]




# -- the restart gap ---------------------------------------------------------------------------


def test_switch_and_rollback_report_the_restart_gap_on_application_port(
    host: Host, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    pidfile = tmp_path / "server.pid"
    start = (f"nohup {sys.executable} -m http.server {port} --bind 127.0.0.1 >/dev/null 2>&1 & "
             f"echo $! > {pidfile}")
    subprocess.run(start, shell=True, check=True)
    try:
        # down for 0.8 s, then up again (the checks wait for it)
        restart = f"kill $(cat {pidfile}); sleep 0.8; {start}"
        config = {"port": port, "restart_command": restart,
                  "health": {"checks": [{"http": {"url": "http://127.0.0.1:{port}/"}}],
                             "retries": 40, "interval": 0.1}}
        host.register("r1", config=config)
        doc = host.ok("switch", "--release", "r1", "--restart", "--health")
        assert 0.6 <= doc["restart_gap_s"] <= 2.0, doc
        begin, end = doc["restart_window"]
        assert begin < end and doc["gap_unanswered"] >= 1
        rolled = host.ok("rollback", "--to", "initial")
        assert 0.6 <= rolled["restart_gap_s"] <= 2.0, rolled
        # without health checks of its own, the gap still lasts until the app answers again
        host.register("r2", config=dict(config, health={"checks": []}))
        doc = host.ok("switch", "--release", "r2", "--restart", "--health")
        assert 0.6 <= doc["restart_gap_s"] <= 2.0, doc
    finally:
        subprocess.run(f"kill $(cat {pidfile})", shell=True)


def test_no_port_no_gap_measured(host: Host) -> None:
    host.register("r1", config={"restart_command": "true", "health": {"checks": []}})
    doc = host.ok("switch", "--release", "r1", "--restart", "--health")
    assert doc["restart_gap_s"] is None


# -- the restart verb of a rollback ---------------------------------------------------------------


def _state(**configs: dict[str, object]) -> dict[str, object]:
    return {"config": {}, "releases": {rid: {"config": cfg} for rid, cfg in configs.items()}}


def test_a_rollback_to_an_adopted_release_reloads_when_the_release_left_did() -> None:
    """The adopted release borrowed the first spec's mode (restart); the app now reloads, so the
    rollback to it reloads too, and the app keeps serving."""
    from tests.unit.agent.hosts import agent

    st = _state(initial={"restart": "restart", "adopted": True}, new={"restart": "reload"},
                older={"restart": "restart"})
    assert agent.restart_verb(st, "initial", leaving="new") == "reload"
    assert agent.restart_verb(st, "initial") == "restart", "no release left: its own mode"
    # a release with a spec of its own keeps its own mode, whatever is left
    assert agent.restart_verb(st, "older", leaving="new") == "restart"
    assert agent.restart_verb(st, "new", leaving="older") == "reload"
