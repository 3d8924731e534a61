"""Commands of the contract that this version registers but does not carry out yet.

Each keeps the options SPEC.md gives it, so `--help` is already right; running one says
plainly that it is not built yet (exit 2). A command leaves this module when it is built.
"""

from __future__ import annotations

from typing import Any

import click

from oxzep7_deploy.cli.boundary import error_boundary
from oxzep7_deploy.cli.options import inventory_option, json_option
from oxzep7_deploy.errors import NotBuiltYetError


def _pending(name: str) -> None:
    raise NotBuiltYetError(
        f"`{name}` is not built yet in this version of oxzep7-deploy",
        hint="`validate`, `plan`, `init` and `schema` work; the README says what is coming",
    )


@click.command("audit")
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@inventory_option
@click.option("--limit", help="Only hosts matching this pattern.")
@json_option
@error_boundary
def audit_cmd(**_: Any) -> None:
    """Per host: OS, interpreters, venvs, services and cron jobs using Python, free disk."""
    _pending("audit")


def pending_commands() -> list[click.Command]:
    return [audit_cmd]
