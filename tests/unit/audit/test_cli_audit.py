"""`oxzep7-deploy audit`: options, host selection, --json, the text tables, exit codes.

The hosts are tests/fakes.py's stand-in at the runner seam; the
real playbook on real hosts is tests/e2e/test_audit.py.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import MappingProxyType

import pytest
from click.testing import CliRunner
from rich.console import Console

from oxzep7_deploy.audit.model import HostProbe
from oxzep7_deploy.audit.report import build_report
from oxzep7_deploy.cli.cmd_audit import audit_cmd, fleet_rows, host_rows, print_report
from oxzep7_deploy.runner import HostResult, HostStatus
from tests.fakes import FakeHosts
from tests.unit.audit.factories import TARGET, probe_doc
from tests.unit.audit.test_run import audited, ok

SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: app-py313
targets: app
interpreter:
  version: "3.13.5"
  install: {method: existing, executable: /usr/local/bin/python3.13}
application: {name: app, root: /srv/app}
"""


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, FakeHosts]:
    (tmp_path / "inv.ini").write_text("[app]\nh1\nh2\n[db]\nd1\n")
    (tmp_path / "spec.yaml").write_text(SPEC)
    monkeypatch.setenv("OXZEP7_RECORDS", str(tmp_path / "records"))
    runner = audited({"h1": ok("h1"), "h2": ok("h2"), "d1": ok("d1"),
                         "h3": HostResult("h3", HostStatus.UNREACHABLE, message="ssh: timed out")})
    runner.install(monkeypatch)
    return tmp_path, runner


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(audit_cmd, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_json_is_one_document_and_the_run_is_kept(world: tuple[Path, FakeHosts]) -> None:
    tmp, runner = world
    code, out, _ = invoke("-i", str(tmp / "inv.ini"), "--json")
    doc = json.loads(out)
    assert code == 0 and list(doc["hosts"]) == ["h1", "h2", "d1"] and doc["target"] is None
    assert runner.requests[0].limit == ("h1", "h2", "d1")
    (saved,) = (tmp / "records" / "audits").glob("*/audit.json")
    assert json.loads(saved.read_text()) == doc


def test_with_a_spec_only_its_targets_narrowed_by_limit(world: tuple[Path, FakeHosts]) -> None:
    tmp, runner = world
    code, out, _ = invoke(str(tmp / "spec.yaml"), "-i", str(tmp / "inv.ini"), "--limit", "h2,d1",
                          "--path", "/data", "--json")
    doc = json.loads(out)
    assert code == 0 and list(doc["hosts"]) == ["h2"]
    assert doc["target"]["version"] == "3.13.5" and doc["hosts"]["h2"]["upgrade"]["change"]
    assert runner.requests[0].extravars["oxzep7_audit"]["paths"] == ["/data"]


def test_an_unreachable_host_is_reported_and_the_audit_exits_1(world: tuple[Path, FakeHosts]) -> None:
    tmp, _ = world
    (tmp / "inv.ini").write_text("h1\nh3\n")
    code, out, _ = invoke("-i", str(tmp / "inv.ini"), "--json")
    doc = json.loads(out)
    assert code == 1 and doc["unreachable"] == ["h3"] and doc["summary"]["complete"] is False
    assert doc["hosts"]["h1"]["status"] == "ok"  # the others are audited all the same
    code, out, err = invoke("-i", str(tmp / "inv.ini"))
    assert code == 1 and "h3: unreachable: ssh: timed out" in out
    assert "not audited: h3" in err


def test_eol_is_judged_on_the_date_given(world: tuple[Path, FakeHosts]) -> None:
    tmp, _ = world
    code, out, _ = invoke("-i", str(tmp / "inv.ini"), "--limit", "h1", "--on", "2024-01-01", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["audit_date"] == "2024-01-01" and doc["summary"]["eol_interpreters"] == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--limit", "nothing"], "no host matches 'nothing'"),
    (["--limit", "d1", "SPEC"], "--limit d1: none of the spec targets match it"),
    (["--path", "relative/dir"], "--path relative/dir: must be an absolute path"),
])
def test_usage_errors_exit_2(world: tuple[Path, FakeHosts], args: list[str], message: str) -> None:
    tmp, runner = world
    args = [str(tmp / "spec.yaml") if a == "SPEC" else a for a in args]
    code, _, err = invoke(*args, "-i", str(tmp / "inv.ini"))
    assert code == 2 and message in err and not runner.requests


def test_a_host_list_inventory_is_audited_as_written(world: tuple[Path, FakeHosts]) -> None:
    _, runner = world
    code, out, _ = invoke("-i", "h1,h2,", "--json")
    assert code == 0 and list(json.loads(out)["hosts"]) == ["h1", "h2"]
    assert runner.requests[0].sources == ("h1,h2,",)


def test_an_invalid_spec_exits_2(world: tuple[Path, FakeHosts]) -> None:
    tmp, _ = world
    (tmp / "bad.yaml").write_text(SPEC.replace("3.13.5", "3.13"))
    code, _, err = invoke(str(tmp / "bad.yaml"), "-i", str(tmp / "inv.ini"))
    assert code == 2 and "interpreter.version" in err


# ---- the text report ----

def report() -> dict[str, object]:
    probes = [HostProbe("h1", "ok", None, MappingProxyType(probe_doc())),
              HostProbe("h2", "unreachable", "ssh: timed out")]
    now = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)
    return build_report(probes, now, now.date(), TARGET)


def test_fleet_rows() -> None:
    rows = fleet_rows(report())  # type: ignore[arg-type]
    assert rows[0][:10] == ["h1", "ok", "debian 12", "x86_64", "20.0 GiB", 2, 1, "2 (1)", 2, 1]
    assert rows[0][10] == "3.11.2 -> 3.13.5, 2 risk(s)"
    assert rows[1][:2] == ["h2", "unreachable"]


def test_host_rows_show_each_planted_case() -> None:
    rows = host_rows(report()["hosts"]["h1"])  # type: ignore[index]
    text = "\n".join(" | ".join(str(c) for c in r) for r in rows)
    assert ("interpreter | /home/deploy/.pyenv/versions/3.8.18/bin/python3.8 | pyenv, referenced | "
            "3.8.18 | EOL since 2024-10-07") in text
    assert "venv | /srv/app/releases/r0/venv | /opt/tmpy/bin/python3.11 | 3.11.2 | BROKEN: " in text
    assert "unit | pyhttp.service (enabled, running) | /usr/bin/python3 | 3.11.2 | supported" in text
    assert ("cron | deploy: */10 * * * * (/var/spool/cron/crontabs/deploy:2) | "
            "/home/deploy/.pyenv/versions/3.8.18/bin/python3.8 | 3.8.18 | EOL since 2024-10-07") in text
    assert "risk | requires-python |  |  | oldpkg 1.0 declares Requires-Python >=3.6, <3.12" in text
    assert "risk | c-extension |  |  | fastpkg 2.0: 1 compiled extension(s)" in text


def test_print_report_renders_without_error() -> None:
    console = Console(record=True, width=200)
    print_report(report(), console)
    text = console.export_text()
    assert "h1: Debian GNU/Linux 12 (bookworm) x86_64" in text and "h2: unreachable" in text
