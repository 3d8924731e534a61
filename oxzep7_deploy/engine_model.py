"""What the engine needs from the hosts, and what it reports: the engine's own vocabulary."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Protocol

from oxzep7_deploy.errors import ExitCode
from oxzep7_deploy.runner.request import HostResult

Results = Mapping[str, HostResult]


class HostSteps(Protocol):
    """The per-host steps of a release, each run on a batch of hosts at once.

    Optional: an attribute `preview` (a step like the others, or None): run on each batch just
    before its switch; a host that fails it is not switched (the spec's `preview`).
    Optional: an attribute `watch` (a step, or None): run at the end of a wave's bake on the hosts
    it switched; each host's result has `watch`: {"verdict", "reason", counts} (the spec's `watch`).
    """

    def install(self, hosts: Sequence[str]) -> Results:
        """Get the interpreter onto the hosts and verify it (builds once per platform)."""
        ...

    def wheels(self, hosts: Sequence[str]) -> Results:
        """Ship the requirements' wheel set of each host's platform, built once on its build
        host (only when the plan has wheel steps: `application.wheels: once-per-platform`)."""
        ...

    def lock(self, hosts: Sequence[str]) -> Results:
        """Take this deploy's lock (prepare takes it too; this is for `prestage: false`)."""
        ...

    def prepare(self, hosts: Sequence[str]) -> Results:
        """Lock, build the release's venv, run `verify`; nothing live changes."""
        ...

    def switch(self, hosts: Sequence[str]) -> Results:
        """Snapshot, switch `current`, restart, health, arm the dead-man. A host whose health
        fails goes back to its previous release by itself and reports failed."""
        ...

    def health(self, hosts: Sequence[str]) -> Results:
        """Run the health checks again (bake)."""
        ...

    def confirm(self, hosts: Sequence[str]) -> Results:
        """Disarm the dead-man, mark the release good, prune; the lock stays until the end."""
        ...

    def rollback(self, hosts: Sequence[str]) -> Results:
        """Back to the release each host ran before this deploy; marks this one bad."""
        ...

    def unlock(self, hosts: Sequence[str]) -> Results:
        """Release this deploy's lock (when the deploy ends, whatever its outcome)."""
        ...


class Outcome(str, Enum):
    SUCCEEDED = "succeeded"
    # every wave done; some hosts failed within max_failed and run what they ran before
    SUCCEEDED_WITHIN_BUDGET = "succeeded-within-budget"
    PAUSED = "paused"  # waiting at a manual gate: `promote` or `abort`
    ROLLED_BACK = "rolled-back"  # failed; what it switched is back on the previous release
    FAILED = "failed"  # failed before it switched any host: every target runs what it ran before
    STOPPED = "stopped"  # failed with on_failure: stop; switched hosts were left as they are
    ROLLBACK_INCOMPLETE = "rollback-incomplete"

    @property
    def exit_code(self) -> ExitCode:
        return {
            Outcome.SUCCEEDED: ExitCode.OK,
            Outcome.SUCCEEDED_WITHIN_BUDGET: ExitCode.OK,
            Outcome.PAUSED: ExitCode.OK,
            Outcome.ROLLED_BACK: ExitCode.DEPLOY_FAILED,
            Outcome.FAILED: ExitCode.DEPLOY_FAILED,
            Outcome.STOPPED: ExitCode.DEPLOY_FAILED,
            Outcome.ROLLBACK_INCOMPLETE: ExitCode.ROLLBACK_INCOMPLETE,
        }[self]


@dataclass
class HostRecord:
    """One host's part in a deploy, as the report tells it."""

    # pending, prepared, switched, live, rolled-back, failed, unreachable (SSH could not reach
    # it), rollback-failed, switch-unknown (its switch or confirm raised: a rollback finds out)
    state: str = "pending"
    failed_step: str | None = None
    failed_task: str | None = None
    message: str | None = None
    # the switch's restart gap as the agent measured it (its gap.py says how), and the window
    # [start, end] (epoch seconds) of its restart and health checks; None without application.port
    restart_gap_s: float | None = None
    restart_window: list[float] | None = None
    # what the watch found on this host (`watch` in the spec), one finding per watched wave:
    # {"wave", "verdict": ok|failed|inconclusive|unavailable|unwatched, "reason", ...};
    # None: no watch configured
    watch: list[dict[str, Any]] | None = None


@dataclass
class Progress:
    """How far a deploy has come: saved after every step, so it can pause and resume."""

    name: str
    release: str
    prestaged: list[str] = field(default_factory=list)
    locked: bool = False  # this deploy holds the lock on every target (until it ends)
    switched: list[str] = field(default_factory=list)  # switched by this deploy, still on it
    waves_done: int = 0
    promoted: list[int] = field(default_factory=list)  # wave indexes whose manual gate is passed
    paused_at: int | None = None
    # why it is paused: "gate" (a manual gate before wave paused_at) or "watch" (the watch of
    # wave paused_at, which is done, was inconclusive); None when not paused
    paused_for: str | None = None
    outcome: Outcome | None = None
    hosts: dict[str, HostRecord] = field(default_factory=dict)
    error: str | None = None  # what stopped the deploy when a step raised (step: message)
    # what happened when, oldest first (`report` draws it): one entry per step run on a batch,
    # {"step", "wave", "start", "end", "hosts", "failed": {host: message}}, and one per wave
    # start and gate, {"event": wave|paused|promoted|aborted, "wave", "at"}; times are ISO 8601
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["outcome"] = self.outcome.value if self.outcome else None
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Progress:
        hosts = {h: HostRecord(**r) for h, r in dict(doc.get("hosts") or {}).items()}
        outcome = Outcome(doc["outcome"]) if doc.get("outcome") else None
        fields = {k: doc[k] for k in ("prestaged", "locked", "switched", "waves_done", "promoted",
                                            "paused_at", "paused_for", "error", "timeline")
                  if k in doc}
        return cls(name=doc["name"], release=doc["release"], outcome=outcome, hosts=hosts, **fields)


@dataclass(frozen=True)
class ProgressEvent:
    kind: str  # phase, batch, host, gate, rollback, done
    message: str
    wave: str | None = None
    hosts: tuple[str, ...] = ()
    ok: bool = True


ProgressHandler = Callable[[ProgressEvent], None]
