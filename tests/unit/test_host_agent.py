"""The host agent (playbooks/files/oxzep7-host.py) run locally against a temporary root.

The agent is the on-host half of releases: state.json, locks, atomic switch, snapshots, dead-man,
rollback and pruning. Here it runs in-process (`main([...])`) or as a process, against a temp
state directory and a temp application root with hand-made releases.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import random
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from contextlib import redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oxzep7_deploy.spec.placeholders import PlaceholderError
from oxzep7_deploy.spec.placeholders import substitute as controller_substitute

AGENT_PATH = Path(__file__).resolve().parents[2] / "playbooks" / "files" / "oxzep7-host.py"


def load_agent() -> ModuleType:
    spec = importlib.util.spec_from_file_location("oxzep7_host_agent", AGENT_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


agent = load_agent()


class Host:
    """A temp "host": a state directory and one application root, driven through the agent."""

    def __init__(self, base: Path, app: str = "demo") -> None:
        self.base = base
        self.app = app
        self.state_dir = base / "var-lib-oxzep7"
        self.root = base / "srv" / app
        (self.root / "releases").mkdir(parents=True, exist_ok=True)

    # -- running the agent --
    def call(self, *argv: str, stdin: str | None = None) -> tuple[int, dict[str, Any]]:
        buf = io.StringIO()
        old_stdin = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            with redirect_stdout(buf):
                rc = agent.main(["--state-dir", str(self.state_dir), argv[0], "--app", self.app,
                                 *argv[1:]])
        finally:
            sys.stdin = old_stdin
        return rc, json.loads(buf.getvalue())

    def ok(self, *argv: str, stdin: str | None = None) -> dict[str, Any]:
        rc, doc = self.call(*argv, stdin=stdin)
        assert rc == 0 and doc["ok"], doc
        return doc

    def process(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(AGENT_PATH), "--state-dir", str(self.state_dir),
                               argv[0], "--app", self.app, *argv[1:]],
                              capture_output=True, text=True, timeout=60)

    # -- looking at it --
    @property
    def state(self) -> dict[str, Any]:
        return json.loads((self.state_dir / self.app / "state.json").read_text())

    def link(self) -> str:
        return os.readlink(self.root / "current")

    # -- making releases by hand (a venv that is only its python link: fast) --
    def make_release_dir(self, rid: str) -> Path:
        path = self.root / "releases" / rid
        (path / "venv" / "bin").mkdir(parents=True, exist_ok=True)
        python = path / "venv" / "bin" / "python"
        if not python.exists():
            python.symlink_to(sys.executable)
        (path / "venv" / "pyvenv.cfg").write_text(
            f"home = {Path(sys.executable).parent}\nversion = 3.11.7\nexecutable = {sys.executable}\n")
        return path

    def initial(self, rid: str = "initial") -> None:
        """A release made by hand, live before oxzep7 ever ran (adopted on first contact)."""
        self.make_release_dir(rid)
        os.symlink(f"releases/{rid}", self.root / "current")

    def adopt(self) -> None:
        """What any first change does: record the hand-made release as good and current."""
        paths = agent.Paths(str(self.state_dir), self.app)
        with agent.guarded(paths):
            state, _ = agent.load_state(paths, str(self.root))
            agent.save_state(paths, state)

    def register(self, rid: str, config: dict[str, Any] | None = None,
                 prefix: str | None = None) -> None:
        """A prepared release, as `prepare` would record it (without building a venv)."""
        path = self.make_release_dir(rid)
        paths = agent.Paths(str(self.state_dir), self.app)
        interp = {"executable": sys.executable, "version": "3.11.7", "prefix": prefix,
                  "managed": prefix is not None}
        req = {"release": rid, "deploy": f"dep-{rid}", "spec": {"name": "t", "digest": "x"}}
        with agent.guarded(paths):
            state, _ = agent.load_state(paths, str(self.root))
            if config is not None:
                state["config"] = config
            agent.add_release(state, req, str(path), interp, "prepared")
            agent.save_state(paths, state)

    def deploy(self, rid: str, healthy: bool = True, confirm: bool = True) -> None:
        """What the playbooks do: switch; then confirm, or put the previous release back."""
        self.register(rid)
        doc = self.ok("switch", "--release", rid, "--deploy", f"dep-{rid}")
        if not healthy:
            args = ["--only-from", rid, "--reason", "health failed"]
            if doc["from"]:
                args += ["--to", doc["from"]]
            self.ok("rollback", *args)
        elif confirm:
            self.ok("confirm", "--release", rid, "--deploy", f"dep-{rid}")


@pytest.fixture
def host(tmp_path: Path) -> Host:
    h = Host(tmp_path)
    h.initial()
    return h


def tree_digest(top: Path) -> dict[str, tuple[str, int, str]]:
    """Everything under `top`, byte for byte: path -> (kind, mode, content hash or link target)."""
    out: dict[str, tuple[str, int, str]] = {}
    for path in [top, *sorted(top.rglob("*"))]:
        st_ = path.lstat()
        rel = str(path.relative_to(top.parent))
        if stat.S_ISLNK(st_.st_mode):
            out[rel] = ("link", 0, os.readlink(path))
        elif stat.S_ISDIR(st_.st_mode):
            out[rel] = ("dir", stat.S_IMODE(st_.st_mode), "")
        else:
            out[rel] = ("file", stat.S_IMODE(st_.st_mode), hashlib.sha256(path.read_bytes()).hexdigest())
    return out


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


def prepare_request(host: Host, rid: str, verify: list[str], version: str | None = None) -> str:
    return json.dumps({
        "release": rid, "root": str(host.root), "deploy": "d1",
        "version": version or ".".join(map(str, sys.version_info[:3])),
        "interpreter": {"executable": sys.executable, "prefix": None, "managed": False},
        "requirements": None, "pip_args": [], "code": None, "verify": verify,
        "spec": {"name": "t", "digest": "abc"},
        "config": {"env_keys": ["APP_TOKEN"], "health": {"checks": []}},
    })


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


# -- rollback and snapshots --------------------------------------------------------------------


def make_config_tree(top: Path) -> None:
    (top / "sub").mkdir(parents=True)
    (top / "app.conf").write_text("setting = 1\n")
    (top / "sub" / "secret.key").write_bytes(os.urandom(64))
    os.chmod(top / "sub" / "secret.key", 0o640)
    (top / "link").symlink_to("app.conf")


def test_rollback_restores_snapshot_byte_for_byte_and_marks_the_release_bad(
    host: Host, tmp_path: Path
) -> None:
    etc = tmp_path / "etc" / "demo"
    make_config_tree(etc)
    before = tree_digest(etc)
    host.register("r1")
    host.ok("snapshot", "--path", str(etc), "--deploy", "d1")
    host.ok("switch", "--release", "r1", "--deploy", "d1")
    host.ok("confirm", "--release", "r1", "--deploy", "d1")
    (etc / "app.conf").write_text("setting = 2\n")
    (etc / "new-file").write_text("added by the new release\n")
    os.chmod(etc / "sub", 0o700)
    doc = host.ok("rollback")
    assert (doc["from"], doc["to"]) == ("r1", "initial")
    assert doc["restored"]["paths"] == [str(etc)]
    assert tree_digest(etc) == before
    state = host.state
    assert state["releases"]["r1"]["status"] == "bad"
    assert (state["current"], state["last_good"]) == ("initial", "initial")
    assert host.link() == "releases/initial"
    assert not list(etc.parent.glob(".oxzep7-*"))


def test_a_path_absent_at_snapshot_time_is_removed_on_restore(host: Host, tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "later"
    host.register("r1")
    host.ok("snapshot", "--path", str(etc))
    host.ok("switch", "--release", "r1")
    etc.mkdir(parents=True)
    (etc / "x").write_text("x")
    host.ok("rollback")
    assert not etc.exists()


def test_rollback_with_nothing_to_roll_back_to_is_an_error(host: Host) -> None:
    rc, doc = host.call("rollback")
    assert rc == 1 and doc["code"] == "no-state"  # oxzep7 never deployed here
    host.register("r1")  # adopts initial: the only good release, and current
    rc, doc = host.call("rollback")
    assert rc == 1 and doc["code"] == "nothing-to-roll-back"
    host.deploy("r1")
    host.ok("rollback")  # r1 -> initial, r1 bad
    rc, doc = host.call("rollback")
    assert rc == 1 and doc["code"] == "nothing-to-roll-back", "must never go back to a bad release"
    assert host.link() == "releases/initial"


def test_rollback_goes_to_the_previous_good_release_and_to_a_named_one(host: Host) -> None:
    host.deploy("r1")
    host.deploy("r2")
    host.deploy("r3", healthy=False)  # switched, unhealthy, put back on r2; r3 bad
    state = host.state
    assert (state["current"], state["releases"]["r3"]["status"]) == ("r2", "bad")
    assert host.ok("rollback")["to"] == "r1"
    assert host.ok("rollback", "--to", "initial")["to"] == "initial"
    state = host.state
    assert {r: state["releases"][r]["status"] for r in state["releases"]} == {
        "initial": "good", "r1": "bad", "r2": "bad", "r3": "bad"}
    rc, doc = host.call("rollback", "--to", "initial")
    assert rc == 1 and doc["code"] == "already-current"


def test_rollback_only_from_is_a_no_op_when_that_release_is_not_current(host: Host) -> None:
    host.deploy("r1", healthy=False)
    doc = host.ok("rollback", "--only-from", "r1")
    assert doc["changed"] is False and host.link() == "releases/initial"


def crafted_archive(host: Host, listed: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    """Replace the newest snapshot's archive; manifest and state agree with it (checksums pass)."""
    state_path = host.state_dir / "demo" / "state.json"
    state = json.loads(state_path.read_text())
    record = state["snapshots"][-1]
    sdir = host.state_dir / "demo" / "snapshots" / record["id"]
    archive = sdir / "archive.tar.gz"
    entries: dict[str, Any] = {}
    with tarfile.open(archive, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
            entry: dict[str, Any] = {"type": "file" if info.isreg() else "other"}
            if info.isreg():
                entry["sha256"] = hashlib.sha256(data).hexdigest()
            entries[info.name] = entry
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    manifest = json.loads((sdir / "manifest.json").read_text())
    manifest.update(archive_sha256=digest, members=entries)
    (sdir / "manifest.json").write_text(json.dumps(manifest))
    record["archive_sha256"] = digest
    state_path.write_text(json.dumps(state))


def file_member(name: str, data: bytes = b"pwned\n") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def link_member(name: str, target: str, hard: bool = False) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, b""


@pytest.mark.parametrize("case", ["dotdot", "absolute", "outside", "under-symlink", "hardlink", "device"])
def test_a_crafted_snapshot_archive_is_refused_and_nothing_changes(
    host: Host, tmp_path: Path, case: str
) -> None:
    etc = tmp_path / "etc" / "demo"
    make_config_tree(etc)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("untouched\n")
    host.register("r1")
    host.ok("snapshot", "--path", str(etc))
    host.ok("switch", "--release", "r1")
    (etc / "app.conf").write_text("changed by r1\n")
    after_switch = tree_digest(etc)
    victim_before = tree_digest(victim)
    rel = str(etc).lstrip("/")
    device = tarfile.TarInfo(rel + "/null")
    device.type = tarfile.CHRTYPE
    members = {
        "dotdot": [file_member(rel + "/../../victim/keep")],
        "absolute": [file_member(str(victim / "keep"))],
        "outside": [file_member(str(victim / "keep").lstrip("/"))],
        "under-symlink": [link_member(rel + "/esc", str(victim)), file_member(rel + "/esc/keep")],
        "hardlink": [link_member(rel + "/h", str(victim / "keep"), hard=True)],
        "device": [(device, b"")],
    }[case]
    d = tarfile.TarInfo(rel)
    d.type = tarfile.DIRTYPE
    d.mode = 0o755
    crafted_archive(host, etc, [(d, b""), *members])
    rc, doc = host.call("rollback")
    assert rc == 1 and doc["code"] == "snapshot-unsafe", doc
    assert "nothing was restored" in doc["error"] or "only files" in doc["error"]
    assert tree_digest(victim) == victim_before
    assert tree_digest(etc) == after_switch
    assert host.link() == "releases/r1", "a refused restore must not switch"
    assert not list(etc.parent.glob(".oxzep7-*"))


def test_a_tampered_archive_fails_its_checksum(host: Host, tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "demo"
    make_config_tree(etc)
    host.register("r1")
    record = host.ok("snapshot", "--path", str(etc))["snapshot"]
    host.ok("switch", "--release", "r1")
    archive = host.state_dir / "demo" / "snapshots" / record["id"] / "archive.tar.gz"
    data = bytearray(archive.read_bytes())
    data[-5] ^= 0xFF
    archive.write_bytes(bytes(data))
    rc, doc = host.call("rollback")
    assert rc == 1 and doc["code"] == "snapshot-checksum"
    assert host.link() == "releases/r1"


def test_snapshots_keep_the_newest_and_those_of_protected_releases(host: Host, tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "demo"
    make_config_tree(etc)
    host.adopt()
    host.ok("snapshot", "--path", str(etc), "--keep", "2")  # of initial
    for rid in ("r1", "r2", "r3"):
        host.register(rid)
        host.ok("snapshot", "--path", str(etc), "--keep", "2")
        host.ok("switch", "--release", rid)
        host.ok("confirm", "--release", rid)
    snaps = host.state["snapshots"]
    assert [s["release"] for s in snaps][-2:] == ["r1", "r2"]
    assert {s["release"] for s in snaps} >= {"r2"}  # previous (r2) keeps its snapshot
    on_disk = {p.name for p in (host.state_dir / "demo" / "snapshots").iterdir()}
    assert on_disk == {s["id"] for s in snaps}


# -- the dead-man ------------------------------------------------------------------------------


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def test_the_dead_man_puts_the_previous_release_back_unless_confirmed(host: Host, tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "demo"
    make_config_tree(etc)
    before = tree_digest(etc)
    host.register("r1")
    host.ok("snapshot", "--path", str(etc))
    proc = host.process("switch", "--release", "r1", "--deploy", "d1", "--deadman", "1",
                        "--deadman-mode", "process")
    assert proc.returncode == 0, proc.stdout
    (etc / "app.conf").write_text("r1 config\n")
    assert host.link() == "releases/r1"
    assert wait_for(lambda: host.link() == "releases/initial", 15), "the dead-man did not fire"
    assert wait_for(lambda: host.state["deadman"] is None, 5)
    state = host.state
    assert state["releases"]["r1"]["status"] == "bad"
    assert state["history"][-1]["event"] == "deadman"
    assert tree_digest(etc) == before
    rc, doc = host.call("confirm", "--release", "r1", "--deploy", "d1")
    assert rc == 1 and "dead-man" in doc["error"]


def test_a_deploy_resumed_after_its_dead_man_fired_may_switch_again_others_may_not(
        host: Host) -> None:
    """The dead-man marks the release bad because its controller was lost, not because it was
    unhealthy: the same deploy, resumed, switches to it again; another deploy is refused."""
    host.register("r1")
    host.process("switch", "--release", "r1", "--deploy", "d1", "--deadman", "1",
                 "--deadman-mode", "process")
    assert wait_for(lambda: host.link() == "releases/initial", 15), "the dead-man did not fire"
    assert wait_for(lambda: host.state["releases"]["r1"]["status"] == "bad", 5)
    rc, doc = host.call("switch", "--release", "r1", "--deploy", "d2")
    assert rc == 1 and doc["code"] == "release-bad", doc
    host.ok("switch", "--release", "r1", "--deploy", "d1")
    assert host.link() == "releases/r1"


def test_confirm_disarms_the_dead_man(host: Host) -> None:
    host.register("r1")
    doc = host.process("switch", "--release", "r1", "--deploy", "d1", "--deadman", "2",
                       "--deadman-mode", "process")
    pid = json.loads(doc.stdout)["deadman"]["pid"]
    host.ok("confirm", "--release", "r1", "--deploy", "d1")
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists(), 5), "the dead-man process lives on"
    time.sleep(2.5)
    assert host.link() == "releases/r1"
    state = host.state
    assert state["releases"]["r1"]["status"] == "good" and state["last_good"] == "r1"
    assert state["deadman"] is None


def test_a_stale_dead_man_token_does_nothing(host: Host) -> None:
    host.register("r1")
    host.ok("switch", "--release", "r1", "--deploy", "d1")
    doc = host.ok("deadman-fire", "--token", "not-the-armed-one")
    assert doc["fired"] is False and host.link() == "releases/r1"


# -- crash safety ------------------------------------------------------------------------------

WRITER = """
import importlib.util, random, sys
spec = importlib.util.spec_from_file_location("agent", sys.argv[1])
agent = importlib.util.module_from_spec(spec); spec.loader.exec_module(agent)
n = 0
while True:
    n += 1
    size = random.choice([10, 1000, 50000, 400000])
    agent.write_json_atomic(sys.argv[2], {"format": 1, "n": n, "pad": "x" * size})
"""


def test_state_json_is_never_seen_half_written_when_writers_are_killed(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    agent.write_json_atomic(str(target), {"format": 1, "n": 0, "pad": ""})
    seen: list[int] = []
    broken: list[str] = []
    stop = threading.Event()

    def read_loop() -> None:
        while not stop.is_set():
            try:
                data = target.read_bytes()
            except FileNotFoundError:
                broken.append("missing")
                continue
            try:
                seen.append(json.loads(data)["n"])
            except ValueError:
                broken.append(data[:80].decode("utf-8", "replace"))

    reader = threading.Thread(target=read_loop)
    reader.start()
    rng = random.Random(5)
    try:
        for _ in range(25):
            writer = subprocess.Popen([sys.executable, "-c", WRITER, str(AGENT_PATH), str(target)])
            time.sleep(rng.uniform(0.15, 0.4))
            writer.send_signal(signal.SIGKILL)
            writer.wait()
            json.loads(target.read_bytes())  # whatever was last renamed in is whole
    finally:
        stop.set()
        reader.join()
    assert not broken, f"a reader saw a broken state.json: {broken[:3]}"
    assert len(seen) > 100 and max(seen) > 1, "the loop did not exercise concurrent writes"
    agent.write_json_atomic(str(target), {"format": 1, "n": -1})
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"], "leftover temp files"


# -- pruning -----------------------------------------------------------------------------------


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, Any]]:
    ops = st.one_of(
        st.tuples(st.just("deploy"), st.sampled_from(["confirm", "unhealthy", "unconfirmed"])),
        st.tuples(st.just("rollback"), st.none()),
        st.tuples(st.just("prune"), st.integers(min_value=2, max_value=4)),
    )
    return draw(st.lists(ops, min_size=1, max_size=14))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_pruning_never_removes_current_previous_or_last_good(ops: list[tuple[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        host = Host(Path(tmp))
        host.initial()
        host.adopt()
        n = 0
        for op, arg in ops:
            if op == "deploy":
                n += 1
                host.deploy(f"r{n}", healthy=arg != "unhealthy", confirm=arg == "confirm")
            elif op == "rollback":
                rc, doc = host.call("rollback")
                assert rc == 0 or doc["code"] == "nothing-to-roll-back", doc
            else:
                host.ok("prune", "--keep", str(arg))
                state = host.state
                for key in ("current", "previous", "last_good"):
                    rid = state[key]
                    if rid is None:
                        continue
                    assert rid in state["releases"], (key, rid, ops)
                    assert (host.root / "releases" / rid / "venv/bin/python").exists(), (key, rid)
                protected = {state["current"], state["previous"], state["last_good"]} - {None}
                protected |= {r for r, rel in state["releases"].items() if rel["status"] == "live"}
                assert len(state["releases"]) <= max(arg, len(protected))
                on_disk = {p.name for p in (host.root / "releases").iterdir()}
                assert on_disk == set(state["releases"]), "state and disk disagree"
            assert os.path.realpath(host.root / "current") == str(
                host.root / "releases" / host.state["current"])
            if host.state["last_good"]:
                assert host.state["releases"][host.state["last_good"]]["status"] == "good"


def test_prune_removes_an_interpreter_tree_only_when_no_kept_release_uses_it(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.initial()
    trees = {}
    for name in ("old", "new", "foreign"):
        prefix = tmp_path / "opt" / "python" / name
        (prefix / "bin").mkdir(parents=True)
        if name != "foreign":  # installed by oxzep7's interpreter step
            (prefix / ".oxzep7-artifact.json").write_text("{}")
        trees[name] = prefix
    host.register("r1", prefix=str(trees["old"]))
    for rid, tree in (("r1", "old"), ("r2", "foreign"), ("r3", "new"), ("r4", "new")):
        if rid != "r1":
            host.register(rid, prefix=str(trees[tree]))
        host.ok("switch", "--release", rid)
        host.ok("confirm", "--release", rid)
    doc = host.ok("prune", "--keep", "2")
    assert doc["removed"] == ["initial", "r1", "r2"]
    assert doc["interpreters_removed"] == [str(trees["old"])]
    assert not trees["old"].exists()
    assert trees["new"].exists(), "used by kept releases"
    assert trees["foreign"].exists(), "not installed by oxzep7: never removed"


# -- placeholders: the agent substitutes exactly as the controller does ------------------------

_words = st.sampled_from(["python", "venv", "release", "root", "code", "version"])
_text = st.text(alphabet=st.sampled_from(list("ab $'\"{}_ -/\\")), max_size=8)
_template = st.lists(st.one_of(_text, _words.map(lambda w: "{" + w + "}"),
                               st.just("{{"), st.just("}}"), st.just("${HOME}")),
                     max_size=8).map("".join)
_values = st.fixed_dictionaries({w: st.text(max_size=12) for w in
                                 ["python", "venv", "release", "root", "code", "version"]})


@settings(max_examples=300)
@given(_template, _values)
def test_agent_placeholders_match_the_controller(template: str, values: dict[str, str]) -> None:
    def outcome(substitute: Any) -> str:
        try:
            return str(substitute(template, values))
        except (agent.AgentError, PlaceholderError):
            return "<unknown placeholder>"

    assert outcome(agent.substitute) == outcome(controller_substitute)


def test_switch_can_snapshot_what_is_live_in_the_same_call(host: Host, tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "demo"
    make_config_tree(etc)
    host.register("r1")
    doc = host.ok("switch", "--release", "r1", "--snapshot", "--path", str(etc), "--keep", "3")
    assert doc["snapshot"]["release"] == "initial" and doc["snapshot"]["files"] == 5
    assert [e["event"] for e in host.state["history"]][-2:] == ["snapshot", "switch"]


def oldest_python() -> str | None:
    """A Python 3.6 to run the agent with (the oldest system python3 it supports), if present."""
    import shutil

    for candidate in ("python3.6", os.path.expanduser("~/.pyenv/versions/3.6.15/bin/python3.6")):
        found = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
        if found and subprocess.run([found, "-c", "import sys; assert sys.version_info[:2] == (3, 6)"],
                                    capture_output=True).returncode == 0:
            return found
    return None


def test_the_agent_runs_on_python_3_6(host: Host, tmp_path: Path) -> None:
    python = oldest_python()
    if python is None:
        pytest.skip("no Python 3.6 here to run the agent with")

    def run(*argv: str) -> dict[str, Any]:
        proc = subprocess.run([python, str(AGENT_PATH), "--state-dir", str(host.state_dir), argv[0],
                               "--app", host.app, *argv[1:]], capture_output=True, text=True, timeout=60)
        assert proc.stderr == "", proc.stderr
        doc: dict[str, Any] = json.loads(proc.stdout)
        return doc

    etc = tmp_path / "etc" / "demo"
    make_config_tree(etc)
    before = tree_digest(etc)
    assert run("state", "--root", str(host.root))["state"]["current"] == "initial"
    host.register("r1")
    assert run("lock", "--deploy", "d1", "--owner", "a@c", "--ttl", "60")["ok"]
    doc = run("switch", "--release", "r1", "--deploy", "d1", "--deadman", "1", "--deadman-mode",
              "process", "--snapshot", "--path", str(etc))
    assert doc["ok"] and doc["snapshot"]["files"] == 5, doc
    (etc / "app.conf").write_text("changed\n")
    assert wait_for(lambda: host.link() == "releases/initial", 15)
    assert wait_for(lambda: host.state["deadman"] is None, 5)
    assert tree_digest(etc) == before
    assert run("rollback")["code"] == "nothing-to-roll-back"
    assert run("prune", "--keep", "2")["ok"]
    assert run("unlock", "--deploy", "d1")["released"]["deploy"] == "d1"


def test_restart_runs_the_restart_command_for_the_release_and_reports_failure(
    host: Host, tmp_path: Path
) -> None:
    out = tmp_path / "restarted"
    config = {"restart_command": f"echo {{venv}} {{version}} > {out}", "services": []}
    host.register("r1", config=config)
    host.ok("switch", "--release", "r1")
    host.ok("restart")
    assert out.read_text() == f"{host.root}/releases/r1/venv 3.11.7\n"
    host.ok("rollback", "--no-health")  # the dead-man's way: restart for the release it goes to
    assert out.read_text() == f"{host.root}/releases/initial/venv 3.11.7\n"
    state = host.state
    state["config"] = {"restart_command": "exit 4"}
    (host.state_dir / "demo" / "state.json").write_text(json.dumps(state))
    rc, doc = host.call("restart")
    assert rc == 1 and doc["code"] == "restart-failed" and "exited 4" in doc["error"]


def test_listed_services_without_systemd_or_a_restart_command_are_an_error(host: Host) -> None:
    if agent.has_systemd():
        pytest.skip("this machine runs systemd")
    host.register("r1", config={"services": ["demo.service"]})
    rc, doc = host.call("restart")
    assert rc == 1 and "no systemd" in doc["error"]


def test_http_check_urls_take_placeholders_unquoted() -> None:
    values = {"python": "/opt/p y/bin/python3.13", "version": "3.13.5"}
    assert agent.substitute("http://127.0.0.1:8000/v/{version}", values, quote=False) \
        == "http://127.0.0.1:8000/v/3.13.5"
    assert agent.substitute("{python} -V", values) == "'/opt/p y/bin/python3.13' -V"


# -- one call per step: lock, switch, restart, health (and rollback, unlock; confirm, prune) --


def test_a_switch_that_fails_health_is_put_back_in_the_same_call_and_says_so(
    host: Host, tmp_path: Path
) -> None:
    restarts = tmp_path / "restarts"
    config = {"restart_command": f"echo {{release}} >> {restarts}", "services": [],
              "health": {"checks": [{"command": "test ! -e {release}/BROKEN"}],
                         "retries": 2, "interval": 0.01}}
    host.register("r1", config=config)
    (host.root / "releases/r1/BROKEN").touch()
    rc, doc = host.call("switch", "--release", "r1", "--deploy", "d1", "--restart", "--health",
                        "--lock-ttl", "60", "--lock-owner", "me@ctl", "--lock-reason", "upgrade")
    assert rc == 1 and doc["code"] == "health-failed"
    assert doc["error"].endswith("; back on release initial"), doc["error"]
    assert doc["switched"] and doc["revert_ok"] and doc["failed_part"] == "Health checks"
    assert doc["failed_check"] == f"command test ! -e {host.root}/releases/r1/BROKEN"
    assert host.link() == "releases/initial"
    assert restarts.read_text().split() == [f"{host.root}/releases/r1", f"{host.root}/releases/initial"]
    state = host.state
    assert state["current"] == "initial" and state["releases"]["r1"]["status"] == "bad"
    lock = json.loads((host.state_dir / "demo" / "lock").read_text())
    assert (lock["deploy"], lock["owner"], lock["reason"]) == ("d1", "me@ctl", "upgrade")


def test_a_switch_with_its_lock_is_refused_whole_while_another_deploy_holds_it(host: Host) -> None:
    host.register("r1")
    host.ok("lock", "--deploy", "other", "--owner", "bob@ctl", "--ttl", "600")
    rc, doc = host.call("switch", "--release", "r1", "--deploy", "d1", "--restart", "--health",
                        "--lock-ttl", "60")
    assert rc == 2 and doc["code"] == "locked" and doc["holder"]["deploy"] == "other"
    assert host.link() == "releases/initial" and host.state["current"] == "initial"


def test_a_healthy_switch_reports_health_and_keeps_its_lock(host: Host) -> None:
    host.register("r1", config={"health": {"checks": [{"command": "true"}]}})
    doc = host.ok("switch", "--release", "r1", "--deploy", "d1", "--health", "--lock-ttl", "60")
    assert doc["changed"] and doc["to"] == "r1" and doc["health"]["ok"]
    assert doc["lock"]["deploy"] == "d1" and host.link() == "releases/r1"


def test_rollback_takes_and_releases_the_lock_in_one_call_success_or_not(host: Host) -> None:
    host.deploy("r1")
    doc = host.ok("rollback", "--deploy", "rb-1", "--lock-ttl", "60", "--unlock", "--no-health")
    assert doc["to"] == "initial" and doc["lock"]["deploy"] == "rb-1"
    assert not (host.state_dir / "demo" / "lock").exists()
    rc, doc = host.call("rollback", "--deploy", "rb-2", "--lock-ttl", "60", "--unlock", "--to", "nope")
    assert rc != 0 and not (host.state_dir / "demo" / "lock").exists(), "released after a failure"
    host.ok("lock", "--deploy", "other", "--owner", "bob@ctl", "--ttl", "600")
    rc, doc = host.call("rollback", "--deploy", "rb-3", "--lock-ttl", "60", "--unlock")
    assert rc == 2 and doc["code"] == "locked" and host.link() == "releases/initial"
    assert json.loads((host.state_dir / "demo" / "lock").read_text())["deploy"] == "other"


def test_rollback_where_the_app_was_never_deployed_changes_nothing(tmp_path: Path) -> None:
    h = Host(tmp_path)
    rc, doc = h.call("rollback", "--deploy", "rb", "--lock-ttl", "60", "--unlock")
    assert rc == 1 and doc["code"] == "no-state"
    assert not h.state_dir.exists(), "no directory, no lock left behind"


def test_confirm_prunes_and_releases_the_lock_in_the_same_call(host: Host) -> None:
    for rid in ("r1", "r2", "r3"):
        host.deploy(rid)
    host.register("r4")
    host.ok("lock", "--deploy", "dep-r4", "--owner", "me@ctl", "--ttl", "60")
    host.ok("switch", "--release", "r4", "--deploy", "dep-r4")
    doc = host.ok("confirm", "--release", "r4", "--deploy", "dep-r4", "--prune-keep", "2",
                  "--unlock")
    assert doc["pruned"]["removed"] == ["initial", "r1", "r2"] and doc["unlocked"]
    assert sorted(host.state["releases"]) == ["r3", "r4"]
    assert not (host.root / "releases" / "r1").exists()
    assert not (host.state_dir / "demo" / "lock").exists()


def test_application_env_is_kept_root_only_so_a_later_rollback_checks_health_with_it(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_TOKEN", "s3cr3t-token-value")
    check = 'test "${#APP_TOKEN}" = 18'  # the value's length: the value is not in the spec
    req = json.loads(prepare_request(host, "r1", [check]))
    req["config"]["health"] = {"checks": [{"command": check}], "retries": 1}
    host.ok("prepare", stdin=json.dumps(req))
    stored = host.state_dir / "demo" / "env.json"
    assert json.loads(stored.read_text())["releases"]["r1"] == {"APP_TOKEN": "s3cr3t-token-value"}
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert "s3cr3t" not in (host.state_dir / "demo" / "state.json").read_text()
    host.ok("switch", "--release", "r1", "--deploy", "d1", "--health")
    host.ok("confirm", "--release", "r1", "--deploy", "d1")
    monkeypatch.delenv("APP_TOKEN")  # `rollback` from another controller: no spec, no env
    doc = host.ok("rollback", "--to", "initial")
    assert doc["health"]["ok"], "health ran with the stored env"
    rc, doc = host.call("switch", "--release", "r1", "--health")
    assert rc == 1 and "release r1 is bad" in doc["error"]
    (host.state_dir / "demo" / "env.json").unlink()
    rc, doc = host.call("rollback", "--to", "r1")
    assert rc == 1 and doc["code"] == "rollback-unhealthy", "without it the check does fail"
    assert "s3cr3t" not in json.dumps(host.ok("state")), "never reported back"


def test_pruning_drops_bad_releases_before_older_good_ones(host: Host) -> None:
    host.deploy("r1")
    host.deploy("r2", healthy=False)  # bad
    host.deploy("r3")
    host.deploy("r4")
    doc = host.ok("prune", "--keep", "3")
    assert "r2" in doc["removed"] and "r1" not in doc["removed"], doc


def test_a_service_that_is_not_there_is_refused_before_anything_is_built(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent, "has_systemd", lambda: True)
    real = agent.run_logged

    def systemctl(argv: Any, env: Any, **kw: Any) -> tuple[int, str]:
        if argv[:2] == ["systemctl", "show"]:
            return 0, "not-found\n" if argv[-1] == "typo.service" else "loaded\n"
        return real(argv, env, **kw)

    monkeypatch.setattr(agent, "run_logged", systemctl)
    req = json.loads(prepare_request(host, "r1", []))
    req["config"]["services"] = ["demo.service", "typo.service"]
    rc, doc = host.call("prepare", stdin=json.dumps(req))
    assert rc == 1 and doc["code"] == "unit-not-found" and "typo.service" in doc["error"]
    assert "demo.service" not in doc["error"]
    assert "r1" not in host.state["releases"] and not (host.root / "releases" / "r1").exists()


def test_a_value_ending_in_a_newline_is_quoted_like_the_controller_does() -> None:
    assert agent.shell_quote("0\n") == "'0\n'" == controller_substitute("{python}", {"python": "0\n"})


# -- health, restart and env belong to the release (a rollback to X checks X with X's own) -----


def release_request(host: Host, rid: str, config: dict[str, Any]) -> str:
    req = json.loads(prepare_request(host, rid, []))
    req["config"] = config
    return json.dumps(req)


def deploy_prepared(host: Host, rid: str, config: dict[str, Any]) -> None:
    host.ok("prepare", stdin=release_request(host, rid, config))
    host.ok("switch", "--release", rid, "--deploy", f"d-{rid}", "--restart", "--health")
    host.ok("confirm", "--release", rid, "--deploy", f"d-{rid}")


def test_a_rollback_checks_the_release_it_goes_to_with_that_release_s_own_checks(
    host: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # each release's check names what it should run, like `contains: "3.13.5"` would
    restarts = tmp_path / "restarts"

    def config(rid: str, token: str) -> dict[str, Any]:
        return {"env_keys": ["APP_TOKEN"], "services": [],
                "restart_command": f"echo {rid} $APP_TOKEN >> {restarts}",
                "health": {"checks": [
                    {"command": f'test "$(readlink {{root}}/current)" = releases/{rid}'},
                    {"command": f'test "$APP_TOKEN" = {token}'}], "retries": 1, "interval": 0.01}}

    monkeypatch.setenv("APP_TOKEN", "token-of-r1")
    deploy_prepared(host, "r1", config("r1", "token-of-r1"))
    monkeypatch.setenv("APP_TOKEN", "token-of-r2")
    deploy_prepared(host, "r2", config("r2", "token-of-r2"))
    doc = host.ok("rollback")  # the controller passes the newest spec's env: r1's own wins
    assert doc["to"] == "r1" and doc["health"]["ok"], doc
    assert next(c["check"] for c in doc["health"]["checks"]).endswith("= releases/r1")
    assert restarts.read_text().splitlines()[-1] == "r1 token-of-r1"
    monkeypatch.delenv("APP_TOKEN")  # `rollback` from another controller: no spec, no env
    host.ok("rollback", "--to", "r2")
    assert host.state["current"] == "r2"
    assert restarts.read_text().splitlines()[-1] == "r2 token-of-r2"
    state = host.state
    assert state["releases"]["r1"]["config"]["restart_command"].startswith("echo r1")


def test_the_dead_man_restarts_the_release_it_reverts_to_with_that_release_s_command(
    host: Host, tmp_path: Path
) -> None:
    restarts = tmp_path / "restarts"

    def config(rid: str) -> dict[str, Any]:
        return {"services": [], "restart_command": f"echo {rid} >> {restarts}",
                "health": {"checks": [{"command": f'test "$(readlink {{root}}/current)" = releases/{rid}'}]}}

    deploy_prepared(host, "r1", config("r1"))
    host.ok("prepare", stdin=release_request(host, "r2", config("r2")))
    proc = host.process("switch", "--release", "r2", "--deploy", "d-r2", "--deadman", "1",
                        "--deadman-mode", "process", "--restart")
    assert proc.returncode == 0, proc.stdout
    assert wait_for(lambda: host.link() == "releases/r1", 15), "the dead-man did not fire"
    assert wait_for(lambda: restarts.read_text().splitlines() == ["r1", "r2", "r1"], 5), \
        restarts.read_text()


def test_an_adopted_release_is_not_checked_with_the_first_spec_s_checks(host: Host) -> None:
    names_the_new = {"services": [], "health": {"checks": [
        {"command": 'test "$(readlink {root}/current)" = releases/r1'}], "retries": 1}}
    deploy_prepared(host, "r1", names_the_new)
    doc = host.ok("rollback")
    assert doc["to"] == "initial" and doc["health"]["ok"], doc
    assert "no health checks of its own" in doc["health"]["unchecked"]
    assert host.state["releases"]["initial"]["status"] == "good"


# -- first adoption: the app had no `current` before oxzep7's first switch ----------------------


@pytest.fixture
def bare(tmp_path: Path) -> Host:
    """A host where the app has a root but no `current` at all (nothing to adopt)."""
    return Host(tmp_path)


def test_a_first_release_that_fails_health_leaves_no_current_as_before(bare: Host) -> None:
    config = {"services": [], "health": {"checks": [{"command": "false"}], "retries": 1}}
    bare.ok("prepare", stdin=release_request(bare, "r1", config))
    rc, doc = bare.call("switch", "--release", "r1", "--deploy", "d1", "--restart", "--health",
                        "--lock-ttl", "60")
    assert rc == 1 and doc["code"] == "health-failed"
    assert doc["switched"] and doc["revert_ok"], doc
    assert "back to no current release" in doc["error"], doc["error"]
    assert not os.path.lexists(bare.root / "current")
    state = bare.state
    assert state["current"] is None and state["releases"]["r1"]["status"] == "bad"
    bare.ok("unlock", "--deploy", "d1")


def test_rolling_back_a_confirmed_first_release_removes_current(bare: Host) -> None:
    config = {"services": [], "health": {"checks": [{"command": "true"}], "retries": 1}}
    deploy_prepared(bare, "r1", config)
    doc = bare.ok("rollback", "--only-from", "r1", "--deploy", "d1", "--lock-ttl", "60", "--unlock")
    assert doc["changed"] and doc["from"] == "r1" and doc["to"] is None
    assert not os.path.lexists(bare.root / "current")
    assert not (bare.state_dir / "demo" / "lock").exists()
    rc, doc = bare.call("rollback")
    assert rc == 1 and doc["code"] == "nothing-to-roll-back"


def test_the_dead_man_of_a_first_release_removes_current(bare: Host) -> None:
    config = {"services": [], "health": {"checks": []}}
    bare.ok("prepare", stdin=release_request(bare, "r1", config))
    proc = bare.process("switch", "--release", "r1", "--deploy", "d1", "--deadman", "1",
                        "--deadman-mode", "process")
    assert proc.returncode == 0, proc.stdout
    assert wait_for(lambda: not os.path.lexists(bare.root / "current"), 15), "dead-man did not fire"
    assert wait_for(lambda: bare.state["deadman"] is None, 5)
    assert bare.state["releases"]["r1"]["status"] == "bad"


def test_a_hand_made_current_outside_releases_is_put_back_when_the_first_release_fails(
    bare: Host, tmp_path: Path
) -> None:
    by_hand = tmp_path / "opt" / "demo-v1"  # no venv/ under it: the app's venv is elsewhere
    by_hand.mkdir(parents=True)
    os.symlink(str(by_hand), bare.root / "current")
    config = {"services": [], "health": {"checks": [{"command": "false"}], "retries": 1}}
    bare.ok("prepare", stdin=release_request(bare, "r1", config))
    rc, doc = bare.call("switch", "--release", "r1", "--deploy", "d1", "--restart", "--health")
    assert rc == 1 and doc["revert_ok"], doc
    assert os.path.realpath(bare.root / "current") == str(by_hand)
    assert bare.state["current"] == "adopted-demo-v1"


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
