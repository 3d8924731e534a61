"""Ansible's conventions in the operator's hands (issue 14, item 5), on a real fleet, through the
real CLI: `-v`…`-vvv` reach Ansible, `--limit` narrows what apply touches, and a host whose sudo
asks for a password works with `-K` (the password never lands on the controller's disk) or with
`ansible_become_password` in a vault beside the inventory, and fails without either, saying so.

The interpreter is the hosts' own python3.11 (`existing`): no CPython build.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fleet.build import tool_cache
from tests.fleet.harness import Fleet
from tests.fleet.sample_app import SampleApp, install_sample_app
from tests.fleet.scenario import Controller, write

pytestmark = [pytest.mark.e2e]

SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: conv
targets: "all"
interpreter:
  version: "3.11.2"
  install: {{method: existing, executable: /usr/bin/python3.11}}
application:
  name: sample
  root: {root}
  code: {code}
  requirements: requirements.lock
  pip_args: {pip_args}
  services: [{service}]
health:
  checks:
    - http: {{url: "{url}", status: 200, contains: '"status": "ok"'}}
  retries: 10
  interval: 1s
rollout:
  strategy: canary
  stages:
    - {{name: all, hosts: "100%"}}
  dead_man: 120s
"""

PASSWORD = "oxz-sudo-5c1e-pw"


@pytest.fixture(scope="module")
def fleet3(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(3)


@pytest.fixture(scope="module")
def app(fleet3: Fleet) -> SampleApp:
    return install_sample_app(fleet3)


def spec_file(app: SampleApp, work: Path) -> Path:
    return write(work, "conv.yaml", SPEC.format(
        root=app.root, code=app.code, pip_args=list(app.pip_args), service=app.service,
        url=app.health_url))


def test_vvv_shows_ansibles_ssh_connections_and_v_does_not(fleet3: Fleet, app: SampleApp,
                                                          tmp_path: Path) -> None:
    ctl = Controller(fleet3, tmp_path)
    inv = ctl.inventory()
    one = ctl.run("status", "-i", inv, "--app", "sample", "--limit", "h1", "-v", timeout=300)
    assert one.returncode == 0, one.stdout + one.stderr
    assert "TASK [" in one.stderr, one.stderr  # -v: Ansible's own output, on stderr
    assert "ESTABLISH SSH CONNECTION" not in one.stderr + one.stdout
    three = ctl.run("status", "-i", inv, "--app", "sample", "--limit", "h1", "-vvv", timeout=300)
    assert three.returncode == 0, three.stdout + three.stderr
    assert "ESTABLISH SSH CONNECTION" in three.stderr, three.stderr[-3000:]
    assert "ESTABLISH SSH CONNECTION" not in three.stdout  # stdout stays the tool's own


def test_apply_with_limit_switches_only_the_limited_hosts(fleet3: Fleet, app: SampleApp,
                                                         tmp_path: Path) -> None:
    ctl = Controller(fleet3, tmp_path)
    inv = ctl.inventory()
    spec = str(spec_file(app, tmp_path))
    code, plan = ctl.json("plan", spec, "-i", inv, "--limit", "h*:!h2")
    assert code == 0 and plan["targets"] == ["h1", "h3"], plan
    code, report = ctl.json("apply", spec, "-i", inv, "--limit", "h*:!h2", "--yes")
    assert code == 0 and report["outcome"] == "succeeded", report
    assert sorted(report["hosts"]) == ["h1", "h3"], report
    release = report["release"]
    assert app.current("h2") == "releases/initial"
    for host in ("h1", "h3"):
        assert app.current(host) == f"releases/{release}"
        assert app.wait_healthy(host)["release"] == release
    proc = ctl.run("apply", spec, "-i", inv, "--limit", "nosuch*", "--yes")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "nosuch*" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


class VaultController(Controller):
    """The operator's vault password file, as ansible-playbook reads it."""

    password_file: Path | None = None

    def env(self) -> dict[str, str]:
        return {**super().env(), "ANSIBLE_VAULT_PASSWORD_FILE": str(self.password_file)}


def on_disk(password: str, *folders: Path) -> list[str]:
    """Files under `folders` that hold `password`."""
    found = subprocess.run(["grep", "-rlF", password, *map(str, folders)],
                           capture_output=True, text=True)
    return found.stdout.split()


def test_a_sudo_password_works_with_K_and_fails_clearly_without(fleet3: Fleet, app: SampleApp,
                                                              tmp_path: Path) -> None:
    fleet3.require_sudo_password("h2", PASSWORD)
    try:
        assert "password is required" in fleet3.ssh("h2", "sudo -n true").stderr
        ctl = Controller(fleet3, tmp_path)
        inv = ctl.inventory()
        proc = ctl.run("status", "-i", inv, "--app", "sample", "--limit", "h2", "--json",
                       timeout=300)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "sudo on h2 asks for a password: pass -K (--ask-become-pass)" in proc.stdout, \
            proc.stdout

        code, status = ctl.json("status", "-i", inv, "--app", "sample", "--limit", "h2", "-K",
                                input=PASSWORD + "\n", timeout=300)
        assert code == 0 and status["complete"], status

        spec = str(spec_file(app, tmp_path))
        code, report = ctl.json("apply", spec, "-i", inv, "--limit", "h2", "--yes", "-K",
                                input=PASSWORD + "\n")
        assert code == 0 and report["outcome"] == "succeeded", report
        assert app.current("h2") == f"releases/{report['release']}"

        leaks = on_disk(PASSWORD, tmp_path, tool_cache())
        assert leaks == [], f"the become password is on the controller's disk: {leaks}"

        # as Ansible does: ansible_become_password in a vault beside the inventory, no -K
        inv_dir = tmp_path / "inv"
        write(inv_dir, "hosts.ini", fleet3.inventory.read_text())
        vault_pass = write(tmp_path, "vault-pass", "vault-pw-e2e\n")
        vaulted = write(inv_dir / "host_vars", "h2.yml", f"ansible_become_password: {PASSWORD}\n")
        subprocess.run([str(Path(sys.executable).with_name("ansible-vault")), "encrypt",
                        "--vault-password-file", str(vault_pass), str(vaulted)], check=True,
                       capture_output=True, timeout=60)
        assert PASSWORD not in vaulted.read_text()
        vault = VaultController(fleet3, tmp_path)
        vault.password_file = vault_pass
        code, status = vault.json("status", "-i", str(inv_dir), "--app", "sample", "--limit", "h2",
                                  timeout=300)
        assert code == 0 and status["complete"], status
    finally:
        fleet3.require_sudo_password("h2", None)
