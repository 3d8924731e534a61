"""`report NAME`: the page drawn from real records of a deploy with a canary wave, a manual gate,
a failure and a rollback (conftest.py); what a user reads there, the errors, and `--json`.

What a browser shows of the same page is tests/unit/report/test_browser.py."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.unit.report.conftest import HOSTILE, NAME, Deploy, invoke, invoke_json


class Page(HTMLParser):
    """The elements of a page with their attributes, and its text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def with_class(self, name: str) -> list[dict[str, str | None]]:
        return [a for _, a in self.elements if name in (a.get("class") or "").split()]

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


def report(*args: str) -> tuple[Path, Page]:
    code, doc, err = invoke_json("report", NAME, *args)
    assert code == 0, (doc, err)
    path = Path(doc["path"])
    return path, Page(path.read_text())


def test_the_page_shows_each_host_its_steps_the_waves_gates_and_outcome(rolled_back: Deploy) -> None:
    path, page = report()
    assert path == rolled_back.records / "deploys" / NAME / rolled_back.release / "report.html"
    assert [a["data-host"] for a in page.with_class("host-row")] == ["web-1", "web-2", "web-3"]
    assert "outcome rolled-back exit code 1" in page.words
    lines = {(a["class"], a["data-wave"]) for a in page.with_class("gate-line")}
    assert lines == {("gate-line wave-line", "canary"), ("gate-line wave-line", "all"),
                     ("gate-line paused-line", "all"), ("gate-line promoted-line", "all")}
    phases = [a["class"] for a in page.with_class("seg")]
    for phase in ("prepared", "switched", "healthy", "rolled-back", "failed"):
        assert f"seg phase-{phase}" in phases, phase
    assert len(page.with_class("failure-marker")) == 1, "web-3's switch"
    assert len(page.with_class("rollback-marker")) == 2, "web-1 and web-2 were put back"
    assert "canary 1: web-1 promote auto done" in page.words
    assert "all 2: web-2, web-3 promote manual stopped in it (rolled-back) paused" in page.words
    assert "web-3 rolled-back switch " + HOSTILE in page.words


def test_a_message_from_a_host_is_text_never_markup(rolled_back: Deploy) -> None:
    path, page = report()
    text = path.read_text()
    assert "<script" not in text and "<b>bold" not in text
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in text
    assert not [tag for tag, _ in page.elements if tag in ("script", "b")]


def test_the_page_is_self_contained(rolled_back: Deploy) -> None:
    """Opened offline, printed, mailed: nothing is fetched, nothing runs."""
    path, page = report()
    text = path.read_text()
    assert not [a for _, a in page.elements if "src" in a or "href" in a]
    assert "url(" not in text and "@import" not in text
    assert re.findall(r"https?://[^\s\"']+", text) == ["http://www.w3.org/2000/svg"], \
        "the SVG namespace is the only address"
    assert "@media print" in text


def test_without_release_the_latest_deploy_with_release_the_one_asked(rolled_back: Deploy) -> None:
    code, doc, err = invoke_json("apply", str(rolled_back.spec), "-i", "web-1,web-2,web-3,", "--yes")
    assert code == 0 and doc["outcome"] == "paused", (doc, err)
    second = doc["release"]
    assert second == f"{rolled_back.release}.2"
    code, latest, _ = invoke_json("report", NAME)
    assert (code, latest["release"], latest["deploy"]) == (0, second, NAME)
    assert "outcome paused" in Page(Path(latest["path"]).read_text()).words
    path, page = report("--release", rolled_back.release)
    assert "outcome rolled-back" in page.words and rolled_back.release in str(path)


def test_o_writes_the_page_there_and_prints_its_path(rolled_back: Deploy, tmp_path: Path) -> None:
    out = tmp_path / "pages" / "deploy.html"
    code, stdout, err = invoke("report", NAME, "-o", str(out))
    assert (code, stdout, err) == (0, f"{out}\n", "")
    assert "web-3" in out.read_text()


