"""The engine's host steps on real hosts: interpreter installation plus the release steps."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

from oxzep7_deploy.deploy import DeployContext
from oxzep7_deploy.engine_model import ProgressHandler, Results
from oxzep7_deploy.plan.model import Plan
from oxzep7_deploy.records import DeployRecord, owner
from oxzep7_deploy.runner.base import Runner, RunnerFactory
from oxzep7_deploy.runner.request import InventorySources, RunRequest
from oxzep7_deploy.spec.model import Spec
from oxzep7_deploy.steps.interpreter import install_interpreter
from oxzep7_deploy.steps.release import ReleaseSteps, lock_holders, raise_if_locked


def cache_dir() -> Path:
    """The controller's artifact cache: archives and built interpreter trees."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "oxzep7"
    return Path(os.environ.get("OXZEP7_CACHE", default))


class AnsibleHostSteps(ReleaseSteps):
    """HostSteps for one deploy: `install` builds once per platform, the rest are release steps."""

    def __init__(self, spec: Spec, plan: Plan, inventory: InventorySources, record: DeployRecord,
                 runner: Runner) -> None:
        super().__init__(spec, inventory, runner,
                         record.run_dir,
                         plan.release, deploy_id=f"{plan.name}/{plan.release}", owner=owner())
        self.record = record
        self.build = plan.build  # which host compiles for which platform: the install runs it

    def prepare(self, hosts: Sequence[str]) -> Results:
        """Prepare; if another deploy holds a host's lock, let go of ours and stop (exit 2)."""
        return self._stop_if_locked(super().prepare(hosts))

    def lock(self, hosts: Sequence[str]) -> Results:
        """Lock; if another deploy holds a host's lock, let go of ours and stop (exit 2)."""
        return self._stop_if_locked(super().lock(hosts))

    def _stop_if_locked(self, results: Results) -> Results:
        if lock_holders(results):
            self.unlock([h for h, r in results.items() if r.ok])
            raise_if_locked(results, self.spec.application.name)
        return results

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
