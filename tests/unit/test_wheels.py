"""`application.wheels: once-per-platform`: the plan's wheel steps, the wheel step's logic through
FakeHosts (built once per platform, cached, a corrupt cache refused, failures per platform), and
what prepare installs from. The real build and install are tests/e2e/test_wheels.py."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from oxzep7_deploy.plan import Plan, build_plan
from oxzep7_deploy.runner import RunRequest
from oxzep7_deploy.spec.model import BuildMode, ExistingInstall, SourceInstall, Spec
from oxzep7_deploy.steps.release import release_vars
from oxzep7_deploy.steps.wheels import WheelSets
from tests.fakes import FakeHosts
from tests.unit.plan.factories import make_spec

HOSTS = ("d1", "d2", "r1", "r2")
PLATFORMS = {"d1": "debian-12-x86_64", "d2": "debian-12-x86_64",
             "r1": "rocky-9-x86_64", "r2": "rocky-9-x86_64", "build1": "debian-12-x86_64"}
SOURCE = SourceInstall(url="/src/Python-3.13.5.tar.xz", sha256="a" * 64)


def wheels_spec(install: Any = SOURCE, wheels: BuildMode = BuildMode.ONCE_PER_PLATFORM) -> Spec:
    spec = make_spec(install=install)
    app = replace(spec.application, code="/srv/app/code", requirements="/srv/app/code/req.lock",
                  pip_args=("--require-hashes",), wheels=wheels)
    return replace(spec, application=app)


def plan_of(spec: Spec) -> Plan:
    return build_plan(spec, HOSTS, "r1", PLATFORMS)


class Builder:
    """wheels.yml as the hosts answer it: the build fetches a packed set to the controller."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        self.builds: list[str] = []

    def __call__(self, request: RunRequest, host: str) -> dict[str, Any]:
        action = request.extravars["oxzep7_wheels_action"]
        if action == "build":
            self.builds.append(host)
            if host == self.fail_on:
                return {"ok": False, "error": "Pip wheel failed: error: command 'gcc' failed"}
            body = f"wheels of {host} #{len(self.builds)}".encode()
            path = Path(request.extravars["oxzep7_wheels_fetch_dir"]) / request.extravars[
                "oxzep7_wheels_name"]
            path.write_bytes(body)
            return {"sha256": hashlib.sha256(body).hexdigest(), "requirements_sha256": "f" * 64,
                    "wheels": [{"file": "markupsafe-3.0.4-cp313-cp313-linux_x86_64.whl",
                                "platform_specific": True}]}
        return {"requirements_sha256": "f" * 64}


def sets(fake: FakeHosts, spec: Spec, tmp_path: Path) -> WheelSets:
    runs = tmp_path / "runs"
    return WheelSets(spec, plan_of(spec), "inventory.ini", fake, lambda step: runs / step,
                     tmp_path / "cache")


def shipped(fake: FakeHosts) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for request in fake.runs_of("wheels.yml"):
        if request.extravars["oxzep7_wheels_action"] == "ship":
            out.update(request.extravars["oxzep7_wheels_sets"])
    return out


# -- the plan ----------------------------------------------------------------------------------


def test_the_plan_builds_the_wheels_where_the_interpreter_is_built_else_on_the_first_target(
) -> None:
    spec = wheels_spec(install=replace(SOURCE, build_host="build1"))
    wheels = plan_of(spec).wheels
    assert [(w.platform, w.build_host, w.hosts) for w in wheels] == [
        ("debian-12-x86_64", "build1", ("d1", "d2")), ("rocky-9-x86_64", "r1", ("r1", "r2"))]
    existing = plan_of(wheels_spec(install=ExistingInstall("/usr/local/bin/python3.13")))
    assert [w.build_host for w in existing.wheels] == ["d1", "r1"]


def test_without_once_per_platform_the_plan_has_no_wheel_steps_and_keeps_its_shape() -> None:
    plan = plan_of(wheels_spec(wheels=BuildMode.ON_EACH_HOST))
    assert plan.wheels == () and "wheels" not in plan.to_json()


def test_a_stored_plan_with_wheel_steps_reads_back_the_same() -> None:
    plan = plan_of(wheels_spec())
    assert Plan.from_json(plan.to_json()) == plan


