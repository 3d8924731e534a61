"""Running the audit playbook: what each host's outcome becomes, and the playbook's promises.

The runner here is tests/fakes.py's, answering the probe with given results (HostResult per host); that
the playbook really behaves is shown on the fleet by tests/e2e/test_audit.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from oxzep7_deploy.audit.model import AuditRequest
from oxzep7_deploy.audit.run import PLAYBOOK, REACH_TASK, run_audit, to_probe
from oxzep7_deploy.paths import playbooks_dir
from oxzep7_deploy.runner import HostResult, HostStatus
from tests.fakes import FakeHosts
from tests.unit.audit.factories import TARGET, probe_doc

NOW = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)


def audited(results: Mapping[str, HostResult]) -> FakeHosts:
    """Hosts whose audit probe answers with `results` (a HostResult per host)."""
    return FakeHosts({PLAYBOOK: lambda _request, host: results[host]})


def ok(host: str, doc: Mapping[str, Any] | None = None) -> HostResult:
    return HostResult(host, HostStatus.OK, 0, None, None, MappingProxyType(dict(doc or probe_doc())))


def test_outcomes_become_host_statuses() -> None:
    assert to_probe("h1", ok("h1")).status == "ok"
    unreachable = HostResult("h2", HostStatus.UNREACHABLE, message="Failed to connect: timed out")
    assert to_probe("h2", unreachable).message == "Failed to connect: timed out"
    frozen = HostResult("h3", HostStatus.FAILED, failed_task=REACH_TASK,
                        message="Task failed: Timed out after 15 second(s).")
    assert to_probe("h3", frozen).status == "unreachable"
    crashed = HostResult("h4", HostStatus.OK, result=MappingProxyType({"probe": 1, "error": "boom"}))
    assert (to_probe("h4", crashed).status, to_probe("h4", crashed).message) == (
        "failed", "the probe failed: boom")
    task = HostResult("h5", HostStatus.FAILED, failed_task="Probe interpreters, venvs, units, "
                      "cron and disk", message="non-zero return code")
    assert to_probe("h5", task).message == ("Probe interpreters, venvs, units, cron and disk: "
                                            "non-zero return code")
    assert to_probe("h6", None).status == "failed"


def test_run_audit_asks_for_every_host_and_reports_in_their_order(tmp_path: Path) -> None:
    runner = audited({"h2": ok("h2"), "h1": HostResult("h1", HostStatus.UNREACHABLE, message="x")})
    request = AuditRequest(("inv.ini",), ("h1", "h2"), TARGET, paths=("/data",), budget=30)
    doc = run_audit(request, runner, tmp_path, NOW)
    (sent,) = runner.requests
    assert sent.playbook == PLAYBOOK and sent.limit == ("h1", "h2")
    config = sent.extravars["oxzep7_audit"]
    assert config == {"prefix": TARGET.prefix, "app_roots": ["/srv/app"], "paths": ["/data"],
                      "venv_roots": [], "app_venv": "/srv/app/current/venv",
                      "target": TARGET.executable, "budget": 30}
    assert list(doc["hosts"]) == ["h1", "h2"] and doc["unreachable"] == ["h1"]
    assert doc["audit_date"] == "2026-11-22"


def test_without_spec_or_paths_venvs_are_looked_for_under_srv() -> None:
    config = AuditRequest(("inv.ini",), ("h1",)).probe_config()
    assert config["venv_roots"] == ["/srv"] and config["app_venv"] is None
    assert config["prefix"] == "/opt/oxzep7/python"


# ---- the playbook itself ----

def playbook() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.safe_load((playbooks_dir() / "playbooks" / PLAYBOOK).read_text())
    return loaded


def test_the_playbook_changes_nothing_by_construction() -> None:
    (play,) = playbook()
    assert play["gather_facts"] is False
    tasks = play["tasks"]
    assert tasks[0]["name"] == REACH_TASK
    modules = [next(k for k in t if k.startswith("ansible.builtin.")) for t in tasks]
    assert modules == ["ansible.builtin.raw", "ansible.builtin.script", "ansible.builtin.set_fact"]
    for task in tasks[:2]:
        assert task["changed_when"] is False
    probe = tasks[1]
    assert probe["ansible.builtin.script"]["executable"].strip().endswith("-B")  # no bytecode
    assert probe["environment"]["PYTHONDONTWRITEBYTECODE"] == "1"


def test_the_probe_options_travel_as_base64_json() -> None:
    cmd = playbook()[0]["tasks"][1]["ansible.builtin.script"]["cmd"]
    assert cmd.startswith("{{ oxzep7_audit_pyz }} --config-b64 ") and "b64encode" in cmd
    config = AuditRequest(("i",), ("h",), TARGET).probe_config()
    assert json.loads(base64.b64decode(base64.b64encode(json.dumps(config).encode()))) == config
