"""Where the interpreter is built: once per platform, on the chosen host."""

from __future__ import annotations

import pytest

from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.plan import build_plan
from oxzep7_deploy.spec.model import BuildMode
from tests.unit.plan.factories import make_spec, with_source


def test_source_builds_once_per_platform_on_the_first_host() -> None:
    spec = with_source(make_spec())
    platforms = {"a": "debian-12-x86_64", "b": "debian-12-x86_64", "c": "rocky-9-x86_64"}
    plan = build_plan(spec, ("a", "b", "c"), "r1", platforms)
    assert [(s.platform, s.build_host, s.hosts) for s in plan.build] == [
        ("debian-12-x86_64", "a", ("a", "b")),
        ("rocky-9-x86_64", "c", ("c",)),
    ]


def test_build_host_is_used_for_its_own_platform() -> None:
    spec = with_source(make_spec(), build_host="b")
    plan = build_plan(spec, ("a", "b"), "r1")
    assert plan.build[0].build_host == "b"
    assert plan.build[0].action == "build-and-ship"


def test_on_each_host_names_no_single_builder() -> None:
    spec = with_source(make_spec(), build=BuildMode.ON_EACH_HOST)
    plan = build_plan(spec, ("a", "b"), "r1")
    assert [(s.build_host, s.action) for s in plan.build] == [(None, "build-on-each-host")]


def test_existing_interpreter_is_only_checked() -> None:
    plan = build_plan(make_spec(), ("a",), "r1")
    assert plan.build[0].action == "check"


def test_a_build_host_outside_the_targets_builds_for_its_platform_only() -> None:
    spec = with_source(make_spec(), build_host="box")
    platforms = {"a": "debian-12-x86_64", "b": "rocky-9-x86_64", "c": "debian-12-x86_64",
                 "box": "debian-12-x86_64"}
    plan = build_plan(spec, ("a", "b", "c"), "r1", platforms)
    assert [(s.platform, s.build_host, s.hosts) for s in plan.build] == [
        ("debian-12-x86_64", "box", ("a", "c")),
        ("rocky-9-x86_64", "b", ("b",)),
    ]
    assert plan.targets == ("a", "b", "c")  # not a target, in no wave, not prestaged
    assert all("box" not in w.hosts for w in plan.waves) and "box" not in plan.prestage


def test_a_build_host_outside_the_targets_on_no_target_platform_is_refused() -> None:
    spec = with_source(make_spec(), build_host="box")
    platforms = {"a": "debian-12-x86_64", "b": "rocky-9-x86_64", "box": "debian-12-aarch64"}
    with pytest.raises(UsageError, match=r"build_host 'box' is debian-12-aarch64, and no target "
                                         r"host is: the targets are debian-12-x86_64, rocky-9"):
        build_plan(spec, ("a", "b"), "r1", platforms)


@pytest.mark.parametrize(("platforms", "expected"), [
    ({}, [("unknown", "box")]),  # nothing known yet: apply's facts decide
    ({"box": "debian-12-x86_64"}, [("unknown", "box")]),  # the targets unknown
    ({"a": "debian-12-x86_64", "box": "rocky-9-x86_64", "b": "debian-12-x86_64"},
     [("debian-12-x86_64", "a"), ("unknown", "box")]),  # a target with no facts may be rocky
    ({"a": "debian-12-x86_64", "b": "rocky-9-x86_64", "c": "debian-12-x86_64"},
     [("debian-12-x86_64", "box"), ("rocky-9-x86_64", "b")]),  # the box unknown: the first
])
def test_a_build_host_whose_platform_is_not_known_yet_is_planned(
        platforms: dict[str, str], expected: list[tuple[str, str]]) -> None:
    spec = with_source(make_spec(), build_host="box")
    plan = build_plan(spec, ("a", "b", "c"), "r1", platforms)
    assert [(s.platform, s.build_host) for s in plan.build] == expected
