"""`rehearse`: everything of a deploy before its switch, on the hosts; nothing switches."""

from __future__ import annotations

import click

from oxzep7_deploy.cli import runners
from oxzep7_deploy.cli.boundary import JsonCommand, error_boundary, records_root
from oxzep7_deploy.cli.cmd_apply import spec_node
from oxzep7_deploy.cli.cmd_plan import describe_plan
from oxzep7_deploy.cli.options import host_options, inventory_option, json_option, limit_option
from oxzep7_deploy.cli.output import emit_json
from oxzep7_deploy.cli.progress import ProgressPrinter
from oxzep7_deploy.deploy import build_report, rehearsal_record, run_rehearsal
from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.prepared import PreparedDeploy, prepare, start
from oxzep7_deploy.steps.host_steps import host_context


@click.command("rehearse", cls=JsonCommand)
@click.argument("spec", type=click.Path(dir_okay=False))
@inventory_option
@limit_option
@host_options
@json_option
@error_boundary
def rehearse_cmd(spec: str, inventory: tuple[str, ...], limit: str | None, verbose: int,
                 ask_become_pass: bool, execution_node: str | None, as_json: bool) -> None:
    """Install, prepare, verify and (with `preview`) run the preview on the hosts; switch nothing.

    Exit 0 when every host passed, 1 otherwise. A later `apply` of the same spec reuses the
    release prepared here.
    """
    printer = ProgressPrinter(quiet=as_json)
    ctx = host_context(records_root(), runners.for_command(
        verbose, ask_become_pass, execution_node=execution_node or spec_node(spec)), printer)
    prepared = prepare(spec, inventory, ctx, limit)
    if prepared.resumed:
        raise UsageError(
            f"{spec}: a deploy of release {prepared.record.release} is already recorded here "
            f"({prepared.record.dir}); a rehearsal comes before the apply",
            hint="`oxzep7-deploy apply` resumes or finishes that deploy; change the spec for a new "
                 "release to rehearse",
        )
    loaded, plan = prepared.spec, prepared.plan
    for line in describe_plan(plan, loaded):
        printer.line(line)
    printer.line("rehearse: everything before the switch, on every target; nothing switches")
    record = rehearsal_record(ctx.records_root, loaded.name, plan.release)
    start(PreparedDeploy(loaded, spec, prepared.data, plan, record, prepared.platforms), inventory)
    progress = run_rehearsal(loaded, plan, record, ctx)
    report = build_report(plan, progress)
    report["rehearsal"] = True
    if as_json:
        emit_json(report)
    else:
        rows = [[h, r["state"], r["failed_step"] or "", r["message"] or ""]
                for h, r in report["hosts"].items()]
        printer.table(f"{plan.name}: rehearsal of release {plan.release}: {report['outcome']}",
                      ["host", "state", "failed step", "detail"], rows)
    outcome = progress.outcome
    raise SystemExit(int(outcome.exit_code) if outcome is not None else 1)
