"""The execution-node runner: each batch runs on another machine through ansible-runner's
streamers (`transmit` here, `worker` on the node over SSH, `process` here), as AWX does.

Per batch: a fresh private data directory is staged in a private temporary folder (the
playbooks, copies of the inventory sources, env/ and a few files the playbooks read on the
controller side) and streamed to `ssh NODE python3 -c <node_guard>`, which runs `ansible-runner
worker`; the events come back live and are kept in the batch's own data directory
(`artifacts/<ident>/job_events`), as with the local runner. The node connects to the targets
with its own SSH credentials: no key leaves the controller.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

import ansible_runner

from oxzep7_deploy import agent_build, collection
from oxzep7_deploy.paths import playbooks_dir
from oxzep7_deploy.runner.ansible import _interruptible, ansible_env, run_extravars
from oxzep7_deploy.runner.ansible_config import DEFAULT_FORKS
from oxzep7_deploy.runner.base import EventHandler
from oxzep7_deploy.runner.events import HostResultCollector
from oxzep7_deploy.runner.procs import MARK_VAR, mark, stop_marked
from oxzep7_deploy.runner.request import (
    HostResult,
    HostStatus,
    RunRequest,
    RunResult,
    inventory_sources,
)

HEARTBEAT = 2.0  # seconds between the lines that tell the node the controller is still there
SILENCE = 20.0  # seconds without one after which the node stops the batch
# not needed by a run: the sources of the programs hosts run (the runs ship their zipapps)
_NOT_SHIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "agent")
# ANSIBLE_* variables that name places on the controller: not forwarded to the node
_CONTROLLER_PLACES = ("_PATH", "_PATHS", "_DIR", "_FILE", "_HOME", "_TEMP", "_CONFIG")


@dataclass(frozen=True)
class Node:
    """How to reach the execution node: an SSH destination, with the options for `ssh`."""

    name: str
    ssh_args: tuple[str, ...] = ()

    def command(self, remote: str) -> list[str]:
        return ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15",
                # a node lost mid-batch ends the stream within 15 s instead of hanging it
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
                *self.ssh_args, "--", self.name, remote]


def node_from_inventory(name: str, sources: tuple[str, ...]) -> Node:
    """`name` as an SSH destination; when the inventory has a host of that name, with its
    connection variables (ansible_host, _port, _user, _ssh_private_key_file, _ssh_common_args)."""
    from oxzep7_deploy.inventory import load_inventory

    inv = load_inventory(*sources)
    if name not in inv.hosts:
        return Node(name)

    def var(key: str) -> Any:
        return inv.inventory_var(name, key)

    args: list[str] = []
    if var("ansible_port"):
        args += ["-p", str(var("ansible_port"))]
    if var("ansible_user"):
        args += ["-l", str(var("ansible_user"))]
    if var("ansible_ssh_private_key_file"):
        args += ["-i", str(var("ansible_ssh_private_key_file"))]
    if var("ansible_ssh_common_args"):
        args += shlex.split(str(var("ansible_ssh_common_args")))
    return Node(str(var("ansible_host") or name), tuple(args))


def node_env() -> dict[str, str]:
    """The environment the batch gets on the node: the tool's tuning and the user's ANSIBLE_*
    settings, but neither the controller's PATH nor variables naming its files."""
    forwarded = {k: v for k, v in os.environ.items()
                 if k.startswith("ANSIBLE_") and not k.endswith(_CONTROLLER_PLACES)}
    env = ansible_env(forwarded)
    for key in ("PATH", MARK_VAR):  # the node's own PATH finds its ansible-playbook
        env.pop(key, None)
    return env


def node_forks(request: RunRequest, env: Mapping[str, str]) -> int | None:
    """The spec's forks, else ANSIBLE_FORKS as forwarded (None: the node's Ansible reads it),
    else the tool's 50, as a local run gets (not the node's Ansible's default of 5)."""
    if request.forks is not None:
        return request.forks
    return None if "ANSIBLE_FORKS" in env else DEFAULT_FORKS


def node_collections() -> dict[str, str]:
    """The node's collections path: the staged project's copy of oxzep7.deploy first, then
    Ansible's default paths (the controller's configured paths name places on the controller)."""
    return {"ANSIBLE_COLLECTIONS_PATH": collection.search_path(collection.NODE_COLLECTIONS,
                                                               collection.ANSIBLE_DEFAULT_PATHS)}


