"""The agent's watch: the verdict rule, and the journal since the switch against the same time
before it (a stand-in `journalctl` on PATH answers with the entries a test gives it)."""

from __future__ import annotations

import json
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests import agents
from tests.unit.agent.hosts import Host, agent

TRACEBACK = "Traceback (most recent call last):"


def counts(before: int, after: int, restarts: int = 0, crashes: int = 0) -> dict[str, Any]:
    window = {"restarts": 0, "crashes": 0, "core_dumps": 0}
    return {"before": dict(window, matches=before),
            "after": dict(window, matches=after, restarts=restarts, crashes=crashes)}


@pytest.mark.parametrize(("before", "after", "max_new", "verdict"), [
    (0, 0, 0, "ok"),
    (0, 1, 0, "failed"),  # a quiet baseline: every match after the switch is new
    (0, 3, 3, "ok"),  # within max_new
    (0, 4, 3, "failed"),
    (5, 0, 0, "ok"),  # quieter than before
    (5, 5, 0, "inconclusive"),  # as noisy as before: new lines cannot be told from old ones
    (5, 10, 0, "inconclusive"),  # up to twice the baseline (plus max_new) is still noise
    (5, 11, 0, "failed"),  # a clear rise over the noise
    (5, 13, 3, "inconclusive"),
    (5, 14, 3, "failed"),
])
def test_the_verdict_of_matching_lines_against_the_window_before(
        before: int, after: int, max_new: int, verdict: str) -> None:
    got, reason = agent.verdict_of(counts(before, after), max_new=max_new)
    assert got == verdict, reason


def test_any_crash_or_a_restart_beyond_the_tolerance_fails_whatever_the_journal_says() -> None:
    assert agent.verdict_of(counts(0, 0, crashes=1))[0] == "failed"
    assert agent.verdict_of(counts(5, 5, crashes=1))[0] == "failed", "a crash is never noise"
    assert agent.verdict_of(counts(0, 0, restarts=1), restarts=0)[0] == "failed"
    assert agent.verdict_of(counts(0, 0, restarts=1), restarts=1)[0] == "ok"


def test_systemd_s_lines_count_restarts_and_crashes_and_the_app_s_lines_the_patterns() -> None:
    entries = [
        {"message": TRACEBACK, "systemd": False},
        {"message": "x" * 1000 + " CRITICAL", "systemd": False},
        {"message": "CRITICAL: but written by systemd", "systemd": True},
        {"message": "oxzep7-sample.service: Scheduled restart job, restart counter is at 1.",
         "systemd": True},
        {"message": "oxzep7-sample.service: Main process exited, code=dumped, status=11/SEGV",
         "systemd": True},
        {"message": "a line the patterns do not name", "systemd": False},
    ]
    out = agent.count_window(entries, ["Traceback (most recent call last)", "CRITICAL"],
                             lambda t: t)
    assert (out["matches"], out["restarts"], out["crashes"]) == (2, 1, 1)
    assert out["samples"][0] == TRACEBACK
    assert len(out["samples"][1]) == agent.SAMPLE_CHARS and out["samples"][1].endswith("...")


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `journalctl` on PATH that prints the entries of journal.json (one JSON per line)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    entries = tmp_path / "journal.json"
    entries.write_text("[]")
    script = bindir / "journalctl"
    script.write_text(f"#!{sys.executable}\nimport json\n"
                      f"for e in json.load(open({str(entries)!r})): print(json.dumps(e))\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setattr(agents.modules("oxzep7-host")["watch"], "has_systemd", lambda: True)
    return entries


def entry(at: float, message: str, systemd: bool = False) -> dict[str, Any]:
    doc = {"__REALTIME_TIMESTAMP": str(int(at * 1e6)), "MESSAGE": message,
           "_SYSTEMD_UNIT": "init.scope" if systemd else "demo.service"}
    if systemd:
        doc.update(_PID="1", UNIT="demo.service")
    return doc


def switched(host: Host, rid: str = "r2") -> dict[str, Any]:
    host.register(rid, config={"services": ["demo.service"], "env_keys": ["APP_TOKEN"]})
    host.ok("switch", "--release", rid, "--deploy", f"dep-{rid}")
    return host.state["releases"][rid]


def test_the_switch_records_when_it_happened(host: Host) -> None:
    before = time.time()
    rel = switched(host)
    assert before <= rel["switched_at"] <= time.time()


def test_new_tracebacks_since_the_switch_fail_the_host_with_samples_and_no_secret(
        host: Host, journal: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TOKEN", "s3cr3t-token")
    rel = switched(host)
    at = rel["switched_at"]
    journal.write_text(json.dumps([
        entry(at - 0.5, "serving: old release"),  # before the switch, nothing matching
        entry(at + 0.1, TRACEBACK),
        entry(at + 0.2, "CRITICAL token=s3cr3t-token"),
    ]))
    time.sleep(0.3)
    doc = host.ok("watch", "--release", "r2", stdin=json.dumps(
        {"patterns": ["Traceback (most recent call last)", "CRITICAL"], "max_new": 0,
         "restarts": 0}))
    watch = doc["watch"]
    assert watch["verdict"] == "failed", watch
    assert (watch["before"]["matches"], watch["after"]["matches"]) == (0, 2)
    assert "s3cr3t-token" not in json.dumps(doc)


def test_the_same_noise_before_the_switch_makes_the_watch_inconclusive(
        host: Host, journal: Path) -> None:
    rel = switched(host)
    at = rel["switched_at"]
    time.sleep(0.6)
    journal.write_text(json.dumps(
        [entry(at - 0.1 * i, TRACEBACK) for i in range(1, 4)]  # the old release was noisy
        + [entry(at + 0.1 * i, TRACEBACK) for i in range(1, 4)]
        + [entry(at - 50, TRACEBACK)]))  # long before: outside the same-length window
    doc = host.ok("watch", "--release", "r2", stdin=json.dumps({"patterns": ["Traceback"]}))
    watch = doc["watch"]
    assert watch["verdict"] == "inconclusive", watch
    assert (watch["before"]["matches"], watch["after"]["matches"]) == (3, 3)


def test_without_a_journal_nothing_is_watched_and_it_says_why(host: Host,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    switched(host)
    monkeypatch.setattr(agents.modules("oxzep7-host")["watch"], "has_systemd", lambda: False)
    watch = host.ok("watch", "--release", "r2", stdin="{}")["watch"]
    assert watch["verdict"] == "unavailable" and "no systemd journal" in watch["reason"]


def test_a_release_that_is_not_current_is_not_watched(host: Host) -> None:
    switched(host)
    rc, doc = host.call("watch", "--release", "nope", stdin="{}")
    assert rc != 0 and doc["code"] == "not-current", doc
