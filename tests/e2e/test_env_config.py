"""The operator's environment, on a real fleet (issue 14, items 3 and 4), through the real CLI.

Item 3: a working directory with its own ./ansible.cfg (remote_user, private_key_file, forks,
timeout, inventory) and an inventory that names neither user nor key; no -i and no ANSIBLE_*
override: the commands reach the hosts with what that file says, and fail naming the hosts when
its key is wrong; `plan` shows forks, timeout and user from it.

Item 4: every command, with secrets in the environment and in application.env, leaves them in no
file under the controller's records, caches, Ansible's home or SSH control directory.
The interpreter is the hosts' own python3.11 (`existing`): no CPython build.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fleet.harness import Fleet
from tests.fleet.sample_app import SampleApp, install_sample_app
from tests.fleet.scenario import CLI

pytestmark = [pytest.mark.e2e]
HOSTS = ["h1", "h2"]

SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: envcfg
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
  env: {{APP_TOKEN: "{token}"}}
health:
  checks:
    - http: {{url: "{url}", status: 200, contains: '"status": "ok"'}}
    - command: 'test "$(printf %s "$APP_TOKEN" | sha256sum | cut -c1-64)" = {token_sha}'
  retries: 10
  interval: 1s
rollout:
  strategy: canary
  stages:
    - {{name: canary, hosts: 1}}
    - {{name: all, hosts: "100%"}}
  dead_man: 120s
"""

# what the harness sets for speed and isolation; the tests here leave Ansible's settings to
# ansible.cfg, so only what keeps Ansible inside the work directory stays
_OVERRIDES = ("ANSIBLE_TIMEOUT", "ANSIBLE_HOST_KEY_CHECKING", "ANSIBLE_PIPELINING",
              "ANSIBLE_RETRY_FILES_ENABLED", "ANSIBLE_NOCOLOR", "ANSIBLE_CONFIG", "ANSIBLE_FORKS",
              "ANSIBLE_REMOTE_USER", "ANSIBLE_PRIVATE_KEY_FILE", "ANSIBLE_INVENTORY")


