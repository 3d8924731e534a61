"""`plan SPEC -i INVENTORY`: exactly what `apply` would do, changing nothing anywhere."""

from __future__ import annotations

import click

from oxzep7_deploy.cli.boundary import JsonCommand, error_boundary, records_root
from oxzep7_deploy.cli.options import inventory_option, json_option
from oxzep7_deploy.cli.output import emit_json, say
from oxzep7_deploy.deploy import check_world
from oxzep7_deploy.engine_model import Outcome
from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.inventory import Inventory, load_inventory
from oxzep7_deploy.plan import Plan, Wave, build_plan
from oxzep7_deploy.plan.build import UNKNOWN_PLATFORM
from oxzep7_deploy.plan.release_id import release_id
from oxzep7_deploy.records import DeployRecord
from oxzep7_deploy.spec import load_spec
from oxzep7_deploy.spec.durations import format_duration
from oxzep7_deploy.spec.model import BuildMode, SourceInstall, Spec

PLATFORM_VAR = "oxzep7_platform"


@click.command("plan", cls=JsonCommand)
@click.argument("spec")
@inventory_option
@json_option
@error_boundary(read_only=True)
def plan_cmd(spec: str, inventory: tuple[str, ...], as_json: bool) -> None:
    """Show the waves, batches and gates that `apply` would run for SPEC on the inventory's hosts.

    Changes nothing and contacts no host: it reads the spec and the inventory only. Exit 0
    with the plan, or 2 for an invalid spec or inventory, or targets that match no host.
    """
    loaded = load_spec(spec)
    check_world(loaded, spec)
    inv = load_inventory(*inventory)
    targets = inv.select(loaded.targets)
    check_build_host(loaded, inv)
    release, note = recorded_release(loaded)
    plan = build_plan(loaded, targets, release, inventory_platforms(loaded, inv, targets))
    if as_json:
        emit_json(plan.to_json())
    else:
        for line in describe_plan(plan, loaded):
            say(line)
        if note:
            say(note)


_FAILED = (Outcome.ROLLED_BACK, Outcome.FAILED, Outcome.STOPPED, Outcome.ROLLBACK_INCOMPLETE,
           Outcome.SUCCEEDED_WITHIN_BUDGET)  # over: a re-apply starts a new attempt


def recorded_release(spec: Spec) -> tuple[str, str | None]:
    """The release id `apply` will use, from this controller's records, and a note on why.

    A deploy of the spec's release that failed before makes `apply` start a new attempt,
    `<id>.2`, `<id>.3`…; an unfinished one is resumed. (A succeeded one is judged by `apply`
    on the hosts, which `plan` does not contact: its id is shown.)
    """
    base = release = release_id(spec)
    try:
        for attempt in range(2, 1000):
            record = DeployRecord(records_root(), spec.name, release)
            if not record.exists():
                break
            outcome = record.load_progress().outcome
            if outcome is Outcome.SUCCEEDED:
                return release, (f"note: release {release} was applied before; apply changes "
                                 "nothing where the targets still run it")
            if outcome not in _FAILED:
                state = "paused" if outcome is Outcome.PAUSED else "unfinished"
                return release, f"note: apply resumes the {state} deploy of release {release}"
            release = f"{base}.{attempt}"
    except (OSError, ValueError, KeyError, TypeError):
        return base, None  # unreadable records: apply will say what is wrong with them
    if release != base:
        return release, (f"note: a deploy of release {base} failed before on this controller; "
                         f"apply makes a new attempt, {release}")
    return release, None


def check_build_host(spec: Spec, inv: Inventory) -> None:
    """A build_host the inventory does not have is a typo or the wrong inventory: say which."""
    install = spec.interpreter.install
    if isinstance(install, SourceInstall) and install.build_host and install.build_host not in inv.hosts:
        raise UsageError(
            f"{spec.name}: interpreter.install.build_host {install.build_host!r} is not a host of "
            f"inventory {', '.join(inv.sources)}",
            hint="name a host of the inventory (a target or a build box) as the inventory spells "
                 "it, or leave build_host out",
        )


