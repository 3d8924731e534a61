"""One agent call per release step; a release's own checks; the first adoption."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from oxzep7_deploy.spec.placeholders import substitute as controller_substitute
from tests import agents
from tests.unit.agent.hosts import (
    Host,
    agent,
    deploy_prepared,
    prepare_request,
    release_request,
    wait_for,
)

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
    modules = agents.modules("oxzep7-host")
    monkeypatch.setattr(modules["health"], "has_systemd", lambda: True)
    real = agent.run_logged

    def systemctl(argv: Any, env: Any, **kw: Any) -> tuple[int, str]:
        if argv[:2] == ["systemctl", "show"]:
            return 0, "not-found\n" if argv[-1] == "typo.service" else "loaded\n"
        return real(argv, env, **kw)

    monkeypatch.setattr(modules["context"], "run_logged", systemctl)
    req = json.loads(prepare_request(host, "r1", []))
    req["config"]["services"] = ["demo.service", "typo.service"]
    rc, doc = host.call("prepare", stdin=json.dumps(req))
    assert rc == 1 and doc["code"] == "unit-not-found" and "typo.service" in doc["error"]
    assert "demo.service" not in doc["error"]
    assert "r1" not in host.state["releases"] and not (host.root / "releases" / "r1").exists()


def test_a_value_ending_in_a_newline_is_quoted_like_the_controller_does() -> None:
    assert agent.shell_quote("0\n") == "'0\n'" == controller_substitute("{python}", {"python": "0\n"})


# -- health, restart and env belong to the release (a rollback to X checks X with X's own) -----






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
