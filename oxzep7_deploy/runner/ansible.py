"""The real runner: one ansible-runner call per batch, events streamed, results read per host."""

from __future__ import annotations

import configparser
import os
import signal
import stat
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ansible_runner

from oxzep7_deploy import agent_build
from oxzep7_deploy.errors import DeployFailed
from oxzep7_deploy.paths import playbooks_dir
from oxzep7_deploy.runner.base import EventHandler
from oxzep7_deploy.runner.events import HostResultCollector
from oxzep7_deploy.runner.procs import MARK_VAR, mark, stop_marked
from oxzep7_deploy.runner.request import RunRequest, RunResult, absolute_sources


def ansible_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every run gets: our own ansible-playbook, tuned for speed, quiet."""
    env = dict(os.environ if base is None else base)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    uid = os.getuid()
    env.setdefault("ANSIBLE_SSH_CONTROL_PATH_DIR", f"/tmp/oxzep7-cp-{uid}")
    env.setdefault("ANSIBLE_PIPELINING", "True")
    env.setdefault(
        "ANSIBLE_SSH_ARGS",
        # a host lost after it connected must fail the run, not hang it on a live master
        "-o ControlMaster=auto -o ControlPersist=120s -o ServerAliveInterval=5 -o ServerAliveCountMax=3",
    )
    env.setdefault("ANSIBLE_GATHERING", "explicit")
    env.setdefault("ANSIBLE_RETRY_FILES_ENABLED", "False")
    env.setdefault("ANSIBLE_DEPRECATION_WARNINGS", "False")
    env.setdefault("ANSIBLE_SYSTEM_WARNINGS", "False")
    env.setdefault("ANSIBLE_INTERPRETER_PYTHON", "auto_silent")
    env.setdefault("ANSIBLE_FORCE_COLOR", "False")
    env.setdefault("ANSIBLE_NOCOLOR", "True")
    env.setdefault("ANSIBLE_TIMEOUT", "15")
    # ansible-runner sets ANSIBLE_HOST_KEY_CHECKING=False when the variable is absent: a tool
    # that becomes root must keep Ansible's default (on) unless the user's config turns it off
    if "ANSIBLE_HOST_KEY_CHECKING" not in env and "ANSIBLE_SSH_HOST_KEY_CHECKING" not in env:
        env["ANSIBLE_HOST_KEY_CHECKING"] = configured_host_key_checking(env) or "True"
    env[MARK_VAR] = mark()  # every process of the run carries it: an interrupt stops them all
    return env


def ansible_config_file(env: Mapping[str, str]) -> Path | None:
    """The ansible.cfg `ansible-playbook` run from here would read: ANSIBLE_CONFIG, ./ansible.cfg
    (unless the directory is world-writable), ~/.ansible.cfg, /etc/ansible/ansible.cfg."""
    candidates: list[Path] = []
    if "ANSIBLE_CONFIG" in env:
        path = Path(env["ANSIBLE_CONFIG"]).expanduser()
        candidates.append(path / "ansible.cfg" if path.is_dir() else path)
    try:
        cwd = Path.cwd()
        if not cwd.stat().st_mode & stat.S_IWOTH:
            candidates.append(cwd / "ansible.cfg")
    except OSError:
        pass
    home = env.get("HOME")
    if home:
        candidates.append(Path(home) / ".ansible.cfg")
    candidates.append(Path("/etc/ansible/ansible.cfg"))
    return next((p for p in candidates if p.is_file() and os.access(p, os.R_OK)), None)


def configured_host_key_checking(env: Mapping[str, str]) -> str | None:
    """`host_key_checking` as the user's ansible.cfg sets it ([ssh_connection] over [defaults],
    as Ansible reads it), or None when it says nothing (or cannot be read: Ansible will say why)."""
    path = ansible_config_file(env)
    if path is None:
        return None
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    value = None
    for section in ("defaults", "ssh_connection"):
        if parser.has_option(section, "host_key_checking"):
            value = parser.get(section, "host_key_checking").strip()
    return value


# how often (seconds) ansible-runner asks whether to cancel, while the playbook prints nothing
_CANCEL_POLL = 0.5


class AnsibleRunner:
    """Runs playbooks with ansible-runner; each batch keeps its private data directory."""

    def __init__(self, extra_env: Mapping[str, str] | None = None, become: bool = True,
                 echo: bool = False) -> None:
        self._extra_env = dict(extra_env or {})
        self._become = become
        self._echo = echo  # -v: Ansible's own output on stderr (it is always in the records)

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

        env = ansible_env()
        env.update(self._extra_env)
        env[MARK_VAR] = mark()
        _write_settings(data_dir)
        with _interruptible() as interrupted:
            try:
                return self._run(request, data_dir, handle, collector, env, interrupted)
            except BaseException:
                # cancelled, or ansible-runner failed midway: ansible-runner kills only
                # ansible-playbook's process group; its workers and their ssh (sessions of
                # their own) would go on changing hosts after we are gone
                stop_marked()
                raise

    def _run(self, request: RunRequest, data_dir: Path, handle: Callable[[dict[str, Any]], bool],
             collector: HostResultCollector, env: dict[str, str],
             interrupted: Callable[[], bool]) -> RunResult:
        extravars = dict(request.extravars)
        extravars.update(_programs())
        if not (request.become and self._become):  # ansible.become: false, e.g. connecting as root
            extravars["ansible_become"] = False
        result = ansible_runner.run(
            private_data_dir=str(data_dir),
            project_dir=str(playbooks_dir()),
            playbook=request.playbook,
            # a list: one -i each, passed as they are (a single string that is not a path
            # ansible-runner would write into a file of its own as the inventory's text)
            inventory=list(absolute_sources(request.inventory)),
            limit=",".join(request.limit),
            extravars=extravars,
            forks=request.forks,
            verbosity=request.verbosity or None,
            envvars=env,
            ident=request.ident,
            quiet=True,
            event_handler=handle,
            cancel_callback=interrupted,
            rotate_artifacts=0,
        )
        if interrupted():  # Ctrl-C or SIGTERM: the playbook was cancelled; stop the caller too
            raise KeyboardInterrupt
        artifacts = Path(result.config.artifact_dir)
        return RunResult(
            rc=int(result.rc if result.rc is not None else 1),
            status=str(result.status),
            hosts=collector.results(),
            artifacts_dir=artifacts,
        )


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
