"""The watch through the CLI: a host whose journal shows new tracebacks after its switch fails
and is rolled back (exit 1, the finding in --json); a noisy baseline pauses the deploy with the
evidence, and `abort` rolls it back. The hosts are tests/fakes.py's stand-in at the runner seam;
on a real fleet: tests/e2e/test_watch.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

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
  interval: 1s
rollout:
  stages: [{name: canary, hosts: 1, bake: 1s}, {name: all, hosts: "100%"}]
watch: {}
"""

TRACEBACK = "Traceback (most recent call last):"


def watched(verdict: str, before: int, after: int, reason: str) -> dict[str, Any]:
    return {"ok": True, "step": "watch", "release": "r", "watch": {
        "verdict": verdict, "reason": reason, "seconds": 1.0,
        "before": {"matches": before, "restarts": 0, "crashes": 0, "core_dumps": 0,
                   "samples": [TRACEBACK] if before else []},
        "after": {"matches": after, "restarts": 0, "crashes": 0, "core_dumps": 0,
                  "samples": [TRACEBACK] if after else []}}}


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


def test_new_tracebacks_after_the_switch_fail_the_canary_and_roll_it_back(
        work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def watch(request: RunRequest, host: str) -> dict[str, Any]:
        assert request.extravars["oxzep7_watch"] == {
            "patterns": ["Traceback (most recent call last)", "CRITICAL"], "max_new": 0,
            "restarts": 0}
        return watched("failed", 0, 5, "5 new matching lines after the switch")

    hosts = FakeHosts({"release_watch.yml": watch}).install(monkeypatch)
    code, doc, err = invoke("apply", "spec.yaml", "-i", "web.ini", "--yes")
    assert code == 1, (doc, err)
    assert doc["outcome"] == "rolled-back"
    h1 = doc["hosts"]["h1"]
    assert h1["state"] == "rolled-back" and h1["failed_step"] == "watch"
    assert "5 new matching lines" in h1["message"] and TRACEBACK in h1["message"]
    (finding,) = h1["watch"]
    assert finding["verdict"] == "failed" and finding["matches_after"] == 5
    assert finding["samples_after"] == [TRACEBACK]
    assert hosts.hosts_of("watch") == ["h1"] and hosts.hosts_of("rollback") == ["h1"]
    assert "h2" not in hosts.hosts_of("switch"), "the deploy stopped at the canary"
    assert doc["hosts"]["h2"]["watch"] is None, "h2 was never watched"


def test_a_noisy_baseline_pauses_the_deploy_with_the_evidence_and_abort_rolls_back(
        work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = FakeHosts({"release_watch.yml": lambda r, h: watched(
        "inconclusive", 4, 5, "5 matching lines after the switch, 4 in the same time before it: "
        "the baseline is noisy")}).install(monkeypatch)
    result = CliRunner().invoke(cli, ["apply", "spec.yaml", "-i", "web.ini", "--yes"])
    assert result.exit_code == 0, result.output
    assert "paused after wave canary: the watch is inconclusive on h1" in result.output
    assert "4 in the same time before it" in result.output and TRACEBACK in result.output
    assert "h2" not in hosts.hosts_of("switch") and not hosts.hosts_of("rollback")

    code, doc, _ = invoke("abort", "sample-py313", "--yes")
    assert code == 1 and doc["outcome"] == "rolled-back", doc
    assert hosts.hosts_of("rollback") == ["h1"]
    assert doc["hosts"]["h1"]["watch"][0]["verdict"] == "inconclusive"


def test_promote_past_an_inconclusive_watch_goes_on_to_the_next_wave(
        work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = FakeHosts({"release_watch.yml": lambda r, h: watched(
        "inconclusive", 4, 5, "noisy")}).install(monkeypatch)
    code, doc, _ = invoke("apply", "spec.yaml", "-i", "web.ini", "--yes")
    assert code == 0 and doc["outcome"] == "paused" and doc["paused_for"] == "watch", doc
    assert doc["paused_at"] == "canary"
    code, doc, _ = invoke("promote", "sample-py313", "--yes")
    assert code == 0 and doc["outcome"] == "succeeded", doc
    assert hosts.hosts_of("switch") == ["h1", "h2"], "the canary is not switched again"
    assert doc["hosts"]["h2"]["watch"][0]["verdict"] == "unwatched", "stage all has no bake"


def test_the_report_shows_the_watch_findings(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeHosts({"release_watch.yml": lambda r, h: watched(
        "failed", 0, 5, "5 new matching lines after the switch")}).install(monkeypatch)
    invoke("apply", "spec.yaml", "-i", "web.ini", "--yes")
    result = CliRunner().invoke(cli, ["report", "sample-py313", "-o", "report.html"])
    assert result.exit_code == 0, result.output
    page = (work / "report.html").read_text()
    assert "verdict: failed" in page and "5 new matching lines after the switch" in page
    assert "Traceback (most recent call last):" in page


def test_plan_shows_the_watch_and_the_waves_it_watches(work: Path) -> None:
    code, doc, _ = invoke("plan", "spec.yaml", "-i", "web.ini")
    assert code == 0
    assert doc["watch"] == {"patterns": ["Traceback (most recent call last)", "CRITICAL"],
                            "max_new": 0, "restarts": 0, "inconclusive": "pause",
                            "waves": ["canary"]}
    text = CliRunner().invoke(cli, ["plan", "spec.yaml", "-i", "web.ini"]).output
    assert "bake 1s with the watch" in text
    assert "watch (during each bake, on the hosts that wave switched)" in text
    (work / "spec.yaml").write_text(SPEC.replace("watch: {}\n", ""))
    code, doc, _ = invoke("plan", "spec.yaml", "-i", "web.ini")
    assert "watch" not in doc, "without a watch section the plan keeps its shape"


def test_a_watch_without_units_to_watch_is_refused_by_validate(work: Path) -> None:
    """It would read no journal and pass every host: said at validate, with the spec's line."""
    (work / "spec.yaml").write_text(SPEC.replace("services: [sample.service], ", ""))
    code, doc, _ = invoke("validate", "spec.yaml")
    assert code == 2, doc
    text = json.dumps(doc)
    assert "watch" in text and "application.services" in text and "lists none" in text
