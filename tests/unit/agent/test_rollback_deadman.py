"""The agent's rollback, snapshots and dead-man, run against a temp host."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.unit.agent.hosts import (
    Host,
    make_config_tree,
    tree_digest,
    wait_for,
)

# -- rollback and snapshots --------------------------------------------------------------------




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
