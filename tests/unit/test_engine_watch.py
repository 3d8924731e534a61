"""The engine and the watch: run at the end of each bake on the hosts that wave switched; a
failed verdict fails the host (on_failure applies), an inconclusive one pauses, fails or is noted
as `watch.inconclusive` says. The hosts are the engine's fake steps (tests/unit/test_engine.py);
through the CLI: tests/unit/cli/test_watch.py; on a real fleet: tests/e2e/test_watch.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from types import MappingProxyType

from oxzep7_deploy.engine import Engine
from oxzep7_deploy.engine_model import Outcome, Progress, Results
from oxzep7_deploy.plan import build_plan
from oxzep7_deploy.runner.request import HostResult, HostStatus
from oxzep7_deploy.spec.model import HostCount, Inconclusive, Stage, Watch
from tests.unit.plan.factories import make_spec
from tests.unit.test_engine import HOSTS, FakeSteps, run

STAGES = (Stage("canary", HostCount(1), bake=4), Stage("half", HostCount(50, True), bake=4),
          Stage("all", HostCount(100, True)))


class WatchSteps(FakeSteps):
    """FakeSteps with a watch step answering `verdicts[host]` (default ok)."""

    def __init__(self, verdicts: dict[str, str] | None = None, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.verdicts = verdicts or {}

    def watch(self, hosts: Sequence[str]) -> Results:
        self.calls.append(("watch", tuple(hosts)))
        return {h: HostResult(h, HostStatus.OK, result=MappingProxyType({"watch": {
            "verdict": self.verdicts.get(h, "ok"), "reason": f"{h} said so",
            "before": {"matches": 3, "samples": ["Traceback (most recent call last):"]},
            "after": {"matches": 4}}})) for h in hosts}


def engine(steps: FakeSteps, inconclusive: Inconclusive = Inconclusive.PAUSE,
           progress: Progress | None = None, max_failed: int = 0) -> Engine:
    spec = make_spec(stages=STAGES, max_failed=HostCount(max_failed))
    spec = replace(spec, watch=Watch(inconclusive=inconclusive))
    plan = build_plan(spec, HOSTS, "r1")
    progress = progress or Progress(plan.name, plan.release)
    return Engine(plan, steps, progress, lambda p: None, sleep=lambda s: None)


def test_each_bake_ends_with_the_watch_of_the_hosts_that_wave_switched() -> None:
    steps = WatchSteps()
    p = engine(steps).run()
    assert p.outcome is Outcome.SUCCEEDED
    assert [h for s, h in steps.calls if s == "watch"] == [("h1",), ("h2",)], \
        "the last wave has no bake: no watch"
    after_bake = [s for s, _ in steps.calls if s in ("health", "watch")]
    assert after_bake == ["health", "health", "watch", "health", "health", "watch"]
    assert p.hosts["h1"].watch == [{"wave": "canary", "verdict": "ok", "reason": "h1 said so",
                                    "seconds": None, "matches_before": 3, "matches_after": 4,
                                    "restarts_before": 0, "restarts_after": 0,
                                    "crashes_before": 0, "crashes_after": 0,
                                    "core_dumps_before": 0, "core_dumps_after": 0,
                                    "samples_before": ["Traceback (most recent call last):"]}]
    assert p.hosts["h3"].watch is not None and p.hosts["h3"].watch[0]["verdict"] == "unwatched"


def test_a_failed_watch_fails_the_host_and_rolls_back_what_was_switched() -> None:
    steps = WatchSteps({"h2": "failed"})
    p = engine(steps).run()
    assert p.outcome is Outcome.ROLLED_BACK
    assert p.hosts["h2"].failed_step == "watch" and "h2 said so" in (p.hosts["h2"].message or "")
    assert "Traceback" in (p.hosts["h2"].message or ""), "a sample line is in the message"
    assert sorted(steps.hosts_of("rollback")) == ["h1", "h2"]
    assert "h3" not in steps.hosts_of("switch")


def test_a_failed_watch_within_the_budget_goes_on() -> None:
    steps = WatchSteps({"h1": "failed"})
    p = engine(steps, max_failed=1).run()
    assert p.outcome is Outcome.SUCCEEDED_WITHIN_BUDGET and p.hosts["h1"].failed_step == "watch"
    assert steps.hosts_of("rollback") == ["h1"] and p.hosts["h1"].state == "rolled-back", \
        "the host the watch failed runs what it ran before"


def test_inconclusive_pauses_after_the_wave_and_promote_goes_on_without_redoing_it() -> None:
    steps = WatchSteps({"h1": "inconclusive"})
    p = engine(steps).run()
    assert p.outcome is Outcome.PAUSED and (p.paused_at, p.paused_for) == (0, "watch")
    assert steps.hosts_of("switch") == ["h1"] and steps.hosts_of("unlock") == []
    p = Progress.from_json(p.to_json())  # as promote finds it on disk
    steps.verdicts.clear()
    p = engine(steps, progress=p).run()  # resumed without a promote (apply again)
    assert p.outcome is Outcome.PAUSED and p.paused_for == "watch", "only promote passes it"
    assert steps.hosts_of("switch") == ["h1"]
    p.promoted.append(0)  # what `promote` does
    p = engine(steps, progress=p).run()
    assert p.outcome is Outcome.SUCCEEDED and p.paused_for is None
    assert steps.hosts_of("switch") == ["h1", "h2", "h3", "h4"], "the canary is not switched again"
    assert [e["event"] for e in p.timeline if "event" in e].count("promoted") == 1


def test_abort_at_an_inconclusive_watch_rolls_back_the_wave() -> None:
    steps = WatchSteps({"h1": "inconclusive"})
    e = engine(steps)
    assert e.run().outcome is Outcome.PAUSED
    assert e.abort().outcome is Outcome.ROLLED_BACK and steps.hosts_of("rollback") == ["h1"]


def test_inconclusive_fail_fails_the_host_and_ignore_only_notes_it() -> None:
    steps = WatchSteps({"h1": "inconclusive"})
    p = engine(steps, Inconclusive.FAIL).run()
    assert p.outcome is Outcome.ROLLED_BACK and p.hosts["h1"].failed_step == "watch"
    steps = WatchSteps({"h1": "inconclusive"})
    p = engine(steps, Inconclusive.IGNORE).run()
    assert p.outcome is Outcome.SUCCEEDED
    assert p.hosts["h1"].watch is not None and p.hosts["h1"].watch[0]["verdict"] == "inconclusive"


def test_without_a_watch_step_nothing_is_watched_and_the_hosts_say_so() -> None:
    steps = FakeSteps()  # no `watch` attribute: the spec has no watch section
    spec = make_spec(stages=STAGES)
    plan = build_plan(spec, HOSTS, "r1")
    p = Engine(plan, steps, Progress(plan.name, plan.release), lambda p: None,
               sleep=lambda s: None).run()
    assert p.outcome is Outcome.SUCCEEDED and all(r.watch is None for r in p.hosts.values())


def test_a_host_failing_the_bake_within_the_budget_goes_back_and_the_deploy_goes_on() -> None:
    """It was confirmed before the bake (its dead-man would not revert it): the engine puts it
    back, so "they run what they ran before" holds for it too."""
    steps = FakeSteps(fail={"health": {"h2"}})
    p = run(steps, stages=STAGES, max_failed=HostCount(1))
    assert p.outcome is Outcome.SUCCEEDED_WITHIN_BUDGET
    assert p.hosts["h2"].failed_step == "bake" and p.hosts["h2"].state == "rolled-back"
    assert steps.hosts_of("rollback") == ["h2"], "only the failed host goes back"
    assert "h2" not in p.switched and {"h1", "h3", "h4"} <= set(p.switched)
    steps = FakeSteps(fail={"health": {"h2"}, "rollback": {"h2"}})
    p = run(steps, stages=STAGES, max_failed=HostCount(1))
    assert p.outcome is Outcome.ROLLBACK_INCOMPLETE and p.hosts["h2"].state == "rollback-failed"
