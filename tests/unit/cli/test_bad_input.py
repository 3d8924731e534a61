"""Bad input is refused before any host is touched, and the CLI ends plainly when its reader
goes away or the operator says no (issue 12, item 7)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from oxzep7_deploy.cli.main import cli
from tests.unit.cli.test_several_inventories import SPEC as EXISTING_SPEC

ROOT = Path(__file__).resolve().parents[3]
UNREACHABLE = "h1 ansible_host=127.0.0.9 ansible_port=1\n"  # loopback, nothing listens there


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


# ---- a local archive's sha256 is checked before any host is contacted ----


def source_spec(tmp_path: Path, sha256: str) -> tuple[Path, Path]:
    archive = tmp_path / "Python-3.13.5.tar.xz"
    archive.write_bytes(b"not the archive the spec means")
    spec = tmp_path / "spec.yaml"
    spec.write_text(EXISTING_SPEC.replace(
        "install: {method: existing, executable: /usr/local/bin/python3.13}",
        f"install: {{method: source, url: {archive}, sha256: '{sha256}'}}"))
    return spec, archive


@pytest.mark.parametrize("command", [["apply", "--yes"], ["plan"]])
def test_a_wrong_sha256_of_a_local_archive_is_refused_before_any_host(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    records = tmp_path / "records"
    monkeypatch.setenv("OXZEP7_RECORDS", str(records))
    spec, archive = source_spec(tmp_path, "0" * 64)
    inventory = tmp_path / "inv.ini"
    inventory.write_text(UNREACHABLE)
    code, out, err = invoke(command[0], str(spec), "-i", str(inventory), *command[1:])
    actual = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert code == 2, (out, err)
    assert (f"error: {spec}: interpreter.install.sha256: checksum mismatch for {archive}: the spec "
            f"says {'0' * 64}, the file's sha256 is {actual}; no host was contacted") in err
    assert "hint: fix interpreter.install.sha256 in the spec" in err
    assert not list(records.glob("**/runs/*")), "no Ansible run (no facts) before the refusal"
    assert not (records / "deploys").exists(), "no record of a deploy"


def test_a_wrong_sha256_with_json_is_one_json_document(tmp_path: Path) -> None:
    spec, _ = source_spec(tmp_path, "f" * 64)
    code, out, _ = invoke("apply", str(spec), "-i", "127.0.0.9,", "--yes", "--json")
    doc = json.loads(out)
    assert code == 2 and doc["exit_code"] == 2 and "checksum mismatch" in doc["error"]


def test_the_right_sha256_passes(tmp_path: Path) -> None:
    spec, archive = source_spec(tmp_path, "0" * 64)
    spec.write_text(spec.read_text().replace("0" * 64, hashlib.sha256(archive.read_bytes())
                                             .hexdigest().upper()))
    code, _, err = invoke("plan", str(spec), "-i", "h1,")
    assert code == 0, err
