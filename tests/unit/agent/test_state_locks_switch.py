"""The agent's state, locks, switch, prepare and health checks, run against a temp host."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.unit.agent.hosts import (
    Host,
    agent,
    prepare_request,
)

# -- state and adoption ------------------------------------------------------------------------


def test_state_shows_a_hand_made_release_as_adopted_without_writing(host: Host) -> None:
    doc = host.ok("state", "--root", str(host.root))
    assert doc["managed"] is False
    assert doc["state"]["current"] == "initial"
    assert doc["state"]["last_good"] == "initial"
    assert doc["state"]["releases"]["initial"]["status"] == "good"
    assert doc["live"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert not host.state_dir.exists(), "`state` must change nothing on the host"


def test_first_change_adopts_and_keeps_state_root_only(host: Host) -> None:
    host.register("r1")
    state = host.state
    assert state["current"] == "initial" and state["releases"]["initial"]["adopted"] is True
    assert [e["event"] for e in state["history"]] == ["adopt"]
    host.ok("lock", "--deploy", "d1", "--owner", "me@ctl", "--ttl", "60")
    for d in (host.state_dir, host.state_dir / "demo", host.state_dir / "demo" / "snapshots"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    for f in ("state.json", "lock"):
        assert stat.S_IMODE((host.state_dir / "demo" / f).stat().st_mode) == 0o600, f


def test_state_without_root_or_state_is_reported_not_invented(tmp_path: Path) -> None:
    h = Host(tmp_path)
    doc = h.ok("state")
    assert doc["state"] is None and doc["managed"] is False
    rc, doc = h.call("switch", "--release", "x")
    assert rc == 1 and doc["code"] == "no-state"


# -- locks -------------------------------------------------------------------------------------


def test_lock_refuses_another_deploy_and_names_the_holder(host: Host) -> None:
    host.ok("lock", "--deploy", "d1", "--owner", "alice@ctl", "--reason", "py313", "--ttl", "600")
    rc, doc = host.call("lock", "--deploy", "d2", "--owner", "bob@ctl", "--ttl", "600")
    assert rc == 2 and doc["code"] == "locked"
    assert "deploy d1" in doc["error"] and "alice@ctl" in doc["error"] and "py313" in doc["error"]
    assert doc["holder"]["deploy"] == "d1" and doc["holder"]["expired"] is False


def test_lock_is_reentrant_for_its_deploy(host: Host) -> None:
    first = host.ok("lock", "--deploy", "d1", "--owner", "a@c", "--ttl", "60")["lock"]
    again = host.ok("lock", "--deploy", "d1", "--owner", "a@c", "--ttl", "600")
    assert again["refreshed"] and again["lock"]["created"] == first["created"]
    assert again["lock"]["expires_epoch"] > first["expires_epoch"]


def test_the_same_deploy_from_another_owner_is_refused_and_cannot_unlock_it(host: Host) -> None:
    """Two directories (or controllers) applying the same spec share its deploy id: the owner
    tells them apart, so the second neither takes nor releases the first's lock."""
    host.ok("lock", "--deploy", "d1", "--owner", "root@ctl:/a", "--ttl", "600")
    rc, doc = host.call("lock", "--deploy", "d1", "--owner", "root@ctl:/b", "--ttl", "600")
    assert rc == 2 and doc["code"] == "locked" and "root@ctl:/a" in doc["error"]
    rc, doc = host.call("unlock", "--deploy", "d1", "--owner", "root@ctl:/b")
    assert rc == 2 and host.ok("state")["lock"]["owner"] == "root@ctl:/a"
    assert host.ok("unlock", "--deploy", "d1", "--owner", "root@ctl:/a")["released"]


def test_a_stale_lock_expires_and_is_taken_over(host: Host) -> None:
    host.ok("lock", "--deploy", "d1", "--owner", "a@c", "--ttl", "1")
    time.sleep(1.2)
    doc = host.ok("lock", "--deploy", "d2", "--owner", "b@c", "--ttl", "60")
    assert doc["broke_stale"]["deploy"] == "d1"
    assert host.ok("state")["lock"]["deploy"] == "d2"


def test_unlock_needs_the_holder_or_force(host: Host) -> None:
    host.ok("lock", "--deploy", "d1", "--owner", "a@c", "--ttl", "600")
    rc, doc = host.call("unlock", "--deploy", "d2")
    assert rc == 2 and "deploy d1" in doc["error"] and "--force" in doc["error"]
    rc, doc = host.call("unlock")
    assert rc == 2
    assert host.ok("unlock", "--owner", "a@c")["released"]["deploy"] == "d1"
    host.ok("lock", "--deploy", "d3", "--owner", "c@c", "--ttl", "600")
    assert host.ok("unlock", "--force")["released"]["deploy"] == "d3"
    assert host.ok("state")["lock"] is None
    assert host.ok("unlock")["changed"] is False


# -- switch ------------------------------------------------------------------------------------


