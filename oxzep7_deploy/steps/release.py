"""Releases on hosts: lock, prepare, switch, health, confirm, rollback, status, unlock (a run each).

Each function runs one static playbook of the collection oxzep7.deploy
(`playbooks/playbooks/release_*.yml`) on a batch of hosts through the runner and returns the
runner's per-host results; a playbook's `oxzep7_result` (the host agent's report) is in
`HostResult.result`. The host agent keeps the state, so `rollback_release`,
`read_status` and `unlock` need no spec. `ReleaseSteps` binds them for the engine.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from oxzep7_deploy.errors import LockHeldError, UsageError
from oxzep7_deploy.records import owner as default_owner
from oxzep7_deploy.runner import HostResult, HostStatus, Runner, RunRequest
from oxzep7_deploy.runner.request import InventorySources, inventory_sources
from oxzep7_deploy.spec.model import CommandCheck, HttpCheck, PrebuiltInstall, SourceInstall, Spec
from oxzep7_deploy.spec.placeholders import PlaceholderError, substitute
from oxzep7_deploy.state.host import (
    HostState,
    LockRecord,
    parse_host_state,
    parse_lock,
    unreachable_state,
    unreadable_state,
)
from oxzep7_deploy.steps.wheels import prepare_requirements

Results = Mapping[str, HostResult]

PREPARE = "release_prepare.yml"
SWITCH = "release_switch.yml"
HEALTH = "release_health.yml"
CONFIRM = "release_confirm.yml"
ROLLBACK = "release_rollback.yml"
STATUS = "release_status.yml"
UNLOCK = "release_unlock.yml"
LOCK = "release_lock.yml"
PREFLIGHT = "release_preflight.yml"
PREVIEW = "release_preview.yml"
WATCH = "release_watch.yml"

_INCOMPLETE = ("rollback-incomplete", "rollback-unhealthy")
ROLLBACK_LOCK_TTL = 3600  # seconds a rollback may hold the app's lock


# -- variables ---------------------------------------------------------------------------------


def release_dir(spec: Spec, release_id: str) -> str:
    return f"{spec.application.root.rstrip('/')}/releases/{release_id}"


def release_values(spec: Spec, release_id: str) -> dict[str, str]:
    """What each placeholder means for this release on every host."""
    path = release_dir(spec, release_id)
    values = {
        "python": spec.interpreter.executable,
        "venv": f"{path}/venv",
        "release": path,
        "root": spec.application.root,
        "version": spec.interpreter.version,
    }
    if spec.application.code:
        values["code"] = spec.application.code
    if spec.application.port is not None:
        values["port"] = str(spec.application.port)
    return values


def _substituted(template: str, values: Mapping[str, str], where: str) -> str:
    try:
        return substitute(template, values)
    except PlaceholderError as exc:
        raise UsageError(f"{where}: {exc}", hint="set application.code or drop {code}") from exc


def host_config(spec: Spec) -> dict[str, Any]:
    """What the host keeps for later switches, rollbacks and the dead-man (templates, no secrets)."""
    checks: list[dict[str, Any]] = []
    for check in spec.health.checks:
        if isinstance(check, HttpCheck):
            http = {"url": check.url, "status": check.status, "timeout": check.timeout}
            if check.contains is not None:
                http["contains"] = check.contains
            checks.append({"http": http})
        elif isinstance(check, CommandCheck):
            checks.append({"command": check.command})
    app = spec.application
    return {
        "services": list(app.services),
        "restart_command": app.restart_command,
        "restart": app.restart.value,
        "port": app.port,
        "code": app.code,
        "env_keys": sorted(app.env),
        "health": {"checks": checks, "retries": spec.health.retries, "interval": spec.health.interval},
        "snapshot": {"paths": list(spec.snapshot.paths), "keep": spec.snapshot.keep},
        "keep_releases": app.keep_releases,
        "preview": preview_config(spec),
    }


def preview_config(spec: Spec) -> dict[str, Any] | None:
    """The preview's settings as the host keeps them with the release (None: no preview)."""
    preview = spec.preview
    if preview is None:
        return None
    return {"port": preview.port, "env": preview.env, "command": preview.command,
            "service": spec.application.services[0] if spec.application.services else None}


