"""No secret on the controller's disk (issue 14, item 4): the operator's environment and
application.env reach Ansible's processes, and no file of the run's records holds them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import uuid
from pathlib import Path

import pytest

from oxzep7_deploy.runner.ansible import AnsibleRunner
from oxzep7_deploy.runner.request import HostStatus, RunRequest

PLAY = """\
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.set_fact:
        oxzep7_result:
          env: "{{ lookup('ansible.builtin.env', 'OXZ_TEST_SECRET') | hash('sha256') }}"
          aws: "{{ lookup('ansible.builtin.env', 'AWS_SECRET_ACCESS_KEY') | hash('sha256') }}"
          app: "{{ lookup('ansible.builtin.env', 'OXZEP7_APP_ENV_B64') | hash('sha256') }}"
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def files_holding(root: Path, *needles: str) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path}: {n}" for n in needles if n.encode() in data]
    return found


def test_the_environment_reaches_ansible_and_no_file(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    secret, aws = f"oxz-{uuid.uuid4()}", f"aws-{uuid.uuid4()}"
    app_env = base64.b64encode(json.dumps({"TOKEN": f"app-{uuid.uuid4()}"}).encode()).decode()
    monkeypatch.setenv("OXZ_TEST_SECRET", secret)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", aws)
    playbooks = tmp_path / "playbooks"  # a collection's root, its playbooks in playbooks/
    (playbooks / "playbooks").mkdir(parents=True)
    (playbooks / "playbooks" / "peek.yml").write_text(PLAY)
    monkeypatch.setattr("oxzep7_deploy.collection.playbooks_dir", lambda: playbooks)
    request = RunRequest("peek.yml", "here,", ("here",), become=False,
                         extravars={"ansible_connection": "local",
                                    "ansible_python_interpreter": sys.executable},
                         private_env={"OXZEP7_APP_ENV_B64": app_env})
    before = set(Path("/tmp").glob("oxzep7-env-*"))
    result = AnsibleRunner(become=False).run(request, tmp_path / "run")
    here = result.hosts["here"]
    assert here.status is HostStatus.OK, here
    assert dict(here.result) == {"env": sha(secret), "aws": sha(aws), "app": sha(app_env)}
    assert files_holding(tmp_path / "run", secret, aws, app_env) == []
    assert (result.artifacts_dir / "command").is_file(), "the command is still recorded"
    assert not (tmp_path / "run" / "env" / "envvars").exists()
    assert set(Path("/tmp").glob("oxzep7-env-*")) <= before, "the socket's folder is gone"
    assert os.environ["OXZ_TEST_SECRET"] == secret