class RemoteRunner:
    """Runs each batch on an execution node; same results and records as `AnsibleRunner`."""

    def __init__(self, node: str | Node, extra_env: Mapping[str, str] | None = None,
                 become: bool = True, echo: bool = False, verbosity: int = 0) -> None:
        self._node_name = node.name if isinstance(node, Node) else node
        self._node = node if isinstance(node, Node) else None  # a name: see the inventory
        self._extra_env = dict(extra_env or {})
        self._become = become
        self._echo = echo
        self._verbosity = verbosity  # -vv…: the node's Ansible's own -v count, as a local run's

    def run(self, request: RunRequest, data_dir: Path, on_event: EventHandler | None = None
            ) -> RunResult:
        if not request.limit:
            raise ValueError("a run request needs at least one host")
        if self._node is None:
            self._node = node_from_inventory(self._node_name, request.sources)
        data_dir.mkdir(parents=True, exist_ok=True)
        collector = HostResultCollector(request.limit)
        seen: set[str] = set()
        request = replace(request, verbosity=max(request.verbosity, self._verbosity))

        def handle(event: dict[str, Any]) -> bool:
            collector.feed(event)
            seen.add(str(event.get("event")))
            if self._echo and event.get("stdout"):
                print(event["stdout"], file=sys.stderr, flush=True)
            if on_event is not None:
                on_event(event)
            return True

        with _interruptible() as interrupted, staged(request, self._job_env(), self._become) as (stage, job):
            link = Link(self._node, request)
            try:
                link.start(stage, job, interrupted)
                processor = ansible_runner.run(
                    streamer="process", _input=link.stdout, private_data_dir=str(data_dir),
                    ident=request.ident, quiet=True, event_handler=handle,
                    cancel_callback=interrupted)  # else it installs signal handlers of its own
                link.finish()
            except BaseException:
                link.kill()
                stop_marked()
                raise
            if interrupted():
                raise KeyboardInterrupt
        artifacts = data_dir / "artifacts" / request.ident
        if "playbook_on_stats" not in seen:  # the stream ended before the play did
            return self._lost(request, seen, link, str(processor.status), artifacts)
        rc = _read_rc(artifacts)
        return RunResult(rc=rc if rc is not None else int(processor.status != "successful"),
                         status=str(processor.status), hosts=collector.results(),
                         artifacts_dir=artifacts)

    def _job_env(self) -> dict[str, str]:
        env = node_env()
        env.update(self._extra_env)
        return env

    def _lost(self, request: RunRequest, seen: set[str], link: Link, status: str,
              artifacts: Path) -> RunResult:
        """The truth when the stream broke: nothing is known of any host after that point."""
        why = link.failure() or f"ansible-runner's stream from it ended ({status})"
        if not seen:
            what = (f"the execution node {self._node_name} did not run the batch: {why}; no event "
                    "came back from it, so nothing is known to have run on {host}")
        else:
            what = (f"lost the execution node {self._node_name}: {why}; what ran on {{host}} "
                    "after that point is unknown")
        hosts = {h: HostResult(h, HostStatus.UNREACHABLE, failed_task="(execution node)",
                               message=what.format(host=h))
                 for h in request.limit}
        return RunResult(rc=1, status="error", hosts=MappingProxyType(hosts),
                         artifacts_dir=artifacts)