def inventory_platforms(spec: Spec, inv: Inventory, targets: tuple[str, ...]) -> dict[str, str]:
    """Platforms the inventory names (`oxzep7_platform`, group_vars/ too); `apply` reads facts."""
    install = spec.interpreter.install
    if not (isinstance(install, SourceInstall) and install.build is BuildMode.ONCE_PER_PLATFORM):
        return {}
    platforms = {}
    builder = install.build_host  # a build box outside the targets builds for its platform
    for host in (*targets, builder) if builder and builder not in targets else targets:
        value = inv.inventory_var(host, PLATFORM_VAR)
        if value:
            platforms[host] = str(value)
    return platforms


def describe_plan(plan: Plan, spec: Spec | None = None) -> list[str]:
    """The plan as a person reads it (with `spec`: also what of it the strategy overrides)."""
    interp = plan.interpreter
    lines = [
        f"plan {plan.name}: app {plan.app}, release {plan.release}, "
        f"{len(plan.targets)} target host{'s' if len(plan.targets) != 1 else ''}, "
        f"strategy {plan.strategy.value}",
        f"interpreter: Python {interp['version']} ({interp['method']}) at {interp['executable']}",
    ]
    for step in plan.build:
        where = _hosts(step.hosts)
        platform = step.platform
        if platform == UNKNOWN_PLATFORM:
            platform = "platform from facts at apply (set oxzep7_platform to plan it here)"
        if step.action == "build-and-ship":
            others = [h for h in step.hosts if h != step.build_host]
            ship = f", ship to {_hosts(others)}" if others else ""
            outside = " (a build host outside the targets)" if step.build_host not in step.hosts else ""
            lines.append(f"  {platform}: build on {step.build_host}{outside}{ship}")
        else:
            lines.append(f"  {step.action} on {where}")
    if plan.prestage:
        lines.append(f"prestage: interpreter and release prepared on {_hosts(plan.prestage)}")
        if spec is not None and not spec.rollout.prestage:
            lines.append("  (blue-green prepares every target before its one switch: "
                         "rollout.prestage: false does not apply)")
    else:
        lines.append("prestage: off (each batch is prepared just before it is switched)")
    for n, wave in enumerate(plan.waves, 1):
        gate = wave.gate
        before = "after a manual `promote`, " if gate.promote.value == "manual" else ""
        checks = gate.health_checks
        after = f"health ({checks} check{'s' if checks != 1 else ''})" if checks else "no health checks"
        if gate.bake:
            after += f", bake {format_duration(gate.bake)}"
        lines.append(f"wave {n} {wave.name}: {before}switch {_batches(wave)}; then {after}")
    lines.append(
        f"failure budget: {plan.max_failed} host{'s' if plan.max_failed != 1 else ''}; "
        f"on failure: {plan.on_failure.value}; dead-man: "
        + (format_duration(plan.dead_man) if plan.dead_man else "off")
    )
    return lines


def _batches(wave: Wave, most: int = 8) -> str:
    """`h1,h2 | h3` for a few hosts; a count and the first hosts for a large wave (--json has all)."""
    if len(wave.hosts) <= most:
        return " | ".join(",".join(b) for b in wave.batches)
    sizes = {len(b) for b in wave.batches}
    up_to = "" if len(sizes) == 1 else "up to "
    shape = (f"in {len(wave.batches)} batches of {up_to}{max(sizes)}" if len(wave.batches) > 1
             else "in one batch")
    return f"{len(wave.hosts)} hosts {shape} ({_hosts(wave.hosts, most=4)})"


def _hosts(hosts: tuple[str, ...] | list[str], most: int = 8) -> str:
    shown = ", ".join(hosts[:most])
    return shown + (f" and {len(hosts) - most} more" if len(hosts) > most else "")
