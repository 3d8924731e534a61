"""Ansible's configuration as ansible-playbook finds it (issue 14, item 3): the user's ansible.cfg
reaches the run (ansible-runner runs from its own directory), the tool's tuning only fills what
the user's configuration and environment leave unsaid, forks and inventory come from it, and
`plan` shows the effective settings."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from oxzep7_deploy.cli.main import cli
from oxzep7_deploy.runner.ansible import AnsibleRunner, ansible_env
from oxzep7_deploy.runner.ansible_config import AnsibleConfig
from oxzep7_deploy.runner.request import HostStatus, RunRequest


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory and HOME with no ansible.cfg, and no ANSIBLE_* in the environment."""
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in [k for k in os.environ if k.startswith("ANSIBLE_")]:
        monkeypatch.delenv(name)
    return tmp_path / "work"


def test_the_users_ansible_cfg_wins_over_the_tools_tuning(work: Path) -> None:
    (work / "ansible.cfg").write_text(
        "[defaults]\ntimeout = 42\ngathering = smart\n"
        "[ssh_connection]\nssh_args = -o ControlMaster=no\npipelining = False\n")
    env = ansible_env()
    assert env["ANSIBLE_CONFIG"] == str(work / "ansible.cfg"), "found from ansible-runner's dir too"
    for name in ("ANSIBLE_TIMEOUT", "ANSIBLE_GATHERING", "ANSIBLE_SSH_ARGS", "ANSIBLE_PIPELINING"):
        assert name not in env, f"{name} would override the user's ansible.cfg"
    assert env["ANSIBLE_RETRY_FILES_ENABLED"] == "False", "what the file leaves unsaid is tuned"


def test_any_of_a_settings_variables_is_the_user_saying_it(work: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_SSH_TIMEOUT", "9")
    monkeypatch.setenv("ANSIBLE_SSH_PIPELINING", "False")
    env = ansible_env()
    assert "ANSIBLE_TIMEOUT" not in env and "ANSIBLE_PIPELINING" not in env
    assert "ANSIBLE_CONFIG" not in env


def test_nothing_said_gets_the_tools_tuning(work: Path) -> None:
    env = ansible_env()
    assert (env["ANSIBLE_TIMEOUT"], env["ANSIBLE_PIPELINING"]) == ("15", "True")
    assert "ControlPersist=120s" in env["ANSIBLE_SSH_ARGS"]


def test_forks_spec_then_config_then_ours(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert AnsibleConfig().forks(None) == (50, "oxzep7-deploy's default")
    (work / "ansible.cfg").write_text("[defaults]\nforks = 7\n")
    assert AnsibleConfig().forks(None) == (7, str(work / "ansible.cfg"))
    assert AnsibleConfig().forks(3) == (3, "spec ansible.forks")
    monkeypatch.setenv("ANSIBLE_FORKS", "9")
    assert AnsibleConfig().forks(None) == (9, "env: ANSIBLE_FORKS")


def test_a_run_takes_forks_and_timeout_from_the_users_ansible_cfg(work: Path) -> None:
    (work / "ansible.cfg").write_text("[defaults]\nforks = 3\ntimeout = 41\n")
    inv = work / "inv.ini"
    inv.write_text(f"here ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    result = AnsibleRunner(become=False).run(
        RunRequest("facts.yml", str(inv), ("here",), become=False), work / "run")
    assert result.hosts["here"].status is HostStatus.OK
    command = json.loads((result.artifacts_dir / "command").read_text())
    assert "--forks" not in command["command"], "Ansible reads forks = 3 from the file itself"
    assert "ANSIBLE_TIMEOUT" not in command["env"]
    assert command["env"]["ANSIBLE_CONFIG"] == str(work / "ansible.cfg")


SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: cfg
targets: web
interpreter:
  version: "3.11.2"
  install: {method: existing, executable: /usr/bin/python3.11}
application: {name: app, root: /srv/app}
"""


def test_plan_without_i_reads_the_inventory_and_settings_of_ansible_cfg(work: Path) -> None:
    (work / "hosts").mkdir()
    (work / "hosts" / "inv.ini").write_text("[web]\nw1 ansible_host=127.0.0.2\nw2\n")
    (work / "ansible.cfg").write_text(
        "[defaults]\ninventory = hosts/inv.ini\nforks = 7\ntimeout = 23\nremote_user = ops\n")
    (work / "spec.yaml").write_text(SPEC)
    result = CliRunner().invoke(cli, ["plan", "spec.yaml", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["targets"] == ["w1", "w2"] and doc["forks"] == 7
    cfg = str(work / "ansible.cfg")
    assert doc["ansible"]["config_file"] == cfg
    assert doc["ansible"]["forks"] == {"value": 7, "from": cfg}
    assert doc["ansible"]["timeout"] == {"value": 23, "from": cfg}
    assert doc["ansible"]["remote_user"] == {"value": "ops", "from": cfg}
    assert doc["ansible"]["host_key_checking"] == {"value": True, "from": "default"}
    text = CliRunner().invoke(cli, ["plan", "spec.yaml"])
    assert text.exit_code == 0, text.output
    assert f"ansible: config file {cfg}" in text.stdout
    assert f"forks 7 ({cfg}); timeout 23 ({cfg})" in text.stdout
    assert f"remote user ops ({cfg})" in text.stdout


def test_no_inventory_anywhere_says_where_to_set_one(work: Path) -> None:
    (work / "spec.yaml").write_text(SPEC)
    result = CliRunner().invoke(cli, ["plan", "spec.yaml"])
    if Path("/etc/ansible/hosts").exists():
        pytest.skip("this machine has /etc/ansible/hosts, which ansible-playbook would use")
    assert result.exit_code == 2
    assert "Missing option '-i' / '--inventory'. No inventory: no ansible.cfg found from here" \
        in result.output and "give -i INVENTORY" in result.output
