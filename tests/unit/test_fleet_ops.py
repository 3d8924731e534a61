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
from oxzep7_deploy.spec.model import HostCount
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


def test_no_status_run_first_and_untouched_hosts_are_not_failures(tmp_path: Path) -> None:
    runner = Answers({
        "h1": None,
        "h2": {"code": "no-state", "error": "oxzep7 has no state for sample on this host"},
        "h3": {"code": "nothing-to-roll-back", "error": "sample has no good release to roll "
               "back to besides the current one (r0); the others here: r1 (bad)"},
    })
    outcome = rollback_app(target(tmp_path, runner), None)
    assert [r.playbook for r in runner.requests] == ["release_rollback.yml"] * 3  # one per batch
    assert outcome.complete and list(outcome.results) == ["h1"]
    assert outcome.skipped == {"h2": "oxzep7 never deployed the app here"}
    assert "r1 (bad)" in outcome.nothing_to_do["h3"]


def test_a_failed_or_unreachable_host_makes_the_rollback_incomplete(tmp_path: Path) -> None:
    runner = Answers({"h1": {"code": "rollback-unhealthy", "error": "unhealthy: 503"},
                      "h2": {"unreachable": True}})
    outcome = rollback_app(target(tmp_path, runner), "r0", all_at_once=True)
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
    assert [r.playbook for r in runner.requests] == ["release_unlock.yml", "release_rollback.yml",
                                                     "release_rollback.yml"]
    assert runner.requests[0].limit == ("h1", "h2"), "every lock is broken before the first batch"
    assert runner.requests[0].extravars["oxzep7_unlock_force"] is True
    assert outcome.complete


# -- batches: the app keeps serving while it goes back ---------------------------------------


def fleet(n: int, **answers: dict[str, object] | None) -> Answers:
    return Answers({f"h{i}": answers.get(f"h{i}") for i in range(1, n + 1)})


def test_rollback_goes_in_batches_of_at_most_half_the_hosts(tmp_path: Path) -> None:
    runner = fleet(5)
    outcome = rollback_app(target(tmp_path, runner), None)
    assert [r.limit for r in runner.runs_of("release_rollback.yml")] == [
        ("h1", "h2"), ("h3", "h4"), ("h5",)]
    assert outcome.complete and list(outcome.results) == ["h1", "h2", "h3", "h4", "h5"]
    assert outcome.batches == (("h1", "h2"), ("h3", "h4"), ("h5",))


def test_two_hosts_go_back_one_at_a_time_and_one_host_alone(tmp_path: Path) -> None:
    runner = fleet(2)
    rollback_app(target(tmp_path, runner), None)
    assert [r.limit for r in runner.runs_of("release_rollback.yml")] == [("h1",), ("h2",)]
    single = fleet(1)
    rollback_app(target(tmp_path / "one", single), None)
    assert [r.limit for r in single.runs_of("release_rollback.yml")] == [("h1",)]


def test_a_batch_that_does_not_come_back_healthy_stops_the_rest(tmp_path: Path) -> None:
    runner = fleet(6, h2={"code": "rollback-unhealthy",
                          "error": "switched back to r0 but it is unhealthy: status 503"})
    outcome = rollback_app(target(tmp_path, runner), None)
    assert [r.limit for r in runner.runs_of("release_rollback.yml")] == [("h1", "h2", "h3")]
    assert not outcome.complete
    assert set(outcome.stopped) == {"h4", "h5", "h6"}
    assert outcome.stopped["h4"] == ("not tried: batch 1 of 2 (h1, h2, h3) did not come back "
                                     "healthy on h2")


def test_a_host_with_nothing_to_roll_back_does_not_stop_the_batches(tmp_path: Path) -> None:
    runner = fleet(4, h1={"code": "nothing-to-roll-back", "error": "no good release"},
                   h2={"code": "no-state", "error": "no state"})
    outcome = rollback_app(target(tmp_path, runner), None)
    assert len(runner.runs_of("release_rollback.yml")) == 2
    assert outcome.complete and list(outcome.results) == ["h3", "h4"]


