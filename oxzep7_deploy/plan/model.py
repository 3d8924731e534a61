"""The plan: what `apply` will do, wave by wave and batch by batch. Frozen, JSON-ready."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oxzep7_deploy.spec.model import Inconclusive, OnFailure, Promote, Strategy, Watch

Batch = tuple[str, ...]


@dataclass(frozen=True)
class Gate:
    """What stands between waves: a manual promote before the wave, health and bake after it."""

    promote: Promote
    health_checks: int
    bake: int  # seconds of health re-checks after the wave is switched

    def to_json(self) -> dict[str, Any]:
        return {"promote": self.promote.value, "health_checks": self.health_checks, "bake": self.bake}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Gate:
        return cls(Promote(doc["promote"]), int(doc["health_checks"]), int(doc["bake"]))


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

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Wave:
        return cls(str(doc["name"]), _names(doc["hosts"]),
                   tuple(_names(b) for b in doc["batches"]), Gate.from_json(doc["gate"]))


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

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> BuildStep:
        build_host = doc["build_host"]
        return cls(str(doc["platform"]), None if build_host is None else str(build_host),
                   _names(doc["hosts"]), str(doc["action"]))


@dataclass(frozen=True)
class WheelStep:
    """The requirements' wheel set of one platform: built on `build_host` with the new interpreter,
    shipped to `hosts` (`application.wheels: once-per-platform`)."""

    platform: str
    build_host: str
    hosts: tuple[str, ...]  # the targets of this platform

    def to_json(self) -> dict[str, Any]:
        return {"platform": self.platform, "build_host": self.build_host,
                "hosts": list(self.hosts), "action": "build-wheels-and-ship"}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> WheelStep:
        return cls(str(doc["platform"]), str(doc["build_host"]), _names(doc["hosts"]))


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
    wheels: tuple[WheelStep, ...] = ()  # empty: pip installs from the index on each host
    watch: Watch | None = None  # the spec's `watch`: run at the end of each wave's bake
    mirror: str | None = None  # artifacts.mirror: hosts download artifacts there; None: pushed

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
            # only with `wheels: once-per-platform`: plans without it keep their shape
            **({"wheels": [w.to_json() for w in self.wheels]} if self.wheels else {}),
            # only with a `watch` section: the waves it watches are those with a bake
            **({"watch": watch_json(self.watch, self.waves)} if self.watch else {}),
            **({"artifacts": {"source": "mirror", "mirror": self.mirror}} if self.mirror else {}),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Plan:
        """The plan `to_json` wrote (a deploy's `plan.json`): `from_json(p.to_json()) == p`.

        A document that is not such a plan raises KeyError, TypeError or ValueError.
        """
        if not isinstance(doc, Mapping):
            raise TypeError(f"a plan is a JSON object, not {type(doc).__name__}")
        return cls(
            name=str(doc["name"]),
            app=str(doc["app"]),
            release=str(doc["release"]),
            strategy=Strategy(doc["strategy"]),
            targets=_names(doc["targets"]),
            interpreter=dict(doc["interpreter"]),
            build=tuple(BuildStep.from_json(b) for b in doc["build"]),
            prestage=_names(doc["prestage"]),
            waves=tuple(Wave.from_json(w) for w in doc["waves"]),
            max_failed=int(doc["max_failed"]),
            on_failure=OnFailure(doc["on_failure"]),
            dead_man=int(doc["dead_man"]),
            lock_ttl=int(doc["lock_ttl"]),
            forks=int(doc["forks"]),
            wheels=tuple(WheelStep.from_json(w) for w in doc.get("wheels", [])),
            watch=watch_from_json(doc["watch"]) if doc.get("watch") else None,
            mirror=(doc.get("artifacts") or {}).get("mirror"),
        )


def _names(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list):
        raise TypeError(f"expected a list of host names, not {type(values).__name__}")
    return tuple(str(v) for v in values)


def watch_json(watch: Watch, waves: Sequence[Wave]) -> dict[str, Any]:
    return {"patterns": list(watch.patterns), "max_new": watch.max_new,
            "restarts": watch.restarts, "inconclusive": watch.inconclusive.value,
            "waves": [w.name for w in waves if w.gate.bake]}


def watch_from_json(doc: Mapping[str, Any]) -> Watch:
    return Watch(patterns=tuple(str(p) for p in doc["patterns"]), max_new=int(doc["max_new"]),
                 restarts=int(doc["restarts"]), inconclusive=Inconclusive(doc["inconclusive"]))