def test_prepare_installs_the_shipped_set_without_an_index() -> None:
    prepare = release_vars(wheels_spec(), "r7", "d/r7")["oxzep7_prepare"]
    folder = "/srv/app/.oxzep7-wheels/r7"
    assert prepare["requirements"] == f"{folder}/requirements.txt"
    assert prepare["pip_args"] == ["--require-hashes", "--no-index", "--find-links", folder]
    before = release_vars(wheels_spec(wheels=BuildMode.ON_EACH_HOST), "r7", "d/r7")
    assert before["oxzep7_prepare"]["requirements"] == "/srv/app/code/req.lock"
    assert before["oxzep7_prepare"]["pip_args"] == ["--require-hashes"]


# -- the step ----------------------------------------------------------------------------------


def test_each_platform_is_built_once_and_every_target_gets_its_platforms_set(tmp_path: Path
                                                                             ) -> None:
    builder = Builder()
    fake = FakeHosts({"wheels.yml": builder})
    step = sets(fake, wheels_spec(), tmp_path)
    first = step.run(["d1", "r1"])
    second = step.run(["d2", "r2"])  # a later batch: nothing is built again
    assert all(r.ok for r in [*first.values(), *second.values()])
    assert builder.builds == ["d1", "r1"]
    got = shipped(fake)
    assert got["d1"]["sha256"] == got["d2"]["sha256"] != got["r1"]["sha256"] == got["r2"]["sha256"]
    assert all(Path(got[h]["path"]).is_file() for h in HOSTS)
    ship = next(r for r in fake.runs_of("wheels.yml")
                if r.extravars["oxzep7_wheels_action"] == "ship")
    assert ship.extravars["oxzep7_wheels_dest"] == "/srv/app/.oxzep7-wheels/r1"


def test_a_second_deploy_ships_from_the_cache_without_building(tmp_path: Path) -> None:
    builder = Builder()
    sets(FakeHosts({"wheels.yml": builder}), wheels_spec(), tmp_path).run(list(HOSTS))
    again = FakeHosts({"wheels.yml": builder})
    results = sets(again, wheels_spec(), tmp_path).run(list(HOSTS))
    assert all(r.ok for r in results.values()) and builder.builds == ["d1", "r1"]
    other_args = replace(wheels_spec(), application=replace(
        wheels_spec().application, pip_args=("--require-hashes", "--only-binary=pyyaml")))
    sets(FakeHosts({"wheels.yml": builder}), other_args, tmp_path).run(["d1"])
    assert builder.builds == ["d1", "r1", "d1"]  # other pip_args: another wheel set


def test_a_corrupt_cached_set_is_refused_and_built_again(tmp_path: Path) -> None:
    builder = Builder()
    first = sets(FakeHosts({"wheels.yml": builder}), wheels_spec(), tmp_path)
    first.run(["d1"])
    cached = first.records["debian-12-x86_64"].artifact
    assert cached is not None
    cached.path.write_bytes(b"tampered")
    fake = FakeHosts({"wheels.yml": builder})
    step = sets(fake, wheels_spec(), tmp_path)
    results = step.run(["d1", "d2"])
    assert all(r.ok for r in results.values()) and builder.builds == ["d1", "d1"]
    record = step.records["debian-12-x86_64"]
    assert record.built and "does not match its sha256 manifest: refused" in str(record.message)
    assert shipped(fake)["d2"]["sha256"] != hashlib.sha256(b"tampered").hexdigest()


def test_a_failed_build_fails_the_hosts_of_its_platform_only(tmp_path: Path) -> None:
    fake = FakeHosts({"wheels.yml": Builder(fail_on="r1")})
    results = sets(fake, wheels_spec(), tmp_path).run(list(HOSTS))
    assert [h for h, r in results.items() if r.ok] == ["d1", "d2"]
    assert results["r2"].message is not None
    assert results["r2"].message.startswith("no wheel set for rocky-9-x86_64: building the "
                                            "wheels on r1 failed: Pip wheel failed")
    assert set(shipped(fake)) == {"d1", "d2"}


def test_a_build_host_outside_the_batch_gets_the_interpreter_first(tmp_path: Path) -> None:
    builder = Builder()
    fake = FakeHosts({"wheels.yml": builder})
    spec = wheels_spec(install=ExistingInstall("/usr/local/bin/python3.13"))
    sets(fake, spec, tmp_path).run(["d2"])  # d1 builds for debian, but is not in this batch
    assert fake.playbooks[0] == "interpreter.yml" and fake.requests[0].limit == ("d1",)
    assert builder.builds == ["d1"] and set(shipped(fake)) == {"d2"}
