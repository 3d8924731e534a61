"""`report`: a self-contained HTML page of one deploy, from the controller's records only."""

from __future__ import annotations

from pathlib import Path

import click

from oxzep7_deploy.cli.boundary import JsonCommand, error_boundary, records_root
from oxzep7_deploy.cli.options import deploy_name_argument, json_option
from oxzep7_deploy.cli.output import emit_json, say
from oxzep7_deploy.report import write_report


@click.command("report", cls=JsonCommand)
@deploy_name_argument
@click.option("--release", help="Which deploy of NAME (a release id); default: the latest.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=True, path_type=Path),
              help="Where to write the page; default: report.html beside the deploy's records.")
@json_option
@error_boundary(read_only=True)
def report_cmd(name: str, release: str | None, output: Path | None, as_json: bool) -> None:
    """An HTML page of deploy NAME: a timeline per host, waves and gates, findings; no host is
    contacted. Prints the page's path."""
    written = write_report(records_root(), name, release, output)
    if as_json:
        emit_json({"path": str(written.path), "deploy": written.deploy,
                   "release": written.release, "outcome": written.outcome})
    else:
        say(str(written.path))
