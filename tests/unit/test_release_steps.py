"""The release steps (steps/release.py) through the runner seam: which playbook each engine step
runs, with which variables, on which hosts, and how the hosts' answers are read.

The hosts are tests/fakes.py's (answering as the agent does); the playbooks and the agent on real
hosts are tests/e2e/test_release.py.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from oxzep7_deploy.errors import LockHeldError
from oxzep7_deploy.runner import HostResult, HostStatus, RunRequest
from oxzep7_deploy.spec.model import CommandCheck, Health
from oxzep7_deploy.steps import release
from oxzep7_deploy.steps.release import ReleaseSteps, raise_if_locked, read_status
from tests.fakes import FakeHosts
from tests.unit.plan.factories import make_spec

SPEC = make_spec()
SPEC = replace(SPEC, application=replace(SPEC.application, env={"TOKEN": "s3cret"}),
               health=Health(checks=(CommandCheck("true"),)))
STEP_NAMES = ("lock", "prepare", "switch", "health", "confirm", "rollback", "preflight", "unlock")


def bound(hosts: FakeHosts, tmp_path: Path) -> ReleaseSteps:
    def run_dir(step: str) -> Path:
        return tmp_path / step

    return ReleaseSteps(SPEC, ("inv.ini", "db1,"), hosts, run_dir, "r2", "app-py313/r2",
                        owner="ops@ctl")


def test_each_engine_step_runs_its_playbook_with_its_variables(tmp_path: Path) -> None:
    hosts = FakeHosts()
    steps = bound(hosts, tmp_path)
    for name in STEP_NAMES:
        assert set(getattr(steps, name)(["h1", "h2"])) == {"h1", "h2"}
    sent = {r.ident: r for r in hosts.requests}
    assert [r.playbook for r in hosts.requests] == [f"release_{n}.yml" for n in STEP_NAMES]
    assert hosts.data_dirs == [tmp_path / n for n in STEP_NAMES], "a private directory per step"
    assert all(r.limit == ("h1", "h2") and r.sources == ("inv.ini", "db1,") and r.forks is None
               for r in hosts.requests)
    base = {"oxzep7_app": "app"}
    assert dict(sent["release_lock"].extravars) == {
        **base, "oxzep7_deploy": "app-py313/r2", "oxzep7_owner": "ops@ctl",
        "oxzep7_reason": "deploy app-py313/r2", "oxzep7_lock_ttl": SPEC.rollout.lock_ttl}
    for step in ("prepare", "switch"):
        doc = without_env_file(sent[f"release_{step}"])
        assert doc == release.release_vars(SPEC, "r2", "app-py313/r2", "ops@ctl")
        assert doc["oxzep7_prepare"]["config"]["env_keys"] == ["TOKEN"], "names, not values"
    assert without_env_file(sent["release_health"]) == {
        **base, "oxzep7_release": "r2", "oxzep7_health_retries": 1}
    assert dict(sent["release_confirm"].extravars) == {
        **base, "oxzep7_release": "r2", "oxzep7_deploy": "app-py313/r2",
        "oxzep7_keep_releases": SPEC.application.keep_releases, "oxzep7_release_lock": False}
    assert without_env_file(sent["release_rollback"]) == {
        **base, "oxzep7_deploy": "app-py313/r2", "oxzep7_owner": "ops@ctl",
        "oxzep7_reason": "deploy app-py313/r2 rolled back",
        "oxzep7_lock_ttl": release.ROLLBACK_LOCK_TTL, "oxzep7_rollback_to": "",
        "oxzep7_rollback_only_from": "r2", "oxzep7_release_lock": True}
    preflight = without_env_file(sent["release_preflight"])
    assert (preflight["oxzep7_release"], preflight["oxzep7_deploy"]) == ("preflight", "preflight")
    assert dict(sent["release_unlock"].extravars) == {
        **base, "oxzep7_deploy": "app-py313/r2", "oxzep7_owner": "ops@ctl", "oxzep7_unlock_force": False}


def without_env_file(request: RunRequest) -> dict[str, Any]:
    """The request's extravars; it must carry application.env, in its process env only."""
    assert release.APP_ENV_VAR in request.private_env, f"{request.playbook} gets application.env"
    return dict(request.extravars)


def test_application_env_goes_to_the_run_s_process_only(tmp_path: Path) -> None:
    hosts = FakeHosts()
    bound(hosts, tmp_path).switch(["h1"])
    request = hosts.requests[0]
    sent = json.loads(base64.b64decode(request.private_env[release.APP_ENV_VAR]))
    assert sent == {"TOKEN": "s3cret"}
    assert "s3cret" not in json.dumps(dict(request.extravars), default=str)
    assert not list(tmp_path.rglob("*")), "nothing written for it"


@pytest.mark.parametrize("name", STEP_NAMES)
def test_no_hosts_no_run(tmp_path: Path, name: str) -> None:
    hosts = FakeHosts()
    assert getattr(bound(hosts, tmp_path), name)([]) == {}
    assert hosts.requests == []


def test_the_agents_error_is_the_hosts_message(tmp_path: Path) -> None:
    def fail(_request: RunRequest, host: str) -> HostResult:
        return HostResult(host, HostStatus.FAILED, 0, "Run the host agent", "non-zero return code",
                          {"ok": False, "step": "prepare", "error": "pip install failed: no wheel"})

    results = bound(FakeHosts({"release_prepare.yml": fail}), tmp_path).prepare(["h1"])
    assert results["h1"].message == "pip install failed: no wheel"
    assert results["h1"].failed_task == "Run the host agent"


def test_a_lock_held_by_another_deploy_names_the_holder(tmp_path: Path) -> None:
    holder = {"deploy": "other/r9", "owner": "bob@ctl", "reason": "deploy other/r9",
              "acquired": "2026-01-01T00:00:00+00:00", "expires": "2099-01-01T00:00:00+00:00"}

    def locked(_request: RunRequest, host: str) -> dict[str, Any]:
        return {"ok": False, "code": "locked", "error": "locked", "report": {"holder": holder}}

    results = bound(FakeHosts({"release_lock.yml": locked}), tmp_path).lock(["h1", "h2"])
    with pytest.raises(LockHeldError, match="h1 and 1 more host"):
        raise_if_locked(results, "app")


def test_read_status_tells_unreachable_from_unreadable(tmp_path: Path) -> None:
    def state(_request: RunRequest, host: str) -> dict[str, Any]:
        return {"ok": True, "step": "status", "state": "torn"} if host == "h2" else {"ok": True}

    hosts = FakeHosts({"release_status.yml": state}, unreachable={"h3"})
    states = read_status(("inv.ini",), "app", ["h1", "h2", "h3"], hosts, tmp_path)
    assert hosts.runs_of("release_status.yml")[0].extravars["oxzep7_app"] == "app"
    assert states["h3"].not_read == "unreachable"
    assert states["h1"].not_read is None
