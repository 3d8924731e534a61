"""Host key checking as Ansible has it: on unless the user's configuration or environment turns
it off (ansible-runner alone would turn it off), and a refused host key named with its fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oxzep7_deploy.runner.ansible import ansible_env
from oxzep7_deploy.runner.events import HostResultCollector
from oxzep7_deploy.runner.request import HostStatus


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory and HOME with no ansible.cfg."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    return work


def base(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    return {**env, **extra}


def test_on_by_default(nowhere: Path) -> None:
    assert ansible_env(base())["ANSIBLE_HOST_KEY_CHECKING"] == "True"


def test_the_user_s_environment_wins(nowhere: Path) -> None:
    assert ansible_env(base(ANSIBLE_HOST_KEY_CHECKING="False"))["ANSIBLE_HOST_KEY_CHECKING"] == "False"
    env = ansible_env(base(ANSIBLE_SSH_HOST_KEY_CHECKING="no"))
    assert env["ANSIBLE_SSH_HOST_KEY_CHECKING"] == "no" and "ANSIBLE_HOST_KEY_CHECKING" not in env


@pytest.mark.parametrize("where", ["cwd", "home", "ANSIBLE_CONFIG"])
def test_the_user_s_ansible_cfg_wins(nowhere: Path, where: str) -> None:
    text = "[defaults]\nhost_key_checking = False  ; test hosts only\n"
    if where == "cwd":
        (nowhere / "ansible.cfg").write_text(text)
        env = base()
    elif where == "home":
        (nowhere.parent / "home" / ".ansible.cfg").write_text(text)
        env = base(HOME=str(nowhere.parent / "home"))
    else:
        (nowhere.parent / "mine.cfg").write_text(text)
        env = base(ANSIBLE_CONFIG=str(nowhere.parent / "mine.cfg"))
    assert ansible_env(env)["ANSIBLE_HOST_KEY_CHECKING"] == "False"


def test_ssh_connection_section_and_a_config_that_says_nothing(nowhere: Path) -> None:
    (nowhere / "ansible.cfg").write_text(
        "[defaults]\nhost_key_checking = False\n[ssh_connection]\nhost_key_checking = True\n")
    assert ansible_env(base())["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    (nowhere / "ansible.cfg").write_text("[defaults]\nforks = 5\n")
    assert ansible_env(base())["ANSIBLE_HOST_KEY_CHECKING"] == "True"


def test_an_unknown_host_key_is_named_with_how_to_add_it() -> None:
    collector = HostResultCollector(["h2"])
    collector.feed({"event": "runner_on_unreachable", "event_data": {
        "host": "h2", "task": "Read the host's state",
        "res": {"unreachable": True, "msg": "Task failed: Failed to connect to the host via ssh: "
                                            "Host key verification failed."}}})
    result = collector.results()["h2"]
    assert result.status is HostStatus.UNREACHABLE
    assert result.message is not None
    assert "h2's SSH host key is not in known_hosts" in result.message
    assert "ssh-keyscan" in result.message and "~/.ssh/known_hosts" in result.message
