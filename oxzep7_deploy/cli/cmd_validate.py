"""`validate SPEC`: static checks of a spec, every error at once with its line and path."""

from __future__ import annotations

import click

from oxzep7_deploy.cli.boundary import JsonCommand, error_boundary
from oxzep7_deploy.cli.options import json_option
from oxzep7_deploy.cli.output import emit_json, say
from oxzep7_deploy.errors import ExitCode
from oxzep7_deploy.spec import validate_document


@click.command("validate", cls=JsonCommand)
@click.argument("spec")
@json_option
@error_boundary(read_only=True)
def validate_cmd(spec: str, as_json: bool) -> None:
    """Check SPEC against the schema and the rules; no inventory, no network.

    Prints `SPEC: valid` and exits 0, or prints every error at once, one line each as
    `SPEC:LINE:COL: PATH: message`, and exits 2.
    """
    problems = validate_document(spec)
    if as_json:
        emit_json({
            "spec": spec,
            "valid": not problems,
            "errors": [{**p.as_dict(), "text": str(p)} for p in problems],
        })
    elif problems:
        for problem in problems:
            say(str(problem))
        say(f"{spec}: {len(problems)} error{'s' if len(problems) != 1 else ''}", err=True)
    else:
        say(f"{spec}: valid")
    if problems:
        raise SystemExit(int(ExitCode.USAGE))