@pytest.fixture(scope="module")
def hosts(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(2)


@pytest.fixture(scope="module")
def app(hosts: Fleet) -> SampleApp:
    return install_sample_app(hosts)


def env_for(fleet: Fleet, work: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in fleet.ansible_env(work).items() if k not in _OVERRIDES}
    env["OXZEP7_CACHE"] = str(work / "tool-cache")
    env.pop("OXZEP7_RECORDS", None)
    return {**env, **extra}


def oxz(work: Path, env: dict[str, str], *args: str) -> tuple[int, dict, str]:
    proc = subprocess.run([str(CLI), *args, "--json"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=900)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        doc = {"stdout": proc.stdout}
    return proc.returncode, doc, proc.stderr


def configured_work(fleet: Fleet, work: Path, key: Path) -> Path:
    """A working directory whose ./ansible.cfg says user, key, forks, timeout and inventory; its
    inventory names neither user nor key."""
    work.mkdir(parents=True)
    lines = [ln for ln in fleet.inventory.read_text().splitlines()
             if not ln.startswith(("ansible_user=", "ansible_ssh_private_key_file="))]
    (work / "hosts.ini").write_text("\n".join(lines) + "\n")
    (work / "ansible.cfg").write_text(
        "[defaults]\ninventory = hosts.ini\nremote_user = deploy\n"
        f"private_key_file = {key}\nforks = 3\ntimeout = 17\n")
    return work


def test_the_working_directorys_ansible_cfg_is_honoured(hosts: Fleet, app: SampleApp,
                                                         tmp_path: Path) -> None:
    work = configured_work(hosts, tmp_path / "good", hosts.ssh_key)
    assert "ansible_user" not in (work / "hosts.ini").read_text()
    env = env_for(hosts, work)
    code, status, err = oxz(work, env, "status", "--app", "sample")
    assert code == 0 and status["complete"], (status, err)
    assert sorted(status["hosts"]) == HOSTS
    (command,) = (work / ".oxzep7" / "ops" / "sample").glob("*-status-*/status/artifacts/*/command")
    recorded = json.loads(command.read_text())
    assert recorded["env"]["ANSIBLE_CONFIG"] == str(work / "ansible.cfg")
    assert "ANSIBLE_TIMEOUT" not in recorded["env"], "the tool's 15 s would override timeout = 17"
    assert "--forks" not in recorded["command"], "forks = 3 is Ansible's to read"

    spec = work / "spec.yaml"
    spec.write_text(SPEC.format(root=app.root, code=app.code, pip_args=list(app.pip_args),
                                service=app.service, url=app.health_url, token="t",
                                token_sha=hashlib.sha256(b"t").hexdigest()))
    code, plan, err = oxz(work, env, "plan", str(spec))
    assert code == 0, (plan, err)
    cfg = str(work / "ansible.cfg")
    assert plan["targets"] == HOSTS and plan["forks"] == 3
    assert plan["ansible"]["forks"] == {"value": 3, "from": cfg}
    assert plan["ansible"]["timeout"] == {"value": 17, "from": cfg}
    assert plan["ansible"]["remote_user"] == {"value": "deploy", "from": cfg}
    assert plan["ansible"]["config_file"] == cfg

    # the same, but the key ansible.cfg names is not one the hosts accept
    wrong = tmp_path / "wrong-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    other = configured_work(hosts, tmp_path / "bad", wrong)
    proc = subprocess.run([str(CLI), "status", "--app", "sample"], cwd=other,
                          env=env_for(hosts, other), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "could not read 2 host(s): h1, h2" in proc.stderr, proc.stderr
    assert "Permission denied" in proc.stdout or "unreachable" in proc.stdout, proc.stdout


def test_no_secret_is_written_on_the_controller(hosts: Fleet, app: SampleApp,
                                                tmp_path: Path) -> None:
    secret, aws, token = (f"{w}-{uuid.uuid4()}" for w in ("oxz", "aws", "app"))
    app_b64 = base64.b64encode(json.dumps({"APP_TOKEN": token}).encode()).decode()
    needles = [secret, aws, token, app_b64]
    work = tmp_path / "work"
    work.mkdir()
    env = env_for(hosts, work, OXZ_TEST_SECRET=secret, AWS_SECRET_ACCESS_KEY=aws,
                  ANSIBLE_HOST_KEY_CHECKING="False")
    spec = tmp_path / "spec.yaml"  # the user's own file, outside the working directory
    spec.write_text(SPEC.format(root=app.root, code=app.code, pip_args=list(app.pip_args),
                                service=app.service, url=app.health_url, token=token,
                                token_sha=hashlib.sha256(token.encode()).hexdigest()))
    inv = ["-i", str(hosts.inventory)]
    before = set(Path("/tmp").glob("oxzep7-env-*"))

    assert oxz(work, env, "validate", str(spec))[0] == 0
    assert oxz(work, env, "plan", str(spec), *inv)[0] == 0
    code, report, err = oxz(work, env, "apply", str(spec), *inv, "--yes")
    assert code == 0 and report["outcome"] == "succeeded", (report, err)  # the token reached
    for command in (["status"], ["history"], ["unlock", "--yes"], ["rollback", "--yes"]):
        code, doc, err = oxz(work, env, command[0], *inv, "--app", "sample", *command[1:])
        assert code == 0, (command, doc, err)
    assert oxz(work, env, "audit", *inv)[0] == 0
    for host in HOSTS:
        assert app.current(host) == "releases/initial"

    places = [work, Path(env["OXZEP7_CACHE"]), hosts.control_path_dir(work)]
    if Path.home().joinpath(".ansible", "tmp").is_dir():
        places.append(Path.home() / ".ansible" / "tmp")
    found = []
    for place in places:
        for path in place.rglob("*") if place.is_dir() else ():
            if path.is_file() and not path.is_symlink() and os.access(path, os.R_OK):
                data = path.read_bytes()
                found += [f"{path}: {n[:8]}…" for n in needles if n.encode() in data]
    assert found == [], "\n".join(found)
    assert (work / ".oxzep7" / "deploys").is_dir() and list((work / ".oxzep7").rglob("command"))
    left = [d for d in set(Path("/tmp").glob("oxzep7-env-*")) - before if (d / "s").exists()]
    assert left == [], "the run's socket folders are gone"


def test_no_ssh_master_outlives_a_command(hosts: Fleet, app: SampleApp, tmp_path: Path) -> None:
    """ControlPersist keeps an ssh master alive after its last session: the tool's own (in a
    control directory of the command's own) is stopped when the command exits."""
    env = env_for(hosts, tmp_path, ANSIBLE_HOST_KEY_CHECKING="False")
    env.pop("ANSIBLE_SSH_CONTROL_PATH_DIR", None)  # the tool's default, not the harness's
    proc = subprocess.Popen([str(CLI), "status", "-i", str(hosts.inventory), "--app", "sample",
                             "--json"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (out, err)
    assert json.loads(out)["complete"]
    needle = f"OXZEP7_CONTROLLER={proc.pid}-".encode()
    left = []
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if entry.name.isdigit() and any(v.startswith(needle) for v in environ.split(b"\0")):
            left.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    assert left == [], left
    assert not list(Path(f"/tmp/oxzep7-cp-{os.getuid()}").glob(f"{proc.pid}-*"))
