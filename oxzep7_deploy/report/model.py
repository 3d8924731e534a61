"""What `report` shows of a deploy, read from the controller's records alone (no host contacted).

The records are `oxzep7_deploy.records`: meta.json, plan.json, progress.json (with its timeline)
and report.json. A host's `restart_gap_s` and `watch` findings are read where the records hold
them (report.json's hosts, else progress.json's) and are optional: a record without them says
"not measured" and "no watch configured".
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oxzep7_deploy.engine_model import Outcome
from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.records import DeployRecord, find_deploys
from oxzep7_deploy.report.style import PHASE_OF_STEP


@dataclass(frozen=True)
class Segment:
    """One step on one host: from start to end, in a phase; failed with a message or not."""

    step: str
    phase: str
    start: dt.datetime
    end: dt.datetime
    wave: str | None
    failed: str | None = None  # the host's message when the step failed there


@dataclass(frozen=True)
class Mark:
    """A wave's start or a gate's passage: a vertical line across every host."""

    event: str  # wave, paused, promoted, aborted
    wave: str | None
    at: dt.datetime


@dataclass
class HostView:
    name: str
    state: str = "pending"
    failed_step: str | None = None
    message: str | None = None
    restart_gap_s: float | None = None  # None: not measured
    watch: list[Any] | None = None  # None: no watch configured; [] : watched, nothing found
    segments: list[Segment] = field(default_factory=list)


@dataclass(frozen=True)
class WaveView:
    name: str
    hosts: tuple[str, ...]
    promote: str
    bake: int
    status: str  # done, paused before it, not reached, running or stopped in it


@dataclass
class DeployView:
    name: str
    release: str
    app: str
    outcome: str
    exit_code: int | None
    started: str | None
    finished: str | None
    owner: str | None
    error: str | None
    records: Path
    hosts: dict[str, HostView]
    waves: list[WaveView]
    marks: list[Mark]
    timed: bool  # the records hold step times (a deploy recorded before they did has none)


def find_record(root: Path, name: str, release: str | None) -> DeployRecord:
    """The deploy of spec `name` (its `release`, or the latest); a clear error (exit 2) if none."""
    records = find_deploys(root, name)
    if not records:
        raise UsageError(
            f"no deploy named {name!r} in the records at {root}",
            hint="run report from the directory where apply ran (its .oxzep7/ holds the records), "
                 "or point OXZEP7_RECORDS at them; NAME is the spec's `name`",
        )
    if release is None:
        return records[-1]
    for record in records:
        if record.release == release:
            return record
    known = ", ".join(r.release for r in reversed(records))
    raise UsageError(
        f"deploy {name} has no release {release!r} in the records at {root}",
        hint=f"its releases, latest first: {known}; without --release the latest is shown",
    )


def load_view(record: DeployRecord) -> DeployView:
    """Everything the page shows, from the deploy's records."""
    progress = _read(record, "progress.json")
    plan = _read(record, "plan.json")
    meta = _read_optional(record, "meta.json")
    final = _read_optional(record, "report.json")
    outcome, exit_code = _outcome(progress, final)
    hosts = _hosts(plan, progress, final)
    timeline = [e for e in progress.get("timeline") or [] if isinstance(e, dict)]
    for entry in timeline:
        if "step" in entry:
            _add_segments(hosts, entry)
    marks = [Mark(str(e["event"]), e.get("wave"), _time(e["at"]))
             for e in timeline if "event" in e and "at" in e]
    return DeployView(
        name=record.name, release=record.release, app=str(plan.get("app", "")),
        outcome=outcome, exit_code=exit_code, started=meta.get("started"),
        finished=final.get("finished"), owner=meta.get("owner"),
        error=progress.get("error") or final.get("error"), records=record.dir, hosts=hosts,
        waves=_waves(plan, progress, outcome, timeline), marks=marks,
        timed=any("step" in e for e in timeline))


def _read_optional(record: DeployRecord, name: str) -> dict[str, Any]:
    """A record that a deploy writes later (report.json) or wrote not always: {} when missing."""
    if not (record.dir / name).exists():
        return {}
    return _read(record, name)


def _read(record: DeployRecord, name: str) -> dict[str, Any]:
    path = record.dir / name
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: missing from the records of deploy {record.name} "
                         f"(release {record.release})", hint=_DAMAGED) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot be read: {exc}", hint=_DAMAGED) from exc
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: not a JSON object", hint=_DAMAGED)
    return doc


_DAMAGED = ("the records of this deploy are damaged or incomplete; `oxzep7-deploy status -i "
            "INVENTORY --app APP` shows what the hosts run; --release picks another deploy")


def _outcome(progress: dict[str, Any], final: dict[str, Any]) -> tuple[str, int | None]:
    if final.get("outcome"):
        code = final.get("exit_code")
        return str(final["outcome"]), int(code) if isinstance(code, int) else None
    try:
        outcome = Outcome(progress["outcome"]) if progress.get("outcome") else None
    except ValueError:
        return str(progress["outcome"]), None
    if outcome is None:
        return "running or interrupted (no final report yet)", None
    return outcome.value, int(outcome.exit_code)


def _hosts(plan: dict[str, Any], progress: dict[str, Any], final: dict[str, Any]
           ) -> dict[str, HostView]:
    raw_progress = progress.get("hosts") or {}
    raw_final = final.get("hosts") or {}
    names = [*(plan.get("targets") or []), *(h for h in raw_progress if h not in plan.get("targets", []))]
    hosts = {}
    for name in names:
        first: dict[str, Any] = raw_final.get(name) or {}
        second: dict[str, Any] = raw_progress.get(name) or {}

        def pick(key: str, first: dict[str, Any] = first, second: dict[str, Any] = second) -> Any:
            return first[key] if first.get(key) is not None else second.get(key)

        gap = pick("restart_gap_s")
        watch = pick("watch")
        hosts[name] = HostView(
            name=str(name), state=str(pick("state") or "pending"), failed_step=pick("failed_step"),
            message=pick("message"),
            restart_gap_s=float(gap) if isinstance(gap, (int, float)) else None,
            watch=list(watch) if isinstance(watch, list) else None)
    return hosts


def _add_segments(hosts: dict[str, HostView], entry: dict[str, Any]) -> None:
    step = str(entry["step"])
    start, end = _time(entry["start"]), _time(entry["end"])
    failed = entry.get("failed") or {}
    for host in entry.get("hosts") or []:
        view = hosts.setdefault(host, HostView(str(host)))
        message = failed.get(host)
        phase = "failed" if host in failed else PHASE_OF_STEP.get(step, "lock")
        view.segments.append(Segment(step, phase, start, end, entry.get("wave"),
                                     None if host not in failed else str(message or "failed")))


def _waves(plan: dict[str, Any], progress: dict[str, Any], outcome: str,
           timeline: list[dict[str, Any]]) -> list[WaveView]:
    done = int(progress.get("waves_done") or 0)
    paused = progress.get("paused_at")
    started = {e.get("wave") for e in timeline if e.get("event") == "wave"}
    out = []
    for index, wave in enumerate(plan.get("waves") or []):
        gate = wave.get("gate") or {}
        if index < done:
            status = "done"
        elif paused == index:
            status = "paused before it (manual promote)"
        elif wave.get("name") in started if timeline else index == done:
            status = f"stopped in it ({outcome})"
        else:
            status = "not reached"
        out.append(WaveView(str(wave.get("name")), tuple(wave.get("hosts") or ()),
                            str(gate.get("promote", "auto")), int(gate.get("bake") or 0), status))
    return out


def _time(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(str(text))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
