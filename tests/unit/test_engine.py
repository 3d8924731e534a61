"""Engine logic with a fake set of host steps: waves, gates, the failure budget, rollback.

The fake stands in for the hosts only here; the real steps are proven on the fleet (tests/e2e).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from oxzep7_deploy.engine import Engine
from oxzep7_deploy.engine_model import Outcome, Progress, Results
from oxzep7_deploy.errors import ExitCode
from oxzep7_deploy.plan import build_plan
from oxzep7_deploy.runner.request import HostResult, HostStatus
from oxzep7_deploy.spec.model import HostCount, OnFailure, Promote, Stage, Strategy
from tests.unit.plan.factories import make_spec

HOSTS = ("h1", "h2", "h3", "h4")
STAGES = (Stage("canary", HostCount(1)), Stage("half", HostCount(50, True)),
          Stage("all", HostCount(100, True)))


class FakeSteps:
    """Records every call; fails the (step, host) pairs it is told to."""

    def __init__(self, fail: dict[str, set[str]] | None = None, down: set[str] | None = None):
        self.fail = fail or {}
        self.down = down or set()
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def _run(self, step: str, hosts: Sequence[str]) -> Results:
        self.calls.append((step, tuple(hosts)))
        out = {}
        for h in hosts:
            if h in self.down:
                out[h] = HostResult(h, HostStatus.UNREACHABLE, message="ssh: connect timed out")
            elif h in self.fail.get(step, set()):
                out[h] = HostResult(h, HostStatus.FAILED, failed_task="health", message="503")
            else:
                out[h] = HostResult(h, HostStatus.CHANGED, changed=1)
        return out

    def install(self, hosts: Sequence[str]) -> Results:
        return self._run("install", hosts)

    def lock(self, hosts: Sequence[str]) -> Results:
        return self._run("lock", hosts)

    def prepare(self, hosts: Sequence[str]) -> Results:
        return self._run("prepare", hosts)

    def switch(self, hosts: Sequence[str]) -> Results:
        return self._run("switch", hosts)

    def health(self, hosts: Sequence[str]) -> Results:
        return self._run("health", hosts)

    def confirm(self, hosts: Sequence[str]) -> Results:
        return self._run("confirm", hosts)

    def rollback(self, hosts: Sequence[str]) -> Results:
        return self._run("rollback", hosts)

    def unlock(self, hosts: Sequence[str]) -> Results:
        return self._run("unlock", hosts)

    def hosts_of(self, step: str) -> list[str]:
        return [h for s, hosts in self.calls if s == step for h in hosts]


def run(steps: FakeSteps, progress: Progress | None = None, **spec_changes: object) -> Progress:
    spec = make_spec(stages=STAGES)
    rollout_changes = {k: v for k, v in spec_changes.items() if k != "strategy"}
    spec = replace(spec, rollout=replace(spec.rollout, **rollout_changes))  # type: ignore[arg-type]
    plan = build_plan(spec, HOSTS, "r1")
    saved: list[dict[str, object]] = []
    progress = progress or Progress(plan.name, plan.release)
    engine = Engine(plan, steps, progress, lambda p: saved.append(p.to_json()), sleep=lambda s: None)
    result = engine.run()
    assert saved, "progress is saved as the deploy goes"
    return result


def test_canary_switches_waves_in_order_and_every_host_ends_live() -> None:
    steps = FakeSteps()
    p = run(steps)
    assert p.outcome is Outcome.SUCCEEDED and p.outcome.exit_code is ExitCode.OK
    assert [h for s, h in steps.calls if s == "switch"] == [("h1",), ("h2",), ("h3", "h4")]
    assert steps.calls[0] == ("install", HOSTS), "prestage installs on every target first"
    assert all(r.state == "live" for r in p.hosts.values())


def test_canary_failure_rolls_back_and_touches_no_other_host() -> None:
    steps = FakeSteps(fail={"switch": {"h1"}})
    p = run(steps)
    assert p.outcome is Outcome.ROLLED_BACK and p.outcome.exit_code is ExitCode.DEPLOY_FAILED
    assert steps.hosts_of("switch") == ["h1"]
    assert p.hosts["h1"].failed_step == "switch" and p.hosts["h1"].message == "503"
    assert sorted(steps.hosts_of("unlock")) == list(HOSTS), "every lock is released"


def test_failure_in_a_later_wave_rolls_back_every_switched_host() -> None:
    steps = FakeSteps(fail={"switch": {"h2"}})
    p = run(steps)
    assert steps.hosts_of("rollback") == ["h1"]
    assert p.hosts["h1"].state == "rolled-back" and p.switched == []
    assert "h3" not in steps.hosts_of("switch")


def test_rollback_wave_keeps_earlier_waves_on_the_new_release() -> None:
    steps = FakeSteps(fail={"confirm": {"h4"}})
    p = run(steps, on_failure=OnFailure.ROLLBACK_WAVE)
    assert sorted(steps.hosts_of("rollback")) == ["h3", "h4"]
    assert p.hosts["h1"].state == "live" and p.hosts["h2"].state == "live"


def test_stop_rolls_back_nothing() -> None:
    steps = FakeSteps(fail={"switch": {"h2"}})
    p = run(steps, on_failure=OnFailure.STOP)
    assert p.outcome is Outcome.STOPPED and steps.hosts_of("rollback") == []
    assert p.hosts["h1"].state == "live"


def test_a_failure_inside_the_budget_does_not_stop_the_deploy() -> None:
    steps = FakeSteps(fail={"prepare": {"h3"}})
    p = run(steps, max_failed=HostCount(1))
    assert "h4" in steps.hosts_of("switch") and "h3" not in steps.hosts_of("switch")
    assert p.outcome is Outcome.SUCCEEDED_WITHIN_BUDGET, "nothing was rolled back: not exit 1"
    assert p.outcome.exit_code is ExitCode.OK and p.hosts["h3"].failed_step == "prepare"
    assert p.switched == ["h1", "h2", "h4"]


def test_unreachable_host_counts_against_the_budget() -> None:
    steps = FakeSteps(down={"h3"})
    p = run(steps)
    assert p.hosts["h3"].state == "unreachable"
    assert steps.hosts_of("switch") == [], "budget 0: stopped during prestage, before any switch"
    assert p.outcome is Outcome.ROLLED_BACK


def test_manual_gate_pauses_then_promote_continues() -> None:
    stages = (STAGES[0], replace(STAGES[1], promote=Promote.MANUAL), STAGES[2])
    steps = FakeSteps()
    p = run(steps, stages=stages)
    assert p.outcome is Outcome.PAUSED and p.paused_at == 1 and steps.hosts_of("switch") == ["h1"]
    assert steps.hosts_of("unlock") == [], "a paused deploy keeps every lock, h1's too"
    p.promoted.append(1)
    p = run(steps, progress=p, stages=stages)
    assert p.outcome is Outcome.SUCCEEDED
    assert steps.hosts_of("switch") == ["h1", "h2", "h3", "h4"]
    assert steps.hosts_of("install") == list(HOSTS), "resuming redoes nothing that is done"
    assert steps.calls[-1] == ("unlock", HOSTS), "the locks go when the deploy is over"


def test_blue_green_abort_before_promote_leaves_every_host_on_the_old_release() -> None:
    spec = make_spec(strategy=Strategy.BLUE_GREEN,
                     stages=(Stage("all", HostCount(100, True), promote=Promote.MANUAL),))
    plan = build_plan(spec, HOSTS, "r1")
    steps = FakeSteps()
    p = Progress(plan.name, plan.release)
    engine = Engine(plan, steps, p, lambda _p: None, sleep=lambda s: None)
    assert engine.run().outcome is Outcome.PAUSED
    assert steps.hosts_of("prepare") == list(HOSTS) and steps.hosts_of("switch") == []
    assert engine.abort().outcome is Outcome.ROLLED_BACK
    assert steps.hosts_of("rollback") == [] and sorted(steps.hosts_of("unlock")) == list(HOSTS)


def test_failed_bake_rolls_back_the_wave() -> None:
    stages = (replace(STAGES[0], bake=10), STAGES[2])
    steps = FakeSteps(fail={"health": {"h1"}})
    p = run(steps, stages=stages)
    assert p.hosts["h1"].failed_step == "bake"
    assert steps.hosts_of("rollback") == ["h1"] and p.outcome is Outcome.ROLLED_BACK


def test_a_rollback_that_fails_is_reported_as_incomplete() -> None:
    steps = FakeSteps(fail={"switch": {"h2"}, "rollback": {"h1"}})
    p = run(steps)
    assert p.outcome is Outcome.ROLLBACK_INCOMPLETE
    assert p.outcome.exit_code is ExitCode.ROLLBACK_INCOMPLETE
    assert p.hosts["h1"].state == "rollback-failed"


def test_progress_survives_a_json_round_trip() -> None:
    p = run(FakeSteps(fail={"switch": {"h2"}}))
    assert Progress.from_json(p.to_json()) == p


def test_without_prestage_every_target_is_locked_before_the_first_switch() -> None:
    steps = FakeSteps()
    p = run(steps, prestage=False)
    assert p.outcome is Outcome.SUCCEEDED
    assert steps.calls[0] == ("lock", HOSTS)
    assert steps.hosts_of("prepare") == ["h1", "h2", "h3", "h4"], "prepared batch by batch"
    assert steps.calls[-1] == ("unlock", HOSTS)


def test_without_prestage_a_lock_refused_anywhere_stops_before_any_switch() -> None:
    steps = FakeSteps(fail={"lock": {"h4"}})
    p = run(steps, prestage=False)
    assert p.outcome is Outcome.ROLLED_BACK and steps.hosts_of("switch") == []
    assert p.hosts["h4"].failed_step == "lock"


def test_a_stopped_deploy_lets_go_of_its_locks_too() -> None:
    steps = FakeSteps(fail={"switch": {"h2"}})
    p = run(steps, on_failure=OnFailure.STOP)
    assert p.outcome is Outcome.STOPPED and sorted(steps.hosts_of("unlock")) == list(HOSTS)


def test_stop_confirms_the_healthy_hosts_of_the_stopped_batch() -> None:
    steps = FakeSteps(fail={"switch": {"h4"}})
    p = run(steps, on_failure=OnFailure.STOP)
    assert p.outcome is Outcome.STOPPED
    assert steps.hosts_of("switch")[-2:] == ["h3", "h4"]
    assert "h3" in steps.hosts_of("confirm"), "else its dead-man reverts it after apply exits"
    assert p.hosts["h3"].state == "live" and p.hosts["h4"].state == "rolled-back"


def test_a_switch_that_could_not_be_put_back_makes_the_deploy_rollback_incomplete() -> None:
    class RevertFails(FakeSteps):
        def switch(self, hosts: Sequence[str]) -> Results:
            out = dict(super().switch(hosts))
            if "h1" in hosts:  # health failed, and putting the previous release back failed too
                out["h1"] = HostResult("h1", HostStatus.FAILED, message="503; ROLLBACK INCOMPLETE",
                                       result={"switched": True, "revert_ok": False})
            return out

    steps = RevertFails()
    p = run(steps)
    assert p.outcome is Outcome.ROLLBACK_INCOMPLETE
    assert p.outcome.exit_code is ExitCode.ROLLBACK_INCOMPLETE
    assert p.hosts["h1"].state == "rollback-failed"
    assert "h1" not in steps.hosts_of("unlock"), "the broken host stays locked for a person"


def test_the_last_word_says_what_the_hosts_run_after_a_failure() -> None:
    def last_words(steps: FakeSteps) -> str:
        spec = make_spec(stages=STAGES)
        plan = build_plan(spec, HOSTS, "r1")
        events: list[str] = []
        Engine(plan, steps, Progress(plan.name, plan.release), lambda _p: None,
               on_event=lambda e: events.append(e.message), sleep=lambda s: None).run()
        return events[-1]

    assert last_words(FakeSteps(fail={"prepare": {"h2"}})) == (
        "stopped before any host of this deploy was switched: nothing live changed")
    assert last_words(FakeSteps(fail={"switch": {"h2"}})) == (
        "rolled back h1 to the release they ran before")