def _read_rc(artifacts: Path) -> int | None:
    try:
        return int((artifacts / "rc").read_text().strip())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def staged(request: RunRequest, env: Mapping[str, str], become: bool = True
           ) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A fresh private data dir for one batch, in a private temp folder removed afterwards, and
    the ansible-runner arguments to transmit with it."""
    folder = Path(tempfile.mkdtemp(prefix="oxzep7-transmit-"))
    try:
        # the collection, where the node's Ansible finds it: under the project's collections
        # directory, named by a collections path relative to the project dir (see collection.py)
        inside = Path(collection.NODE_COLLECTIONS) / collection.IN_COLLECTIONS
        shutil.copytree(playbooks_dir(), folder / "project" / inside, ignore=_NOT_SHIPPED)
        playbook = str(inside / collection.playbook(request.playbook))
        extravars = run_extravars(request, become)
        # the zipapps hosts run, built here: shipped in the playbooks' files/, where their
        # `file` lookup and `script` find them by name (with the agent's base64 beside it)
        files = folder / "project" / Path(playbook).parent / "files"
        files.mkdir(parents=True, exist_ok=True)
        for key in map(agent_build.playbook_var, agent_build.PROGRAMS):
            path = Path(extravars[key])
            for shipped in (path, path.with_name(path.name + ".b64")):
                if shipped.is_file():
                    shutil.copyfile(shipped, files / shipped.name)
            extravars[key] = path.name
        args = []
        for i, source in enumerate(inventory_sources(request.inventory)):
            args += ["-i", _stage_inventory(source, folder / "inventories" / str(i))]
        yield folder, dict(
            private_data_dir=str(folder), playbook=playbook,
            limit=",".join(request.limit), extravars=extravars, forks=node_forks(request, env),
            # application.env (private_env) travels in the stream, to the node's temporary data
            # dir only: nothing of it is written here
            verbosity=request.verbosity or None,
            envvars={**env, **node_collections(), **request.private_env},
            ident=request.ident,
            cmdline=shlex.join(args), settings={"pexpect_timeout": 0.5}, quiet=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _stage_inventory(source: str, dest: Path) -> str:
    """Copy one `-i` source (with group_vars/ and host_vars/ beside a file); the `-i` argument
    that names the copy from the project directory (the playbook's working directory)."""
    path = Path(source)
    if not path.exists():  # a host list, 'h1,h2,'
        return source
    dest.mkdir(parents=True)
    if path.is_dir():
        shutil.copytree(path, dest / path.name, ignore=_NOT_SHIPPED)
    else:
        shutil.copy2(path, dest / path.name)
        for folder in ("group_vars", "host_vars"):
            if (path.parent / folder).is_dir():
                shutil.copytree(path.parent / folder, dest / folder)
    return f"../inventories/{dest.name}/{path.name}"


class Link:
    """The SSH connection to the node that carries one batch: job out, heartbeats, events in."""

    def __init__(self, node: Node, request: RunRequest) -> None:
        self._node = node
        self._request = request
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def stdout(self) -> IO[bytes]:
        assert self._proc is not None and self._proc.stdout is not None
        return self._proc.stdout

    def start(self, stage: Path, job: dict[str, Any], interrupted: Callable[[], bool]) -> None:
        from oxzep7_deploy.runner import node_guard

        code = Path(node_guard.__file__).read_text()
        remote = f"python3 -c {shlex.quote(code)} {SILENCE:g}"
        env = dict(os.environ)
        env[MARK_VAR] = mark()  # an interrupt here stops this ssh too (procs.stop_marked)
        self._proc = subprocess.Popen(self._node.command(remote), stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self._spawn(self._drain_stderr)
        self._spawn(lambda: self._feed(job, interrupted))

    def _spawn(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for raw in self._proc.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self._stderr.append(line)

    def _feed(self, job: dict[str, Any], interrupted: Callable[[], bool]) -> None:
        """Transmit the job, then a heartbeat line until the batch ends; on an interrupt, close
        the stream: the node's guard then cancels the run there."""
        assert self._proc is not None and self._proc.stdin is not None
        out = self._proc.stdin
        try:
            ansible_runner.run(streamer="transmit", _output=out, **job)
            beat = time.monotonic()
            while not self._done.wait(0.2) and not interrupted():
                if time.monotonic() - beat >= HEARTBEAT:
                    out.write(b"\n")
                    out.flush()
                    beat = time.monotonic()
            if interrupted() and not self._done.wait(10):
                self.kill()  # the node does not answer: give up on it, its guard stops the run
        except (OSError, ValueError):  # the ssh is gone: the processor sees its stream end
            pass
        finally:
            with contextlib.suppress(OSError, ValueError):
                out.close()

    def finish(self) -> None:
        """The stream ended: let the node's guard go, and wait for ssh."""
        self._done.set()
        assert self._proc is not None
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        for thread in self._threads:
            thread.join(timeout=5)

    def kill(self) -> None:
        self._done.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def failure(self) -> str | None:
        """Why the link broke, from ssh's exit status and its last words."""
        if self._proc is None or self._proc.returncode in (None, 0):
            return None
        code = self._proc.returncode
        said = f": {self._stderr[-1]}" if self._stderr else ""
        if code == 255:  # ssh's own failure: it could not connect, or the connection died
            return f"the SSH connection to it failed or was lost (ssh exit 255{said})"
        return f"ssh to it exited {code}{said}"