def test_switch_renames_a_new_symlink_over_current_never_leaving_it_missing(host: Host) -> None:
    host.register("r1")
    host.register("r2")
    current = host.root / "current"
    missing: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if not os.path.lexists(current):
                missing.append(1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for i in range(30):
            rid = ("r1", "r2")[i % 2]
            host.ok("switch", "--release", rid)
            assert host.link() == f"releases/{rid}"
    finally:
        stop.set()
        watcher.join()
    assert not missing, "current was missing during a switch"
    assert not list(host.root.glob(".current.tmp-*"))


def test_switch_records_previous_and_live(host: Host) -> None:
    host.register("r1")
    doc = host.ok("switch", "--release", "r1", "--deploy", "d1")
    assert (doc["from"], doc["to"]) == ("initial", "r1")
    state = host.state
    assert (state["current"], state["previous"], state["last_good"]) == ("r1", "initial", "initial")
    assert state["releases"]["r1"]["status"] == "live"
    assert json.loads((host.root / "releases/r1/release.json").read_text())["status"] == "live"
    assert host.ok("switch", "--release", "r1")["changed"] is False


def test_switch_refuses_failed_and_bad_releases(host: Host) -> None:
    host.register("r1")
    host.ok("record-release", "--release", "r1", "--status", "failed")
    rc, doc = host.call("switch", "--release", "r1")
    assert rc == 1 and doc["code"] == "release-failed"
    assert host.link() == "releases/initial"


# -- prepare -----------------------------------------------------------------------------------




def test_prepare_builds_a_venv_release_and_runs_verify(host: Host) -> None:
    in_venv = 'test "$(python -c "import sys; print(sys.prefix)")" = "$VIRTUAL_ENV"'
    req = prepare_request(host, "r1", ['test "$(basename "$PWD")" = r1', in_venv,
                                       'test "$VIRTUAL_ENV" = "$PWD/venv"'])
    doc = host.ok("prepare", stdin=req)
    rel = doc["release"]
    assert rel["status"] == "prepared"
    venv_python = host.root / "releases/r1/venv/bin/python"
    out = subprocess.run([str(venv_python), "-c", "import sys; print(sys.prefix)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == str(host.root / "releases/r1/venv")
    manifest = json.loads((host.root / "releases/r1/release.json").read_text())
    assert manifest["interpreter"]["executable"] == sys.executable
    assert manifest["spec"] == {"name": "t", "digest": "abc"} and manifest["status"] == "prepared"
    assert host.link() == "releases/initial", "prepare must not touch current"
    assert host.ok("prepare", stdin=req)["already"] is True


def test_failed_verify_marks_the_release_failed_and_redacts_secrets(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_TOKEN", "s3cr3t-token-value")
    req = prepare_request(host, "r1", ['echo "token is $APP_TOKEN"; exit 7'])
    rc, doc = host.call("prepare", stdin=req)
    assert rc == 1 and doc["code"] == "verify-failed"
    assert "exited 7" in doc["error"]
    text = json.dumps(doc) + (host.state_dir / "demo/state.json").read_text()
    assert "s3cr3t-token-value" not in text and "********" in doc["output"]
    state = host.state
    assert state["releases"]["r1"]["status"] == "failed" and state["current"] == "initial"
    assert host.link() == "releases/initial"
    assert json.loads((host.root / "releases/r1/release.json").read_text())["status"] == "failed"


def test_prepare_checks_the_interpreter_version(host: Host) -> None:
    rc, doc = host.call("prepare", stdin=prepare_request(host, "r1", [], version="3.99.0"))
    assert rc == 1 and "not 3.99.0" in doc["error"]
    assert host.state["releases"]["r1"]["status"] == "failed"


# -- health ------------------------------------------------------------------------------------


def test_health_runs_command_checks_with_placeholders_and_retries(host: Host) -> None:
    config = {"health": {"checks": [{"command": "test ! -e {release}/BROKEN"}],
                         "retries": 3, "interval": 0.05}}
    host.register("r1", config=config)
    host.ok("switch", "--release", "r1")
    assert host.ok("health")["health"]["attempts"] == 1
    (host.root / "releases/r1/BROKEN").touch()
    rc, doc = host.call("health")
    assert rc == 1 and doc["code"] == "health-failed"
    assert doc["health"]["attempts"] == 3
    assert doc["health"]["failed_check"] == f"command test ! -e {host.root}/releases/r1/BROKEN"


def test_http_check_reports_status_and_body() -> None:
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = 200 if self.path == "/ok" else 503
            body = b'{"status": "ok"}' if code == 200 else b"down"
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert agent.http_check({"url": base + "/ok", "contains": '"ok"'}) == (True, "status 200")
        ok, detail = agent.http_check({"url": base + "/bad"})
        assert not ok and detail.startswith("status 503 (wanted 200)")
        ok, detail = agent.http_check({"url": base + "/ok", "contains": "nope"})
        assert not ok and "lacks" in detail
    finally:
        server.shutdown()
