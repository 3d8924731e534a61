"""A deploy's `plan.json` is read back by resume, `promote` and `abort`: it must round-trip."""

from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from oxzep7_deploy.plan import Plan, build_plan
from oxzep7_deploy.spec.model import (
    BuildMode,
    HostCount,
    OnFailure,
    Promote,
    Stage,
    Strategy,
)
from tests.unit.plan.factories import make_spec, with_source
from tests.unit.plan.test_golden import GOLDEN
from tests.unit.plan.test_planner_properties import decreases, fleets, stage_lists

PLATFORMS = ("debian-12-x86_64", "rocky-9-x86_64", "unknown")


@settings(max_examples=200, deadline=None)
@given(
    hosts=fleets,
    stages=stage_lists(),
    batch_size=st.none() | st.integers(1, 7),
    strategy=st.sampled_from(list(Strategy)),
    on_failure=st.sampled_from(list(OnFailure)),
    manual=st.booleans(),
    source=st.sampled_from([None, BuildMode.ONCE_PER_PLATFORM, BuildMode.ON_EACH_HOST]),
    build_host=st.sampled_from([None, "h1", "box"]),
    platform_of=st.lists(st.sampled_from(PLATFORMS), min_size=61, max_size=61),
    release=st.from_regex(r"3\.1[0-9]\.[0-9]-[0-9a-f]{10}(\.[2-9])?", fullmatch=True),
)
def test_a_plan_read_back_from_its_json_is_the_same_plan(
    hosts: tuple[str, ...], stages: tuple[Stage, ...], batch_size: int | None,
    strategy: Strategy, on_failure: OnFailure, manual: bool, source: BuildMode | None,
    build_host: str | None, platform_of: list[str], release: str,
) -> None:
    if strategy is Strategy.ROLLING:
        stages, batch_size = (), batch_size or 2
    if decreases(stages, len(hosts)):
        return
    stages = tuple(replace(s, promote=Promote.MANUAL if manual else Promote.AUTO, bake=7 * i)
                   for i, s in enumerate(stages))
    spec = make_spec(strategy=strategy, stages=stages, batch_size=batch_size,
                     max_failed=HostCount(25, True))
    spec = replace(spec, rollout=replace(spec.rollout, on_failure=on_failure))
    if source is not None:
        spec = with_source(spec, build=source, build_host=build_host)
    platforms = {h: platform_of[i] for i, h in enumerate(hosts)}
    platforms["box"] = platform_of[-1]
    try:
        plan = build_plan(spec, hosts, release, platforms)
    except Exception:  # a build box of no target's platform: refused, nothing to store
        return
    doc = json.loads(json.dumps(plan.to_json()))  # as plan.json holds it
    again = Plan.from_json(doc)
    assert again == plan
    assert again.to_json() == doc


def test_the_golden_plans_read_back_exactly() -> None:
    files = sorted(GOLDEN.glob("*.plan.json"))
    assert files
    for path in files:
        doc = json.loads(path.read_text())
        assert Plan.from_json(doc).to_json() == doc, path.name
