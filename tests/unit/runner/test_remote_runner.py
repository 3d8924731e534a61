"""The execution-node runner's streaming, with a fake node: `ansible-runner worker` run here
behind a relay that stands for ssh (it can drop the connection as a dying ssh would)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from oxzep7_deploy.runner.remote import Node, RemoteRunner, node_env, staged
from oxzep7_deploy.runner.request import HostStatus, RunRequest

BIN = Path(sys.executable).parent
# "ssh": relays stdin/stdout to `sh -c REMOTE`; with DROP_AFTER, exits after that many seconds
# as an ssh whose connection died does (the node side then sees its stdin end)
RELAY = r"""
import os, subprocess, sys, threading, time
child = subprocess.Popen(["sh", "-c", sys.argv[2]], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
def up():
    try:
        while (data := os.read(0, 65536)):
            child.stdin.write(data); child.stdin.flush()
        child.stdin.close()
    except BrokenPipeError:  # the remote command is gone: ssh says nothing of it either
        pass
threading.Thread(target=up, daemon=True).start()
drop = float(sys.argv[1])
if drop:
    threading.Timer(drop, lambda: os._exit(255)).start()
while (data := os.read(child.stdout.fileno(), 65536)):
    os.write(1, data)
sys.exit(child.wait())
"""


class LocalNode(Node):
    drop_after: float = 0

    def command(self, remote: str) -> list[str]:
        return [sys.executable, "-c", RELAY, str(self.drop_after), remote]


@pytest.fixture(autouse=True)
def node_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake node finds ansible-runner (and its ansible-playbook) on PATH, as a node would."""
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture
def inventory(tmp_path: Path) -> str:
    (tmp_path / "inv").mkdir()
    path = tmp_path / "inv" / "hosts.ini"
    path.write_text("[web]\nhere\ngone ansible_host=127.0.0.254 ansible_port=1 "
                    "ansible_connection=ssh\n")
    (tmp_path / "inv" / "group_vars").mkdir()
    (tmp_path / "inv" / "group_vars" / "web.yml").write_text(
        f"ansible_connection: local\nansible_python_interpreter: {sys.executable}\n")
    return str(path)


def test_a_batch_runs_on_the_node_with_events_live_and_kept(
        inventory: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_TIMEOUT", "3")
    events: list[str] = []
    request = RunRequest("facts.yml", inventory, ("here", "gone"), become=False, ident="facts")
    result = RemoteRunner(LocalNode("fake"), become=False).run(
        request, tmp_path / "run", lambda e: events.append(str(e.get("event"))))
    here, gone = result.hosts["here"], result.hosts["gone"]
    assert here.status is HostStatus.OK and here.result["platform"].count("-") >= 2, here
    assert gone.status is HostStatus.UNREACHABLE and gone.failed_task == "Gather platform facts"
    assert result.rc != 0 and result.failed_hosts() == ("gone",)
    assert "runner_on_ok" in events and events[-1] == "playbook_on_stats"
    kept = list((tmp_path / "run" / "artifacts" / "facts" / "job_events").glob("*.json"))
    assert any(json.loads(p.read_text())["event"] == "runner_on_unreachable" for p in kept)


def test_what_is_transmitted_is_what_the_run_needs(inventory: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_SSH_ARGS", "-o X=1")
    monkeypatch.setenv("ANSIBLE_CONFIG", "/controller/ansible.cfg")
    monkeypatch.setenv("OXZEP7_CACHE", str(tmp_path / "cache"))
    request = RunRequest("facts.yml", (inventory, "h9,"), ("here",),
                         private_env={"OXZEP7_APP_ENV_B64": "eyJUT0tFTiI6ICJzIn0="})
    with staged(request, node_env(), become=False) as (stage, job):
        shipped = {str(p.relative_to(stage)) for p in stage.rglob("*")}
        # the collection, where the node's Ansible finds it (a collections path relative to
        # the project directory), and the playbook from inside it
        inside = "project/collections/ansible_collections/oxzep7/deploy"
        assert f"{inside}/playbooks/facts.yml" in shipped and f"{inside}/galaxy.yml" in shipped
        assert f"{inside}/plugins/modules/oxzep7_agent.py" in shipped
        assert job["playbook"] == "collections/ansible_collections/oxzep7/deploy/playbooks/facts.yml"
        assert job["envvars"]["ANSIBLE_COLLECTIONS_PATH"].split(":")[0] == "collections"
        # the programs hosts run, as the zipapps built here, named by the variables the
        # playbooks read them from
        agent = job["extravars"]["oxzep7_host_pyz"]
        files = f"{inside}/playbooks/files"
        assert f"{files}/{agent}" in shipped and f"{files}/{agent}.b64" in shipped
        assert f"{files}/{job['extravars']['oxzep7_audit_pyz']}" in shipped
        assert not [p for p in shipped if "__pycache__" in p or p.startswith(f"{inside}/agent")]
        assert "inventories/0/hosts.ini" in shipped and "inventories/0/group_vars/web.yml" in shipped
        assert shlex.split(job["cmdline"]) == ["-i", "../inventories/0/hosts.ini", "-i", "h9,"]
        assert job["extravars"]["ansible_become"] is False
        env = job["envvars"]
        assert env["ANSIBLE_SSH_ARGS"] == "-o X=1", "the user's Ansible settings hold there too"
        assert "PATH" not in env and "ANSIBLE_CONFIG" not in env and "HOME" not in env
        # of ours, only application.env, for the playbook's `env` lookup on the node
        assert [k for k in env if k.startswith("OXZEP7")] == ["OXZEP7_APP_ENV_B64"]
    assert not stage.exists(), "the staged copy is gone once transmitted"


def test_the_node_runs_the_forks_a_local_run_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not the node's Ansible's default of 5: the spec's, else ANSIBLE_FORKS, else the tool's 50."""
    monkeypatch.delenv("ANSIBLE_FORKS", raising=False)
    request = RunRequest("facts.yml", ("h9,",), ("h9",))
    with staged(request, node_env(), become=False) as (_, job):
        assert job["forks"] == 50
    with staged(replace(request, forks=7), node_env(), become=False) as (_, job):
        assert job["forks"] == 7
    monkeypatch.setenv("ANSIBLE_FORKS", "12")
    with staged(request, node_env(), become=False) as (_, job):
        assert job["forks"] is None and job["envvars"]["ANSIBLE_FORKS"] == "12"


def guard_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"OXZEP7_NODE_RUN=" in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def slow_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunRequest:
    project = tmp_path / "playbooks"  # a collection's root, its playbooks in playbooks/
    (project / "playbooks" / "files").mkdir(parents=True)
    (project / "playbooks" / "slow.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - {name: first, debug: {msg: one}}\n"
        "    - {name: long, command: sleep 60}\n")
    monkeypatch.setattr("oxzep7_deploy.runner.remote.playbooks_dir", lambda: project)
    return RunRequest("slow.yml", "a,b,", ("a", "b"), become=False, ident="slow",
                      extravars={"ansible_connection": "local",
                                 "ansible_python_interpreter": sys.executable})


def wait_no_guard(timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while guard_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert guard_processes() == [], "the worker and its playbook stop with the connection"


def test_losing_the_node_mid_batch_says_so_and_nothing_runs_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    request = slow_request(tmp_path, monkeypatch)
    node = LocalNode("fake")
    node.drop_after = 6
    started = time.monotonic()
    result = RemoteRunner(node, become=False).run(request, tmp_path / "run")
    assert time.monotonic() - started < 40
    assert not result.ok
    for host in ("a", "b"):
        res: Any = result.hosts[host]
        assert res.status is HostStatus.UNREACHABLE, res
        assert "lost the execution node fake" in res.message and "unknown" in res.message, res
    wait_no_guard()


def test_an_interrupt_stops_the_run_on_the_node_and_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    request = slow_request(tmp_path, monkeypatch)
    timer = threading.Timer(6, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        RemoteRunner(LocalNode("fake"), become=False).run(request, tmp_path / "run")
    timer.cancel()
    assert time.monotonic() - started < 30
    wait_no_guard()


def test_a_node_without_ansible_runner_is_named_with_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no ansible-runner on this "node"
    request = RunRequest("facts.yml", "here,", ("here",), become=False)
    result = RemoteRunner(LocalNode("fake"), become=False).run(request, tmp_path / "run")
    here = result.hosts["here"]
    assert here.status is HostStatus.UNREACHABLE and not result.ok
    assert "the execution node fake did not run the batch" in str(here.message), here
    assert "ansible-runner is not on PATH" in str(here.message), here


def test_dash_v_reaches_the_ansible_of_the_execution_node(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    """SPEC: -v, -vv, -vvv are passed on to Ansible on every command that talks to hosts, also
    when the playbooks run on an execution node."""
    import contextlib
    from collections.abc import Iterator

    from oxzep7_deploy.cli.runners import runner_factory
    from oxzep7_deploy.runner import remote

    class Transmitted(Exception):
        pass

    jobs: list[dict[str, Any]] = []
    real_staged = remote.staged

    @contextlib.contextmanager
    def capture(request: RunRequest, env: Any, become: bool = True) -> Iterator[Any]:
        with real_staged(request, env, become) as (stage, job):
            jobs.append(job)
            raise Transmitted
        yield stage, job  # pragma: no cover

    monkeypatch.setattr(remote, "staged", capture)
    monkeypatch.setattr(remote, "node_from_inventory", lambda name, _sources: LocalNode(name))
    runner = runner_factory(verbose=3, execution_node="exec1")()
    with pytest.raises(Transmitted):
        runner.run(RunRequest("facts.yml", ("h9,",), ("h9",)), tmp_path / "run")
    assert jobs[0]["verbosity"] == 3
