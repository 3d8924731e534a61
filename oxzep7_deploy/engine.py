"""Run a plan: prestage, waves of batches, gates, the failure budget, and rollback."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from oxzep7_deploy.engine_model import (
    HostRecord,
    HostSteps,
    Outcome,
    Progress,
    ProgressEvent,
    ProgressHandler,
    Results,
)
from oxzep7_deploy.plan.model import Plan, Wave
from oxzep7_deploy.runner.request import HostStatus
from oxzep7_deploy.spec.model import OnFailure, Promote


class DeployStopped(Exception):
    """Raised inside the engine when the failure budget is spent."""


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
    ) -> None:
        self.plan = plan
        self.steps = steps
        self.progress = progress
        self._save = save
        self._emit = on_event or (lambda _e: None)
        self._interval = max(1, health_interval)
        self._sleep = sleep
        for host in plan.targets:
            progress.hosts.setdefault(host, HostRecord())

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> Progress:
        """Go as far as the plan allows: to the end, to a manual gate, or to a failure."""
        p = self.progress
        p.paused_at = None
        try:
            if not (p.locked or p.prestaged):  # every target first: no other deploy comes between
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
                self._run_wave(wave)
                p.waves_done = index + 1
                self._save(p)
        except DeployStopped:
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
        return self._undo(self.plan.targets)

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
        if installed:
            self._emit(ProgressEvent("batch", f"release venv + verify on {_names(installed)}",
                                     hosts=tuple(installed)))
        prepared = self._step("prepare", self.steps.prepare, installed)
        for host in prepared:
            self.progress.hosts[host].state = "prepared"
        self._check_budget()
        return prepared

    def _run_wave(self, wave: Wave) -> None:
        self._emit(ProgressEvent("phase", f"wave {wave.name}", wave=wave.name, hosts=wave.hosts))
        for batch in wave.batches:
            ready = [h for h in self._alive(batch) if h in self.progress.prestaged]
            todo = [h for h in self._alive(batch) if h not in self.progress.prestaged]
            if todo:
                ready += self._prepare(todo)
            if not ready:
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

    def _bake(self, wave: Wave) -> None:
        live = [h for h in wave.hosts if self.progress.hosts[h].state == "live"]
        rounds = max(1, wave.gate.bake // self._interval)
        self._emit(ProgressEvent("gate", f"bake {wave.gate.bake}s: health every {self._interval}s",
                                 wave=wave.name, hosts=tuple(live)))
        for _ in range(rounds):
            self._sleep(self._interval)
            live = self._step("bake", self.steps.health, live)
            self._check_budget()
            if not live:
                return

    def _pause(self, index: int, wave: Wave) -> Progress:
        p = self.progress
        p.paused_at = index
        p.outcome = Outcome.PAUSED
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
        if policy is OnFailure.STOP:
            p.outcome = Outcome.STOPPED
            # hosts of the stopped batch that passed health stay on the release: confirm them, or
            # their dead-man would revert them after we exit
            unconfirmed = [h for h in p.switched if p.hosts[h].state == "switched"]
            for host in self._step("confirm", self.steps.confirm, unconfirmed):
                p.hosts[host].state = "live"
            self._release_locks()
            if self._rollback_failed():
                p.outcome = Outcome.ROLLBACK_INCOMPLETE
            self._save(p)
            return p
        if policy is OnFailure.ROLLBACK_WAVE and p.waves_done < len(self.plan.waves):
            scope: Sequence[str] = self.plan.waves[p.waves_done].hosts
        else:
            scope = self.plan.targets
        return self._undo(scope)

    def _undo(self, scope: Sequence[str]) -> Progress:
        """Roll back this deploy's switched hosts within `scope`; unlock the rest."""
        p = self.progress
        targets = [h for h in p.switched if h in scope]
        complete = True
        if targets:
            self._emit(ProgressEvent("rollback", f"rolling back {', '.join(targets)}",
                                     hosts=tuple(targets), ok=False))
            results = self.steps.rollback(targets)
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
        self._release_locks()
        broken = self._rollback_failed()
        p.outcome = Outcome.ROLLED_BACK if complete and not broken else Outcome.ROLLBACK_INCOMPLETE
        if broken:
            message = f"ROLLBACK INCOMPLETE on {', '.join(broken)}: manual action needed there"
        elif targets:
            message = f"rolled back {', '.join(targets)} to the release they ran before"
        else:
            message = "stopped before any host of this deploy was switched: nothing live changed"
        self._emit(ProgressEvent("done", message, ok=False))
        self._save(p)
        return p

    def _release_locks(self) -> None:
        """The deploy is over: let go of every target's lock, but where a rollback failed (the
        lock keeps other deploys off a host that needs a person first)."""
        hosts = [h for h in self.plan.targets
                 if self.progress.hosts[h].state not in ("unreachable", "rollback-failed")]
        if hosts:
            self.steps.unlock(hosts)

    # -- helpers -------------------------------------------------------------------------------

    def _rollback_failed(self) -> list[str]:
        return [h for h, r in self.progress.hosts.items() if r.state == "rollback-failed"]

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
        results = step(hosts)
        passed = []
        for host in hosts:
            res = results.get(host)
            record = self.progress.hosts[host]
            if res is not None and res.ok:
                passed.append(host)
                continue
            unreachable = res is None or res.status is HostStatus.UNREACHABLE
            record.state = "unreachable" if unreachable else on_fail_state
            if res is not None and res.result.get("switched") and res.result.get("revert_ok") is False:
                record.state = "rollback-failed"  # switched, failed, and could not be put back
            record.failed_step = name
            record.failed_task = res.failed_task if res else None
            record.message = (res.message if res else None) or "the host did not answer"
            self._emit(ProgressEvent("host", f"{host}: {name} failed: {record.message}",
                                     hosts=(host,), ok=False))
        self._save(self.progress)
        return passed


def _names(hosts: Sequence[str], most: int = 6) -> str:
    shown = ", ".join(hosts[:most])
    return shown + (f" and {len(hosts) - most} more" if len(hosts) > most else "")