def release_vars(
    spec: Spec,
    release_id: str,
    deploy_id: str,
    owner: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The extravars of every release playbook for this spec's deploy (no secret among them)."""
    app = spec.application
    interp = spec.interpreter
    values = release_values(spec, release_id)
    managed = isinstance(interp.install, (SourceInstall, PrebuiltInstall))
    verify = [_substituted(cmd, values, f"verify[{i}]") for i, cmd in enumerate(spec.verify)]
    requirements, pip_args = prepare_requirements(spec, release_id)
    return {
        "oxzep7_app": app.name,
        "oxzep7_root": app.root,
        "oxzep7_release": release_id,
        "oxzep7_deploy": deploy_id,
        "oxzep7_owner": owner or default_owner(),
        "oxzep7_reason": reason or f"deploy {spec.name} release {release_id}",
        "oxzep7_lock_ttl": spec.rollout.lock_ttl,
        "oxzep7_dead_man": spec.rollout.dead_man,
        "oxzep7_keep_releases": app.keep_releases,
        "oxzep7_snapshot_paths": list(spec.snapshot.paths),
        "oxzep7_snapshot_keep": spec.snapshot.keep,
        "oxzep7_prepare": {
            "version": interp.version,
            "interpreter": {
                "executable": interp.executable,
                "prefix": interp.prefix if managed else None,
                "managed": managed,
            },
            "requirements": requirements,
            "pip_args": pip_args,
            "code": app.code,
            "verify": verify,
            "spec": {"name": spec.name, "digest": spec.digest},
            "config": host_config(spec),
        },
    }


# -- running a playbook ------------------------------------------------------------------------


APP_ENV_VAR = "OXZEP7_APP_ENV_B64"


def _private_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """application.env for the run's processes only (the playbook reads it with the `env`
    lookup): never in extravars or a file, which the controller would keep on disk."""
    if not env:
        return {}
    return {APP_ENV_VAR: base64.b64encode(json.dumps(dict(env)).encode()).decode()}


def _run(
    runner: Runner,
    playbook: str,
    inventory: InventorySources,
    hosts: Sequence[str],
    run_dir: Path,
    extravars: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    forks: int | None = None,
) -> Results:
    if not hosts:
        return MappingProxyType({})
    request = RunRequest(
        playbook=playbook,
        inventory=inventory_sources(inventory),
        limit=tuple(hosts),
        extravars=MappingProxyType(dict(extravars)),
        forks=forks,
        ident=playbook.removesuffix(".yml"),
        private_env=MappingProxyType(_private_env(env)),
    )
    result = runner.run(request, run_dir)
    return MappingProxyType({h: _explain(r) for h, r in result.hosts.items()})


def _explain(res: HostResult) -> HostResult:
    """Name the failing step in the message when the agent's report says more than Ansible."""
    if res.ok or not res.result:
        return res
    error = res.result.get("error")
    return replace(res, message=str(error)) if isinstance(error, str) and error else res


# -- the variables of each step ---------------------------------------------------------------


def lock_vars(spec: Spec, deploy_id: str, owner: str | None = None) -> dict[str, Any]:
    return {
        "oxzep7_app": spec.application.name,
        "oxzep7_deploy": deploy_id,
        "oxzep7_owner": owner or default_owner(),
        "oxzep7_reason": f"deploy {deploy_id}",
        "oxzep7_lock_ttl": spec.rollout.lock_ttl,
    }


def health_vars(app: str, release_id: str | None = None, retries: int | None = None
                ) -> dict[str, Any]:
    return {
        "oxzep7_app": app,
        "oxzep7_release": release_id or "",
        "oxzep7_health_retries": "" if retries is None else retries,
    }


def preview_vars(app: str, release_id: str) -> dict[str, Any]:
    return {"oxzep7_app": app, "oxzep7_release": release_id}


def watch_vars(spec: Spec, release_id: str) -> dict[str, Any]:
    """The watch's settings go to the agent on stdin (oxzep7_watch); None of them is secret."""
    watch = spec.watch
    settings = ({"patterns": list(watch.patterns), "max_new": watch.max_new,
                 "restarts": watch.restarts} if watch is not None else {})
    return {"oxzep7_app": spec.application.name, "oxzep7_release": release_id,
            "oxzep7_watch": settings}


def confirm_vars(spec: Spec, release_id: str, deploy_id: str, release_lock: bool = True
                 ) -> dict[str, Any]:
    return {
        "oxzep7_app": spec.application.name,
        "oxzep7_release": release_id,
        "oxzep7_deploy": deploy_id,
        "oxzep7_keep_releases": spec.application.keep_releases,
        "oxzep7_release_lock": release_lock,
    }


def rollback_vars(app: str, to: str | None = None, *, only_from: str | None = None,
                  deploy_id: str | None = None, owner: str | None = None,
                  reason: str | None = None, release_lock: bool = True) -> dict[str, Any]:
    return {
        "oxzep7_app": app,
        "oxzep7_deploy": deploy_id or new_operation_id("rollback"),
        "oxzep7_owner": owner or default_owner(),
        "oxzep7_reason": reason or "rollback",
        "oxzep7_lock_ttl": ROLLBACK_LOCK_TTL,
        "oxzep7_rollback_to": to or "",
        "oxzep7_rollback_only_from": only_from or "",
        "oxzep7_release_lock": release_lock,
    }


def unlock_vars(app: str, deploy_id: str | None = None, owner: str | None = None,
                force: bool = False) -> dict[str, Any]:
    return {
        "oxzep7_app": app,
        "oxzep7_deploy": deploy_id or "",
        "oxzep7_owner": owner or "",
        "oxzep7_unlock_force": force,
    }


# -- the steps ---------------------------------------------------------------------------------


def prepare_release(spec: Spec, inventory: InventorySources, hosts: Sequence[str], runner: Runner,
                    run_dir: Path, release_id: str, deploy_id: str, owner: str | None = None
                    ) -> Results:
    """Lock the app and build the release (venv, requirements, release.json, verify) on `hosts`.

    A host whose lock is held by another deploy fails with code `locked` (see `lock_holders`).
    Nothing live changes; a failed build is recorded on the host as a `failed` release.
    """
    return _run(runner, PREPARE, inventory, hosts, run_dir,
                release_vars(spec, release_id, deploy_id, owner), spec.application.env,
                spec.ansible.forks)


def switch_release(spec: Spec, inventory: InventorySources, hosts: Sequence[str], runner: Runner,
                   run_dir: Path, release_id: str, deploy_id: str, owner: str | None = None
                   ) -> Results:
    """Snapshot, switch `current` (dead-man armed first), restart, health, on each host.

    A host whose restart or health fails goes back to its previous release within the run and
    fails; its result says `switched`, `failed_check`, `revert_ok` (False: rollback incomplete).
    """
    return _run(runner, SWITCH, inventory, hosts, run_dir,
                release_vars(spec, release_id, deploy_id, owner), spec.application.env,
                spec.ansible.forks)


def check_health(spec: Spec, inventory: InventorySources, hosts: Sequence[str], runner: Runner,
                 run_dir: Path, release_id: str | None = None, retries: int | None = None
                 ) -> Results:
    """Run the health checks on each host's current release (the bake gate); read-only."""
    return _run(runner, HEALTH, inventory, hosts, run_dir,
                health_vars(spec.application.name, release_id, retries), spec.application.env,
                spec.ansible.forks)


def preflight_health(spec: Spec, inventory: InventorySources, hosts: Sequence[str],
                     runner: Runner, run_dir: Path) -> Results:
    """Before a deploy changes anything: the health of what each host runs now (read-only).

    The current release's own checks, or the spec's where it has none of its own (adopted, or
    no `current` at all). A host's result says `healthy`, `current` and `health`; a host the
    agent could not check fails (e.g. `current` is not a symlink).
    """
    return _run(runner, PREFLIGHT, inventory, hosts, run_dir,
                release_vars(spec, "preflight", "preflight"), spec.application.env,
                spec.ansible.forks)


def confirm_release(spec: Spec, inventory: InventorySources, hosts: Sequence[str], runner: Runner,
                    run_dir: Path, release_id: str, deploy_id: str, release_lock: bool = True
                    ) -> Results:
    """After health passed: disarm the dead-man, mark the release good, prune, unlock.

    Fails on a host where the release is no longer current (the dead-man fired first).
    """
    return _run(runner, CONFIRM, inventory, hosts, run_dir,
                confirm_vars(spec, release_id, deploy_id, release_lock), forks=spec.ansible.forks)


def rollback_release(
    inventory: InventorySources,
    app: str,
    hosts: Sequence[str],
    runner: Runner,
    run_dir: Path,
    to: str | None = None,
    *,
    only_from: str | None = None,
    deploy_id: str | None = None,
    owner: str | None = None,
    reason: str | None = None,
    env: Mapping[str, str] | None = None,
    release_lock: bool = True,
    forks: int | None = None,
) -> Results:
    """Back to the last good release (or `to`) on each host, from host state alone.

    Takes the app's lock as `deploy_id` (a fresh `rollback-…` id by default: refused while another
    deploy holds it), restores the snapshot taken when the target was current (checksums first),
    switches, restarts, runs health, marks the release it left bad. `only_from`: do nothing on a
    host whose current release is not that one (the engine undoing its own deploy). A host with
    nothing to roll back to fails with code `nothing-to-roll-back`.
    """
    extravars = rollback_vars(app, to, only_from=only_from, deploy_id=deploy_id, owner=owner,
                              reason=reason, release_lock=release_lock)
    return _run(runner, ROLLBACK, inventory, hosts, run_dir, extravars, env, forks)


def read_status(
    inventory: InventorySources,
    app: str,
    hosts: Sequence[str],
    runner: Runner,
    run_dir: Path,
    root: str | None = None,
    forks: int | None = None,
) -> dict[str, HostState]:
    """Each host's state of `app` (changes nothing on the hosts, not even the agent).

    With `root`, a host that oxzep7 never touched shows the hand-made release it would adopt.
    A host that could not be read has `error` set.
    """
    extravars = {"oxzep7_app": app, "oxzep7_root": root or ""}
    results = _run(runner, STATUS, inventory, hosts, run_dir, extravars, forks=forks)
    return {host: _state_of(host, app, results.get(host)) for host in hosts}


def _state_of(host: str, app: str, res: HostResult | None) -> HostState:
    if res is not None and res.status is HostStatus.UNREACHABLE:
        return unreachable_state(host, app, res.message or "SSH could not reach it")
    if res is None or not res.ok or not res.result:
        message = (res.message if res else None) or "Ansible reported nothing for this host"
        return unreadable_state(host, app, message)
    try:
        return parse_host_state(host, res.result)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # one host's bad file
        return unreadable_state(
            host, app, f"its state of {app} cannot be read: {exc}".replace(f"{host}: ", ""))


def lock(spec: Spec, inventory: InventorySources, hosts: Sequence[str], runner: Runner,
         run_dir: Path, deploy_id: str, owner: str | None = None) -> Results:
    """Take the app's lock for `deploy_id` (code `locked` where another deploy holds it)."""
    return _run(runner, LOCK, inventory, hosts, run_dir, lock_vars(spec, deploy_id, owner),
                forks=spec.ansible.forks)


def unlock(
    inventory: InventorySources,
    app: str,
    hosts: Sequence[str],
    runner: Runner,
    run_dir: Path,
    *,
    deploy_id: str | None = None,
    owner: str | None = None,
    force: bool = False,
    forks: int | None = None,
) -> Results:
    """Release the app's lock: held by `deploy_id` or `owner`, expired, or any with `force`.

    Without either a lock held by someone else is refused (code `locked`, holder in the report).
    """
    return _run(runner, UNLOCK, inventory, hosts, run_dir,
                unlock_vars(app, deploy_id, owner, force), forks=forks)


# -- reading results ---------------------------------------------------------------------------


def new_operation_id(kind: str) -> str:
    """`rollback-20250101T120000-1a2b3c`: the lock's deploy id for an operation outside a deploy."""
    return f"{kind}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def lock_holders(results: Results) -> dict[str, LockRecord]:
    """Hosts refused because another deploy holds the lock, with the holder."""
    held: dict[str, LockRecord] = {}
    for host, res in results.items():
        if res.ok or res.result.get("code") != "locked":
            continue
        holder = parse_lock((res.result.get("report") or {}).get("holder"))
        if holder is not None:
            held[host] = holder
    return held


def raise_if_locked(results: Results, app: str = "APP") -> None:
    """LockHeldError (exit 2) naming the holder when any host refused the lock."""
    held = lock_holders(results)
    if not held:
        return
    first_host, first = next(iter(held.items()))
    others = f" and {len(held) - 1} more host(s)" if len(held) > 1 else ""
    raise LockHeldError(
        f"{first_host}{others}: locked by {first.describe()}",
        hint=f"wait for it (`oxzep7-deploy status -i INVENTORY --app {app}` shows it), or "
             f"`oxzep7-deploy unlock -i INVENTORY --app {app} --force` if that deploy is gone",
    )


def rollback_incomplete(results: Results) -> tuple[str, ...]:
    """Hosts where a switch failed and putting the previous release back failed too."""
    out = []
    for host, res in results.items():
        r = res.result
        if res.ok or not r:
            continue
        failed_revert = r.get("step") == "switch" and r.get("switched") and not r.get("revert_ok")
        failed_rollback = r.get("step") == "rollback" and r.get("code") in _INCOMPLETE
        if failed_revert or failed_rollback:
            out.append(host)
    return tuple(out)


def unreachable(results: Results) -> tuple[str, ...]:
    return tuple(h for h, r in results.items() if r.status is HostStatus.UNREACHABLE)


@dataclass(frozen=True)
class StepDescription:
    """One engine step on hosts: its playbook, its variables for the bound deploy, and whether
    application.env goes along (in a private file, never in extravars). Every step's results are
    read the same way: per host, the agent's report in `result`, its error as the message."""

    playbook: str
    extravars: Callable[[ReleaseSteps], dict[str, Any]]
    with_env: bool = False


def _bound(name: str) -> Callable[[ReleaseSteps, Sequence[str]], Results]:
    def step(self: ReleaseSteps, hosts: Sequence[str]) -> Results:
        return self.run_step(name, hosts)

    step.__name__ = step.__qualname__ = name
    step.__doc__ = f"Run the `{name}` step (its row of STEPS) on `hosts`."
    return step


class ReleaseSteps:
    """The release half of the engine's HostSteps, bound to one deploy of one spec.

    Each step is a row of `STEPS`; `run_dir(step)` gives a fresh private data directory for each
    batch (e.g. runs/NNN-step).
    """

    def __init__(
        self,
        spec: Spec,
        inventory: InventorySources,
        runner: Runner,
        run_dir: Callable[[str], Path],
        release_id: str,
        deploy_id: str,
        owner: str | None = None,
    ) -> None:
        self.spec = spec
        self.inventory = inventory
        self.runner = runner
        self.run_dir = run_dir
        self.release_id = release_id
        self.deploy_id = deploy_id
        self.owner = owner or default_owner()

    @property
    def preview(self) -> Callable[[Sequence[str]], Results] | None:
        """The `preview` step when the spec has a preview section, else None (no step)."""
        if self.spec.preview is None:
            return None
        return lambda hosts: self.run_step("preview", hosts)

    @property
    def watch(self) -> Callable[[Sequence[str]], Results] | None:
        """The `watch` step when the spec has a watch section, else None (no step)."""
        if self.spec.watch is None:
            return None
        return lambda hosts: self.run_step("watch", hosts)

    def run_step(self, name: str, hosts: Sequence[str]) -> Results:
        step = STEPS[name]
        env = self.spec.application.env if step.with_env else None
        return _run(self.runner, step.playbook, self.inventory, hosts, self.run_dir(name),
                    step.extravars(self), env, self.spec.ansible.forks)

    lock = _bound("lock")
    prepare = _bound("prepare")
    switch = _bound("switch")
    health = _bound("health")
    confirm = _bound("confirm")
    rollback = _bound("rollback")
    preflight = _bound("preflight")
    unlock = _bound("unlock")


def _release(s: ReleaseSteps) -> dict[str, Any]:
    return release_vars(s.spec, s.release_id, s.deploy_id, s.owner)


STEPS: Mapping[str, StepDescription] = MappingProxyType({
    "lock": StepDescription(LOCK, lambda s: lock_vars(s.spec, s.deploy_id, s.owner)),
    "prepare": StepDescription(PREPARE, _release, with_env=True),
    "preview": StepDescription(  # the new release beside the old, on preview.port, health-checked
        PREVIEW, lambda s: preview_vars(s.spec.application.name, s.release_id), with_env=True),
    "switch": StepDescription(SWITCH, _release, with_env=True),
    "watch": StepDescription(  # the journal since the switch against the time before it
        WATCH, lambda s: watch_vars(s.spec, s.release_id), with_env=True),
    "health": StepDescription(
        HEALTH, lambda s: health_vars(s.spec.application.name, s.release_id, retries=1),
        with_env=True),
    "confirm": StepDescription(  # the lock stays: the engine unlocks when the deploy ends
        CONFIRM, lambda s: confirm_vars(s.spec, s.release_id, s.deploy_id, release_lock=False)),
    "rollback": StepDescription(
        ROLLBACK, lambda s: rollback_vars(
            s.spec.application.name, only_from=s.release_id, deploy_id=s.deploy_id,
            owner=s.owner, reason=f"deploy {s.deploy_id} rolled back"),
        with_env=True),
    "preflight": StepDescription(PREFLIGHT, lambda s: release_vars(s.spec, "preflight", "preflight"),
                                 with_env=True),
    "unlock": StepDescription(
        UNLOCK, lambda s: unlock_vars(s.spec.application.name, deploy_id=s.deploy_id,
                                       owner=s.owner)),
})
