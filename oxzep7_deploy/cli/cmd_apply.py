"""`apply`, `promote` and `abort`: carry out a spec, continue it past a manual gate, or undo it."""

from __future__ import annotations

import click

from oxzep7_deploy.cli import runners
from oxzep7_deploy.cli.boundary import JsonCommand, error_boundary, records_root
from oxzep7_deploy.cli.cmd_plan import describe_plan
from oxzep7_deploy.cli.options import (
    deploy_name_argument,
    execution_node_option,
    inventory_option,
    json_option,
    verbose_option,
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


def _context(printer: ProgressPrinter, verbose: int = 0, node: str | None = None
             ) -> DeployContext:
    return host_context(records_root(), runners.runner_factory(verbose=verbose,
                                                               execution_node=node), printer)


def _spec_node(path: str) -> str | None:
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
        rows = [[h, r["state"], r["failed_step"] or "", r["message"] or ""]
                for h, r in report["hosts"].items()]
        printer.table(f"{plan.name}: release {plan.release}: {report['outcome']}",
                      ["host", "state", "failed step", "detail"], rows)
        if progress.outcome is Outcome.PAUSED:
            printer.line(f"paused before wave {report['paused_at']}: "
                         f"`oxzep7-deploy promote {plan.name}` continues, "
                         f"`oxzep7-deploy abort {plan.name}` rolls back")
    outcome = progress.outcome or Outcome.ROLLED_BACK
    raise SystemExit(int(outcome.exit_code))


@click.command("apply", cls=JsonCommand)
@click.argument("spec", type=click.Path(dir_okay=False))
@inventory_option
@click.option("--allow-unhealthy", is_flag=True,
              help="Deploy even where the pre-flight finds what runs now unhealthy.")
@yes_option
@verbose_option
@execution_node_option
@json_option
@error_boundary
def apply_cmd(spec: str, inventory: tuple[str, ...], allow_unhealthy: bool, yes: bool, verbose: int,
              execution_node: str | None, as_json: bool) -> None:
    """Carry out SPEC on the inventory's hosts, wave by wave; resume if it was interrupted."""
    printer = ProgressPrinter(quiet=as_json)
    ctx = _context(printer, verbose, execution_node or _spec_node(spec))
    prepared = prepare(spec, inventory, ctx)  # what `plan` shows
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


@click.command("promote", cls=JsonCommand)
@deploy_name_argument
@yes_option
@execution_node_option
@json_option
@error_boundary
def promote_cmd(name: str, yes: bool, execution_node: str | None, as_json: bool) -> None:
    """Continue a deploy paused at a manual gate."""
    _resume(name, yes, as_json, abort=False, node=execution_node)


@click.command("abort", cls=JsonCommand)
@deploy_name_argument
@yes_option
@execution_node_option
@json_option
@error_boundary
def abort_cmd(name: str, yes: bool, execution_node: str | None, as_json: bool) -> None:
    """Stop a paused deploy and roll back what it switched."""
    _resume(name, yes, as_json, abort=True, node=execution_node)


def _resume(name: str, yes: bool, as_json: bool, abort: bool, node: str | None) -> None:
    printer = ProgressPrinter(quiet=as_json)
    record = paused_deploy(records_root(), name)
    spec, plan = stored_deploy(record, abort=abort, on_event=printer)  # not the file as it is now
    ctx = _context(printer, node=node or spec.ansible.execution_node)
    progress = record.load_progress()
    wave = plan.waves[progress.paused_at or 0].name
    verb = "roll back" if abort else f"continue with wave {wave} of"
    confirm(f"{verb} deploy {name} (release {plan.release})?", yes)
    progress = run_deploy(spec, plan, record, ctx, promote_wave=None if abort else progress.paused_at,
                          abort=abort)
    _finish(plan, progress, printer, as_json)