def test_restart_gap_and_watch_findings_are_shown_when_the_records_hold_them(
        rolled_back: Deploy) -> None:
    """The fields other commands add per host (restart_gap_s, watch): shown when present,
    "not measured" / "no watch configured" when not."""
    final = rolled_back.records / "deploys" / NAME / rolled_back.release / "report.json"
    doc: dict[str, Any] = json.loads(final.read_text())
    doc["hosts"]["web-1"].update(restart_gap_s=0.42,
                                 watch=[{"check": "journal", "new": 3, "line": "<Traceback>"}])
    doc["hosts"]["web-2"]["watch"] = []
    final.write_text(json.dumps(doc))
    _, page = report()
    rows = {a["data-host"] for a in page.with_class("host")}
    assert rows == {"web-1", "web-2", "web-3"}
    words = page.words
    assert "0.42 s check: journal; new: 3; line: <Traceback>" in words
    assert "web-2 rolled-back not measured none" in words
    assert words.count("no watch configured") == 1 and words.count("not measured") == 2


def test_records_written_before_step_times_still_give_a_page(rolled_back: Deploy) -> None:
    progress = rolled_back.records / "deploys" / NAME / rolled_back.release / "progress.json"
    doc = json.loads(progress.read_text())
    del doc["timeline"]
    progress.write_text(json.dumps(doc))
    _, page = report()
    assert "No step times in these records" in page.words
    assert "web-3 rolled-back switch" in page.words


@pytest.mark.parametrize(("args", "error", "hint"), [
    (["other-py313"], "no deploy named 'other-py313' in the records at", "directory where apply ran"),
    ([NAME, "--release", "3.13.5-nope"], "deploy app-py313 has no release '3.13.5-nope'",
     "its releases, latest first: 3.13.5-"),
    ([NAME, "-o", "/proc/version/report.html"], "cannot write the report to /proc/version/",
     "choose a writable place with -o FILE"),
    (["../etc"], "'../etc' is not a deploy name", "--help"),
])
def test_errors_exit_2_with_what_and_what_next(rolled_back: Deploy, args: list[str], error: str,
                                               hint: str) -> None:
    code, doc, _ = invoke_json("report", *args)
    assert code == 2 and doc["exit_code"] == 2, doc
    assert error in doc["error"] and hint in doc["hint"], doc
    code, out, err = invoke("report", *args)
    assert code == 2 and out == "" and "Traceback" not in err
    assert error in err


def test_damaged_records_are_a_clear_error(rolled_back: Deploy) -> None:
    plan = rolled_back.records / "deploys" / NAME / rolled_back.release / "plan.json"
    plan.write_text("{not json")
    code, doc, _ = invoke_json("report", NAME)
    assert code == 2 and str(plan) in doc["error"] and "--release" in doc["hint"], doc


def test_no_host_is_contacted(rolled_back: Deploy, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("report reached for a runner")

    monkeypatch.setattr("oxzep7_deploy.cli.runners.runner_factory", refuse)
    report()


def test_an_unreadable_output_directory_is_refused_before_anything(rolled_back: Deploy,
                                                                   tmp_path: Path) -> None:
    if os.geteuid() == 0:
        out = tmp_path  # root writes anywhere: a directory given as the file instead
        code, doc, _ = invoke_json("report", NAME, "-o", str(out))
        assert code == 2 and "is a directory" in doc["error"], doc
        return
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, doc, _ = invoke_json("report", NAME, "-o", str(locked / "r.html"))
    assert code == 2 and "cannot write the report" in doc["error"], doc


def test_a_long_wait_at_the_gate_is_cut_short_so_the_steps_stay_visible(rolled_back: Deploy) -> None:
    """Promoted two hours after the pause: the wait is a narrow break saying `2h00m`, and each
    side's steps keep their width."""
    import datetime as dt

    progress = rolled_back.records / "deploys" / NAME / rolled_back.release / "progress.json"
    doc = json.loads(progress.read_text())
    later = False
    for entry in doc["timeline"]:
        later = later or entry.get("event") == "promoted"
        for key in ("start", "end", "at"):
            if later and key in entry:
                moment = dt.datetime.fromisoformat(entry[key]) + dt.timedelta(hours=2)
                entry[key] = moment.isoformat(timespec="milliseconds")
    progress.write_text(json.dumps(doc))
    _, page = report()
    assert len(page.with_class("axis-break")) == 1 and "2h00m" in page.words
    cut = next(a for tag, a in page.elements if tag == "rect" and a.get("opacity") == "0.6")
    canary_switch = page.with_class("phase-switched")[0]
    rollback = page.with_class("phase-rolled-back")[0]
    assert float(canary_switch["x"] or 0) < float(cut["x"] or 0) < float(rollback["x"] or 0), \
        "the canary's switch left of the break, the rollback after the promote right of it"
    assert float(cut["width"] or 0) < 40, "the two hours take a narrow band"
