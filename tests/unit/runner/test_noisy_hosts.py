"""Reads from a host whose every command is wrapped in noise (sudo's "unable to resolve host", a
~/.bashrc that echoes, with and without a newline): status and audit still read the report, on
the controller itself through a local connection whose interpreter prints that noise first."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from oxzep7_deploy.audit.run import PLAYBOOK as AUDIT_PLAYBOOK
from oxzep7_deploy.paths import playbooks_dir
from oxzep7_deploy.runner.ansible import AnsibleRunner
from oxzep7_deploy.runner.request import HostStatus, RunRequest
from oxzep7_deploy.steps.release import read_status

sys.path.insert(0, str(playbooks_dir() / "plugins" / "filter"))
from oxzep7_output import oxzep7_report

SUDO = "sudo: unable to resolve host here: Name or service not known"


@pytest.fixture
def noisy_inventory(tmp_path: Path) -> str:
    """A local host whose python prints what a noisy host prints before any program's output."""
    wrapper = tmp_path / "noisy-python"
    wrapper.write_text(f"#!/bin/sh\necho '{SUDO}'\necho 'profile.d: mind the change freeze'\n"
                       f"printf 'bashrc: welcome, deploy '\nexec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    path = tmp_path / "inv.ini"
    path.write_text(f"here ansible_connection=local ansible_python_interpreter={wrapper}"
                    f" oxzep7_state_dir={tmp_path / 'state'}\n")
    return str(path)


def test_status_reads_a_noisy_host(noisy_inventory: str, tmp_path: Path) -> None:
    runner = AnsibleRunner(become=False)
    states = read_status(noisy_inventory, "sample", ["here"], runner, tmp_path / "run",
                         root=str(tmp_path / "srv"))
    state = states["here"]
    assert state.error is None, state.error
    assert state.current is None and state.lock is None


def test_audit_reads_a_noisy_host(noisy_inventory: str, tmp_path: Path) -> None:
    request = RunRequest(AUDIT_PLAYBOOK, noisy_inventory, ("here",), become=False,
                         extravars={"oxzep7_audit": {"paths": [str(tmp_path)], "venv_roots": [],
                                                      "budget": 30}})
    result = AnsibleRunner(become=False).run(request, tmp_path / "run")
    here = result.hosts["here"]
    assert here.status is HostStatus.OK, here.message
    assert here.result.get("interpreters"), dict(here.result)


@pytest.mark.parametrize("output", [
    f'{SUDO}\r\nbashrc: hello\r\n{{"ok": true, "n": 1}}\r\n',
    '{"ok": true, "n": 1}',
    'bashrc: no newline {"ok": true, "n": 1}\nlogout\n',
    '{"noise": "a JSON line first"}\n{"ok": true, "n": 1}\n',
])
def test_the_report_is_the_last_json_object_among_the_noise(output: str) -> None:
    assert oxzep7_report(output) == {"ok": True, "n": 1}


def test_no_report_names_the_program_and_shows_what_it_printed() -> None:
    with pytest.raises(AnsibleFilterError) as exc:
        oxzep7_report(f"{SUDO}\nTraceback (most recent call last):\n  boom\n", "oxzep7-audit.py")
    assert "oxzep7-audit.py printed no JSON report" in str(exc.value)
    assert "unable to resolve host" in str(exc.value)
    with pytest.raises(AnsibleFilterError, match="no output at all"):
        oxzep7_report("", "oxzep7-audit.py")
