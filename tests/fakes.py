"""The one fake runner of the unit tests: hosts that answer each playbook as the host agent does.

It plugs in at the runner seam only (`FakeHosts.install` replaces the composition root's
`runner_factory`; library code gets `fake.factory` or the fake itself), never by patching the
modules that use a runner. The real runner and agent together are tests/e2e.

By default every host answers that its step went fine: the agent's `{"ok": True}` report, the
pre-flight's healthy current release, the audit probe's document, the facts' platform. A test
changes that per playbook with `answers` (a function of the request and the host, returning the
agent's report or a whole HostResult), marks hosts `unreachable` (SSH), or `unhealthy`
(pre-flight).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from oxzep7_deploy.runner import EventHandler, HostResult, HostStatus, RunRequest, RunResult

Answer = Callable[[RunRequest, str], "HostResult | Mapping[str, Any]"]
DEFAULT_PLATFORM = "debian-12-x86_64"
SSH_DOWN = "Failed to connect to the host via ssh: timed out"


class FakeHosts:
    """A `Runner` (and, through `factory`, a `RunnerFactory`) that answers like the hosts."""

    def __init__(self, answers: Mapping[str, Answer] | None = None, *,
                 unreachable: Iterable[str] | Mapping[str, str] = (),
                 unhealthy: Mapping[str, str] | None = None,
                 platforms: Mapping[str, str] | None = None) -> None:
        self.answers = dict(answers or {})
        # host -> Ansible's message (SSH could not reach it)
        self.unreachable = (dict(unreachable) if isinstance(unreachable, Mapping)
                            else dict.fromkeys(unreachable, SSH_DOWN))
        self.unhealthy = dict(unhealthy or {})  # host -> what the pre-flight's health says
        self.platforms = dict(platforms or {})
        self.requests: list[RunRequest] = []
        self.data_dirs: list[Path] = []
        self.become: list[bool] = []  # one per runner the code under test asked for
        self.env: list[dict[str, str]] = []  # the extra environment of each runner_factory call
        self.verbosity: list[int] = []  # the -v count of each runner_factory call
        self.become_passwords: list[str | None] = []  # -K's password of each runner_factory call
        self.nodes: list[str | None] = []  # the execution node of each runner_factory call

    # -- the seam ------------------------------------------------------------------------------

    def factory(self, *, become: bool = True) -> FakeHosts:
        self.become.append(become)
        return self

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeHosts:
        """Every command of the CLI gets this fake from the composition root."""
        monkeypatch.setattr("oxzep7_deploy.cli.runners.runner_factory", self.runner_factory)
        return self

    def runner_factory(self, verbose: int = 0, env: Mapping[str, str] | None = None,
                       become_password: str | None = None,
                       execution_node: str | None = None) -> FakeHosts:
        self.env.append(dict(env or {}))
        self.verbosity.append(verbose)
        self.become_passwords.append(become_password)
        self.nodes.append(execution_node)
        return self  # a FakeHosts is callable as a factory: `fake(become=...)` is `fake.factory`

    def __call__(self, *, become: bool = True) -> FakeHosts:
        return self.factory(become=become)

    def run(self, request: RunRequest, data_dir: Path, on_event: EventHandler | None = None
            ) -> RunResult:
        self.requests.append(request)
        self.data_dirs.append(data_dir)
        hosts = {host: self._answer(request, host) for host in request.limit}
        failed = any(not r.ok for r in hosts.values())
        return RunResult(rc=2 if failed else 0, status="failed" if failed else "successful",
                         hosts=MappingProxyType(hosts))

    # -- what the tests read -------------------------------------------------------------------

    @property
    def playbooks(self) -> list[str]:
        return [r.playbook for r in self.requests]

    def runs_of(self, playbook: str) -> list[RunRequest]:
        return [r for r in self.requests if r.playbook == playbook]

    def hosts_of(self, step: str) -> list[str]:
        """The hosts of every run of a release step (`switch`: release_switch.yml), in order."""
        return [h for r in self.runs_of(f"release_{step}.yml") for h in r.limit]

    # -- the answers ---------------------------------------------------------------------------

    def _answer(self, request: RunRequest, host: str) -> HostResult:
        if host in self.unreachable:
            return HostResult(host, HostStatus.UNREACHABLE, 0, "Gathering Facts",
                              self.unreachable[host])
        answer = self.answers.get(request.playbook) or self._default
        doc = answer(request, host)
        if isinstance(doc, HostResult):
            return doc
        ok = doc.get("ok", True) is not False
        return HostResult(host, HostStatus.OK if ok else HostStatus.FAILED, 0,
                          None if ok else "Run the host agent",
                          None if ok else str(doc.get("error") or "the agent failed"),
                          MappingProxyType(dict(doc)))

    def _default(self, request: RunRequest, host: str) -> Mapping[str, Any]:
        if request.playbook == "audit.yml":
            from tests.unit.audit.factories import probe_doc

            return probe_doc()
        if request.playbook == "facts.yml":
            return {"platform": self.platforms.get(host, DEFAULT_PLATFORM)}
        if request.playbook == "release_preflight.yml":
            bad = self.unhealthy.get(host)
            return {"ok": True, "step": "preflight", "current": "initial", "healthy": bad is None,
                    "health": {"ok": bad is None, "message": bad or "all checks passed"}}
        return {"ok": True}
