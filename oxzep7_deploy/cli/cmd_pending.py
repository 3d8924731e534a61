"""Commands of the contract that this version registers but does not carry out yet.

Each keeps the options SPEC.md gives it, so `--help` is already right; running one says
plainly that it is not built yet (exit 2). A command leaves this module when it is built.
"""

from __future__ import annotations

import click

from oxzep7_deploy.errors import NotBuiltYetError


def _pending(name: str) -> None:
    raise NotBuiltYetError(
        f"`{name}` is not built yet in this version of oxzep7-deploy",
        hint="`validate`, `plan`, `init` and `schema` work; the README says what is coming",
    )


def pending_commands() -> list[click.Command]:
    return []
