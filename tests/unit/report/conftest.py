"""Real deploy records to draw: `apply`, `promote` as a user runs them, with tests/fakes.py's
hosts at the runner seam (the engine, the release steps and the records are the real ones)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oxzep7_deploy.cli.main import cli
from oxzep7_deploy.runner import RunRequest
from tests.fakes import FakeHosts

NAME = "app-py313"
SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: app-py313
targets: all
interpreter:
  version: "3.13.5"
  install: {method: existing, executable: /usr/local/bin/python3.13}
application: {name: app, root: /srv/app}
rollout:
  strategy: canary
  stages:
    - {name: canary, hosts: 1}
    - {name: all, hosts: "100%", promote: manual}
"""
HOSTS = "web-1,web-2,web-3,"
# what web-3's switch says: a message from the host, with markup in it
HOSTILE = '<script>alert("owned")</script> health: 503 & <b>bold</b>'


@dataclass(frozen=True)
class Deploy:
    records: Path
    release: str
    spec: Path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def invoke_json(*args: str) -> tuple[int, Any, str]:
    code, out, err = invoke(*args, "--json")
    return code, json.loads(out), err


@pytest.fixture
def records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "records"
    monkeypatch.setenv("OXZEP7_RECORDS", str(root))
    return root


def _switch(request: RunRequest, host: str) -> dict[str, Any]:
    return {"ok": False, "error": HOSTILE} if host == "web-3" else {"ok": True}


@pytest.fixture
def rolled_back(records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Deploy:
    """A canary wave, a manual gate promoted, web-3 failing its switch in wave `all`, and the
    rollback of what was switched: outcome rolled-back, exit 1."""
    FakeHosts({"release_switch.yml": _switch}).install(monkeypatch)
    spec = tmp_path / "app.yaml"
    spec.write_text(SPEC)
    code, doc, err = invoke_json("apply", str(spec), "-i", HOSTS, "--yes")
    assert code == 0 and doc["outcome"] == "paused", (doc, err)
    code, doc, err = invoke_json("promote", NAME, "--yes")
    assert code == 1 and doc["outcome"] == "rolled-back", (doc, err)
    return Deploy(records, doc["release"], spec)
