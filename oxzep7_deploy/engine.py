"""Run a plan: prestage, waves of batches, gates, the failure budget, and rollback."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Any

from oxzep7_deploy.engine_model import (
    HostRecord,
    HostSteps,
    Outcome,
    Progress,
    ProgressEvent,
    ProgressHandler,
    Results,
)
from oxzep7_deploy.engine_watch import evidence, held, judging, unwatched
from oxzep7_deploy.errors import Oxzep7Error
from oxzep7_deploy.plan.model import Plan, Wave
from oxzep7_deploy.runner.request import HostResult, HostStatus
from oxzep7_deploy.spec.model import OnFailure, Promote

# a host in these states may run this deploy's release: a rollback is owed to it, not a "nothing
# switched"
_TOUCHED = ("switched", "live", "rolled-back", "rollback-failed", "switch-unknown")
# where a switch was tried: the host may have switched (and reverted itself) even if it failed
_SWITCH_STEPS = ("switch", "confirm", "bake")
ErrorLog = Callable[[str, Exception], str | None]


def _not_switched(res: HostResult) -> bool:
    """The agent says its switch never moved `current`: `switched: false` after a failed restart
    or check, or an error of its own (a code) raised before the link moved (a lock held, a
    release that is failed, bad or broken, a snapshot that could not be taken)."""
    report = res.result
    if "switched" in report:
        return report.get("switched") is False
    return bool(report.get("code"))


class DeployStopped(Exception):
    """Raised inside the engine when the failure budget is spent, or a step raised."""


class Engine:
    """Carries out one plan with the given host steps, saving progress after every step."""

    def __init__(
        self,
        plan: Plan,
        steps: HostSteps,
        progress: Progress,
        save: Callable[[Progress], None],
        on_event: ProgressHandler | None = None,
        health_interval: int = 2,
        sleep: Callable[[float], None] = time.sleep,
        log_error: ErrorLog | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.plan = plan
        self.steps = steps
        self.progress = progress
        self._save = save
        self._emit = on_event or (lambda _e: None)
        self._interval = max(1, health_interval)
        self._sleep = sleep
        self._log_error = log_error
        self._clock = clock
        self._wave: str | None = None  # the wave being run, for the timeline
        self.error: Exception | None = None  # the first exception a step raised, if any
        self._stopping = False  # failure handling: a step that raises now stops nothing more
        self._results: Results = {}  # the last step's results, per host
        self._held: list[str] = []  # hosts whose watch was inconclusive: the deploy pauses
        self._held_evidence = ""
        for host in plan.targets:
            progress.hosts.setdefault(host, HostRecord())

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> Progress:
        """Go as far as the plan allows: to the end, to a manual gate, or to a failure."""
        p = self.progress
        resumed_at, p.paused_at = p.paused_at, None
        if p.paused_for == "watch" and resumed_at is not None:
            if resumed_at not in p.promoted:  # resumed, not promoted: the watch still holds it
                p.paused_at = resumed_at
                self._save(p)
                self._emit(ProgressEvent(
                    "gate", f"still paused after wave {self.plan.waves[resumed_at].name}: its "
                    f"watch was inconclusive; `oxzep7-deploy promote {self.plan.name}` continues, "
                    f"`oxzep7-deploy abort {self.plan.name}` rolls back", ok=False))
                return p
            self._mark("promoted", self.plan.waves[resumed_at].name)  # promoted past the watch
            resumed_at = None
        p.paused_for = None
        try:
            if not (p.locked or p.prestaged):  # every target first: no other deploy comes between
                # the first target alone first: of two deploys started at once, the one refused
                # there holds no other host, so one of them goes on (not both refused halfway)
                self._step("lock", self.steps.lock, self._alive(self.plan.targets[:1]))
                self._check_budget()
                if self.plan.prestage:
                    self._prestage(self.plan.prestage)  # prepare takes the lock
                else:
                    self._step("lock", self.steps.lock, self._alive(self.plan.targets))
                    self._check_budget()
                p.locked = True
            for index in range(p.waves_done, len(self.plan.waves)):
                wave = self.plan.waves[index]
                if wave.gate.promote is Promote.MANUAL and index not in p.promoted:
                    return self._pause(index, wave)
                if wave.gate.promote is Promote.MANUAL and index == resumed_at:
                    self._mark("promoted", wave.name)
                self._run_wave(wave)
                p.waves_done = index + 1
                self._save(p)
                if self._held:
                    return self._pause_watch(index, wave)
        except DeployStopped:
            return self._fail()
        except Exception as exc:
            if self.error is None:
                self.error = exc
                where = self._log_error("engine", exc) if self._log_error else None
                p.error = (f"internal error: {type(exc).__name__}: {exc}"
                           + (f" (traceback in {where}; please report it)" if where else ""))
            self._emit(ProgressEvent("phase", f"stopped by an error: {p.error}", ok=False))
            return self._fail()
        failed = self.failed_hosts()
        p.outcome = Outcome.SUCCEEDED if not failed else Outcome.SUCCEEDED_WITHIN_BUDGET
        self._release_locks()
        if self._rollback_failed():
            p.outcome = Outcome.ROLLBACK_INCOMPLETE
            self._emit(ProgressEvent("done", "a failed host could not be put back: "
                                     + ", ".join(self._rollback_failed()), ok=False))
        elif failed:
            self._emit(ProgressEvent(
                "done", f"release {self.plan.release} is on every target but {', '.join(failed)}: "
                f"{len(failed)} failed within the budget (max_failed {self.plan.max_failed}); "
                "they run what they ran before", ok=False))
        else:
            self._emit(ProgressEvent("done", f"every target runs release {self.plan.release}"))
        self._save(p)
        return p

    def abort(self) -> Progress:
        """Stop a paused deploy: roll back what it switched, release the locks."""
        self._emit(ProgressEvent("phase", "abort: rolling back what this deploy switched"))
        paused = self.progress.paused_at
        self._mark("aborted", self.plan.waves[paused].name if paused is not None else None)
        self._stopping = True
        return self._undo(self.plan.targets, verb="aborted")

    # -- phases --------------------------------------------------------------------------------

    def _prestage(self, hosts: Sequence[str]) -> None:
        self._emit(ProgressEvent("phase", "prestage: interpreter and release on every target",
                                 hosts=tuple(hosts)))
        ready = self._prepare(hosts)
        self.progress.prestaged = list(ready)
        self._save(self.progress)

    def _prepare(self, hosts: Sequence[str]) -> list[str]:
        """Install and prepare; returns the hosts ready to switch."""
        alive = self._alive(hosts)
        self._emit(ProgressEvent("batch", f"interpreter on {_names(alive)}", hosts=tuple(alive)))
        installed = self._step("install", self.steps.install, alive)
        if self.plan.wheels and installed:
            self._emit(ProgressEvent("batch", f"wheel set on {_names(installed)}",
                                     hosts=tuple(installed)))
            installed = self._step("wheels", self.steps.wheels, installed)
        if installed:
            self._emit(ProgressEvent("batch", f"release venv + verify on {_names(installed)}",
                                     hosts=tuple(installed)))
        prepared = self._step("prepare", self.steps.prepare, installed)
        for host in prepared:
            self.progress.hosts[host].state = "prepared"
        self._note_reused(prepared)
        self._check_budget()
        return prepared

    def _note_reused(self, hosts: Sequence[str]) -> None:
        """Hosts whose prepare found the release already built (a rehearsal, or an earlier
        attempt): said once, and kept as the host's detail."""
        reused = [h for h in hosts if _truthy((self._results.get(h) or _NO_RESULT).result
                                              .get("already"))]
        for host in reused:
            self.progress.hosts[host].message = (f"release {self.plan.release} was already "
                                                 "prepared here: reused, not built again")
        if reused:
            self._emit(ProgressEvent("batch", f"release {self.plan.release} already prepared on "
                                     f"{_names(reused)}: reused, not built again",
                                     hosts=tuple(reused)))

    def _preview(self, hosts: Sequence[str]) -> list[str]:
        """With a preview step (the spec's `preview`): the new release runs beside the old on each
        host and is health-checked there; only the hosts that passed go on to their switch."""
        preview = getattr(self.steps, "preview", None)
        if preview is None or not hosts:
            return list(hosts)
        self._emit(ProgressEvent("batch", f"preview of release {self.plan.release} beside the "
                                 f"running one on {_names(hosts)}", wave=self._wave,
                                 hosts=tuple(hosts)))
        passed = self._step("preview", preview, hosts)
        for host in passed:
            self.progress.hosts[host].state = "previewed"
        self._check_budget()
        return passed

    def rehearse(self) -> Progress:
        """Everything before a switch, on every target: lock, install, prepare (verify) and the
        preview; then let go of the locks. Switches nothing; the prepared release stays for a
        later apply. Outcome: succeeded when every target passed, else failed."""
        p = self.progress
        self._wave = "rehearse"
        self._emit(ProgressEvent("phase", f"rehearse release {self.plan.release}: everything "
                                 "before the switch, on every target; nothing switches",
                                 hosts=self.plan.targets))
        try:
            self._step("lock", self.steps.lock, self._alive(self.plan.targets[:1]))
            alive = self._alive(self.plan.targets)
            self._emit(ProgressEvent("batch", f"interpreter on {_names(alive)}", hosts=tuple(alive)))
            installed = self._step("install", self.steps.install, alive)
            prepared = self._step("prepare", self.steps.prepare, installed)
            for host in prepared:
                p.hosts[host].state = "prepared"
            self._note_reused(prepared)
            self._preview(prepared)
        except DeployStopped:
            pass
        except Exception as exc:  # an error, not a host's failure: say so and stop
            if self.error is None:
                self.error = exc
                where = self._log_error("engine", exc) if self._log_error else None
                p.error = (f"internal error: {type(exc).__name__}: {exc}"
                           + (f" (traceback in {where}; please report it)" if where else ""))
        self._stopping = True
        self._release_locks()
        failed = self.failed_hosts()
        p.outcome = Outcome.FAILED if failed or p.error else Outcome.SUCCEEDED
        if p.outcome is Outcome.SUCCEEDED:
            self._emit(ProgressEvent("done", f"rehearsed: release {self.plan.release} is prepared "
                                     "and passed on every target; nothing switched; `apply` "
                                     "switches it"))
        else:
            self._emit(ProgressEvent("done", "rehearsal failed on " + (_names(failed) or "the "
                                     "deploy") + "; nothing switched; every target runs what it "
                                     "ran before", ok=False))
        self._save(p)
        return p

    def _run_wave(self, wave: Wave) -> None:
        self._wave = wave.name
        self._mark("wave", wave.name)
        self._emit(ProgressEvent("phase", f"wave {wave.name}", wave=wave.name, hosts=wave.hosts))
        for batch in wave.batches:
            ready = [h for h in self._alive(batch) if h in self.progress.prestaged]
            todo = [h for h in self._alive(batch) if h not in self.progress.prestaged]
            if todo:
                ready += self._prepare(todo)
            ready = self._preview(ready)
            if not ready:
                self._save(self.progress)
                continue
            self._emit(ProgressEvent("batch", f"switch {', '.join(ready)}", wave=wave.name,
                                     hosts=tuple(ready)))
            switched = self._step("switch", self.steps.switch, ready, on_fail_state="rolled-back")
            self.progress.switched += [h for h in switched if h not in self.progress.switched]
            for host in switched:
                self.progress.hosts[host].state = "switched"
            self._save(self.progress)
            self._check_budget()
            confirmed = self._step("confirm", self.steps.confirm, switched)
            for host in confirmed:
                self.progress.hosts[host].state = "live"
            self._check_budget()
        if wave.gate.bake:
            self._bake(wave)
            self._watch(wave)
            self._put_back(wave)
        elif self.plan.watch is not None:
            for host in self._live(wave):
                self._findings(host).append(unwatched(wave.name))

    def _bake(self, wave: Wave) -> None:
        live = self._live(wave)
        rounds = max(1, wave.gate.bake // self._interval)
        self._emit(ProgressEvent("gate", f"bake {wave.gate.bake}s: health every {self._interval}s",
                                 wave=wave.name, hosts=tuple(live)))
        for _ in range(rounds):
            self._sleep(self._interval)
            live = self._step("bake", self.steps.health, live)
            self._check_budget()
            if not live:
                return

    def _put_back(self, wave: Wave) -> None:
        """A host failing the bake or watch within the budget goes back (confirmed: no dead-man)."""
        p = self.progress
        self._roll_back([h for h in wave.hosts if h in p.switched and p.hosts[h].state == "failed"])

    def _watch(self, wave: Wave) -> None:
        """At the end of the bake: the watch on the hosts the wave switched (still live)."""
        step, watch, live = getattr(self.steps, "watch", None), self.plan.watch, self._live(wave)
        if step is None or watch is None or not live:
            return
        self._emit(ProgressEvent("batch", f"watch: the journal of {_names(live)} since the "
                                 "switch against the same time before it", wave=wave.name,
                                 hosts=tuple(live)))
        found: dict[str, dict[str, Any]] = {}
        passed = self._step("watch", judging(step, wave.name, watch, found), live)
        self._held = held(found, watch, passed)
        self._held_evidence = evidence(found, self._held)
        for host, finding in found.items():
            self._findings(host).append(finding)
            if host in passed and finding["verdict"] not in ("ok", "inconclusive"):
                self._emit(ProgressEvent("host", f"{host}: watch {finding['verdict']}: "
                                         f"{finding['reason']}", wave=wave.name, hosts=(host,)))
            elif host in passed and finding["verdict"] == "inconclusive":
                self._emit(ProgressEvent("host", f"{host}: watch inconclusive: {finding['reason']}"
                                         + ("" if host in self._held
                                            else f" (inconclusive: {watch.inconclusive.value})"),
                                         wave=wave.name, hosts=(host,), ok=False))
        self._save(self.progress)
        self._check_budget()

    def _live(self, wave: Wave) -> list[str]:
        return [h for h in wave.hosts if self.progress.hosts[h].state == "live"]

    def _findings(self, host: str) -> list[dict[str, Any]]:
        record = self.progress.hosts[host]
        if record.watch is None:
            record.watch = []
        return record.watch

    def _pause_watch(self, index: int, wave: Wave) -> Progress:
        p = self.progress
        p.paused_at, p.paused_for, p.outcome = index, "watch", Outcome.PAUSED
        if index in p.promoted:  # its manual gate, passed before it ran: only a promote from
            p.promoted.remove(index)  # here on passes the watch
        self._mark("paused", wave.name)
        self._save(p)
        self._emit(ProgressEvent(
            "gate", f"paused after wave {wave.name}: the watch is inconclusive on "
            f"{_names(self._held)}: {self._held_evidence}; `oxzep7-deploy promote "
            f"{self.plan.name}` continues, `oxzep7-deploy abort {self.plan.name}` rolls back",
            wave=wave.name, hosts=tuple(self._held), ok=False))
        return p

    def _pause(self, index: int, wave: Wave) -> Progress:
        p = self.progress
        p.paused_at, p.paused_for = index, "gate"
        p.outcome = Outcome.PAUSED
        self._mark("paused", wave.name)
        self._save(p)
        self._emit(ProgressEvent("gate", f"paused before wave {wave.name}: manual promote",
                                 wave=wave.name, hosts=wave.hosts))
        return p

    # -- failure -------------------------------------------------------------------------------

    def failed_hosts(self) -> list[str]:
        return [h for h, r in self.progress.hosts.items() if r.failed_step]

    def _check_budget(self) -> None:
        failed = self.failed_hosts()
        if len(failed) > self.plan.max_failed:
            self._emit(ProgressEvent(
                "phase", f"failure budget spent: {len(failed)} failed (budget {self.plan.max_failed})",
                hosts=tuple(failed), ok=False))
            raise DeployStopped

    def _fail(self) -> Progress:
        policy = self.plan.on_failure
        p = self.progress
        self._stopping = True
        if policy is OnFailure.STOP:
            # hosts of the stopped batch that passed health stay on the release: confirm them, or
            # their dead-man would revert them after we exit
            unconfirmed = [h for h in p.switched if p.hosts[h].state == "switched"]
            for host in self._step("confirm", self.steps.confirm, unconfirmed):
                p.hosts[host].state = "live"
            # a switch that raised left its hosts in a state nobody knows: put them back
            self._roll_back([h for h in p.switched if p.hosts[h].state == "switch-unknown"])
            self._release_locks()
            if self._rollback_failed():
                p.outcome = Outcome.ROLLBACK_INCOMPLETE
                message = f"ROLLBACK INCOMPLETE on {', '.join(self._rollback_failed())}: manual " \
                          "action needed there"
            elif not self._any_switched():
                p.outcome = Outcome.FAILED
                message = "failed: nothing switched; every target runs what it ran before"
            else:
                p.outcome = Outcome.STOPPED
                live = [h for h in p.switched if p.hosts[h].state == "live"]
                message = (f"stopped: {', '.join(live)} run release {self.plan.release}; the other "
                           "targets run what they ran before") if live else \
                          "stopped: every target runs what it ran before"
            self._emit(ProgressEvent("done", message, ok=False))
            self._save(p)
            return p
        if policy is OnFailure.ROLLBACK_WAVE and p.waves_done < len(self.plan.waves):
            scope: Sequence[str] = self.plan.waves[p.waves_done].hosts
        else:
            scope = self.plan.targets
        return self._undo(scope)

    def _undo(self, scope: Sequence[str], verb: str = "failed") -> Progress:
        """Roll back this deploy's switched hosts within `scope`; unlock the rest."""
        p = self.progress
        targets = [h for h in p.switched if h in scope]
        complete = self._roll_back(targets)
        self._release_locks()
        broken = self._rollback_failed()
        if broken or not complete:
            p.outcome = Outcome.ROLLBACK_INCOMPLETE
            message = f"ROLLBACK INCOMPLETE on {', '.join(broken)}: manual action needed there"
        elif not self._any_switched():
            p.outcome = Outcome.FAILED
            message = f"{verb}: nothing switched; every target runs what it ran before"
        else:
            p.outcome = Outcome.ROLLED_BACK
            cut_off = [h for h, r in p.hosts.items()
                       if r.state == "unreachable" and r.failed_step in ("switch", "confirm")]
            others = "every other target runs" if cut_off else "every target runs"
            message = (f"rolled back {', '.join(targets)} to the release they ran before"
                       if targets else f"rolled back: {others} what it ran before")
            if cut_off:
                message += (f"; {', '.join(cut_off)} unreachable during the switch: "
                            + self._left_to_dead_man())
        self._emit(ProgressEvent("done", message, ok=False))
        self._save(p)
        return p

    def _roll_back(self, targets: Sequence[str]) -> bool:
        """Put `targets` back on the release they ran before; False if any is not back."""
        if not targets:
            return True
        p = self.progress
        self._emit(ProgressEvent("rollback", f"rolling back {', '.join(targets)}",
                                 hosts=tuple(targets), ok=False))
        results = self._call("rollback", self.steps.rollback, targets)
        complete = True
        for host in targets:
            res = results.get(host)
            record = p.hosts[host]
            if res is not None and res.ok:
                record.state = "rolled-back"
                p.switched.remove(host)
            else:
                complete = False
                record.state = "rollback-failed"
                record.message = (res.message if res else None) or "no answer from the host"
        self._save(p)
        return complete

    def _release_locks(self) -> None:
        """The deploy is over: let go of every target's lock, but where a rollback failed (the
        lock keeps other deploys off a host that needs a person first)."""
        hosts = [h for h in self.plan.targets
                 if self.progress.hosts[h].state not in ("unreachable", "rollback-failed")]
        if not hosts:
            return
        results = self._call("unlock", self.steps.unlock, hosts)
        # refused with code `locked`: another deploy's lock, which is not ours to release
        kept = [h for h in hosts if (r := results.get(h)) is None
                or (not r.ok and r.result.get("code") != "locked")]
        if kept:
            why = next((r.message for h in kept if (r := results.get(h)) and r.message), None)
            self._emit(ProgressEvent(
                "host", f"the lock could not be released on {_names(kept)}"
                + (f": {why}" if why else "") + f"; `oxzep7-deploy unlock -i INVENTORY --app "
                f"{self.plan.app}` releases it", hosts=tuple(kept), ok=False))

    # -- helpers -------------------------------------------------------------------------------

    def _left_to_dead_man(self) -> str:
        """What becomes of a host lost during its switch: the controller cannot roll it back."""
        if not self.plan.dead_man:
            return ("not rolled back, and no dead-man is armed (dead_man 0): see what it runs with "
                    f"`oxzep7-deploy status -i INVENTORY --app {self.plan.app}` once it answers")
        return (f"not rolled back from here; if the switch reached it, its dead-man puts back the "
                f"release it ran before {self.plan.dead_man}s after the switch; `oxzep7-deploy "
                f"status -i INVENTORY --app {self.plan.app}` shows what it runs once it answers")

    def _now(self) -> str:
        return dt.datetime.fromtimestamp(self._clock(), dt.timezone.utc).isoformat(
            timespec="milliseconds")

    def _mark(self, event: str, wave: str | None) -> None:
        """A wave's start or a gate's passage, on the timeline."""
        self.progress.timeline.append({"event": event, "wave": wave, "at": self._now()})

    def _rollback_failed(self) -> list[str]:
        return [h for h, r in self.progress.hosts.items() if r.state == "rollback-failed"]

    def _any_switched(self) -> bool:
        """Did this deploy switch (or try to switch) any host?"""
        return any(r.state in _TOUCHED
                   or (r.failed_step in _SWITCH_STEPS and r.state != "failed")
                   for r in self.progress.hosts.values())

    def _call(self, name: str, step: Callable[[Sequence[str]], Results], hosts: Sequence[str]
              ) -> Results:
        """Run a step; an exception it raises becomes a failure of each of its hosts. The step's
        start, end and failed hosts go on the timeline."""
        start = self._now()
        results = self._call_step(name, step, hosts)
        self.progress.timeline.append({
            "step": name, "wave": self._wave, "start": start, "end": self._now(),
            "hosts": list(hosts),
            "failed": {h: (r.message if r else None) or f"no result from {name} for this host"
                       for h in hosts if (r := results.get(h)) is None or not r.ok}})
        return results

    def _call_step(self, name: str, step: Callable[[Sequence[str]], Results],
                   hosts: Sequence[str]) -> Results:
        try:
            return step(hosts)
        except Exception as exc:
            if self.error is None:
                self.error = exc
            if isinstance(exc, Oxzep7Error):
                message = exc.message + (f" ({exc.hint})" if exc.hint else "")
            else:
                where = self._log_error(name, exc) if self._log_error else None
                message = (f"internal error: {type(exc).__name__}: {exc}"
                           + (f" (traceback in {where}; please report it)" if where else ""))
            if self.progress.error is None:
                self.progress.error = f"{name}: {message}"
            self._emit(ProgressEvent("phase", f"{name} on {_names(hosts)} stopped with an error: "
                                     f"{message}", hosts=tuple(hosts), ok=False))
            return {h: HostResult(h, HostStatus.FAILED, failed_task="(raised)", message=message,
                                  result={"raised": type(exc).__name__}) for h in hosts}

    def _alive(self, hosts: Sequence[str]) -> list[str]:
        return [h for h in hosts if not self.progress.hosts[h].failed_step]

    def _step(
        self,
        name: str,
        step: Callable[[Sequence[str]], Results],
        hosts: Sequence[str],
        on_fail_state: str = "failed",
    ) -> list[str]:
        """Run one step on hosts; record failures; return the hosts that passed."""
        if not hosts:
            return []
        raised_before = self.error
        results = self._call(name, step, hosts)
        self._results = results
        raised = self.error is not raised_before
        passed = []
        for host in hosts:
            res = results.get(host)
            record = self.progress.hosts[host]
            if name == "switch" and res is not None and "restart_gap_s" in res.result:
                record.restart_gap_s = res.result.get("restart_gap_s")
                record.restart_window = res.result.get("restart_window")
            if res is not None and res.ok:
                passed.append(host)
                continue
            unreachable = res is not None and res.status is HostStatus.UNREACHABLE
            record.state = "unreachable" if unreachable else on_fail_state
            if name == "switch" and not unreachable and res is not None and _not_switched(res):
                record.state = "failed"  # refused before `current` moved: nothing to roll back
            if res is not None and res.result.get("switched") and res.result.get("revert_ok") is False:
                record.state = "rollback-failed"  # switched, failed, and could not be put back
            if (raised or res is None) and name in ("switch", "confirm"):  # switched or not,
                record.state = "switch-unknown"  # armed or not: a rollback (only from this release)
                # finds out
                if host not in self.progress.switched:
                    self.progress.switched.append(host)
            record.failed_step = name
            record.failed_task = res.failed_task if res else None
            record.message = (res.message if res else None) or f"no result from {name} for this host"
            if unreachable and name in ("switch", "confirm"):
                record.message += f"; {self._left_to_dead_man()}"
            if not raised:
                self._emit(ProgressEvent("host", f"{host}: {name} failed: {record.message}",
                                         hosts=(host,), ok=False))
        self._save(self.progress)
        if raised and not self._stopping:
            raise DeployStopped  # an error is not a host's failure: no budget absorbs it
        return passed


_NO_RESULT = HostResult("", HostStatus.FAILED)


def _truthy(value: object) -> bool:
    """A flag from a playbook's report: a bool, or its text once templated."""
    return value is True or str(value).lower() == "true"


def _names(hosts: Sequence[str], most: int = 6) -> str:
    shown = ", ".join(hosts[:most])
    return shown + (f" and {len(hosts) - most} more" if len(hosts) > most else "")
