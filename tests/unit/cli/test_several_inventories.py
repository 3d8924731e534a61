"""Several -i, as Ansible takes them, on every command that reaches hosts; host lists as written.

The hosts are tests/fakes.py's stand-in at the runner seam; the real runner with several
sources is tests/unit/runner, and on a real fleet tests/e2e/test_rollout.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oxzep7_deploy.cli.main import cli
from tests.fakes import FakeHosts

SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: sample-py313
targets: all
interpreter:
  version: "3.13.5"
  install: {method: existing, executable: /usr/local/bin/python3.13}
application: {name: sample, root: /srv/sample}
"""


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> FakeHosts:
    return FakeHosts().install(monkeypatch)


@pytest.fixture
def web(tmp_path: Path) -> str:
    path = tmp_path / "web.ini"
    path.write_text("[web]\nh1\nh2\n")
    return str(path)


def invoke(*args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(cli, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout), result.stderr


@pytest.mark.parametrize("command", [
    ["status", "--app", "sample"],
    ["history", "--app", "sample"],
    ["rollback", "--app", "sample", "--yes"],
    ["unlock", "--app", "sample", "--yes"],
    ["audit"],
])
def test_host_commands_take_several_inventories(runner: FakeHosts, web: str,
                                                command: list[str]) -> None:
    code, doc, err = invoke(*command, "-i", web, "-i", "db1,")
    assert code == 0, (doc, err)
    hosts = doc["hosts"] if command[0] != "history" else None
    assert hosts is None or set(hosts) == {"h1", "h2", "db1"}, "hosts of both sources"
    assert runner.requests and all(r.sources == (web, "db1,") for r in runner.requests)


def test_apply_takes_several_inventories_and_promote_reads_them_back(
        runner: FakeHosts, web: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC + "rollout:\n  stages:\n"
                    "    - {name: canary, hosts: 1, promote: manual}\n"
                    "    - {name: all, hosts: '100%'}\n")
    code, report, err = invoke("apply", str(spec), "-i", web, "-i", "db1,", "--yes")
    assert code == 0 and report["outcome"] == "paused", (report, err)
    assert all(r.sources == (web, "db1,") for r in runner.requests)
    runner.requests.clear()
    code, report, err = invoke("promote", "sample-py313", "--yes")
    assert code == 0 and report["outcome"] == "succeeded", (report, err)
    assert set(report["hosts"]) == {"h1", "h2", "db1"}
    assert runner.requests and all(r.sources == (web, "db1,") for r in runner.requests), \
        "promote runs on the inventories apply recorded"


def test_a_host_list_alone_is_passed_as_written(runner: FakeHosts, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, doc, err = invoke("status", "--app", "sample", "-i", "h1,h2,")
    assert code == 0 and list(doc["hosts"]) == ["h1", "h2"], (doc, err)
    assert [r.sources for r in runner.requests] == [("h1,h2,",)]
