"""Operations on an app's hosts outside a deploy: status, history, rollback, unlock.

They need the inventory and the app's name only: the hosts' state is the truth.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oxzep7_deploy.errors import LockHeldError
from oxzep7_deploy.inventory import load_inventory
from oxzep7_deploy.records import owner, prune_reads
from oxzep7_deploy.runner.base import Runner
from oxzep7_deploy.runner.request import HostResult
from oxzep7_deploy.spec.model import HostCount
from oxzep7_deploy.state.host import HostState, LockRecord
from oxzep7_deploy.steps import release as steps


@dataclass(frozen=True)
class Target:
    """The hosts an operation acts on, and where its runs are recorded."""

    inventory: tuple[str, ...]  # the -i sources, in order
    app: str
    hosts: tuple[str, ...]
    run_root: Path
    runner: Runner

    def run_dir(self, step: str) -> Path:
        path = self.run_root / step
        path.mkdir(parents=True, exist_ok=True)
        return path


READ_ONLY = ("status", "history")  # kinds whose records are pruned (records.prune_reads)


def select_target(inventories: tuple[str, ...], app: str, limit: str | None, records: Path,
                  kind: str, runner: Runner) -> Target:
    inventory = load_inventory(*inventories)
    hosts = inventory.select(limit) if limit else inventory.hosts
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_root = records / "ops" / app / f"{stamp}-{kind}-{secrets.token_hex(2)}"
    if kind in READ_ONLY:
        run_root.mkdir(parents=True, exist_ok=True)
        prune_reads(run_root.parent.glob(f"*-{kind}-*"))
    return Target(tuple(inventories), app, hosts, run_root, runner)


def read_states(target: Target) -> dict[str, HostState]:
    return steps.read_status(target.inventory, target.app, target.hosts, target.runner,
                             target.run_dir("status"))


def summary_line(states: dict[str, HostState]) -> str:
    """`12 hosts: 3 on 3.13.5, 8 on 3.11.2, 1 unreachable` (`unreadable`: reached, state unknown)."""
    versions: Counter[str] = Counter()
    for state in states.values():
        if state.not_read:
            versions[state.not_read] += 1
        elif not state.managed and not state.current_link:
            versions["without the app"] += 1
        else:
            versions[f"on {state.interpreter_version or 'unknown'}"] += 1
    parts = [f"{n} {what}" for what, n in sorted(versions.items(), key=lambda kv: (-kv[1], kv[0]))]
    return f"{len(states)} host{'s' if len(states) != 1 else ''}: " + ", ".join(parts)


@dataclass(frozen=True)
class RollbackOutcome:
    results: dict[str, HostResult]
    skipped: dict[str, str]  # host -> why it was not rolled back (not deployed there)
    nothing_to_do: dict[str, str] = field(default_factory=dict)  # host -> why it was left as is
    batches: tuple[tuple[str, ...], ...] = ()  # the batches planned, in order
    stopped: dict[str, str] = field(default_factory=dict)  # host -> why it was not tried
    locked: dict[str, str] = field(default_factory=dict)  # host -> the lock that kept it as is

    @property
    def complete(self) -> bool:
        """Every host that was touched is back on a release and healthy, and none was left out
        because an earlier batch failed."""
        return all(r.ok for r in self.results.values()) and not self.stopped


# the agent refused before changing anything: no release to go to, or not the one asked for
_UNTOUCHED = ("nothing-to-roll-back", "unknown-release", "already-current", "release-failed")


def rollback_batches(hosts: Sequence[str], batch_size: HostCount | None = None,
                     all_at_once: bool = False) -> tuple[tuple[str, ...], ...]:
    """The batches a rollback switches one after another so the app keeps serving: at most half
    the hosts each (at least one) unless `batch_size` (a count or a share of `hosts`, rounded
    up) says otherwise; every host in one batch with `all_at_once`."""
    hosts = tuple(hosts)
    if not hosts:
        return ()
    if all_at_once:
        size = len(hosts)
    elif batch_size is not None:
        size = max(1, batch_size.resolve(len(hosts)))
    else:
        size = max(1, len(hosts) // 2)
    return tuple(hosts[i:i + size] for i in range(0, len(hosts), size))


def rollback_app(target: Target, to: str | None, force: bool = False,
                 batch_size: HostCount | None = None, all_at_once: bool = False
                 ) -> RollbackOutcome:
    """Back to the previous good release (or `to`) on every host that runs the app.

    In batches (see rollback_batches), each switched, restarted and health-checked by the agent
    before the next starts; a batch with a host that did not come back healthy stops the rest,
    which are listed in `stopped`. The agent reads each host's state itself, so a host where
    oxzep7 never deployed the app is skipped (code `no-state`), not failed. A lock another
    deploy holds refuses the rollback (LockHeldError, exit 2, naming it) when no host was touched
    yet, unless `force` breaks it first.
    """
    if force:
        unlock_app(target, force=True)
    batches = rollback_batches(target.hosts, batch_size, all_at_once)
    kept: dict[str, HostResult] = {}
    skipped: dict[str, str] = {}
    stuck: dict[str, str] = {}
    stopped: dict[str, str] = {}
    locked: dict[str, str] = {}
    for number, batch in enumerate(batches, 1):
        step = "rollback" if len(batches) == 1 else f"rollback-batch{number}"
        results = steps.rollback_release(
            target.inventory, target.app, batch, target.runner, target.run_dir(step),
            to, owner=owner(), reason="oxzep7-deploy rollback")
        batch_skipped = {h: "oxzep7 never deployed the app here" for h, r in results.items()
                         if not r.ok and r.result.get("code") == "no-state"}
        batch_stuck = {h: r.message or "nothing to roll back to" for h, r in results.items()
                       if not r.ok and r.result.get("code") in _UNTOUCHED}
        held = steps.lock_holders(results)  # refused before anything changed there
        untouched = {h for h in results if h not in batch_skipped}
        if held and not kept and set(held) | set(batch_stuck) == untouched:
            _raise_held(held, target.app)  # no host was touched: the lock is the answer
        locked.update({h: f"locked by {lock.describe()}" for h, lock in held.items()})
        skipped.update(batch_skipped)
        stuck.update({h: why for h, why in batch_stuck.items() if h not in held})
        touched = {h: r for h, r in results.items()
                   if h not in batch_skipped and h not in batch_stuck and h not in held}
        kept.update(touched)
        failed = [h for h, r in touched.items() if not r.ok]
        if failed and number < len(batches):
            why = (f"not tried: batch {number} of {len(batches)} ({', '.join(batch)}) did not come "
                   f"back healthy on {', '.join(failed)}")
            stopped = {h: why for later in batches[number:] for h in later}
            break
    return RollbackOutcome(kept, skipped, stuck, batches, stopped, locked)


def _raise_held(held: dict[str, LockRecord], app: str) -> None:
    first_host, first = next(iter(held.items()))
    others = f" and {len(held) - 1} more host(s)" if len(held) > 1 else ""
    raise LockHeldError(
        f"{first_host}{others}: locked by {first.describe()}; nothing was rolled back",
        hint=f"wait for that deploy to end (`oxzep7-deploy status -i INVENTORY --app {app}` shows "
             "the lock), or run the rollback again with --force to break the lock and roll back",
    )


def unlock_app(target: Target, force: bool) -> dict[str, HostResult]:
    return dict(steps.unlock(target.inventory, target.app, target.hosts, target.runner,
                             target.run_dir("unlock"), owner=owner(), force=force))


# what a deploy's last event on a host says about it there
_OUTCOME_OF = {
    "prepare": "prepared",
    "prepare-failed": "failed to prepare",
    "snapshot": "switching",
    "switch": "switched, unconfirmed",
    "confirm": "live",
    "rollback": "rolled back",
    "deadman": "reverted by the dead-man",
    "rollback-incomplete": "ROLLBACK INCOMPLETE",
    "rollback-unhealthy": "ROLLBACK INCOMPLETE",
    "deadman-incomplete": "ROLLBACK INCOMPLETE",
    "deadman-unhealthy": "ROLLBACK INCOMPLETE",
}


def history_of(states: dict[str, HostState]) -> dict[str, Any]:
    """Releases (with the hosts in each status), deploys (with their outcome on each host) and
    events across the hosts (one row per deploy, event and release, with first and last time)."""
    releases: dict[str, dict[str, Any]] = {}
    events: dict[tuple[str, str, str], dict[str, Any]] = {}
    deploys: dict[str, dict[str, Any]] = {}
    for host, state in states.items():
        for rel in state.releases.values():
            entry = releases.setdefault(rel.id, {
                "release": rel.id, "interpreter": rel.interpreter.version, "created": rel.created,
                "spec": rel.spec_name, "hosts": {}})
            entry["hosts"][host] = rel.status.value
        for ev in state.history:
            key = (ev.deploy or "", ev.event, ev.release or ev.to_release or "")
            entry = events.setdefault(key, {"at": ev.at, "last": ev.at, "event": ev.event,
                                            "deploy": ev.deploy,
                                            "release": ev.release or ev.to_release,
                                            "from": ev.from_release, "hosts": []})
            entry["at"], entry["last"] = min(entry["at"], ev.at), max(entry["last"], ev.at)
            if host not in entry["hosts"]:
                entry["hosts"].append(host)
            if ev.deploy and ev.event in _OUTCOME_OF:
                dep = deploys.setdefault(ev.deploy, {"deploy": ev.deploy, "release": None,
                                                     "first": ev.at, "last": ev.at, "hosts": {}})
                dep["first"], dep["last"] = min(dep["first"], ev.at), max(dep["last"], ev.at)
                if ev.event in ("prepare", "switch", "confirm") and ev.release:
                    dep["release"] = ev.release
                elif dep["release"] is None and ev.event.startswith(("rollback", "deadman")):
                    dep["release"] = ev.to_release or ev.release
                dep["hosts"][host] = _OUTCOME_OF[ev.event]  # history is oldest first: last wins
    for dep in deploys.values():
        outcomes = set(dep["hosts"].values())
        dep["outcome"] = outcomes.pop() if len(outcomes) == 1 else "mixed"
    return {
        "releases": sorted(releases.values(), key=lambda r: r["created"] or ""),
        "deploys": sorted(deploys.values(), key=lambda d: d["first"]),
        "events": sorted(events.values(), key=lambda e: e["at"]),
    }


def not_read(states: dict[str, HostState]) -> dict[str, dict[str, str]]:
    """The hosts whose state could not be read: `{host: {"reason", "error"}}`."""
    return {h: {"reason": s.not_read, "error": s.error or ""}
            for h, s in states.items() if s.not_read}


def ordered(states: dict[str, HostState], hosts: Sequence[str]) -> dict[str, HostState]:
    return {h: states[h] for h in hosts if h in states}
