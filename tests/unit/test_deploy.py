"""The deploy service: records, resume, attempts, and trusting a "done" record only while the
hosts still run its release. Host steps are the engine tests' fake; the fleet tests are real."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from oxzep7_deploy.deploy import DeployContext, run_deploy, stored_deploy
from oxzep7_deploy.engine_model import Outcome
from oxzep7_deploy.errors import LockHeldError, UsageError
from oxzep7_deploy.prepared import prepare_deploy
from oxzep7_deploy.spec import load_spec
from tests.unit.test_engine import FakeSteps

SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: app-py313
targets: all
interpreter:
  version: "3.13.5"
  install: {method: existing, executable: /usr/local/bin/python3.13}
application: {name: app, root: /srv/app}
"""


@pytest.fixture
def spec(tmp_path: Path) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return str(path)


def context(tmp_path: Path, steps: FakeSteps, live: dict[str, str | None] | None = None
            ) -> DeployContext:
    def live_releases(_inv: Sequence[str], _app: str, hosts: Sequence[str]) -> dict[str, str | None]:
        return dict(live or {})

    return DeployContext(records_root=tmp_path / "records", make_steps=lambda *a: steps,
                         live_releases=live_releases if live is not None else None)


def apply(spec: str, ctx: DeployContext) -> tuple[str, Outcome | None]:
    loaded, plan, record = prepare_deploy(spec, ("h1,h2,",), ctx)
    return plan.release, run_deploy(loaded, plan, record, ctx).outcome


def test_reapply_of_an_applied_spec_does_nothing_while_hosts_run_it(tmp_path: Path,
                                                                    spec: str) -> None:
    steps = FakeSteps()
    release, outcome = apply(spec, context(tmp_path, steps))
    assert outcome is Outcome.SUCCEEDED
    calls = len(steps.calls)
    again, outcome = apply(spec, context(tmp_path, steps, {"h1": release, "h2": release}))
    assert again == release and outcome is Outcome.SUCCEEDED
    assert len(steps.calls) == calls, "nothing ran on the hosts"


def test_reapply_after_hosts_moved_on_is_a_new_attempt(tmp_path: Path, spec: str) -> None:
    steps = FakeSteps()
    release, _ = apply(spec, context(tmp_path, steps))
    again, outcome = apply(spec, context(tmp_path, steps, {"h1": release, "h2": "initial"}))
    assert again == f"{release}.2" and outcome is Outcome.SUCCEEDED
    assert steps.hosts_of("switch").count("h2") == 2


def test_a_failed_deploy_is_followed_by_a_new_attempt(tmp_path: Path, spec: str) -> None:
    release, outcome = apply(spec, context(tmp_path, FakeSteps(fail={"switch": {"h1"}})))
    assert outcome is Outcome.ROLLED_BACK
    again, outcome = apply(spec, context(tmp_path, FakeSteps()))
    assert again == f"{release}.2" and outcome is Outcome.SUCCEEDED


def test_an_interrupted_deploy_resumes_its_own_release(tmp_path: Path, spec: str) -> None:
    ctx = context(tmp_path, FakeSteps())
    loaded, plan, record = prepare_deploy(spec, ("h1,h2,",), ctx)
    progress = record.load_progress() if record.exists() else None
    assert progress is None
    from oxzep7_deploy.engine_model import Progress

    partial = Progress(plan.name, plan.release, prestaged=["h1", "h2"], waves_done=1)
    record.save_progress(partial)
    steps = FakeSteps()
    loaded, plan2, record2 = prepare_deploy(spec, ("h1,h2,",), context(tmp_path, steps))
    assert plan2.release == plan.release
    assert run_deploy(loaded, plan2, record2, context(tmp_path, steps)).outcome is Outcome.SUCCEEDED
    assert steps.hosts_of("install") == [] and steps.hosts_of("switch") == ["h2"]


def test_a_host_list_reaches_the_platform_probe_and_the_records_as_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build per platform reads facts first: from 'h1,h2,' itself, not from a path under the
    working directory; promote and abort find the same sources in the records."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "more.ini").write_text("h3\n")
    spec = tmp_path / "source.yaml"
    spec.write_text(SPEC.replace(
        "install: {method: existing, executable: /usr/local/bin/python3.13}",
        "install: {method: source, url: 'https://example.invalid/Python-3.13.5.tar.xz', "
        f"sha256: '{'0' * 64}'}}"))
    probed: list[tuple[str, ...]] = []

    def probe(targets: tuple[str, ...], inventories: tuple[str, ...], _record: object
              ) -> dict[str, str]:
        probed.append(inventories)
        return dict.fromkeys(targets, "debian-12-x86_64")

    ctx = DeployContext(records_root=tmp_path / "records", make_steps=lambda *a: FakeSteps(),
                        probe_platforms=probe)
    _, plan, record = prepare_deploy(str(spec), ("h1,h2,", "more.ini"), ctx)
    expected = ("h1,h2,", str(tmp_path / "more.ini"))
    assert probed == [expected]
    assert record.meta()["inventories"] == list(expected)
    assert set(plan.targets) == {"h1", "h2", "h3"}


