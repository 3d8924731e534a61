"""The operator's environment, on a real fleet (issue 14, items 1 and 2), through the real CLI.

Noisy hosts: sudo warns "unable to resolve host" on every call (the host name is missing from
/etc/hosts), ~/.bashrc and /etc/profile.d echo, sshd shows a Banner and a MOTD, and ssh says what
it adds to known_hosts: status, history, audit, apply and rollback read and change them as they
do tidy ones. The interpreter is the hosts' own python3.11 (`existing`): no CPython build.

Host keys: with no ANSIBLE_HOST_KEY_CHECKING and an inventory that leaves ssh's own checking on,
a host whose key is not in known_hosts is refused, named, with how to add it; once ssh-keyscan
filled known_hosts, the same command works.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fleet.harness import Fleet
from tests.fleet.sample_app import SampleApp, install_sample_app
from tests.fleet.scenario import Controller, write

pytestmark = [pytest.mark.e2e]
HOSTS = ["h1", "h2"]

SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: noisy
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
    - {{name: canary, hosts: 1}}
    - {{name: all, hosts: "100%"}}
  dead_man: 120s
"""


@pytest.fixture(scope="module")
def noisy(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(2, noisy_hosts=HOSTS)


@pytest.fixture(scope="module")
def app(noisy: Fleet) -> SampleApp:
    return install_sample_app(noisy)


def test_the_noisy_hosts_are_noisy(noisy: Fleet) -> None:
    """What every command over SSH meets on these hosts (else the tests below prove nothing)."""
    proc = noisy.ssh("h1", "sudo true; echo payload")
    assert "unable to resolve host h1" in proc.stderr, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("bashrc: welcome to h1"), proc.stdout
    assert "Authorized use only" in noisy.sh("h1", "cat /etc/issue.net")
    assert "LogLevel=ERROR" not in noisy.inventory.read_text()


def test_audit_reads_noisy_hosts(noisy: Fleet, app: SampleApp, tmp_path: Path) -> None:
    ctl = Controller(noisy, tmp_path)
    code, doc = ctl.json("audit", "-i", ctl.inventory())
    assert code == 0, doc
    assert doc["failed"] == [] and doc["unreachable"] == [] and doc["summary"]["complete"], doc
    for host in HOSTS:
        found = {i["realpath"] for i in doc["hosts"][host]["interpreters"]}
        assert "/usr/bin/python3.11" in found, doc["hosts"][host]
        venvs = {v["path"] for v in doc["hosts"][host]["venvs"]}
        assert f"{app.root}/releases/initial/venv" in venvs, venvs


def test_status_history_apply_rollback_on_noisy_hosts(noisy: Fleet, app: SampleApp,
                                                      tmp_path: Path) -> None:
    ctl = Controller(noisy, tmp_path)
    inv = ctl.inventory()
    code, status = ctl.json("status", "-i", inv, "--app", "sample")
    assert code == 0 and status["complete"], status
    assert not status["not_read"], status

    spec = write(tmp_path, "noisy.yaml", SPEC.format(
        root=app.root, code=app.code, pip_args=list(app.pip_args), service=app.service,
        url=app.health_url))
    code, report = ctl.json("apply", str(spec), "-i", inv, "--yes")
    assert code == 0 and report["outcome"] == "succeeded", report
    release = report["release"]
    for host in HOSTS:
        assert app.wait_healthy(host)["release"] == release

    code, status = ctl.json("status", "-i", inv, "--app", "sample")
    assert code == 0 and status["complete"], status
    assert {h: s["current"] for h, s in status["hosts"].items()} == dict.fromkeys(HOSTS, release)
    code, history = ctl.json("history", "-i", inv, "--app", "sample")
    assert code == 0 and history["complete"], history
    deploys = {e["deploy"] for e in history["events"] if e["event"] == "switch"}
    assert f"noisy/{release}" in deploys, history["events"]

    code, doc = ctl.json("rollback", "-i", inv, "--app", "sample", "--yes")
    assert code == 0 and doc["complete"], doc
    for host in HOSTS:
        assert app.current(host) == "releases/initial"
        assert app.wait_healthy(host)["release"] != release
    code, status = ctl.json("status", "-i", inv, "--app", "sample")
    assert code == 0 and all(s["lock"] is None for s in status["hosts"].values()), status


# -- host key checking -------------------------------------------------------------------------


def checked_inventory(fleet: Fleet, work: Path, known_hosts: Path) -> Path:
    """The fleet's inventory as a user's would be: ssh checks host keys against `known_hosts`."""
    lines = []
    for line in fleet.inventory.read_text().splitlines():
        if line.startswith("ansible_ssh_common_args="):
            line = (f"ansible_ssh_common_args='-o ProxyCommand=\"ip netns exec {fleet.bridge_ns}"
                    f" nc %h %p\" -o UserKnownHostsFile={known_hosts}'")
        lines.append(line)
    return write(work, "checked.ini", "\n".join(lines) + "\n")


class CheckingController(Controller):
    """The operator's environment: nothing says anything about host key checking."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env.pop("ANSIBLE_HOST_KEY_CHECKING", None)
        env.pop("ANSIBLE_SSH_HOST_KEY_CHECKING", None)
        return env


def test_an_unknown_host_key_is_refused_named_with_how_to_add_it(noisy: Fleet, app: SampleApp,
                                                                  tmp_path: Path) -> None:
    assert Controller(noisy, tmp_path).env()["ANSIBLE_HOST_KEY_CHECKING"] == "False", \
        "the other CLI tests run with checking off, as the harness says"
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    inv = str(checked_inventory(noisy, tmp_path, known_hosts))
    ctl = CheckingController(noisy, tmp_path)

    proc = ctl.run("status", "-i", inv, "--app", "sample", "--json", timeout=300)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    for host in HOSTS:
        said = json.dumps(doc["hosts"][host])
        assert f"{host}'s SSH host key is not in known_hosts" in said, said
        assert "ssh-keyscan ADDRESS >> ~/.ssh/known_hosts" in said, said
    table = ctl.run("status", "-i", inv, "--app", "sample", timeout=300)
    assert table.returncode == proc.returncode
    assert "h1, h2" in table.stderr and "ssh-keyscan" in table.stdout, table.stdout + table.stderr

    scan = subprocess.run(noisy.in_bridge(["ssh-keyscan", "-t", "ed25519",
                                           *(noisy.address(h) for h in HOSTS)]),
                          capture_output=True, text=True, timeout=60, check=True)
    known_hosts.write_text(scan.stdout)
    code, status = ctl.json("status", "-i", inv, "--app", "sample", timeout=300)
    assert code == 0 and status["complete"], status
