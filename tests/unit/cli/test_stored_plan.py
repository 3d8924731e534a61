"""Issue 12, item 2: a deploy paused at a manual gate runs the plan and spec it was started
with; editing the spec file meanwhile changes neither `promote` nor `abort`, and `apply` of
the edited spec is refused (exit 2) saying what changed and what to run.

The CLI runs as a user runs it; the hosts are tests/fakes.py's stand-in at the runner seam (the records, the
stored plan and the commands are real). The fleet test is tests/e2e/test_rollout.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes import FakeHosts
from tests.unit.cli.test_cli import invoke

SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: app-py313
targets: all
interpreter:
  version: "3.13.5"
  install: {method: existing, executable: /usr/local/bin/python3.13}
application: {name: app, root: /srv/app}
rollout:
  strategy: canary
  stages:
    - {name: canary, hosts: 1}
    - {name: all, hosts: "100%", promote: manual}
"""
HOSTS = "h1,h2,h3,"


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> FakeHosts:
    return FakeHosts().install(monkeypatch)


def paused(tmp_path: Path, steps: FakeHosts) -> Path:
    spec = tmp_path / "app.yaml"
    spec.write_text(SPEC)
    code, out, err = invoke("apply", str(spec), "-i", HOSTS, "--yes", "--json")
    assert code == 0 and json.loads(out)["outcome"] == "paused", err
    assert steps.hosts_of("switch") == ["h1"]
    return spec


def test_promote_after_the_spec_was_edited_runs_the_stored_plan(
        tmp_path: Path, steps: FakeHosts) -> None:
    spec = paused(tmp_path, steps)
    spec.write_text(SPEC.replace("{name: canary, hosts: 1}", "{name: canary, hosts: 2}"))
    code, out, err = invoke("promote", "app-py313", "--yes", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["outcome"] == "succeeded"
    assert report["waves_done"] == ["canary", "all"]
    assert steps.hosts_of("switch") == ["h1", "h2", "h3"], "wave all of the stored plan: h2, h3"


def test_abort_works_whatever_became_of_the_spec_file(tmp_path: Path, steps: FakeHosts) -> None:
    spec = paused(tmp_path, steps)
    spec.unlink()
    code, out, err = invoke("abort", "app-py313", "--yes", "--json")
    assert code == 1, err
    assert json.loads(out)["outcome"] == "rolled-back"
    assert steps.hosts_of("rollback") == ["h1"]


def test_apply_of_an_edited_spec_while_paused_is_refused_naming_the_change(
        tmp_path: Path, steps: FakeHosts) -> None:
    spec = paused(tmp_path, steps)
    spec.write_text(SPEC.replace("{name: canary, hosts: 1}", "{name: canary, hosts: 2}")
                    .replace("application: {name: app, root: /srv/app}",
                             "application: {name: app, root: /srv/app2}"))
    calls = len(steps.requests)
    code, out, err = invoke("apply", str(spec), "-i", HOSTS, "--yes")
    assert code == 2
    assert "deploy app-py313 is paused before wave all" in err
    assert "rollout.stages[0].hosts: 1 -> 2" in err and 'application.root: "/srv/app" -> ' \
        '"/srv/app2"' in err
    assert "oxzep7-deploy promote app-py313" in err and "oxzep7-deploy abort app-py313" in err
    assert "Traceback" not in err and len(steps.requests) == calls, "no host was touched"
    # the unchanged spec resumes the paused deploy; once it is over, the edited one applies
    spec.write_text(SPEC)
    code, out, err = invoke("apply", str(spec), "-i", HOSTS, "--yes", "--json")
    assert code == 0 and json.loads(out)["outcome"] == "paused", err
    assert invoke("promote", "app-py313", "--yes")[0] == 0
    spec.write_text(SPEC.replace("{name: canary, hosts: 1}", "{name: canary, hosts: 2}"))
    code, out, err = invoke("apply", str(spec), "-i", HOSTS, "--yes", "--json")
    assert code == 0 and json.loads(out)["outcome"] == "paused", err


def test_plan_of_a_paused_deploy_shows_the_stored_plan_apply_resumes(
        tmp_path: Path, steps: FakeHosts) -> None:
    spec = paused(tmp_path, steps)
    more = "h1,h2,h3,h4,"  # a host added since: the paused deploy goes on without it
    code, out, err = invoke("plan", str(spec), "-i", more, "--json")
    assert code == 0, err
    planned = json.loads(out)
    assert planned["targets"] == ["h1", "h2", "h3"] and planned["waves"][1]["hosts"] == ["h2", "h3"]
    code, out, _ = invoke("plan", str(spec), "-i", more)
    assert out.splitlines()[-1] == f"note: apply resumes the paused deploy of release " \
                                   f"{planned['release']}"
    calls = len(steps.requests)
    code, out, err = invoke("apply", str(spec), "-i", more, "--yes", "--json")
    assert code == 0 and json.loads(out)["outcome"] == "paused", err
    assert len(steps.requests) == calls, "paused at the same gate: no host touched"
    assert invoke("promote", "app-py313", "--yes")[0] == 0
    assert steps.hosts_of("switch") == planned["targets"], "what plan showed is what ran"


def test_plan_of_an_edited_spec_while_paused_is_refused_as_apply_is(
        tmp_path: Path, steps: FakeHosts) -> None:
    spec = paused(tmp_path, steps)
    spec.write_text(SPEC.replace("{name: canary, hosts: 1}", "{name: canary, hosts: 2}"))
    code, out, err = invoke("plan", str(spec), "-i", HOSTS)
    assert code == 2 and out == ""
    assert "deploy app-py313 is paused before wave all" in err
    assert "rollout.stages[0].hosts: 1 -> 2" in err and "Traceback" not in err