def test_from_a_fresh_directory_a_release_the_hosts_marked_bad_is_not_reused(
    tmp_path: Path, spec: str
) -> None:
    from dataclasses import replace

    from oxzep7_deploy.plan.release_id import release_id
    from oxzep7_deploy.spec import load_spec

    base = release_id(load_spec(spec))
    asked: list[tuple[str, ...]] = []

    def bad_releases(_inv: Sequence[str], _app: str, hosts: tuple[str, ...]
                     ) -> dict[str, tuple[str, ...]]:
        asked.append(hosts)
        return {base: ("h2",), f"{base}.2": ("h1",)}  # rolled back by hand, twice

    ctx = replace(context(tmp_path, FakeSteps()), bad_releases=bad_releases)
    release, outcome = apply(spec, ctx)
    assert release == f"{base}.3" and outcome is Outcome.SUCCEEDED
    assert asked == [("h1", "h2")], "the hosts are asked once"
    again, _ = apply(spec, ctx)
    assert again == f"{base}.3" and len(asked) == 1, "the records answer from then on"


BOX_SPEC = SPEC.replace("targets: all", 'targets: "h1,h2"').replace(
    "install: {method: existing, executable: /usr/local/bin/python3.13}",
    "install: {method: source, url: 'https://example.invalid/Python-3.13.5.tar.xz', "
    f"sha256: '{'0' * 64}', build_host: box}}")


def box_context(tmp_path: Path, answers: dict[str, str], probed: list[tuple[str, ...]]
                ) -> DeployContext:
    def probe(hosts: tuple[str, ...], _inventories: tuple[str, ...], _record: object
              ) -> dict[str, str]:
        probed.append(hosts)
        return {h: answers[h] for h in hosts if h in answers}

    return DeployContext(records_root=tmp_path / "records", make_steps=lambda *a: FakeSteps(),
                         probe_platforms=probe)


def test_a_build_host_outside_the_targets_is_probed_and_builds_but_is_no_target(
        tmp_path: Path) -> None:
    from oxzep7_deploy.steps.host_steps import host_context
    from tests.fakes import FakeHosts

    spec = tmp_path / "box.yaml"
    spec.write_text(BOX_SPEC)
    probed: list[tuple[str, ...]] = []
    answers = dict.fromkeys(("h1", "h2", "box"), "debian-12-x86_64")
    _, plan, record = prepare_deploy(str(spec), ("h1,h2,box,",), box_context(tmp_path, answers,
                                                                             probed))
    assert probed == [("h1", "h2", "box")]
    assert plan.targets == ("h1", "h2") and [w.hosts for w in plan.waves] == [("h1",), ("h2",)]
    assert [(b.platform, b.build_host, b.hosts) for b in plan.build] == [
        ("debian-12-x86_64", "box", ("h1", "h2"))]
    assert record.meta()["platforms"]["box"] == "debian-12-x86_64"  # a resume plans the same
    steps = host_context(tmp_path, FakeHosts()).make_steps(load_spec(str(spec)), plan,
                                                         ("h1,h2,box,",), record)
    assert steps.build == plan.build  # the install carries out the plan's build steps


def test_a_build_host_outside_the_targets_that_does_not_answer_stops_apply(tmp_path: Path) -> None:
    spec = tmp_path / "box.yaml"
    spec.write_text(BOX_SPEC)
    answers = dict.fromkeys(("h1", "h2"), "debian-12-x86_64")
    with pytest.raises(UsageError, match="build_host 'box' did not answer the platform probe"):
        prepare_deploy(str(spec), ("h1,h2,box,",), box_context(tmp_path, answers, []))


def test_a_build_host_of_no_target_platform_stops_apply(tmp_path: Path) -> None:
    spec = tmp_path / "box.yaml"
    spec.write_text(BOX_SPEC)
    answers = {"h1": "debian-12-x86_64", "h2": "debian-12-x86_64", "box": "rocky-9-x86_64"}
    with pytest.raises(UsageError, match="build_host 'box' is rocky-9-x86_64, and no target host "
                                         "is: the targets are debian-12-x86_64"):
        prepare_deploy(str(spec), ("h1,h2,box,",), box_context(tmp_path, answers, []))


def test_a_build_host_the_inventory_does_not_have_stops_apply(tmp_path: Path) -> None:
    spec = tmp_path / "box.yaml"
    spec.write_text(BOX_SPEC)
    probed: list[tuple[str, ...]] = []
    with pytest.raises(UsageError, match="build_host 'box' is not a host of inventory h1,h2,"):
        prepare_deploy(str(spec), ("h1,h2,",), box_context(tmp_path, {}, probed))
    assert probed == []


