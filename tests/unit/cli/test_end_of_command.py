"""Nothing a command started outlives it: the ssh masters its Ansible runs leave behind
(ControlPersist) carry the command's mark and are stopped when it ends, however it ends; their
control directory is the command's own, so no other oxzep7 command's sessions go with them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from oxzep7_deploy.cli.boundary import error_boundary
from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.runner.ansible_config import AnsibleConfig, control_path_dir
from oxzep7_deploy.runner.procs import MARK_VAR, mark, marked_processes


def _lingering() -> subprocess.Popen[bytes]:
    """A stand-in for an ssh master: detached, long-lived, carrying this process's mark."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            env={**os.environ, MARK_VAR: mark()}, start_new_session=True)


@pytest.mark.parametrize("ending", ["success", "usage error", "crash"])
def test_what_a_command_started_is_stopped_when_it_ends(ending: str) -> None:
    started: list[subprocess.Popen[bytes]] = []

    @click.command()
    @error_boundary
    def cmd() -> None:
        started.append(_lingering())
        control_path_dir().mkdir(parents=True, exist_ok=True)
        if ending == "usage error":
            raise UsageError("bad input")
        if ending == "crash":
            raise RuntimeError("a bug")

    result = CliRunner().invoke(cmd, [])
    assert result.exit_code == {"success": 0, "usage error": 2, "crash": 4}[ending]
    assert started[0].wait(timeout=5) is not None  # stopped, and reaped here
    assert marked_processes() == []
    assert not control_path_dir().exists()


def test_the_control_directory_is_this_commands_own_unless_the_user_names_one(
        tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    tuned = AnsibleConfig(env).tuned_env()
    assert tuned["ANSIBLE_SSH_CONTROL_PATH_DIR"] == str(control_path_dir())
    assert mark() in tuned["ANSIBLE_SSH_CONTROL_PATH_DIR"]
    (tmp_path / ".ansible.cfg").write_text("[ssh_connection]\ncontrol_path_dir = /tmp/mine\n")
    assert "ANSIBLE_SSH_CONTROL_PATH_DIR" not in AnsibleConfig(env).tuned_env()
