"""Merging host probes into the audit document: EOL, broken venvs, what units and cron run."""

from __future__ import annotations

import datetime as dt
import json
from types import MappingProxyType

from oxzep7_deploy.audit.model import HostProbe
from oxzep7_deploy.audit.report import build_report, venv_problems
from tests.unit.audit.factories import PYENV38, SYSTEM, TARGET, probe_doc, venv

NOW = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.timezone.utc)
TODAY = NOW.date()


def ok(host: str, **over: object) -> HostProbe:
    return HostProbe(host, "ok", None, MappingProxyType(probe_doc(**over)))


def test_the_document_has_the_contract_shape_and_is_json() -> None:
    doc = build_report([ok("h1"), HostProbe("h2", "unreachable", "ssh: timed out")], NOW, TODAY)
    assert json.loads(json.dumps(doc)) == doc
    assert set(doc) == {"audited_at", "audit_date", "target", "hosts", "unreachable", "failed",
                        "summary"}
    assert doc["audited_at"] == "2026-11-22T03:00:00+00:00" and doc["audit_date"] == "2026-11-22"
    assert list(doc["hosts"]) == ["h1", "h2"]
    assert set(doc["hosts"]["h1"]) >= {"status", "os", "disk", "interpreters", "venvs", "units",
                                       "cron", "upgrade", "warnings"}


def test_unreachable_and_failed_hosts_are_listed_and_the_others_complete() -> None:
    doc = build_report([HostProbe("h1", "unreachable", "no answer"), ok("h2"),
                        HostProbe("h3", "failed", "the probe failed: boom")], NOW, TODAY)
    assert doc["unreachable"] == ["h1"] and doc["failed"] == ["h3"]
    assert doc["hosts"]["h1"] == {"status": "unreachable", "message": "no answer"}
    assert doc["hosts"]["h2"]["status"] == "ok"
    s = doc["summary"]
    assert (s["hosts"], s["audited"], s["unreachable"], s["failed"], s["complete"]) == (3, 1, 1, 1, False)


def test_eol_of_each_interpreter_is_judged_on_the_audit_date() -> None:
    host = build_report([ok("h1")], NOW, TODAY)["hosts"]["h1"]
    by_path = {i["realpath"]: i for i in host["interpreters"]}
    assert by_path[PYENV38]["eol"] is True and by_path[PYENV38]["eol_date"] == "2024-10-07"
    assert by_path[SYSTEM]["eol"] is False and by_path[SYSTEM]["branch"] == "3.11"
    later = build_report([ok("h1")], NOW, dt.date(2027, 11, 1))["hosts"]["h1"]
    assert all(i["eol"] for i in later["interpreters"])


def test_broken_venvs() -> None:
    host = build_report([ok("h1")], NOW, TODAY)["hosts"]["h1"]
    venvs = {v["path"]: v for v in host["venvs"]}
    assert venvs["/srv/app/releases/r0/venv"]["broken"] is True
    assert venvs["/srv/app/current/venv"]["broken"] is False


def test_a_venv_whose_python_now_runs_another_minor_version_is_broken() -> None:
    moved = venv("/srv/old/venv", "/usr/bin/python3", version="3.9.2", running="3.11.2")
    assert venv_problems(moved) == [
        "built on Python 3.9.2 but its python now runs 3.11.2: "
        "lib/python3.9/site-packages is not on its path"]
    assert venv_problems(venv("/v", "/usr/bin/python3", "3.11.2", "3.11.4")) == []


def test_units_and_cron_carry_the_version_of_what_they_run() -> None:
    host = build_report([ok("h1")], NOW, TODAY)["hosts"]["h1"]
    units = {u["unit"]: u for u in host["units"]}
    assert units["pyhttp.service"]["version"] == "3.11.2" and units["pyhttp.service"]["eol"] is False
    assert units["app.service"]["venv"] == "/srv/app/current/venv"
    assert units["app.service"]["version"] == "3.11.2" and units["app.service"]["problems"] == []
    (job,) = host["cron"]
    assert job["python"] == PYENV38 and job["version"] == "3.8.18" and job["eol"] is True


def test_a_unit_on_a_broken_venv_says_so() -> None:
    doc = probe_doc()
    doc["units"][1]["venv"] = "/srv/app/releases/r0/venv"
    host = build_report([HostProbe("h1", "ok", None, doc)], NOW, TODAY)["hosts"]["h1"]
    (problem,) = host["units"][1]["problems"]
    assert problem.startswith("runs on a broken venv /srv/app/releases/r0/venv: the interpreter")


def test_a_changed_task_is_a_warning_never_silent() -> None:
    probe = HostProbe("h1", "ok", None, MappingProxyType(probe_doc()), changed=1)
    host = build_report([probe], NOW, TODAY)["hosts"]["h1"]
    assert any("changed task" in w for w in host["warnings"])


def test_summary_counts() -> None:
    doc = build_report([ok("h1"), ok("h2")], NOW, TODAY, TARGET)
    s = doc["summary"]
    assert s["interpreters"] == 4 and s["eol_interpreters"] == 2
    assert s["hosts_with_eol"] == ["h1", "h2"]
    assert s["versions"] == {"3.11.2": 2, "3.8.18": 2}
    assert (s["venvs"], s["broken_venvs"], s["units"], s["cron"]) == (4, 2, 4, 2)
    assert s["risks"] == 4 and s["hosts_at_risk"] == ["h1", "h2"]
    assert doc["target"]["venv"] == "/srv/app/current/venv"


def test_without_a_spec_there_is_no_upgrade() -> None:
    host = build_report([ok("h1")], NOW, TODAY)["hosts"]["h1"]
    assert host["upgrade"] is None
