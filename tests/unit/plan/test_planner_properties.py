"""Properties of the planner over random fleets and stage lists."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.plan import build_plan
from oxzep7_deploy.spec.model import HostCount, Stage, Strategy
from tests.unit.plan.factories import make_spec


@st.composite
def stage_lists(draw: st.DrawFn) -> tuple[Stage, ...]:
    """Valid cumulative stages: counts then percentages, rising, ending at 100%."""
    counts = sorted(set(draw(st.lists(st.integers(1, 20), max_size=3))))
    percents = sorted(set(draw(st.lists(st.integers(1, 99), max_size=3))))
    stages = [Stage(f"c{n}", HostCount(n)) for n in counts]
    stages += [Stage(f"p{p}", HostCount(p, True)) for p in percents]
    stages.append(Stage("all", HostCount(100, True)))
    return tuple(stages)


def decreases(stages: tuple[Stage, ...], total: int) -> bool:
    """Whether a stage switches fewer targets than one before it, before all are switched."""
    most = 0
    for stage in stages:
        count = stage.hosts.resolve(total)
        if most >= total:
            return False
        if count < most:
            return True
        most = count
    return False


fleets = st.integers(1, 60).map(lambda n: tuple(f"h{i}" for i in range(1, n + 1)))


@settings(max_examples=300, deadline=None)
@given(
    hosts=fleets,
    stages=stage_lists(),
    batch_size=st.none() | st.integers(1, 7),
    strategy=st.sampled_from([Strategy.CANARY, Strategy.BLUE_GREEN, Strategy.ROLLING]),
)
def test_every_host_once_in_stage_order_within_batch_size(
    hosts: tuple[str, ...], stages: tuple[Stage, ...], batch_size: int | None, strategy: Strategy
) -> None:
    if strategy is Strategy.ROLLING:
        stages, batch_size = (), batch_size or 2
    spec = make_spec(strategy=strategy, stages=stages, batch_size=batch_size)
    if decreases(stages, len(hosts)):
        with pytest.raises(UsageError, match=r"rollout\.stages\[\d+\]\.hosts: .* is fewer than"):
            build_plan(spec, hosts, "r1")
        return
    plan = build_plan(spec, hosts, "r1")

    switched = [h for wave in plan.waves for h in wave.hosts]
    assert sorted(switched) == sorted(hosts) and len(switched) == len(set(switched))
    assert tuple(switched) == hosts  # waves take the targets in inventory order
    for wave in plan.waves:
        assert wave.hosts, "no empty wave is planned"
        assert tuple(h for b in wave.batches for h in b) == wave.hosts
        if batch_size:
            assert all(len(b) <= batch_size for b in wave.batches)
    names = [w.name for w in plan.waves]
    stage_names = [s.name for s in (stages or spec.rollout.stages)] or ["all"]
    assert names == [n for n in stage_names if n in names], "waves follow the stages' order"
    if strategy is not Strategy.ROLLING and stages:
        first = stages[0].hosts.resolve(len(hosts))
        assert len(plan.waves[0].hosts) == max(1, first), "the first stage is the first wave"
    if strategy is Strategy.BLUE_GREEN:
        assert plan.prestage == hosts


@given(stages=stage_lists())
def test_a_one_host_fleet_still_plans(stages: tuple[Stage, ...]) -> None:
    plan = build_plan(make_spec(stages=stages), ("only",), "r1")
    assert [w.hosts for w in plan.waves] == [("only",)]


def test_canary_default_takes_one_host_then_the_rest() -> None:
    plan = build_plan(make_spec(), ("a", "b", "c"), "r1")
    assert [(w.name, w.hosts) for w in plan.waves] == [("canary", ("a",)), ("all", ("b", "c"))]


def test_percentages_round_up_and_every_stage_adds_a_host() -> None:
    stages = (Stage("one", HostCount(1)), Stage("tenth", HostCount(10, True)),
              Stage("all", HostCount(100, True)))
    plan = build_plan(make_spec(stages=stages), tuple(f"h{i}" for i in range(11)), "r1")
    # 10% of 11 rounds up to 2: the wave takes one more host than the canary
    assert [len(w.hosts) for w in plan.waves] == [1, 1, 9]


def test_max_failed_percentage_resolves_against_targets() -> None:
    plan = build_plan(make_spec(max_failed=HostCount(25, True)), tuple("abcdefg"), "r1")
    assert plan.max_failed == 2


def test_a_percentage_that_resolves_below_an_earlier_count_is_an_error() -> None:
    stages = (Stage("five", HostCount(5)), Stage("tenth", HostCount(10, True)),
              Stage("all", HostCount(100, True)))
    with pytest.raises(UsageError) as caught:
        build_plan(make_spec(stages=stages), tuple(f"h{i}" for i in range(20)), "r1")
    assert caught.value.message == (
        'app-py313: rollout.stages[1].hosts: "10%" of the 20 targets (2 hosts) is fewer than '
        "the 5 hosts of stages[0]: hosts counts are cumulative (how many targets run the new "
        "release once the stage is done)"
    )
    # the same stages on 60 targets: 10% is 6 hosts, one more than the 5 before
    plan = build_plan(make_spec(stages=stages), tuple(f"h{i}" for i in range(60)), "r1")
    assert [len(w.hosts) for w in plan.waves] == [5, 1, 54]


def test_stages_after_every_target_is_switched_are_not_compared() -> None:
    stages = (Stage("five", HostCount(5)), Stage("half", HostCount(50, True)),
              Stage("all", HostCount(100, True)))
    plan = build_plan(make_spec(stages=stages), ("a", "b", "c"), "r1")
    assert [(w.name, w.hosts) for w in plan.waves] == [("five", ("a", "b", "c"))]


@pytest.mark.parametrize(("percent", "targets", "sizes"), [
    (25, 8, [2, 2, 2, 2]),       # exact
    (30, 7, [3, 3, 1]),          # 2.1 rounds up to 3
    (1, 5, [1, 1, 1, 1, 1]),     # 0.05 is still one host
    (100, 4, [4]),
])
def test_a_percentage_batch_size_rounds_up_to_at_least_one_host(
    percent: int, targets: int, sizes: list[int]
) -> None:
    spec = make_spec(strategy=Strategy.ROLLING, batch_size=HostCount(percent, percent=True))
    plan = build_plan(spec, tuple(f"h{i}" for i in range(targets)), "r1")
    assert [len(b) for b in plan.waves[0].batches] == sizes


def test_a_percentage_batch_size_is_of_the_targets_not_of_each_wave() -> None:
    # 10 targets, canary 1 then the rest: 20% is 2 hosts per batch in every wave
    spec = make_spec(batch_size=HostCount(20, percent=True))
    plan = build_plan(spec, tuple(f"h{i}" for i in range(10)), "r1")
    assert [[len(b) for b in w.batches] for w in plan.waves] == [[1], [2, 2, 2, 2, 1]]
