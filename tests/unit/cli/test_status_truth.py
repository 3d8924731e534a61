"""`status` and `history` when some hosts cannot be read: named, with the reason in its own
column, exit 1; "unreachable" only when SSH could not reach the host; one host's unreadable state
does not stop the others.

Each host's answer is the real host agent's, run on a temp "host"; the runner is the stand-in
(the real runner and agent together are tests/e2e).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import pytest
from click.testing import CliRunner

from oxzep7_deploy.cli.main import cli
from oxzep7_deploy.runner.request import HostResult, HostStatus, RunRequest
from tests.fakes import Answer, FakeHosts
from tests.unit.agent.hosts import Host


def agent_answers(hosts: dict[str, Host]) -> dict[str, Answer]:
    """The status playbook answered by each temp host's own agent."""
    def status(_request: RunRequest, name: str) -> HostResult:
        rc, doc = hosts[name].call("state")
        status = HostStatus.OK if rc == 0 and doc["ok"] else HostStatus.FAILED
        return HostResult(name, status, failed_task=None if rc == 0 else "State unreadable",
                          message=None if rc == 0 else doc["error"],
                          result=MappingProxyType({**doc, "step": "status"}))

    return {"release_status.yml": status}


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Host]:
    """h1 fine; h2 down; h3 a torn state.json; h4 a state with a release status no one knows."""
    monkeypatch.setenv("OXZEP7_RECORDS", str(tmp_path / "records"))
    hosts = {name: Host(tmp_path / name, app="sample") for name in ("h1", "h2", "h3", "h4")}
    for host in hosts.values():
        host.initial()
        host.deploy("r1")
    state3 = hosts["h3"].state_dir / "sample" / "state.json"
    state3.write_text(state3.read_text()[:40])
    state4 = hosts["h4"].state_dir / "sample" / "state.json"
    doc = json.loads(state4.read_text())
    doc["releases"]["r1"]["status"] = "weird"
    state4.write_text(json.dumps(doc))
    FakeHosts(agent_answers(hosts), unreachable={"h2"}).install(monkeypatch)
    return hosts


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def table_rows(out: str) -> dict[str, list[str]]:
    """host -> its cells, a cell folded over several lines joined back (without spaces)."""
    rows: dict[str, list[str]] = {}
    last: list[str] = []
    for line in out.splitlines():
        if not line.startswith("│"):
            continue
        cells = [c.replace(" ", "") for c in line.split("│")[1:-1]]
        if cells[0] in ("host", ""):
            last[:] = [a + b for a, b in zip(last, cells, strict=True)] if cells[0] == "" else last
            continue
        last = rows[cells[0]] = cells[1:]
        last.insert(0, "")  # keeps the zip above aligned with the host column
    return {h: c[1:] for h, c in rows.items()}


def test_status_names_each_host_not_read_with_its_reason_and_exits_1(fleet: dict[str, Host]
                                                                     ) -> None:
    code, out, err = invoke("status", "-i", "h1,h2,h3,h4,", "--app", "sample")
    assert code == 1, (out, err)
    rows = table_rows(out)
    assert rows["h1"][0] == "r1" and rows["h1"][-1] == ""
    assert rows["h2"][0] == "unreachable" and "ssh:timedout" in rows["h2"][-1]
    assert rows["h3"][0] == "unreadable" and "state.jsonisnotvalidJSON" in rows["h3"][-1]
    assert rows["h4"][0] == "unreadable" and "unknownstatus'weird'" in rows["h4"][-1]
    assert "4 hosts: 2 unreadable, 1 on 3.11.7, 1 unreachable" in out
    assert "could not read 3 host(s): h2, h3, h4" in err


def test_status_json_says_it_is_incomplete_and_why(fleet: dict[str, Host]) -> None:
    code, out, _ = invoke("status", "-i", "h1,h2,h3,h4,", "--app", "sample", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["complete"] is False
    assert {h: m["reason"] for h, m in doc["not_read"].items()} == {
        "h2": "unreachable", "h3": "unreadable", "h4": "unreadable"}
    assert doc["hosts"]["h1"]["current"] == "r1" and doc["hosts"]["h3"]["unreachable"] is False


def test_history_goes_on_past_an_unreadable_host_and_exits_1(fleet: dict[str, Host]) -> None:
    code, out, _ = invoke("history", "-i", "h1,h2,h3,h4,", "--app", "sample", "--json")
    doc = json.loads(out)
    assert code == 1, doc
    assert doc["unreachable"] == ["h2"], "unreachable means SSH could not reach it, nothing else"
    assert set(doc["not_read"]) == {"h2", "h3", "h4"}
    assert "not valid JSON" in doc["not_read"]["h3"]["error"]
    assert any(r["release"] == "r1" and "h1" in r["hosts"] for r in doc["releases"])
    code, out, _ = invoke("history", "-i", "h1,h2,h3,h4,", "--app", "sample")
    assert code == 1 and "hosts not read" in out
    assert "unknownstatus'weird'" in "".join(table_rows(out)["h4"])


def test_status_of_readable_hosts_exits_0(fleet: dict[str, Host]) -> None:
    code, out, _ = invoke("status", "-i", "h1,", "--app", "sample")
    assert code == 0 and "1 host: 1 on 3.11.7" in out
    assert "not read" not in out, "no empty reason column when every host was read"
    assert table_rows(out)["h1"][0] == "r1"
