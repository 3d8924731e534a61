"""What one ansible-runner call is asked to do, and what it reports back, per host."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeAlias

# What Ansible's `-i` takes, once or several times, in order: an inventory file, a directory, or
# a host list such as 'h1,h2,'. One source may be given alone; several as a tuple.
InventorySources: TypeAlias = str | tuple[str, ...]


def inventory_sources(inventory: InventorySources) -> tuple[str, ...]:
    """The sources as a tuple, one per `-i` (a lone path object counts as one source)."""
    if isinstance(inventory, (str, os.PathLike)):
        return (str(inventory),)
    return tuple(inventory)


def absolute_sources(inventory: InventorySources) -> tuple[str, ...]:
    """Sources that exist as paths made absolute; host lists ('h1,h2,') exactly as written.

    Ansible reads a source as a path when one exists, and as a host list otherwise.
    """
    return tuple(str(Path(s).resolve()) if Path(s).exists() else s
                 for s in inventory_sources(inventory))


class HostStatus(str, Enum):
    OK = "ok"
    CHANGED = "changed"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    SKIPPED = "skipped"  # the host matched nothing in the play


@dataclass(frozen=True)
class RunRequest:
    """One batch: a static playbook from `playbooks/`, the hosts it may touch, its variables."""

    playbook: str  # a playbook of the collection (playbooks/playbooks/), e.g. "interpreter.yml"
    inventory: InventorySources  # one `-i` source, or several in order
    limit: tuple[str, ...]  # the hosts of this batch; never empty
    extravars: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    forks: int | None = None  # None: Ansible's configuration says, else oxzep7-deploy's 50
    become: bool = True
    verbosity: int = 0
    ident: str = "run"  # names the artifacts folder of this call
    # variables for the run's processes only, never written on the controller (application.env)
    private_env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def sources(self) -> tuple[str, ...]:
        return inventory_sources(self.inventory)


@dataclass(frozen=True)
class HostResult:
    host: str
    status: HostStatus
    changed: int = 0
    failed_task: str | None = None
    message: str | None = None
    # the last value a play set as the fact `oxzep7_result` on this host: how playbooks report data
    result: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def ok(self) -> bool:
        return self.status in (HostStatus.OK, HostStatus.CHANGED)


@dataclass(frozen=True)
class RunResult:
    rc: int
    status: str  # ansible-runner's: successful, failed, timeout, canceled
    hosts: Mapping[str, HostResult]
    artifacts_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return all(h.ok for h in self.hosts.values()) and self.rc == 0

    def failed_hosts(self) -> tuple[str, ...]:
        return tuple(name for name, h in self.hosts.items() if not h.ok)

    def changed_total(self) -> int:
        return sum(h.changed for h in self.hosts.values())
