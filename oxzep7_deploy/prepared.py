"""The prepared deploy: spec, inventory, release attempt and plan, as `plan` shows them and `apply`
runs them. One path for both, so `plan` prints what `apply` would do by construction.

`prepare` writes nothing; with a context that has no host probes (`plan`) it contacts no host:
platforms then come from the inventory (`oxzep7_platform`), and a recorded deploy is judged by
its records alone. `prepare_deploy` (apply) is `prepare` and then the records of a new deploy.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from oxzep7_deploy.deploy import (
    DeployContext,
    check_world,
    read_spec_bytes,
    refuse_while_paused,
    spec_for_records,
    stored_deploy,
)
from oxzep7_deploy.engine_model import Outcome, ProgressEvent
from oxzep7_deploy.errors import InventoryError, SpecRuleError, UsageError
from oxzep7_deploy.inventory import Inventory, load_inventory
from oxzep7_deploy.plan import Plan, build_plan
from oxzep7_deploy.plan.release_id import release_id
from oxzep7_deploy.records import DeployRecord, find_deploys, owner
from oxzep7_deploy.runner.ansible_config import AnsibleConfig
from oxzep7_deploy.runner.request import absolute_sources
from oxzep7_deploy.spec import load_spec
from oxzep7_deploy.spec.loader import load_document
from oxzep7_deploy.spec.model import BuildMode, SourceInstall, Spec

PLATFORM_VAR = "oxzep7_platform"  # an inventory variable: the host's platform, for `plan`
_FAILED = (Outcome.ROLLED_BACK, Outcome.FAILED, Outcome.STOPPED, Outcome.ROLLBACK_INCOMPLETE,
           Outcome.SUCCEEDED_WITHIN_BUDGET)  # over: a re-apply starts a new attempt


@dataclass(frozen=True)
class PreparedDeploy:
    """A deploy ready to show (`plan`) or to run (`apply`): nothing written yet for a new one."""

    spec: Spec
    spec_path: str
    data: bytes  # the spec's bytes, kept with the records
    plan: Plan  # a resumed deploy's stored plan, else a new one
    record: DeployRecord  # its folder; it exists when the deploy is resumed (or was done)
    platforms: dict[str, str]
    note: str | None = None  # what apply does with this release besides a fresh start, and why

    @property
    def resumed(self) -> bool:
        return self.record.exists()


def prepare(spec_path: str, inventories: tuple[str, ...], ctx: DeployContext,
            limit: str | None = None) -> PreparedDeploy:
    """Load and check the spec and the inventory, choose the release attempt, plan; write nothing.

    `limit` (--limit) narrows the spec's targets further, as Ansible's --limit does. A recorded
    unfinished deploy of the same release is resumed with its stored plan. A different spec of
    the same name while one waits at a manual gate is refused.
    """
    spec = load_spec(spec_path)
    data = read_spec_bytes(spec, spec_path)
    try:
        return _prepare(spec, spec_path, data, inventories, ctx, limit)
    except SpecRuleError as exc:  # where in the spec: file, line and column, as validate says
        line, col = load_document(data).positions.locate(exc.path)
        raise UsageError(f"{spec_path}:{line}:{col}: {exc.message}", hint=exc.hint) from None


def _prepare(spec: Spec, spec_path: str, data: bytes, inventories: tuple[str, ...],
             ctx: DeployContext, limit: str | None) -> PreparedDeploy:
    check_world(spec, spec_path)
    refuse_while_paused(spec, data, spec_path, ctx.records_root)
    inventory = load_inventory(*inventories)
    targets = narrow(inventory, spec, inventory.select(spec.targets), limit)
    check_build_host(spec, inventory)
    record, note = choose_record(spec, targets, inventories, ctx)
    if record.exists():  # resume: the stored plan, as it was made (platforms, builds, waves)
        stored, plan = stored_deploy(record)
        if limit and set(plan.targets) != set(targets) and _outcome(record) is not Outcome.SUCCEEDED:
            raise UsageError(
                f"{spec.name}: the unfinished deploy of release {record.release} targets "
                f"{', '.join(plan.targets)}; --limit {limit} selects {', '.join(targets)}; "
                "nothing was changed",
                hint="finish that deploy first (apply with the --limit it was started with), or "
                     "roll it back (`oxzep7-deploy rollback`)",
            )
        return PreparedDeploy(stored, spec_path, data, plan, record, {}, note)
    if ctx.probe_platforms is not None:
        platforms = probe_platforms(spec, targets, absolute_sources(inventories), record, ctx)
    else:
        platforms = inventory_platforms(spec, inventory, targets)
    forks, _origin = AnsibleConfig().forks(spec.ansible.forks)
    plan = build_plan(spec, targets, record.release, platforms, forks)
    return PreparedDeploy(spec, spec_path, data, plan, record, platforms, note)


def narrow(inventory: Inventory, spec: Spec, targets: tuple[str, ...], limit: str | None
           ) -> tuple[str, ...]:
    """The spec's targets that `limit` (an Ansible pattern, matched by Ansible's inventory code)
    selects too, in inventory order; a limit that leaves none is a usage error."""
    if not limit:
        return targets
    try:
        allowed = set(inventory.select(limit))
    except InventoryError as exc:  # no host of the inventory at all, or not a pattern
        raise InventoryError(f"--limit {limit}: {exc.message}; nothing was changed",
                             hint=exc.hint) from exc
    narrowed = tuple(h for h in targets if h in allowed)
    if not narrowed:
        raise UsageError(
            f"--limit {limit}: none of the targets of {spec.name} ({spec.targets!r}: "
            f"{_few(targets)}) match it; nothing was changed",
            hint="--limit narrows the spec's targets: name some of them (a host, a group, "
                 "'h*', 'a:&b', 'a:!b'), or change the spec's targets",
        )
    return narrowed


def _few(hosts: tuple[str, ...], most: int = 8) -> str:
    return ", ".join(hosts[:most]) + (f" and {len(hosts) - most} more" if len(hosts) > most else "")


def prepare_deploy(spec_path: str, inventories: tuple[str, ...], ctx: DeployContext
                   ) -> tuple[Spec, Plan, DeployRecord]:
    """`prepare`, and the records of a new deploy (meta, plan, spec) written: what apply runs."""
    prepared = prepare(spec_path, inventories, ctx)
    start(prepared, inventories)
    return prepared.spec, prepared.plan, prepared.record


def start(prepared: PreparedDeploy, inventories: tuple[str, ...]) -> None:
    """Write the records of a deploy that has none yet (a resumed one keeps its own)."""
    if prepared.resumed:
        return
    prepared.record.start(
        meta={
            "spec": str(Path(prepared.spec_path).resolve()),
            "inventories": list(absolute_sources(inventories)),  # host lists as written
            "owner": owner(),
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "platforms": prepared.platforms,
            "spec_digest": prepared.spec.digest,
        },
        plan=prepared.plan.to_json(),
        spec=spec_for_records(prepared.spec, prepared.data),
    )


# -- which release attempt ---------------------------------------------------------------------


def choose_record(spec: Spec, targets: tuple[str, ...], inventories: tuple[str, ...],
                  ctx: DeployContext) -> tuple[DeployRecord, str | None]:
    """The deploy folder of this release to use, and a note when it is not a fresh start.

    A failed deploy is over: a new attempt `<id>.2`, `<id>.3`… follows. A succeeded one is done
    while every target still runs its release (asked of the hosts with `ctx.live_releases`); an
    unfinished one is resumed. A release the hosts marked bad (`ctx.bad_releases`) is not reused.
    """
    base = release_id(spec)
    app = spec.application.name
    record = DeployRecord(ctx.records_root, spec.name, base)
    attempt, why = 1, ""
    bad: dict[str, tuple[str, ...]] | None = None
    while True:
        if record.exists():
            outcome = _outcome(record)
            if outcome in _FAILED:
                why = f"a deploy of release {base} failed before on this controller"
            elif outcome is Outcome.SUCCEEDED and _moved_on(record, ctx, inventories, app, targets):
                why = f"release {base} was applied before and the targets no longer all run it"
            else:
                break
        elif attempt < _last_attempt(ctx.records_root, spec.name, base):
            pass  # this directory went on to a later attempt before
        else:  # no record here (a fresh directory): the hosts may still know this release as bad
            if ctx.bad_releases is None:
                break
            if bad is None:
                bad = ctx.bad_releases(inventories, app, targets)
            if record.release not in bad:
                break
            why = (f"release {record.release} was marked bad on {', '.join(bad[record.release])} "
                   "(rolled back before)")
            if ctx.on_event is not None:
                ctx.on_event(ProgressEvent("phase", f"{why}: this deploy is a new attempt"))
        attempt += 1
        record = DeployRecord(ctx.records_root, spec.name, f"{base}.{attempt}")
    return record, _note(record, base, why)


def _note(record: DeployRecord, base: str, why: str) -> str | None:
    if record.exists():
        outcome = _outcome(record)
        if outcome is Outcome.SUCCEEDED:
            return (f"note: release {record.release} was applied before; apply changes nothing "
                    "where the targets still run it")
        state = "paused" if outcome is Outcome.PAUSED else "unfinished"
        return f"note: apply resumes the {state} deploy of release {record.release}"
    if record.release != base:
        return f"note: {why or 'an earlier attempt is recorded'}; apply makes a new attempt, " \
               f"{record.release}"
    return None


def _outcome(record: DeployRecord) -> Outcome | None:
    try:
        return record.load_progress().outcome
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise record.damaged("progress.json", "the records", f"{exc}; nothing was changed",
                             "move the folder away to start the release afresh") from exc


def _moved_on(record: DeployRecord, ctx: DeployContext, inventories: tuple[str, ...], app: str,
              targets: tuple[str, ...]) -> bool:
    """A succeeded deploy is done only while every target still runs its release (the hosts are
    the truth: someone may have rolled back, or hosts were added). Without host probes: done."""
    if ctx.live_releases is None:
        return False
    live = ctx.live_releases(inventories, app, targets)
    return any(live.get(host) != record.release for host in targets)


def _last_attempt(records_root: Path, name: str, release: str) -> int:
    """The highest N of the `<release>.N` attempts recorded here (1: none)."""
    found = [r.release.rsplit(".", 1)[1] for r in find_deploys(records_root, name)
             if r.release.startswith(release + ".")]
    return max((int(n) for n in found if n.isdigit()), default=1)


# -- platforms and the build host --------------------------------------------------------------


def check_build_host(spec: Spec, inv: Inventory) -> None:
    """A build_host the inventory does not have is a typo or the wrong inventory: say which."""
    install = spec.interpreter.install
    if isinstance(install, SourceInstall) and install.build_host and install.build_host not in inv.hosts:
        raise SpecRuleError(
            f"{spec.name}: interpreter.install.build_host {install.build_host!r} is not a host of "
            f"inventory {', '.join(inv.sources)}",
            ("interpreter", "install", "build_host"),
            hint="name a host of the inventory (a target or a build box) as the inventory spells "
                 "it, or leave build_host out",
        )


def platform_hosts(spec: Spec, targets: tuple[str, ...]) -> tuple[str, ...]:
    """The hosts whose platform the plan needs: none unless the interpreter or the wheels are built
    once per platform; then the targets and a build_host outside them (it builds for its platform
    and gets nothing of the release)."""
    install = spec.interpreter.install
    if not (isinstance(install, SourceInstall) and install.build is BuildMode.ONCE_PER_PLATFORM):
        return targets if spec.application.wheels is BuildMode.ONCE_PER_PLATFORM else ()
    builder = install.build_host
    return (*targets, builder) if builder and builder not in targets else targets


def inventory_platforms(spec: Spec, inv: Inventory, targets: tuple[str, ...]) -> dict[str, str]:
    """Platforms the inventory names (`oxzep7_platform`, group_vars/ too)."""
    platforms = {}
    for host in platform_hosts(spec, targets):
        value = inv.inventory_var(host, PLATFORM_VAR)
        if value:
            platforms[host] = str(value)
    return platforms


def probe_platforms(spec: Spec, targets: tuple[str, ...], sources: tuple[str, ...],
                    record: DeployRecord, ctx: DeployContext) -> dict[str, str]:
    """Platforms from the hosts' facts; a build_host outside the targets must answer."""
    hosts = platform_hosts(spec, targets)
    if not hosts or ctx.probe_platforms is None:
        return {}
    platforms = ctx.probe_platforms(hosts, sources, record)
    builder = hosts[len(targets):]
    if builder and builder[0] not in platforms:
        raise UsageError(
            f"{spec.name}: interpreter.install.build_host {builder[0]!r} did not answer the "
            "platform probe (facts); nothing was changed",
            hint=f"check that {builder[0]} is reachable (`ansible {builder[0]} -m ping`), "
                 "or leave build_host out",
        )
    return platforms
