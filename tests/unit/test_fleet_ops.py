"""`rollback` outside a deploy: how each host's answer becomes the command's outcome.

The runner is tests/fakes.py's, its hosts answering as the host agent does; the real rollback runs on the
fleet in tests/e2e (test_rollout, test_release).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oxzep7_deploy.errors import ExitCode, LockHeldError
from oxzep7_deploy.fleet_ops import Target, rollback_app
from oxzep7_deploy.runner.request import HostResult, HostStatus, RunRequest
from tests.fakes import FakeHosts


class Answers(FakeHosts):
    """Hosts whose agent answers the rollback with the given reports (None: rolled back fine)."""

    def __init__(self, answers: dict[str, dict[str, object] | None]) -> None:
        down = [h for h, a in answers.items() if a == {"unreachable": True}]
        super().__init__({"release_rollback.yml": self.rollback},
                         unreachable=dict.fromkeys(down, "ssh: timed out"))
        self.reports = answers

    def rollback(self, _request: RunRequest, host: str) -> HostResult:
        answer = self.reports[host]
        if answer is None:
            return HostResult(host, HostStatus.CHANGED, changed=1,
                              result={"ok": True, "to": "r0", "step": "rollback"})
        return HostResult(host, HostStatus.FAILED, message=str(answer["error"]),
                          result={"ok": False, "step": "rollback", **answer})


def target(tmp_path: Path, runner: Answers) -> Target:
    return Target(("inv.ini",), "sample", tuple(runner.reports), tmp_path, runner)


def test_one_batch_no_status_run_first_and_untouched_hosts_are_not_failures(tmp_path: Path
                                                                            ) -> None:
    runner = Answers({
        "h1": None,
        "h2": {"code": "no-state", "error": "oxzep7 has no state for sample on this host"},
        "h3": {"code": "nothing-to-roll-back", "error": "sample has no good release to roll "
               "back to besides the current one (r0); the others here: r1 (bad)"},
    })
    outcome = rollback_app(target(tmp_path, runner), None)
    assert [r.playbook for r in runner.requests] == ["release_rollback.yml"]
    assert outcome.complete and list(outcome.results) == ["h1"]
    assert outcome.skipped == {"h2": "oxzep7 never deployed the app here"}
    assert "r1 (bad)" in outcome.nothing_to_do["h3"]


def test_a_failed_or_unreachable_host_makes_the_rollback_incomplete(tmp_path: Path) -> None:
    runner = Answers({"h1": {"code": "rollback-unhealthy", "error": "unhealthy: 503"},
                      "h2": {"unreachable": True}})
    outcome = rollback_app(target(tmp_path, runner), "r0")
    assert not outcome.complete and set(outcome.results) == {"h1", "h2"}
    assert runner.requests[0].extravars["oxzep7_rollback_to"] == "r0"


def test_history_tells_each_deploy_and_its_outcome_per_host(tmp_path: Path) -> None:
    from oxzep7_deploy.fleet_ops import history_of
    from oxzep7_deploy.state import parse_host_state
    from tests.unit.agent.hosts import Host

    states = {}
    for name in ("h1", "h2"):
        host = Host(tmp_path / name)
        host.initial()
        host.register("r1")
        host.ok("switch", "--release", "r1", "--deploy", "dep-r1")
        if name == "h1":
            host.ok("confirm", "--release", "r1", "--deploy", "dep-r1")
        else:  # what a failed health check does: put back within the deploy
            host.ok("rollback", "--only-from", "r1", "--deploy", "dep-r1", "--no-health")
        states[name] = parse_host_state(name, host.ok("state"))
    doc = history_of(states)
    (deploy,) = [d for d in doc["deploys"] if d["deploy"] == "dep-r1"]
    assert deploy["release"] == "r1"
    assert deploy["hosts"] == {"h1": "live", "h2": "rolled back"}
    assert deploy["outcome"] == "mixed"
    switch = next(e for e in doc["events"] if e["event"] == "switch")
    assert sorted(switch["hosts"]) == ["h1", "h2"] and switch["last"] >= switch["at"]


def test_a_release_that_is_not_there_leaves_the_host_as_it_is(tmp_path: Path) -> None:
    runner = Answers({"h1": {"code": "unknown-release",
                             "error": "no release r9 of sample on this host (known: r0, r1)"}})
    outcome = rollback_app(target(tmp_path, runner), "r9")
    assert outcome.complete and outcome.results == {}, "nothing was touched: not incomplete"
    assert "known: r0, r1" in outcome.nothing_to_do["h1"]


HOLDER = {"deploy": "sample-py313/r1", "owner": "alice@ctl:/srv/ops", "reason": "deploy",
          "created": "2025-01-01T12:00:00Z", "expires": "2099-01-01T12:00:00Z", "ttl": 7200,
          "expired": False}
LOCKED = {"code": "locked", "error": "sample is locked by deploy sample-py313/r1",
          "report": {"holder": HOLDER}}


def test_a_rollback_refused_by_a_running_deploy_s_lock_exits_2_naming_it(tmp_path: Path) -> None:
    runner = Answers({"h1": LOCKED, "h2": LOCKED})
    with pytest.raises(LockHeldError) as caught:
        rollback_app(target(tmp_path, runner), None)
    assert caught.value.exit_code is ExitCode.USAGE
    assert "locked by deploy sample-py313/r1 (owner alice@ctl:/srv/ops" in caught.value.message
    assert "nothing was rolled back" in caught.value.message
    assert "--force" in (caught.value.hint or "")


def test_rollback_force_breaks_the_lock_first(tmp_path: Path) -> None:
    runner = Answers({"h1": None, "h2": None})
    outcome = rollback_app(target(tmp_path, runner), None, force=True)
    assert [r.playbook for r in runner.requests] == ["release_unlock.yml", "release_rollback.yml"]
    assert runner.requests[0].extravars["oxzep7_unlock_force"] is True
    assert outcome.complete
