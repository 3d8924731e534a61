"""`apply`, `promote` and `abort`: carry out a spec, continue it past a manual gate, or undo it."""

from __future__ import annotations

from typing import Any

import click

from oxzep7_deploy.cli import runners
from oxzep7_deploy.cli.boundary import JsonCommand, error_boundary, records_root
from oxzep7_deploy.cli.cmd_plan import describe_plan
from oxzep7_deploy.cli.options import (
    deploy_name_argument,
    host_options,
    inventory_option,
    json_option,
    limit_option,
    yes_option,
)
from oxzep7_deploy.cli.output import confirm, emit_json
from oxzep7_deploy.cli.progress import ProgressPrinter
from oxzep7_deploy.deploy import (
    DeployContext,
    build_report,
    paused_deploy,
    run_deploy,
    stored_deploy,
)
from oxzep7_deploy.engine_model import Outcome, Progress
from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.plan import Plan
from oxzep7_deploy.preflight import check_preflight
from oxzep7_deploy.prepared import prepare, start
from oxzep7_deploy.steps.host_steps import host_context


def _context(printer: ProgressPrinter, verbose: int = 0, ask_become_pass: bool = False,
             node: str | None = None) -> DeployContext:
    return host_context(records_root(), runners.for_command(verbose, ask_become_pass,
                                                            execution_node=node), printer)


def spec_node(path: str) -> str | None:
    """The spec's ansible.execution_node; None when it cannot be read (`prepare` says why)."""
    from oxzep7_deploy.errors import Oxzep7Error
    from oxzep7_deploy.spec import load_spec

    try:
        return load_spec(path).ansible.execution_node
    except Oxzep7Error:
        return None


def _finish(plan: Plan, progress: Progress, printer: ProgressPrinter, as_json: bool) -> None:
    report = build_report(plan, progress)
    if as_json:
        emit_json(report)
    else:
        rows = [[h, r["state"], _gap(r["restart_gap_s"]), r["failed_step"] or "", r["message"] or ""]
                for h, r in report["hosts"].items()]
        columns = ["host", "state", "restart gap", "failed step", "detail"]
        if plan.watch is not None:
            columns.append("watch")
            for row, r in zip(rows, report["hosts"].values(), strict=True):
                row.append(_watched(r["watch"]))
        printer.table(f"{plan.name}: release {plan.release}: {report['outcome']}", columns, rows)
        if progress.outcome is Outcome.PAUSED and progress.paused_for == "watch":
            printer.line(f"paused after wave {report['paused_at']}: its watch is inconclusive "
                         f"(see the watch findings above); `oxzep7-deploy promote {plan.name}` "
                         f"continues, `oxzep7-deploy abort {plan.name}` rolls back")
        elif progress.outcome is Outcome.PAUSED:
            printer.line(f"paused before wave {report['paused_at']}: "
                         f"`oxzep7-deploy promote {plan.name}` continues, "
                         f"`oxzep7-deploy abort {plan.name}` rolls back")
    outcome = progress.outcome or Outcome.ROLLED_BACK
    raise SystemExit(int(outcome.exit_code))


def _watched(findings: list[dict[str, Any]] | None) -> str:
    """`canary: inconclusive: 4 matching lines after …`, one line per watched wave."""
    return "\n".join(f"{f.get('wave')}: {f.get('verdict')}: {f.get('reason')}"
                     for f in findings or [])


def _gap(seconds: float | None) -> str:
    """`0.42 s`; empty where nothing was measured (no restart, or no application.port)."""
    return "" if seconds is None else f"{seconds:.2f} s"


@click.command("apply", cls=JsonCommand)
@click.argument("spec", type=click.Path(dir_okay=False))
@inventory_option
@limit_option
@click.option("--allow-unhealthy", is_flag=True,
              help="Deploy even where the pre-flight finds what runs now unhealthy.")
@yes_option
@host_options
@json_option
@error_boundary
def apply_cmd(spec: str, inventory: tuple[str, ...], limit: str | None, allow_unhealthy: bool,
              yes: bool, verbose: int, ask_become_pass: bool, execution_node: str | None,
              as_json: bool) -> None:
    """Carry out SPEC on the inventory's hosts, wave by wave; resume if it was interrupted.

    --limit narrows the spec's targets further, as Ansible's --limit: only those hosts are
    planned and touched.
    """
    printer = ProgressPrinter(quiet=as_json)
    ctx = _context(printer, verbose, ask_become_pass, execution_node or spec_node(spec))
    prepared = prepare(spec, inventory, ctx, limit)  # what `plan` shows
    loaded, plan, record = prepared.spec, prepared.plan, prepared.record
    for line in describe_plan(plan, loaded):
        printer.line(line)
    if prepared.note:
        printer.line(prepared.note)
    start(prepared, inventory)
    try:
        if not prepared.resumed and ctx.make_steps is not None:
            # before the first switch: hosts already unhealthy are named now
            steps = ctx.make_steps(loaded, plan, tuple(record.meta()["inventories"]), record)
            run = getattr(steps, "preflight", None)
            if run is not None:
                check_preflight(run, plan.targets, spec_path=spec,
                                allow_unhealthy=allow_unhealthy, on_event=printer)
        confirm(f"apply release {plan.release} to {len(plan.targets)} host(s)?", yes)
    except UsageError:
        record.discard_unstarted()  # refused or "n": no trace of a deploy that never began
        raise
    progress = run_deploy(loaded, plan, record, ctx)
    _finish(plan, progress, printer, as_json)


def _gate_command(command: str, help_text: str, abort: bool) -> click.Command:
    """`promote` and `abort`: the two answers to a deploy paused at a manual gate."""
    @click.command(command, cls=JsonCommand, help=help_text)
    @deploy_name_argument
    @yes_option
    @host_options
    @json_option
    @error_boundary
    def gate_cmd(name: str, yes: bool, verbose: int, ask_become_pass: bool,
                 execution_node: str | None, as_json: bool) -> None:
        _resume(name, yes, as_json, abort, verbose, ask_become_pass, execution_node)
    return gate_cmd


promote_cmd = _gate_command("promote", "Continue a deploy paused at a manual gate.", abort=False)
abort_cmd = _gate_command("abort", "Stop a paused deploy and roll back what it switched.", abort=True)


def _resume(name: str, yes: bool, as_json: bool, abort: bool, verbose: int,
            ask_become_pass: bool, node: str | None) -> None:
    printer = ProgressPrinter(quiet=as_json)
    record = paused_deploy(records_root(), name)
    spec, plan = stored_deploy(record, abort=abort, on_event=printer)  # not the file as it is now
    ctx = _context(printer, verbose, ask_become_pass, node or spec.ansible.execution_node)
    progress = record.load_progress()
    wave = plan.waves[progress.paused_at or 0].name
    verb = ("roll back" if abort else f"continue past the inconclusive watch of wave {wave} of"
            if progress.paused_for == "watch" else f"continue with wave {wave} of")
    confirm(f"{verb} deploy {name} (release {plan.release})?", yes)
    progress = run_deploy(spec, plan, record, ctx, promote_wave=None if abort else progress.paused_at,
                          abort=abort)
    _finish(plan, progress, printer, as_json)

