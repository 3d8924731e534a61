"""Engine logic with a fake set of host steps: waves, gates, the failure budget, rollback.

The fake stands in for the hosts only here; the real steps are proven on the fleet (tests/e2e).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

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

    def wheels(self, hosts: Sequence[str]) -> Results:
        return self._run("wheels", hosts)

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
    assert steps.calls[0] == ("lock", ("h1",)), "the first target's lock before anything else"
    assert steps.calls[1] == ("install", HOSTS), "prestage installs on every target first"
    assert all(r.state == "live" for r in p.hosts.values())


def test_with_wheel_steps_the_wheel_set_goes_between_install_and_prepare() -> None:
    from oxzep7_deploy.plan.model import WheelStep

    spec = make_spec(stages=STAGES)
    plan = replace(build_plan(spec, HOSTS, "r1"), wheels=(WheelStep("unknown", "h1", HOSTS),))
    steps = FakeSteps(fail={"wheels": {"h3"}})
    progress = Engine(plan, steps, Progress(plan.name, plan.release), lambda p: None,
                      sleep=lambda s: None).run()
    names = [s for s, _ in steps.calls]
    assert names[names.index("install") + 1:names.index("install") + 3] == ["wheels", "prepare"]
    assert steps.hosts_of("wheels") == list(HOSTS)
    assert "h3" not in steps.hosts_of("prepare") and progress.hosts["h3"].failed_step == "wheels"
    assert not run_calls_wheels(), "a plan without wheel steps has no wheels step"


def run_calls_wheels() -> bool:
    steps = FakeSteps()
    run(steps)
    return "wheels" in [s for s, _ in steps.calls]


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
    assert p.outcome is Outcome.FAILED, "nothing was switched, so nothing was rolled back"
    assert p.outcome.exit_code is ExitCode.DEPLOY_FAILED


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
    assert engine.abort().outcome is Outcome.FAILED, "nothing was switched: no rollback to report"
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
    assert steps.calls[:2] == [("lock", ("h1",)), ("lock", HOSTS)]
    assert steps.hosts_of("prepare") == ["h1", "h2", "h3", "h4"], "prepared batch by batch"
    assert steps.calls[-1] == ("unlock", HOSTS)


def test_without_prestage_a_lock_refused_anywhere_stops_before_any_switch() -> None:
    steps = FakeSteps(fail={"lock": {"h4"}})
    p = run(steps, prestage=False)
    assert p.outcome is Outcome.FAILED and steps.hosts_of("switch") == []
    assert p.hosts["h4"].failed_step == "lock"


@pytest.mark.parametrize("prestage", [True, False])
def test_a_lock_refused_on_the_first_target_touches_no_other_host(prestage: bool) -> None:
    """Two deploys started at once: the one refused on the first target took no other host's
    lock, so the other is not refused halfway too."""
    steps = FakeSteps(fail={"lock": {"h1"}})
    p = run(steps, prestage=prestage)
    assert p.outcome is Outcome.FAILED and p.hosts["h1"].failed_step == "lock"
    assert [s for s, _ in steps.calls if s != "unlock"] == ["lock"], steps.calls


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
        "failed: nothing switched; every target runs what it ran before")
    assert last_words(FakeSteps(fail={"switch": {"h2"}})) == (
        "rolled back h1 to the release they ran before")


# -- a step that raises goes through the engine like a failure ----------------------------------


class Crashing(FakeSteps):
    """Raises in `step` when `host` is in its batch; tracks what each host runs and holds."""

    def __init__(self, step: str, host: str, exc: Exception | None = None,
                 fail: dict[str, set[str]] | None = None) -> None:
        super().__init__(fail=fail)
        self.crash = (step, host)
        self.exc = exc or RuntimeError("boom")
        self.on_new: set[str] = set()  # hosts whose `current` is this deploy's release
        self.locked: set[str] = set()

    def _run(self, step: str, hosts: Sequence[str]) -> Results:
        crashes = step == self.crash[0] and self.crash[1] in hosts
        if step in ("lock", "prepare"):  # the worst case: it took the lock, then raised
            self.locked |= set(hosts)
        if step == "switch" and crashes:  # switched, then raised
            self.on_new |= set(hosts)
        if crashes:
            self.calls.append((step, tuple(hosts)))
            raise self.exc
        out = super()._run(step, hosts)
        ok = {h for h, r in out.items() if r.ok}
        if step == "switch":
            self.on_new |= ok
        elif step == "rollback":
            self.on_new -= ok
        elif step == "unlock":
            self.locked -= ok
        return out


BAKED = tuple(replace(s, bake=10) for s in STAGES)
CRASHES = [(step, host, prestage) for prestage in (True, False)
           for step in ("install", "prepare", "switch", "confirm", "health") for host in HOSTS[:3]]
CRASHES += [("lock", "h2", False)]


@pytest.mark.parametrize(("step", "host", "prestage"), CRASHES)
def test_a_step_that_raises_rolls_back_what_was_switched_and_releases_every_lock(
        step: str, host: str, prestage: bool) -> None:
    steps = Crashing(step, host)
    p = run(steps, prestage=prestage, stages=BAKED)  # no exception gets out of the engine
    switched_before = any(s == "switch" for s, _ in steps.calls)
    assert steps.on_new == set(), "every host runs what it ran before"
    assert steps.locked == set(), "no lock is left behind"
    assert p.outcome is (Outcome.ROLLED_BACK if switched_before else Outcome.FAILED)
    assert p.outcome.exit_code is ExitCode.DEPLOY_FAILED
    named = "bake" if step == "health" else step
    assert p.error is not None and p.error.startswith(f"{named}: ") and "boom" in p.error
    assert p.hosts[host].failed_step == named


def test_an_artifact_error_in_wave_2_without_prestage_rolls_back_the_canary() -> None:
    from oxzep7_deploy.artifacts import ArtifactError

    steps = Crashing("install", "h2", ArtifactError("/srv/py.tar.xz is not a readable tar archive"))
    events: list[str] = []
    spec = replace(make_spec(stages=STAGES), rollout=replace(make_spec(stages=STAGES).rollout,
                                                             prestage=False))
    plan = build_plan(spec, HOSTS, "r1")
    p = Engine(plan, steps, Progress(plan.name, plan.release), lambda _p: None,
               on_event=lambda e: events.append(e.message), sleep=lambda s: None).run()
    assert p.outcome is Outcome.ROLLED_BACK and steps.hosts_of("rollback") == ["h1"]
    assert steps.on_new == set() and steps.locked == set()
    assert p.hosts["h2"].message and "not a readable tar archive" in p.hosts["h2"].message
    assert any("install on h2 stopped with an error" in e for e in events)
    assert events[-1] == "rolled back h1 to the release they ran before"


def test_a_rollback_that_raises_is_incomplete_and_keeps_that_lock() -> None:
    steps = Crashing("rollback", "h1", fail={"switch": {"h2"}})
    p = run(steps)
    assert p.outcome is Outcome.ROLLBACK_INCOMPLETE
    assert p.outcome.exit_code is ExitCode.ROLLBACK_INCOMPLETE
    assert p.hosts["h1"].state == "rollback-failed" and "boom" in (p.hosts["h1"].message or "")
    assert steps.locked == {"h1"}, "only the host that is not back stays locked"


def test_stop_puts_back_the_hosts_of_a_switch_that_raised() -> None:
    steps = Crashing("switch", "h3")
    p = run(steps, on_failure=OnFailure.STOP)
    assert p.outcome is Outcome.STOPPED and p.outcome.exit_code is ExitCode.DEPLOY_FAILED
    assert steps.on_new == {"h1", "h2"}, "stop keeps what passed; the unknown batch goes back"
    assert p.hosts["h3"].state == "rolled-back" and p.hosts["h4"].state == "rolled-back"
    assert steps.locked == set()


def test_an_unlock_that_raises_is_said_and_the_outcome_stands() -> None:
    steps = Crashing("unlock", "h1")
    events: list[str] = []
    plan = build_plan(make_spec(stages=STAGES), HOSTS, "r1")
    p = Engine(plan, steps, Progress(plan.name, plan.release), lambda _p: None,
               on_event=lambda e: events.append(e.message), sleep=lambda s: None).run()
    assert p.outcome is Outcome.SUCCEEDED, "every host runs the release"
    assert any("the lock could not be released on h1, h2, h3, h4" in e and "unlock" in e
               for e in events)


def test_a_bug_in_a_step_is_logged_and_contained() -> None:
    steps = Crashing("prepare", "h1", KeyError("platform"))
    logged: list[str] = []
    plan = build_plan(make_spec(stages=STAGES), HOSTS, "r1")
    p = Engine(plan, steps, Progress(plan.name, plan.release), lambda _p: None,
               sleep=lambda s: None,
               log_error=lambda step, exc: logged.append(step) or "/records/error-prepare.txt").run()
    assert p.outcome is Outcome.FAILED and logged == ["prepare"]
    assert p.error == ("prepare: internal error: KeyError: 'platform' (traceback in "
                       "/records/error-prepare.txt; please report it)")
    assert steps.locked == set()


def test_a_switch_that_reports_nothing_for_a_host_is_not_called_unreachable_or_rolled_back() -> None:
    class Silent(FakeSteps):
        def switch(self, hosts: Sequence[str]) -> Results:
            return {h: r for h, r in super().switch(hosts).items() if h != "h1"}

    steps = Silent()
    p = run(steps)
    assert p.hosts["h1"].state == "rolled-back" and steps.hosts_of("rollback") == ["h1"], \
        "nobody knows what h1 runs: it is put back, not reported as unreachable"
    assert p.hosts["h1"].message == "no result from switch for this host"
    assert p.outcome is Outcome.ROLLED_BACK


def test_a_host_unreachable_during_its_switch_is_left_to_its_dead_man_and_said_so() -> None:
    """The controller cannot roll back a host it cannot reach: it says so, and what protects it."""
    events: list[str] = []
    spec = make_spec(stages=STAGES)
    plan = build_plan(spec, HOSTS, "r1")
    steps = FakeSteps(down=set())
    progress = Progress(plan.name, plan.release)

    def switch(hosts: Sequence[str]) -> Results:
        steps.down = {"h1"}  # the network goes while the canary switches
        return steps._run("switch", hosts)

    steps.switch = switch  # type: ignore[method-assign]
    p = Engine(plan, steps, progress, lambda _p: None, lambda e: events.append(e.message),
               sleep=lambda _s: None).run()
    assert p.outcome is Outcome.ROLLED_BACK and p.outcome.exit_code is ExitCode.DEPLOY_FAILED
    h1 = p.hosts["h1"]
    assert (h1.state, h1.failed_step) == ("unreachable", "switch")
    assert "dead-man puts back" in (h1.message or "") and "not rolled back" in (h1.message or "")
    assert "rollback" not in [s for s, _ in steps.calls], "nothing to roll back from here"
    assert "every other target runs what it ran before; h1 unreachable during the switch" \
        in events[-1], events[-1]


def test_the_timeline_records_each_step_with_its_times_waves_and_failures() -> None:
    """`report` draws the deploy from this: which hosts ran which step when, in which wave."""
    steps = FakeSteps(fail={"switch": {"h2"}})
    p = run(steps)
    runs = [e for e in p.timeline if "step" in e]
    assert [(e["step"], e["wave"]) for e in runs if e["step"] == "switch"] == [
        ("switch", "canary"), ("switch", "half")]
    failed = next(e for e in runs if e["step"] == "switch" and e["wave"] == "half")
    assert failed["hosts"] == ["h2"] and failed["failed"] == {"h2": "503"}
    assert next(e for e in runs if e["step"] == "rollback")["hosts"] == ["h1"]
    assert all(e["start"] <= e["end"] for e in runs) and runs[0]["start"].endswith("+00:00")
    assert [e["wave"] for e in p.timeline if e.get("event") == "wave"] == ["canary", "half"]
    assert Progress.from_json(p.to_json()).timeline == p.timeline, "saved with the progress"


def test_the_timeline_marks_the_manual_gate_its_pause_and_its_promote() -> None:
    stages = (STAGES[0], replace(STAGES[1], promote=Promote.MANUAL), STAGES[2])
    steps = FakeSteps()
    p = run(steps, stages=stages)
    p.promoted.append(1)
    p = run(steps, progress=p, stages=stages)
    gates = [(e["event"], e["wave"]) for e in p.timeline if "event" in e]
    assert gates == [("wave", "canary"), ("paused", "half"), ("promoted", "half"),
                     ("wave", "half"), ("wave", "all")]


def test_the_timeline_marks_an_abort_at_the_gate_it_was_paused_at() -> None:
    spec = make_spec(stages=(STAGES[0], replace(STAGES[1], promote=Promote.MANUAL), STAGES[2]))
    plan = build_plan(spec, HOSTS, "r1")
    steps = FakeSteps()
    engine = Engine(plan, steps, Progress(plan.name, plan.release), lambda _p: None,
                    sleep=lambda s: None)
    assert engine.run().outcome is Outcome.PAUSED
    p = engine.abort()
    gates = [(e["event"], e["wave"]) for e in p.timeline if "event" in e]
    assert gates == [("wave", "canary"), ("paused", "half"), ("aborted", "half")]
    assert [e["hosts"] for e in p.timeline if e.get("step") == "rollback"] == [["h1"]]


class PreviewSteps(FakeSteps):
    """FakeSteps with the `preview` step (the spec has a preview section)."""

    def preview(self, hosts: Sequence[str]) -> Results:
        return self._run("preview", hosts)


def test_each_batch_is_previewed_just_before_its_switch() -> None:
    steps = PreviewSteps()
    p = run(steps)
    assert p.outcome is Outcome.SUCCEEDED
    order = [(s, h) for s, h in steps.calls if s in ("preview", "switch")]
    assert order == [("preview", ("h1",)), ("switch", ("h1",)), ("preview", ("h2",)),
                     ("switch", ("h2",)), ("preview", ("h3", "h4")), ("switch", ("h3", "h4"))]


def test_a_host_whose_preview_fails_is_never_switched() -> None:
    steps = PreviewSteps(fail={"preview": {"h1"}})
    p = run(steps)
    assert p.outcome is Outcome.FAILED and p.outcome.exit_code is ExitCode.DEPLOY_FAILED
    assert steps.hosts_of("switch") == [] and steps.hosts_of("rollback") == []
    assert p.hosts["h1"].failed_step == "preview"


def test_within_the_budget_only_the_host_whose_preview_failed_stays_behind() -> None:
    steps = PreviewSteps(fail={"preview": {"h3"}})
    p = run(steps, max_failed=HostCount(1))
    assert p.outcome is Outcome.SUCCEEDED_WITHIN_BUDGET
    assert "h3" not in steps.hosts_of("switch") and len(steps.hosts_of("switch")) == 3


def rehearse(steps: FakeSteps) -> Progress:
    plan = build_plan(make_spec(stages=STAGES), HOSTS, "r1")
    engine = Engine(plan, steps, Progress(plan.name, plan.release), lambda p: None,
                    sleep=lambda s: None)
    return engine.rehearse()


def test_rehearse_prepares_and_previews_every_target_and_switches_nothing() -> None:
    steps = PreviewSteps()
    p = rehearse(steps)
    assert p.outcome is Outcome.SUCCEEDED and p.outcome.exit_code is ExitCode.OK
    assert [s for s, _ in steps.calls] == ["lock", "install", "prepare", "preview", "unlock"]
    assert steps.hosts_of("preview") == list(HOSTS)
    assert all(r.state == "previewed" for r in p.hosts.values())


def test_a_rehearsal_that_fails_on_one_host_exits_1_and_still_switches_nothing() -> None:
    steps = PreviewSteps(fail={"prepare": {"h2"}})
    p = rehearse(steps)
    assert p.outcome is Outcome.FAILED and p.outcome.exit_code is ExitCode.DEPLOY_FAILED
    assert p.hosts["h2"].failed_step == "prepare"
    assert steps.hosts_of("switch") == [] and steps.hosts_of("unlock") == list(HOSTS)


class RefusingSwitch(FakeSteps):
    """The canary's agent refuses its switch before `current` moves (as it does for a release
    that is broken there, or a lock someone else holds)."""

    def switch(self, hosts: Sequence[str]) -> Results:
        self.calls.append(("switch", tuple(hosts)))
        return {h: HostResult(h, HostStatus.FAILED, failed_task="Switch", message="release r1 has "
                              "no /srv/app/releases/r1/venv/bin/python",
                              result={"ok": False, "code": "release-broken"}) for h in hosts}


@pytest.mark.parametrize("policy", [OnFailure.ROLLBACK_ALL, OnFailure.ROLLBACK_WAVE, OnFailure.STOP])
def test_a_deploy_whose_only_switch_was_refused_switched_nothing_and_failed(
        policy: OnFailure) -> None:
    steps = RefusingSwitch()
    p = run(steps, on_failure=policy)
    assert steps.hosts_of("switch") == ["h1"] and steps.hosts_of("rollback") == []
    assert p.outcome is Outcome.FAILED, "nothing was switched: never rolled-back"
    assert p.outcome.exit_code is ExitCode.DEPLOY_FAILED
    assert p.hosts["h1"].state == "failed" and p.hosts["h1"].failed_step == "switch"


def test_a_switch_that_moved_current_and_was_put_back_is_rolled_back() -> None:
    class Reverted(FakeSteps):
        def switch(self, hosts: Sequence[str]) -> Results:
            self.calls.append(("switch", tuple(hosts)))
            return {h: HostResult(h, HostStatus.FAILED, failed_task="Switch", message="503; back "
                                  "on release r0", result={"ok": False, "code": "health-failed",
                                                           "switched": True, "revert_ok": True})
                    for h in hosts}

    p = run(Reverted())
    assert p.outcome is Outcome.ROLLED_BACK and p.hosts["h1"].state == "rolled-back"


def test_each_switched_host_s_restart_gap_reaches_the_report() -> None:
    from oxzep7_deploy.deploy import build_report

    class Gapped(FakeSteps):
        def switch(self, hosts: Sequence[str]) -> Results:
            self.calls.append(("switch", tuple(hosts)))
            return {h: HostResult(h, HostStatus.CHANGED, changed=1,
                                  result={"ok": True, "restart_gap_s": 0.25 * int(h[1:]),
                                          "restart_window": [100.0, 101.5]}) for h in hosts}

    p = run(Gapped())
    assert p.outcome is Outcome.SUCCEEDED
    plan = build_plan(make_spec(stages=STAGES), HOSTS, "r1")
    report = build_report(plan, Progress.from_json(p.to_json()))  # as saved and read back
    assert {h: e["restart_gap_s"] for h, e in report["hosts"].items()} == {
        "h1": 0.25, "h2": 0.5, "h3": 0.75, "h4": 1.0}
    assert report["hosts"]["h1"]["restart_window"] == [100.0, 101.5]
