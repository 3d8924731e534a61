"""Where the interpreter is built: once per platform, on the chosen host."""

from __future__ import annotations

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
