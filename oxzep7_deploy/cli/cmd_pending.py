"""Commands of the contract that this version registers but does not carry out yet.

Each keeps the options SPEC.md gives it, so `--help` is already right; running one says
plainly that it is not built yet (exit 2). A command leaves this module when it is built.
"""

from __future__ import annotations

from typing import Any

import click

from oxzep7_deploy.cli.boundary import error_boundary
from oxzep7_deploy.cli.options import inventory_option, json_option, yes_option
from oxzep7_deploy.errors import NotBuiltYetError


def _pending(name: str) -> None:
    raise NotBuiltYetError(
        f"`{name}` is not built yet in this version of oxzep7-deploy",
        hint="`validate`, `plan`, `init` and `schema` work; the README says what is coming",
    )


@click.command("rollback")
@inventory_option
@click.option("--app", required=True, help="The application's name.")
@click.option("--to", "to_release", help="A release id to go back to (default: previous good).")
@click.option("--limit", help="Only hosts matching this pattern.")
@yes_option
@json_option
@error_boundary
def rollback_cmd(**_: Any) -> None:
    """Back to the previous good release on every host of the app, from host state alone."""
    _pending("rollback")


@click.command("status")
@inventory_option
@click.option("--app", required=True, help="The application's name.")
@json_option
@error_boundary
def status_cmd(**_: Any) -> None:
    """Per host: current release, interpreter, previous, last good, lock."""
    _pending("status")


@click.command("history")
@inventory_option
@click.option("--app", required=True, help="The application's name.")
@json_option
@error_boundary
def history_cmd(**_: Any) -> None:
    """Releases and deploys with their outcomes."""
    _pending("history")


@click.command("unlock")
@inventory_option
@click.option("--app", required=True, help="The application's name.")
@click.option("--force", is_flag=True, help="Break a lock held by someone else.")
@yes_option
@json_option
@error_boundary
def unlock_cmd(**_: Any) -> None:
    """Release the app's deploy lock on its hosts."""
    _pending("unlock")


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
    return [rollback_cmd, status_cmd, history_cmd,
            unlock_cmd, audit_cmd]
