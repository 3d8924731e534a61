"""The on-host state model: the agent's state.json and lock record as frozen dataclasses.

The host is the truth. `parse_host_state` reads what the host agent's `state` subcommand reports
(state.json, the lock, the interpreter that `current` really runs) into a `HostState` that
`status`, `history` and `rollback` use without needing the spec.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from types import MappingProxyType
from typing import Any

STATE_FORMAT = 1


class StateFormatError(ValueError):
    """A host reported state this version cannot read."""


class ReleaseStatus(str, Enum):
    PREPARED = "prepared"  # built and verified, never live
    LIVE = "live"  # switched to, health not yet confirmed
    GOOD = "good"  # confirmed healthy (or adopted: it was running before oxzep7)
    BAD = "bad"  # rolled back from; a default rollback never returns to it
    FAILED = "failed"  # preparation or verify failed


@dataclass(frozen=True)
class InterpreterInfo:
    executable: str | None = None
    version: str | None = None
    prefix: str | None = None
    managed: bool = False  # a tree oxzep7 installed (pruned when no kept release uses it)


@dataclass(frozen=True)
class ReleaseRecord:
    id: str
    status: ReleaseStatus
    path: str
    created: str | None = None
    updated: str | None = None
    deploy: str | None = None
    adopted: bool = False
    interpreter: InterpreterInfo = InterpreterInfo()
    spec_name: str | None = None
    spec_digest: str | None = None
    error: str | None = None
    bad_reason: str | None = None


@dataclass(frozen=True)
class LockRecord:
    deploy: str
    owner: str
    reason: str
    created: str
    expires: str
    ttl: int
    expired: bool
    age_seconds: int | None = None  # since it was taken, by this controller's clock

    def describe(self) -> str:
        """`deploy D (owner U, reason R) taken 4m10s ago, until T`: how messages name the holder."""
        reason = f", reason {self.reason!r}" if self.reason else ""
        stale = " (expired)" if self.expired else ""
        age = f" taken {_duration(self.age_seconds)} ago," if self.age_seconds is not None else ""
        return f"deploy {self.deploy} (owner {self.owner}{reason}){age} until {self.expires}{stale}"


def _duration(seconds: int) -> str:
    """`45s`, `4m10s`, `2h05m`."""
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _age(created: str) -> int | None:
    """Seconds since `created` (the agent's `2025-01-01T12:00:00Z`), or None if unreadable."""
    try:
        then = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None
    return max(0, int((dt.datetime.now(dt.timezone.utc) - then).total_seconds()))


@dataclass(frozen=True)
class DeadmanRecord:
    token: str
    deploy: str | None
    from_release: str | None
    to_release: str
    seconds: int
    armed: str
    fires: str
    mode: str  # systemd | process


@dataclass(frozen=True)
class HistoryEvent:
    at: str
    event: str  # adopt, prepare, prepare-failed, snapshot, switch, confirm, rollback, deadman, ...
    release: str | None = None
    deploy: str | None = None
    from_release: str | None = None
    to_release: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class SnapshotRecord:
    id: str
    release: str | None  # the release that was current when the paths were archived
    created: str
    paths: tuple[str, ...]
    files: int
    deploy: str | None = None


@dataclass(frozen=True)
class HostState:
    """One host's view of one application."""

    host: str
    app: str
    managed: bool  # state.json exists (False: never touched, or only adoptable)
    root: str | None = None
    current: str | None = None
    previous: str | None = None
    last_good: str | None = None
    releases: Mapping[str, ReleaseRecord] = field(default_factory=lambda: MappingProxyType({}))
    lock: LockRecord | None = None
    deadman: DeadmanRecord | None = None
    history: tuple[HistoryEvent, ...] = ()
    snapshots: tuple[SnapshotRecord, ...] = ()
    live_executable: str | None = None  # what <root>/current/venv/bin/python is, probed now
    live_version: str | None = None
    current_link: str | None = None  # the release <root>/current points to right now
    error: str | None = None  # the host could not be read: unreachable, or the agent failed
    unreachable: bool = False  # SSH could not reach it (else an error is an unreadable state)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def not_read(self) -> str | None:
        """Why the host's state is unknown: `unreachable` (SSH), `unreadable` (the rest), or None."""
        if self.error is None:
            return None
        return "unreachable" if self.unreachable else "unreadable"

    @property
    def current_release(self) -> ReleaseRecord | None:
        return self.releases.get(self.current) if self.current else None

    @property
    def interpreter_version(self) -> str | None:
        """The version `current` runs: probed on the host, else as recorded at prepare."""
        if self.live_version:
            return self.live_version
        rel = self.current_release
        return rel.interpreter.version if rel else None

    def with_status(self, status: ReleaseStatus) -> tuple[str, ...]:
        return tuple(r.id for r in self.releases.values() if r.status is status)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types (enums as their values), for `status --json` and records."""
        doc: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "releases":
                value = {k: asdict(v) for k, v in value.items()}
            elif isinstance(value, tuple):
                value = [asdict(v) for v in value]
            elif value is not None and hasattr(value, "__dataclass_fields__"):
                value = asdict(value)
            doc[f.name] = value
        doc["interpreter_version"] = self.interpreter_version
        plain: dict[str, Any] = json.loads(json.dumps(doc, default=lambda o: o.value))
        return plain


def unreachable_state(host: str, app: str, message: str) -> HostState:
    """SSH could not reach the host."""
    return HostState(host=host, app=app, managed=False, error=message, unreachable=True)


def unreadable_state(host: str, app: str, message: str) -> HostState:
    """The host answered, but its state could not be read (the agent failed, a corrupt file)."""
    return HostState(host=host, app=app, managed=False, error=message)


def parse_host_state(host: str, report: Mapping[str, Any]) -> HostState:
    """A `HostState` from the agent's `state` report (`{"state": ..., "lock": ..., "live": ...}`)."""
    app = str(report.get("app") or "")
    st = report.get("state")
    lock = _lock(report.get("lock"))
    live = report.get("live") or {}
    common: dict[str, Any] = {
        "host": host,
        "app": app,
        "managed": bool(report.get("managed")),
        "lock": lock,
        "live_executable": live.get("executable"),
        "live_version": live.get("version"),
        "current_link": report.get("current_link"),
    }
    if st is None:
        return HostState(**common)
    if not isinstance(st, Mapping) or st.get("format") != STATE_FORMAT:
        fmt = st.get("format") if isinstance(st, Mapping) else type(st).__name__
        raise StateFormatError(f"{host}: state of {app} has format {fmt!r}, expected {STATE_FORMAT}")
    releases = {rid: _release(rid, rel) for rid, rel in dict(st.get("releases") or {}).items()}
    return HostState(
        root=st.get("root"),
        current=st.get("current"),
        previous=st.get("previous"),
        last_good=st.get("last_good"),
        releases=MappingProxyType(releases),
        deadman=_deadman(st.get("deadman")),
        history=tuple(_event(e) for e in st.get("history") or ()),
        snapshots=tuple(_snapshot(s) for s in st.get("snapshots") or ()),
        **common,
    )


def _release(rid: str, rel: Mapping[str, Any]) -> ReleaseRecord:
    interp = rel.get("interpreter") or {}
    spec = rel.get("spec") or {}
    try:
        status = ReleaseStatus(rel.get("status"))
    except ValueError as exc:
        raise StateFormatError(f"release {rid} has unknown status {rel.get('status')!r}") from exc
    return ReleaseRecord(
        id=rid,
        status=status,
        path=str(rel.get("path") or ""),
        created=rel.get("created"),
        updated=rel.get("updated"),
        deploy=rel.get("deploy"),
        adopted=bool(rel.get("adopted")),
        interpreter=InterpreterInfo(
            executable=interp.get("executable"),
            version=interp.get("version"),
            prefix=interp.get("prefix"),
            managed=bool(interp.get("managed")),
        ),
        spec_name=spec.get("name"),
        spec_digest=spec.get("digest"),
        error=rel.get("error"),
        bad_reason=rel.get("bad_reason"),
    )


def _lock(doc: Mapping[str, Any] | None) -> LockRecord | None:
    if not doc:
        return None
    return LockRecord(
        deploy=str(doc.get("deploy")),
        owner=str(doc.get("owner")),
        reason=str(doc.get("reason") or ""),
        created=str(doc.get("created")),
        expires=str(doc.get("expires")),
        ttl=int(doc.get("ttl") or 0),
        expired=bool(doc.get("expired")),
        age_seconds=_age(str(doc.get("created"))),
    )


def parse_lock(doc: Mapping[str, Any] | None) -> LockRecord | None:
    """A lock record as the agent reports it (`lock`, or `holder` when a lock is refused)."""
    return _lock(doc)


def _deadman(doc: Mapping[str, Any] | None) -> DeadmanRecord | None:
    if not doc:
        return None
    return DeadmanRecord(
        token=str(doc.get("token")),
        deploy=doc.get("deploy"),
        from_release=doc.get("from"),
        to_release=str(doc.get("to")),
        seconds=int(doc.get("seconds") or 0),
        armed=str(doc.get("armed")),
        fires=str(doc.get("fires")),
        mode=str(doc.get("mode")),
    )


def _event(doc: Mapping[str, Any]) -> HistoryEvent:
    return HistoryEvent(
        at=str(doc.get("at")),
        event=str(doc.get("event")),
        release=doc.get("release"),
        deploy=doc.get("deploy"),
        from_release=doc.get("from"),
        to_release=doc.get("to"),
        detail=doc.get("detail"),
    )


def _snapshot(doc: Mapping[str, Any]) -> SnapshotRecord:
    paths: Sequence[Mapping[str, Any]] = doc.get("paths") or ()
    return SnapshotRecord(
        id=str(doc.get("id")),
        release=doc.get("release"),
        created=str(doc.get("created")),
        paths=tuple(str(p.get("path")) for p in paths),
        files=int(doc.get("files") or 0),
        deploy=doc.get("deploy"),
    )