@pytest.mark.parametrize(("size", "at_once", "limits"), [
    (HostCount(3), False, [("h1", "h2", "h3"), ("h4", "h5")]),
    (HostCount(20, percent=True), False, [("h1",), ("h2",), ("h3",), ("h4",), ("h5",)]),
    (HostCount(50, percent=True), False, [("h1", "h2", "h3"), ("h4", "h5")]),  # 2.5 -> 3
    (None, True, [("h1", "h2", "h3", "h4", "h5")]),
])
def test_batch_size_and_all_at_once(tmp_path: Path, size: HostCount | None, at_once: bool,
                                    limits: list[tuple[str, ...]]) -> None:
    runner = fleet(5)
    rollback_app(target(tmp_path, runner), None, batch_size=size, all_at_once=at_once)
    assert [r.limit for r in runner.runs_of("release_rollback.yml")] == limits


def inventory(tmp_path: Path, n: int) -> str:
    path = tmp_path / "inv.ini"
    path.write_text("[app]\n" + "".join(f"h{i}\n" for i in range(1, n + 1)))
    return str(path)


def test_cli_rollback_batches_and_reports_the_hosts_it_did_not_try(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from click.testing import CliRunner

    from oxzep7_deploy.cli.main import cli

    monkeypatch.chdir(tmp_path)  # the records go to ./.oxzep7
    runner = fleet(4, h1={"code": "rollback-unhealthy", "error": "unhealthy: 503"}).install(
        monkeypatch)
    inv = inventory(tmp_path, 4)
    result = CliRunner().invoke(cli, ["rollback", "-i", inv, "--app", "sample", "--yes", "--json"])
    assert result.exit_code == ExitCode.ROLLBACK_INCOMPLETE, result.output
    doc = json.loads(result.stdout)
    assert doc["batches"] == [["h1", "h2"], ["h3", "h4"]]
    assert sorted(doc["not_tried"]) == ["h3", "h4"] and not doc["complete"]
    text = CliRunner().invoke(cli, ["rollback", "-i", inv, "--app", "sample", "--yes"])
    assert "h3" in text.output and "not tried" in text.output
    assert "the rollback stopped after a batch that did not come back healthy" in text.output
    runner.requests.clear()
    ok = CliRunner().invoke(cli, ["rollback", "-i", inv, "--app", "sample", "--yes",
                                  "--batch-size", "75%", "--limit", "h2,h3,h4"])
    assert [r.limit for r in runner.runs_of("release_rollback.yml")] == [("h2", "h3", "h4")]
    assert ok.exit_code == 0, ok.output


@pytest.mark.parametrize(("args", "message"), [
    (["--batch-size", "0"], "'0' is not a number of hosts (1 or more) or a percentage"),
    (["--batch-size", "half"], "'half' is not a number of hosts"),
    (["--batch-size", "2", "--all-at-once"], "--batch-size and --all-at-once contradict"),
])
def test_cli_rollback_batch_options_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                args: list[str], message: str) -> None:
    from click.testing import CliRunner

    from oxzep7_deploy.cli.main import cli

    monkeypatch.chdir(tmp_path)
    fleet(2).install(monkeypatch)
    result = CliRunner().invoke(cli, ["rollback", "-i", inventory(tmp_path, 2), "--app", "sample",
                                      "--yes", *args])
    assert result.exit_code == ExitCode.USAGE
    assert message in result.output


def test_a_partly_locked_rollback_says_which_hosts_are_locked_not_to_choose_a_release(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from click.testing import CliRunner

    from oxzep7_deploy.cli.main import cli

    monkeypatch.chdir(tmp_path)
    fleet(2, h2=LOCKED).install(monkeypatch)
    inv = inventory(tmp_path, 2)
    args = ["rollback", "-i", inv, "--app", "sample", "--yes", "--all-at-once"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "another deploy holds their lock" in result.output and "--force" in result.output
    assert "choose one with --to" not in result.output, "a locked host has releases to go to"
    doc = json.loads(CliRunner().invoke(cli, [*args, "--json"]).stdout)
    assert list(doc["locked"]) == ["h2"] and doc["nothing_to_roll_back"] == {}
    assert "locked by deploy sample-py313/r1" in doc["locked"]["h2"]
