"""`plan SPEC -i INVENTORY`: exactly what `apply` would do, changing nothing anywhere."""

from __future__ import annotations

from typing import Any

import click

from oxzep7_deploy.cli.boundary import JsonCommand, error_boundary, records_root
from oxzep7_deploy.cli.options import inventory_option, json_option, limit_option
from oxzep7_deploy.cli.output import emit_json, say
from oxzep7_deploy.deploy import DeployContext
from oxzep7_deploy.plan import Plan, Wave
from oxzep7_deploy.plan.build import UNKNOWN_PLATFORM, batch_cap
from oxzep7_deploy.prepared import prepare
from oxzep7_deploy.runner.ansible_config import AnsibleConfig
from oxzep7_deploy.spec.durations import format_duration
from oxzep7_deploy.spec.model import Spec


@click.command("plan", cls=JsonCommand)
@click.argument("spec")
@inventory_option
@limit_option
@json_option
@error_boundary(read_only=True)
def plan_cmd(spec: str, inventory: tuple[str, ...], limit: str | None, as_json: bool) -> None:
    """Show the waves, batches and gates that `apply` would run for SPEC on the inventory's hosts.

    Changes nothing and contacts no host: it reads the spec, the inventory and this controller's
    records only. --limit narrows the spec's targets further, as Ansible's --limit. Exit 0 with
    the plan, or 2 for an invalid spec or inventory, or targets (or a limit) that match no host.
    """
    prepared = prepare(spec, inventory, DeployContext(records_root()), limit)  # no host probes
    ansible = AnsibleConfig().effective(prepared.spec.ansible.forks, prepared.spec.ansible.become)
    if as_json:
        emit_json({**prepared.plan.to_json(), "ansible": ansible})
    else:
        for line in describe_plan(prepared.plan, prepared.spec):
            say(line)
        for line in describe_ansible(ansible):
            say(line)
        if prepared.note:
            say(prepared.note)


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
    for wheels in plan.wheels:
        platform = wheels.platform
        if platform == UNKNOWN_PLATFORM:
            platform = "platform from facts at apply"
        lines.append(f"wheels ({platform}): built once on {wheels.build_host} with the new "
                     f"interpreter, shipped to {_hosts(wheels.hosts)}, installed with --no-index")
    if plan.mirror:
        lines.append(f"artifacts: each host downloads them from the mirror {plan.mirror}/sha256/"
                     "<sha256> and checks them against the controller's manifest; the controller "
                     "pushes none (fill it with `oxzep7-deploy publish`)")
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
            if plan.watch is not None:
                after += " with the watch"
        lines.append(f"wave {n} {wave.name}: {before}switch {_batches(wave)}; then {after}")
    lines += _describe_watch(plan)
    size = spec.rollout.batch_size if spec is not None else None
    if size is not None and size.percent:
        cap = batch_cap(size, len(plan.targets))
        lines.append(f'batch size: "{size}" of the {len(plan.targets)} targets, rounded up: '
                     f"{cap} host{'s' if cap != 1 else ''} at a time")
    lines.append(
        f"failure budget: {plan.max_failed} host{'s' if plan.max_failed != 1 else ''}; "
        f"on failure: {plan.on_failure.value}; dead-man: "
        + (format_duration(plan.dead_man) if plan.dead_man else "off")
    )
    return lines


def _describe_watch(plan: Plan) -> list[str]:
    watch = plan.watch
    if watch is None:
        return []
    patterns = ", ".join(repr(p) for p in watch.patterns) or "none"
    line = (f"watch (during each bake, on the hosts that wave switched): journal lines with "
            f"{patterns} beyond the window before the switch (max_new {watch.max_new}), "
            f"restarts beyond {watch.restarts}, any crash fail the host; a noisy window before "
            f"the switch: {watch.inconclusive.value}")
    if not any(w.gate.bake for w in plan.waves):
        line += "; no stage has a bake, so nothing is watched"
    return [line]


def describe_ansible(settings: dict[str, Any]) -> list[str]:
    """The settings of Ansible a run gets, each with where it comes from."""
    def show(name: str, label: str) -> str:
        entry = settings[name]
        value = entry["value"]
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif value is None:
            value = "not set"
        origin = entry["from"]
        origin = {"default": "Ansible's default"}.get(origin, origin)
        return f"{label} {value} ({origin})"

    return [
        "ansible: config file " + (settings["config_file"] or "none (no ansible.cfg found)"),
        "  " + "; ".join([show("remote_user", "remote user"), show("become", "become"),
                          show("become_method", "method")]),
        "  " + "; ".join([show("forks", "forks"), show("timeout", "timeout"),
                          show("host_key_checking", "host key checking")]),
        "  " + show("private_key_file", "private key")
        + " (an inventory's ansible_user / ansible_ssh_private_key_file win per host)",
    ]


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
