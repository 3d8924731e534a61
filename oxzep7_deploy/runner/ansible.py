"""The real runner: one ansible-runner call per batch, events streamed, results read per host."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ansible_runner
import ansible_runner.interface

from oxzep7_deploy import agent_build, collection
from oxzep7_deploy.errors import DeployFailed
from oxzep7_deploy.paths import cache_dir
from oxzep7_deploy.runner import process_env
from oxzep7_deploy.runner.ansible_config import DEFAULT_FORKS, AnsibleConfig
from oxzep7_deploy.runner.base import EventHandler
from oxzep7_deploy.runner.events import HostResultCollector
from oxzep7_deploy.runner.procs import MARK_VAR, mark, stop_marked
from oxzep7_deploy.runner.request import RunRequest, RunResult, absolute_sources


def configured_env(base: Mapping[str, str] | None = None) -> tuple[dict[str, str], AnsibleConfig]:
    """The environment every run gets: the user's, with the ansible.cfg `ansible-playbook` would
    read from here named by an absolute ANSIBLE_CONFIG (ansible-runner runs Ansible from its
    private data directory, where ./ansible.cfg is not the user's), our own ansible-playbook
    first on PATH, and the tool's tuning only where the user's configuration says nothing; with
    the configuration it read (one reading per run)."""
    env = dict(os.environ if base is None else base)
    config = AnsibleConfig(env)
    if config.file is not None:
        env["ANSIBLE_CONFIG"] = str(config.file)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    for variable, value in config.tuned_env().items():
        env.setdefault(variable, value)
    # ansible-runner sets ANSIBLE_HOST_KEY_CHECKING=False when the variable is absent: a tool
    # that becomes root must keep Ansible's default (on) unless the user's config turns it off
    checking, origin = config.lookup("host_key_checking", "ssh")
    if not origin.startswith("env:"):
        env["ANSIBLE_HOST_KEY_CHECKING"] = "True" if checking else "False"
    env[MARK_VAR] = mark()  # every process of the run carries it: an interrupt stops them all
    return env, config


def ansible_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every run gets (see configured_env)."""
    return configured_env(base)[0]


def collection_env(config: AnsibleConfig) -> tuple[dict[str, str], Path]:
    """The collections path a local run gets, and the collection's root as Ansible sees it:
    oxzep7.deploy through its link in the cache, before every path the user's configuration
    names (see collection.py)."""
    try:
        found = collection.linked()
    except OSError as exc:
        raise DeployFailed(f"cannot make the collection {collection.FQCN} findable by Ansible: {exc}",
                           hint=f"check that {cache_dir() / 'collections'} is writable (or set "
                           "OXZEP7_CACHE); no host was contacted") from exc
    paths = collection.search_path(found, config.collections_paths())
    return {"ANSIBLE_COLLECTIONS_PATH": paths}, found / collection.IN_COLLECTIONS


def run_extravars(request: RunRequest, become: bool = True) -> dict[str, Any]:
    """The extra variables of a run: the request's, where the hosts' programs are (the zipapps
    built here), and become turned off where the spec or the runner says so."""
    extravars = {**request.extravars, **_programs()}
    if not (request.become and become):  # ansible.become: false, e.g. connecting as root
        extravars["ansible_become"] = False
    return extravars


# how often (seconds) ansible-runner asks whether to cancel, while the playbook prints nothing
_CANCEL_POLL = 0.5


class AnsibleRunner:
    """Runs playbooks with ansible-runner; each batch keeps its private data directory."""

    def __init__(self, extra_env: Mapping[str, str] | None = None, become: bool = True,
                 echo: bool = False, verbosity: int = 0, become_password: str | None = None) -> None:
        self._extra_env = dict(extra_env or {})
        self._become = become
        self._echo = echo  # -v: Ansible's own output on stderr (it is always in the records)
        self._verbosity = verbosity  # -vv…: Ansible's own -v count
        self._become_password = become_password  # -K: kept in memory, never on disk

    def run(
        self, request: RunRequest, data_dir: Path, on_event: EventHandler | None = None
    ) -> RunResult:
        if not request.limit:
            raise ValueError("a run request needs at least one host")
        data_dir.mkdir(parents=True, exist_ok=True)
        collector = HostResultCollector(request.limit)

        def handle(event: dict[str, Any]) -> bool:
            collector.feed(event)
            if self._echo and event.get("stdout"):
                print(event["stdout"], file=sys.stderr, flush=True)
            if on_event is not None:
                on_event(event)
            return True  # keep the event in the artifacts

        env, config = configured_env()
        located, project = collection_env(config)
        env.pop("ANSIBLE_COLLECTIONS_PATHS", None)  # the older name: ours says it all
        env.update(located)
        env.update(self._extra_env)
        env.update(request.private_env)
        env[MARK_VAR] = mark()
        _write_settings(data_dir)
        with _interruptible() as interrupted:
            try:
                return self._run(request, data_dir, handle, collector, env, config, project,
                                 interrupted)
            except BaseException:
                # cancelled, or ansible-runner failed midway: ansible-runner kills only
                # ansible-playbook's process group; its workers and their ssh (sessions of
                # their own) would go on changing hosts after we are gone
                stop_marked()
                raise

    def _run(self, request: RunRequest, data_dir: Path, handle: Callable[[dict[str, Any]], bool],
             collector: HostResultCollector, env: dict[str, str], config: AnsibleConfig,
             project: Path, interrupted: Callable[[], bool]) -> RunResult:
        extravars = run_extravars(request, self._become)
        forks = request.forks
        if forks is None:  # the spec says nothing: the user's ansible.cfg or ANSIBLE_FORKS, else ours
            forks = None if config.says("DEFAULT_FORKS") else DEFAULT_FORKS
        runner = ansible_runner.interface.init_runner(
            private_data_dir=str(data_dir),
            # the playbook runs from inside the collection, through its link
            project_dir=str(project),
            playbook=str(project / collection.playbook(request.playbook)),
            # a list: one -i each, passed as they are (a single string that is not a path
            # ansible-runner would write into a file of its own as the inventory's text)
            inventory=list(absolute_sources(request.inventory)),
            limit=",".join(request.limit),
            extravars=extravars,
            forks=forks,
            verbosity=max(request.verbosity, self._verbosity) or None,
            **become_prompt(self._become_password),
            envvars=env,
            suppress_env_files=True,  # env/envvars, env/extravars, env/passwords: none on disk
            ident=request.ident,
            quiet=True,
            event_handler=handle,
            cancel_callback=interrupted,
            rotate_artifacts=0,
        )
        # ansible-runner writes its process's environment into artifacts/<ident>/command: it
        # gets only what neither the user's environment nor application.env set, and
        # process_env.py in front of ansible-playbook fetches the rest over a private socket
        served = dict(runner.config.env)
        private = {**os.environ, **request.private_env}
        kept = {k: v for k, v in served.items() if k not in private}
        with process_env.serve(served) as address:
            runner.config.env = {**kept, **address}
            runner.config.command = [sys.executable, process_env.__file__, *runner.config.command]
            runner.run()
        result = runner
        if interrupted():  # Ctrl-C or SIGTERM: the playbook was cancelled; stop the caller too
            raise KeyboardInterrupt
        artifacts = Path(result.config.artifact_dir)
        return RunResult(
            rc=int(result.rc if result.rc is not None else 1),
            status=str(result.status),
            hosts=collector.results(),
            artifacts_dir=artifacts,
        )


# Ansible's prompt for -K (ansible-core 2.15+ says BECOME; older ones named the method)
BECOME_PROMPT = r"^(BECOME|SUDO|SU) password[^:\n]*:\s*$"


def become_prompt(password: str | None) -> dict[str, Any]:
    """ansible-runner's arguments for -K: ansible-playbook asks for the become password and
    ansible-runner types it in (pexpect) from memory. Not an extra variable, not an environment
    variable: those end up in the artifacts (`command`, `env/`) on the controller's disk; and
    `run` passes suppress_env_files, or ansible-runner would write these to env/passwords."""
    if password is None:
        return {}
    return {"cmdline": "--ask-become-pass", "passwords": {BECOME_PROMPT: password}}


def _programs() -> dict[str, str]:
    """The hosts' zipapps, built from their packages into the cache (see agent_build)."""
    try:
        return agent_build.playbook_vars()
    except (agent_build.BuildError, OSError) as exc:
        raise DeployFailed(f"cannot build the programs the hosts run: {exc}",
                           hint=f"check that {agent_build.default_dir()} is writable (or set "
                           "OXZEP7_CACHE); no host was contacted") from exc


def _write_settings(data_dir: Path) -> None:
    """ansible-runner's own settings (it reads them from the data directory only)."""
    folder = data_dir / "env"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings").write_text(f"pexpect_timeout: {_CANCEL_POLL}\n")


@contextmanager
def _interruptible() -> Iterator[Callable[[], bool]]:
    """SIGINT and SIGTERM during a run cancel the playbook and then raise KeyboardInterrupt;
    `run` stops every process of the run before the exception leaves it."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    event = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda _n, _f: event.set())
    try:
        yield event.is_set
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
