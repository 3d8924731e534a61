"""`rehearse`: everything before the switch on the hosts, nothing switched; apply reuses it.

The hosts are tests/fakes.py's stand-in at the runner seam; on a real fleet:
tests/e2e/test_preview.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oxzep7_deploy.cli.boundary import records_root
from oxzep7_deploy.cli.main import cli
from oxzep7_deploy.runner.request import RunRequest
from tests.fakes import FakeHosts

SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: sample-py313
targets: all
interpreter:
  version: "3.13.5"
  install: {method: existing, executable: /usr/local/bin/python3.13}
application: {name: sample, root: /srv/sample, services: [sample.service], port: 8000}
health:
  checks: [{http: {url: "http://127.0.0.1:{port}/healthz"}}]
preview: {port: 18000}
"""


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "web.ini").write_text("[web]\nh1\nh2\n")
    return tmp_path


def invoke(*args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(cli, [*args, "--json"])
    try:
        return result.exit_code, json.loads(result.stdout), result.stderr
    except json.JSONDecodeError as exc:
        raise AssertionError(f"{result.exit_code}: {result.output}") from exc


def test_rehearse_previews_every_target_switches_nothing_and_exits_0(
        work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = FakeHosts().install(monkeypatch)
    code, doc, err = invoke("rehearse", "spec.yaml", "-i", "web.ini")
    assert code == 0, (doc, err)
    assert doc["rehearsal"] is True and doc["outcome"] == "succeeded"
    assert {h: r["state"] for h, r in doc["hosts"].items()} == {"h1": "previewed",
                                                                "h2": "previewed"}
    assert hosts.hosts_of("preview") == ["h1", "h2"]
    assert not hosts.runs_of("release_switch.yml"), "a rehearsal switches nothing"
    assert hosts.hosts_of("unlock") == ["h1", "h2"], "and lets go of the locks"
    (record,) = (records_root() / "deploys" / "sample-py313").iterdir()
    assert record.name.startswith(f"{doc['release']}.rehearsal-")


def test_a_failing_preview_fails_the_rehearsal_with_exit_1(
        work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def preview(request: RunRequest, host: str) -> dict[str, Any]:
        if host == "h2":
            return {"ok": False, "error": "the preview of release X on port 18000 failed: 503"}
        return {"ok": True}

    hosts = FakeHosts({"release_preview.yml": preview}).install(monkeypatch)
    code, doc, _ = invoke("rehearse", "spec.yaml", "-i", "web.ini")
    assert code == 1
    assert doc["hosts"]["h2"]["failed_step"] == "preview"
    assert "port 18000 failed" in doc["hosts"]["h2"]["message"]
    assert not hosts.runs_of("release_switch.yml")


def test_rehearse_limit_narrows_the_targets(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = FakeHosts().install(monkeypatch)
    code, doc, _ = invoke("rehearse", "spec.yaml", "-i", "web.ini", "--limit", "h2")
    assert code == 0 and list(doc["hosts"]) == ["h2"]
    assert hosts.hosts_of("prepare") == ["h2"] and hosts.hosts_of("preview") == ["h2"]


def test_apply_after_a_rehearsal_says_the_prepared_release_is_reused(
        work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeHosts().install(monkeypatch)
    code, rehearsed, _ = invoke("rehearse", "spec.yaml", "-i", "web.ini")
    assert code == 0
    prepared = FakeHosts({"release_prepare.yml": lambda r, h: {"ok": True, "already": True}})
    prepared.install(monkeypatch)
    code, doc, err = invoke("apply", "spec.yaml", "-i", "web.ini", "--yes")
    assert code == 0, (doc, err)
    assert doc["release"] == rehearsed["release"], "the release the rehearsal prepared"
    for host in ("h1", "h2"):
        assert "already prepared here: reused" in doc["hosts"][host]["message"]
    assert prepared.hosts_of("preview") == ["h1", "h2"], "previewed again right before the switch"
