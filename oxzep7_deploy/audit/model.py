"""What the audit works with: the request, a spec's target, and one probe's answer per host."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from oxzep7_deploy.spec.model import Spec

DEFAULT_PREFIX = "/opt/oxzep7/python"  # where our interpreters go when no spec says otherwise


@dataclass(frozen=True)
class Target:
    """What a spec would install and for which application: the audit's "upgrade" column."""

    spec_name: str
    app: str
    root: str
    version: str
    executable: str
    prefix: str

    @property
    def venv(self) -> str:
        """The venv the application runs today: `<root>/current/venv`."""
        return f"{self.root.rstrip('/')}/current/venv"

    @classmethod
    def from_spec(cls, spec: Spec) -> Target:
        return cls(spec.name, spec.application.name, spec.application.root,
                   spec.interpreter.version, spec.interpreter.executable, spec.interpreter.prefix)

    def to_json(self) -> dict[str, str]:
        return {"spec": self.spec_name, "app": self.app, "root": self.root, "venv": self.venv,
                "version": self.version, "executable": self.executable, "prefix": self.prefix}


@dataclass(frozen=True)
class AuditRequest:
    """One audit: which hosts, where to look besides the usual places, and for which target."""

    inventory: tuple[str, ...]  # the -i sources, in order
    hosts: tuple[str, ...]
    target: Target | None = None
    paths: tuple[str, ...] = ()  # more places to look for venvs (--path)
    forks: int | None = None
    budget: int = 40  # seconds each host may spend searching
    reach_timeout: int = 15  # seconds a host has to answer a first round trip

    @property
    def prefix(self) -> str:
        return self.target.prefix if self.target else DEFAULT_PREFIX

    def probe_config(self) -> dict[str, Any]:
        """The options document the host probe reads (playbooks/agent/oxzep7_audit/)."""
        target = self.target
        return {
            "prefix": self.prefix,
            "app_roots": [target.root] if target else [],
            "paths": list(self.paths),
            "venv_roots": [] if (target or self.paths) else ["/srv"],
            "app_venv": target.venv if target else None,
            "target": target.executable if target else None,
            "budget": self.budget,
        }


@dataclass(frozen=True)
class HostProbe:
    """One host's answer: its status (ok, unreachable, failed) and the probe's document."""

    host: str
    status: str
    message: str | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    changed: int = 0  # tasks Ansible reported as changed: must stay 0 (the audit is read-only)
