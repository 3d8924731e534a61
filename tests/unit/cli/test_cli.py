"""The CLI contract (README.md "Commands"): outputs, --json documents, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from oxzep7_deploy.cli.main import cli

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "plans"
SPEC = GOLDEN / "canary-source.yaml"
INVENTORY = GOLDEN / "canary-source.ini"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_valid_spec() -> None:
    code, out, _ = invoke("validate", str(SPEC))
    assert code == 0 and out.strip() == f"{SPEC}: valid"


def test_validate_reports_every_error_with_line_and_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.read_text().replace('version: "3.13.5"', "version: 3.13")
                   .replace("max_failed", "max_faild"))
    code, out, _ = invoke("validate", str(bad))
    assert code == 2
    lines = out.strip().splitlines()
    assert f"{bad}:6:12: interpreter.version: must be a string" in lines[0]
    assert any(line.startswith(f"{bad}:23:3: rollout.max_faild: unknown key") for line in lines)


def test_validate_json_document(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.read_text().replace("name: billing-py313", "name: Billing"))
    code, out, _ = invoke("validate", str(bad), "--json")
    doc = json.loads(out)
    assert code == 2 and doc["valid"] is False
    assert doc["errors"][0]["path"] == "name" and doc["errors"][0]["line"] == 3


def test_validate_missing_file_is_a_usage_error() -> None:
    code, _, err = invoke("validate", "/nonexistent/spec.yaml")
    assert code == 2 and "Traceback" not in err


def test_plan_json_has_the_contract_shape() -> None:
    code, out, _ = invoke("plan", str(SPEC), "-i", str(INVENTORY), "--json")
    doc = json.loads(out)
    assert code == 0
    assert {"name", "release", "targets", "waves"} <= set(doc)
    assert {"name", "hosts", "batches", "gate"} <= set(doc["waves"][0])
    assert "db1" not in doc["targets"], "targets follow the host pattern billing:&prod"


def test_plan_with_a_pattern_matching_nothing_says_so(tmp_path: Path) -> None:
    inv = tmp_path / "inv.ini"
    inv.write_text("[other]\nx1\n")
    code, _, err = invoke("plan", str(SPEC), "-i", str(inv))
    assert code == 2
    assert "'billing', 'prod' in 'billing:&prod' match no host or group" in err
    assert "hint: groups there: other" in err


def test_plan_with_a_broken_inventory_names_it(tmp_path: Path) -> None:
    inv = tmp_path / "inv.ini"
    inv.write_text("[web\nh1 a=\n")
    code, _, err = invoke("plan", str(SPEC), "-i", str(inv))
    assert code == 2 and f"inventory {inv}:1: cannot be parsed" in err


def test_plan_json_error_document(tmp_path: Path) -> None:
    code, out, _ = invoke("plan", str(SPEC), "-i", str(tmp_path / "missing.ini"), "--json")
    doc = json.loads(out)
    assert code == 2 and doc["ok"] is False and "no such file" in doc["error"]


def test_audit_is_built_and_refuses_a_limit_matching_no_host(tmp_path: Path) -> None:
    inv = tmp_path / "inv.ini"
    inv.write_text("[web]\nw1\n")
    code, _, err = invoke("audit", "-i", str(inv), "--limit", "db")
    assert code == 2 and "no host matches 'db'" in err and "not built yet" not in err


def test_init_writes_a_spec_that_validates_and_refuses_to_overwrite(tmp_path: Path) -> None:
    code, _, _ = invoke("init", "--dir", str(tmp_path))
    assert code == 0
    assert invoke("validate", str(tmp_path / "oxzep7.yaml"))[0] == 0
    code, _, err = invoke("init", "--dir", str(tmp_path))
    assert code == 2 and "already exist" in err


def test_schema_prints_the_packaged_json_schema() -> None:
    code, out, _ = invoke("schema")
    assert code == 0 and json.loads(out)["$schema"].startswith("https://json-schema.org/")


def test_an_internal_error_prints_one_line_and_keeps_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OXZEP7_RECORDS", str(tmp_path / "records"))

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr("oxzep7_deploy.prepared.build_plan", boom)
    code, _, err = invoke("plan", str(SPEC), "-i", str(INVENTORY))
    assert code == 4 and "internal error: RuntimeError: kaboom" in err
    assert "Traceback" not in err
    logs = list((tmp_path / "records" / "logs").glob("*.txt"))
    assert logs and "Traceback" in logs[0].read_text()


def test_python_dash_m_runs_the_same_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "oxzep7_deploy", "validate", str(SPEC)],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "valid" in done.stdout


def test_plan_refuses_a_local_archive_that_is_not_there(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.read_text().replace("url: https://mirror.invalid/Python-3.13.5.tar.xz",
                                             "url: /nonexistent/Python-3.13.5.tar.xz"))
    code, _, err = invoke("plan", str(spec), "-i", str(INVENTORY))
    assert code == 2 and "no such file on this controller: /nonexistent/Python-3.13.5.tar.xz" in err


def test_plan_refuses_a_local_archive_path_that_is_a_directory(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.read_text().replace("url: https://mirror.invalid/Python-3.13.5.tar.xz",
                                             f"url: {tmp_path}"))
    code, _, err = invoke("plan", str(spec), "-i", str(INVENTORY))
    assert code == 2 and "no such file" not in err
    assert f"interpreter.install.url: {tmp_path} is a directory on this controller; the url " \
           "names the archive file itself" in err
    assert "hint: give the path of the archive in it" in err


def test_plan_names_a_build_host_outside_the_targets(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.read_text().replace("build_host: b3", "build_host: db1"))
    code, out, _ = invoke("plan", str(spec), "-i", str(INVENTORY))
    assert code == 0
    assert "  debian-12-x86_64: build on db1 (a build host outside the targets), ship to b1, b2, " \
           "b4, b5, b6, b7, b8, b9" in out.splitlines()
    assert "  rocky-9-x86_64: build on b3" in out.splitlines()


def test_plan_shows_what_a_percentage_batch_size_resolves_to() -> None:
    golden = Path(__file__).resolve().parents[2] / "golden" / "plans"
    result = CliRunner().invoke(cli, ["plan", str(golden / "rolling-percent.yaml"),
                                      "-i", str(golden / "rolling-percent.ini")])
    assert result.exit_code == 0, result.output
    assert "wave 1 all: switch w1,w2,w3 | w4,w5,w6 | w7;" in result.output
    assert 'batch size: "30%" of the 7 targets, rounded up: 3 hosts at a time' in result.output
