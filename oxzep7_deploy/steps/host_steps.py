"""The engine's host steps on real hosts: interpreter installation plus the release steps."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

from oxzep7_deploy.deploy import DeployContext
from oxzep7_deploy.engine_model import Outcome, ProgressHandler, Results
from oxzep7_deploy.paths import cache_dir
from oxzep7_deploy.plan.model import Plan
from oxzep7_deploy.records import DeployRecord, owner
from oxzep7_deploy.runner.base import Runner, RunnerFactory
from oxzep7_deploy.runner.request import InventorySources, RunRequest
from oxzep7_deploy.spec.model import Spec
from oxzep7_deploy.steps.interpreter import install_interpreter
from oxzep7_deploy.steps.release import ReleaseSteps, lock_holders, raise_if_locked
from oxzep7_deploy.steps.release import unlock as release_unlock
from oxzep7_deploy.steps.wheels import WheelSets


class AnsibleHostSteps(ReleaseSteps):
    """HostSteps for one deploy: `install` builds once per platform, the rest are release steps."""

    def __init__(self, spec: Spec, plan: Plan, inventory: InventorySources, record: DeployRecord,
                 runner: Runner) -> None:
        super().__init__(spec, inventory, runner,
                         record.run_dir,
                         plan.release, deploy_id=f"{plan.name}/{plan.release}", owner=owner())
        self.record = record
        self.build = plan.build  # which host compiles for which platform: the install runs it
        self.wheel_sets = WheelSets(spec, plan, inventory, runner, record.run_dir, cache_dir())

    def prepare(self, hosts: Sequence[str]) -> Results:
        """Prepare; if another deploy holds a host's lock, let go of ours and stop (exit 2)."""
        return self._stop_if_locked(super().prepare(hosts), super().prepare)

    def lock(self, hosts: Sequence[str]) -> Results:
        """Lock; if another deploy holds a host's lock, let go of ours and stop (exit 2)."""
        return self._stop_if_locked(super().lock(hosts), super().lock)

    def _stop_if_locked(self, results: Results, retry: Callable[[Sequence[str]], Results]
                        ) -> Results:
        stale = self._over_here(results)
        if stale:  # locks this directory's earlier deploys of the spec kept (a host unreachable at
            # their end): they are over, so the locks go, and the step runs again on those hosts
            for deploy, hosts in stale.items():
                release_unlock(self.inventory, self.spec.application.name, hosts, self.runner,
                               self.run_dir("unlock"), deploy_id=deploy, owner=self.owner)
            results = {**results, **retry([h for hosts in stale.values() for h in hosts])}
        if lock_holders(results):
            self.unlock([h for h, r in results.items() if r.ok])
            raise_if_locked(results, self.spec.application.name)
        return results

    def _over_here(self, results: Results) -> dict[str, list[str]]:
        """Deploy id -> hosts, of the locks refused that are ours (this owner: this user, controller
        and directory) and belong to a deploy of this spec whose records here say it is over."""
        stale: dict[str, list[str]] = {}
        for host, held in lock_holders(results).items():
            name, _, release = held.deploy.partition("/")
            if held.owner != self.owner or name != self.record.name or held.deploy == self.deploy_id:
                continue
            earlier = DeployRecord(self.record.dir.parents[2], name, release)
            try:
                outcome = earlier.load_progress().outcome if earlier.exists() else None
            except (OSError, ValueError, KeyError, TypeError):
                outcome = None
            if outcome is not None and outcome is not Outcome.PAUSED:
                stale.setdefault(held.deploy, []).append(host)
        return stale

    def wheels(self, hosts: Sequence[str]) -> Results:
        return self.wheel_sets.run(hosts)

    def install(self, hosts: Sequence[str]) -> Results:
        outcome = install_interpreter(self.spec, self.inventory, hosts, self.runner,
                                      self.run_dir("install"), cache_dir(), self.build)
        return outcome.hosts


def host_context(records_root: Path, runners: RunnerFactory,
                 on_event: ProgressHandler | None = None) -> DeployContext:
    """What a deploy on real hosts needs: its steps, the platform probe and the hosts' releases,
    every one through a runner from `runners`."""
    def make_steps(spec: Spec, plan: Plan, inventories: tuple[str, ...],
                   record: DeployRecord) -> AnsibleHostSteps:
        return AnsibleHostSteps(spec, plan, inventories, record, runners(become=spec.ansible.become))

    runner = runners()
    return DeployContext(
        records_root=records_root, make_steps=make_steps,
        probe_platforms=functools.partial(probe_platforms, runner=runner),
        live_releases=functools.partial(live_releases, runner=runner),
        bad_releases=functools.partial(bad_releases, runner=runner), on_event=on_event)


def probe_platforms(targets: tuple[str, ...], inventories: tuple[str, ...],
                    record: DeployRecord, runner: Runner) -> dict[str, str]:
    """Read each host's platform from facts (distro-release-arch), before planning builds: the
    targets, and a build_host outside them (`prepare_deploy` adds it)."""
    request = RunRequest("facts.yml", inventories, targets, ident="facts")
    result = runner.run(request, record.run_dir("facts"))
    return {h: str(r.result.get("platform", "unknown")) for h, r in result.hosts.items() if r.ok}


def bad_releases(inventories: tuple[str, ...], app: str, hosts: tuple[str, ...],
                 runner: Runner) -> dict[str, tuple[str, ...]]:
    """Release id -> the hosts where it is marked bad (a deploy may not reuse that id)."""
    import tempfile

    from oxzep7_deploy.state.host import ReleaseStatus
    from oxzep7_deploy.steps.release import read_status

    out: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="oxzep7-bad-") as tmp:
        for host, state in read_status(inventories, app, hosts, runner, Path(tmp)).items():
            for rid in state.with_status(ReleaseStatus.BAD) if state.ok else ():
                out.setdefault(rid, []).append(host)
    return {rid: tuple(hs) for rid, hs in out.items()}


def live_releases(inventories: tuple[str, ...], app: str, hosts: tuple[str, ...],
                  runner: Runner) -> dict[str, str | None]:
    """The release `current` points to on each host now (None: unreadable or none)."""
    import tempfile

    from oxzep7_deploy.steps.release import read_status

    with tempfile.TemporaryDirectory(prefix="oxzep7-live-") as tmp:
        states = read_status(inventories, app, hosts, runner, Path(tmp))
    return {h: (s.current if s.ok else None) for h, s in states.items()}
