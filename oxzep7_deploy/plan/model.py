"""The plan: what `apply` will do, wave by wave and batch by batch. Frozen, JSON-ready."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oxzep7_deploy.spec.model import OnFailure, Promote, Strategy

Batch = tuple[str, ...]


@dataclass(frozen=True)
class Gate:
    """What stands between waves: a manual promote before the wave, health and bake after it."""

    promote: Promote
    health_checks: int
    bake: int  # seconds of health re-checks after the wave is switched

    def to_json(self) -> dict[str, Any]:
        return {"promote": self.promote.value, "health_checks": self.health_checks, "bake": self.bake}


@dataclass(frozen=True)
class Wave:
    name: str
    hosts: tuple[str, ...]  # the hosts switched in this wave
    batches: tuple[Batch, ...]  # one ansible-runner call each, in order
    gate: Gate

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hosts": list(self.hosts),
            "batches": [list(b) for b in self.batches],
            "gate": self.gate.to_json(),
        }


@dataclass(frozen=True)
class BuildStep:
    """Where the interpreter comes from, per platform: built on one host and shipped, or not."""

    platform: str
    build_host: str | None  # None: nothing is compiled (package, prebuilt, existing) or every host
    hosts: tuple[str, ...]  # the targets of this platform
    action: str  # "build-and-ship" | "build-on-each-host" | "install-package" | "unpack" | "check"

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "build_host": self.build_host,
            "hosts": list(self.hosts),
            "action": self.action,
        }


@dataclass(frozen=True)
class Plan:
    name: str
    app: str
    release: str
    strategy: Strategy
    targets: tuple[str, ...]
    interpreter: dict[str, Any]
    build: tuple[BuildStep, ...]
    prestage: tuple[str, ...]  # hosts prepared before the first switch (empty: per wave)
    waves: tuple[Wave, ...]
    max_failed: int  # hosts
    on_failure: OnFailure
    dead_man: int
    lock_ttl: int
    forks: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "app": self.app,
            "release": self.release,
            "strategy": self.strategy.value,
            "targets": list(self.targets),
            "interpreter": dict(self.interpreter),
            "build": [b.to_json() for b in self.build],
            "prestage": list(self.prestage),
            "waves": [w.to_json() for w in self.waves],
            "max_failed": self.max_failed,
            "on_failure": self.on_failure.value,
            "dead_man": self.dead_man,
            "lock_ttl": self.lock_ttl,
            "forks": self.forks,
        }
