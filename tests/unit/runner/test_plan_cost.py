"""`plan` of a big inventory costs little beyond Ansible's own inventory parse (issue 16, item 5):
one reading of Ansible's configuration per command (the one the inventory already made), and the
ssh connection plugin's option definitions read from its source, not by importing it (which pulls
in `ansible.playbook`). The effective settings `plan` shows stay Ansible's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.runner.test_ansible_config import SPEC

REPO = Path(__file__).resolve().parents[3]

# a fresh interpreter, as a user runs the command: counts Ansible's configuration readings
PROBE = """
import json, sys
from ansible.config import manager
readings = []
original = manager.ConfigManager.__init__
def counted(self, *args, **kwargs):
    readings.append(1)
    original(self, *args, **kwargs)
manager.ConfigManager.__init__ = counted
from oxzep7_deploy.cli.main import cli
try:
    cli(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"exit": code, "config_readings": len(readings),
                  "imported_ansible_playbook": "ansible.playbook" in sys.modules}),
      file=sys.stderr)
"""


def run_plan(work: Path, env: dict[str, str]) -> tuple[dict[str, object], dict[str, object]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, "plan", "spec.yaml", "-i", "inv.ini",
                           "--json"], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)
    probe = json.loads(proc.stderr.strip().splitlines()[-1])
    return json.loads(proc.stdout), probe


@pytest.fixture
def work(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    (tmp_path / "home").mkdir()
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "inv.ini").write_text("[web]\nw1 ansible_host=127.0.0.2\nw2\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO))
    return tmp_path, env


def test_plan_reads_ansibles_configuration_once_and_never_imports_the_playbook_machinery(
        work: tuple[Path, dict[str, str]]) -> None:
    tmp, env = work
    (tmp / "ansible.cfg").write_text("[defaults]\nremote_user = ops\n"
                                     "[ssh_connection]\nssh_args = -o ControlMaster=no\n")
    env["ANSIBLE_SSH_TIMEOUT"] = "21"  # an ssh plugin option only its own definitions name
    doc, probe = run_plan(tmp, env)
    assert probe["exit"] == 0, probe
    assert probe["config_readings"] == 1, "Ansible's base.yml and ansible.cfg read more than once"
    assert probe["imported_ansible_playbook"] is False, "the ssh plugin was imported for its docs"
    cfg = str(tmp / "ansible.cfg")
    assert doc["ansible"]["config_file"] == cfg
    assert doc["ansible"]["remote_user"] == {"value": "ops", "from": cfg}
    assert doc["ansible"]["timeout"] == {"value": 21, "from": "env: ANSIBLE_SSH_TIMEOUT"}
    assert doc["ansible"]["host_key_checking"] == {"value": True, "from": "default"}


def test_an_ssh_plugin_of_the_users_own_is_loaded_the_way_ansible_loads_it(
        work: tuple[Path, dict[str, str]]) -> None:
    """A plugin named ssh in a configured plugin path is the one Ansible would use: its own
    definitions, not the built-in one's read from source."""
    tmp, env = work
    plugins = tmp / "connection_plugins"
    plugins.mkdir()
    builtin = Path(__import__("ansible").__file__).parent / "plugins" / "connection" / "ssh.py"
    entry = "            - name: ANSIBLE_SSH_TIMEOUT\n"
    text = builtin.read_text().replace(entry, "            - name: MY_SSH_TIMEOUT\n" + entry)
    assert "MY_SSH_TIMEOUT" in text
    (plugins / "ssh.py").write_text(text)
    env.update(ANSIBLE_CONNECTION_PLUGINS=str(plugins), MY_SSH_TIMEOUT="33")
    doc, probe = run_plan(tmp, env)
    assert probe["exit"] == 0, probe
    assert doc["ansible"]["timeout"] == {"value": 33, "from": "env: MY_SSH_TIMEOUT"}