def test_a_step_that_raises_leaves_a_report_and_the_next_apply_is_a_new_attempt(
        tmp_path: Path, spec: str) -> None:
    from tests.unit.test_engine import Crashing

    steps = Crashing("switch", "h1", KeyError("boom"))
    ctx = context(tmp_path, steps)
    loaded, plan, record = prepare_deploy(spec, ("h1,h2,",), ctx)
    progress = run_deploy(loaded, plan, record, ctx)  # no exception: the engine contained it
    assert progress.outcome is Outcome.ROLLED_BACK and steps.on_new == set()
    assert steps.locked == set()
    report = json.loads((record.dir / "report.json").read_text())
    assert report["outcome"] == "rolled-back" and report["exit_code"] == 1
    assert report["error"].startswith("switch: internal error: KeyError: 'boom' (traceback in ")
    assert "Traceback" in (record.dir / "error-switch.txt").read_text()
    again, outcome = apply(spec, context(tmp_path, FakeSteps()))
    assert again == f"{plan.release}.2" and outcome is Outcome.SUCCEEDED


def test_a_lock_held_elsewhere_still_exits_2_and_releases_our_locks(tmp_path: Path,
                                                                     spec: str) -> None:
    from tests.unit.test_engine import Crashing

    held = LockHeldError("h2: locked by deploy other/r9", hint="wait for it")
    steps = Crashing("prepare", "h2", held)
    ctx = context(tmp_path, steps)
    loaded, plan, record = prepare_deploy(spec, ("h1,h2,",), ctx)
    with pytest.raises(LockHeldError):
        run_deploy(loaded, plan, record, ctx)
    assert steps.locked == set() and steps.hosts_of("switch") == []
    assert json.loads((record.dir / "report.json").read_text())["outcome"] == "failed"


class _Interrupted(FakeSteps):
    """Ctrl-C or SIGTERM while the second batch is switched (the boundary makes both
    KeyboardInterrupt)."""

    def switch(self, hosts: Sequence[str]) -> dict[str, object]:  # type: ignore[override]
        if "h2" in hosts:
            raise KeyboardInterrupt
        return dict(super().switch(hosts))


def test_an_interrupt_is_recorded_and_the_same_apply_resumes(tmp_path: Path, spec: str) -> None:
    ctx = context(tmp_path, _Interrupted())  # waves: canary h1, then all (h2)
    loaded, plan, record = prepare_deploy(spec, ("h1,h2,",), ctx)
    with pytest.raises(KeyboardInterrupt):
        run_deploy(loaded, plan, record, ctx)
    report = json.loads((record.dir / "report.json").read_text())
    assert report["outcome"] == "interrupted" and report["exit_code"] == 130
    assert report["waves_done"] == ["canary"] and report["hosts"]["h1"]["state"] == "live"
    assert report["hosts"]["h2"]["state"] == "prepared", "not said to be switched, nor rolled back"
    steps = FakeSteps()
    release, outcome = apply(spec, context(tmp_path, steps))
    assert release == plan.release and outcome is Outcome.SUCCEEDED
    assert steps.hosts_of("switch") == ["h2"], "wave canary is not done again"


def test_the_records_keep_no_application_env_value_and_a_resume_reads_it_again(
        tmp_path: Path) -> None:
    """application.env often holds secrets: the records' copy of the spec has its keys only; a
    resumed deploy (or promote, abort) reads the values from the spec file again."""
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace("application: {name: app, root: /srv/app}",
                                 "application: {name: app, root: /srv/app,\n"
                                 "              env: {DB_PASSWORD: s3cret-x9}}"))
    ctx = context(tmp_path, FakeSteps())
    loaded, plan, record = prepare_deploy(str(path), ("h1,h2,",), ctx)
    files = [p for p in (tmp_path / "records").rglob("*") if p.is_file()]
    assert files and not [p for p in files if b"s3cret-x9" in p.read_bytes()]
    assert b"DB_PASSWORD" in (record.dir / "spec.yaml").read_bytes()
    from oxzep7_deploy.engine_model import Progress

    record.save_progress(Progress(plan.name, plan.release, prestaged=["h1", "h2"], waves_done=1))
    resumed, plan2, _ = prepare_deploy(str(path), ("h1,h2,",), context(tmp_path, FakeSteps()))
    assert plan2.release == plan.release and resumed.digest == loaded.digest
    assert dict(resumed.application.env) == {"DB_PASSWORD": "s3cret-x9"}
    path.write_text(SPEC)  # the key is gone from the file: promote refused, abort goes on
    with pytest.raises(UsageError, match="DB_PASSWORD") as info:
        stored_deploy(record)
    assert "abort" in str(info.value.hint)
    aborted, _ = stored_deploy(record, abort=True)
    assert dict(aborted.application.env) == {} and aborted.digest == loaded.digest
