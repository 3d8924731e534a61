"""The `oxzep7-deploy` command group: thin click commands over the library.

Each command's module is imported when that command runs (or when help lists them all), so
`plan` or `status` does not pay for importing every other command and what it pulls in.
"""

from __future__ import annotations

import importlib

import click

from oxzep7_deploy import __version__

# in the order help lists them: (module under oxzep7_deploy.cli, its commands); the command
# `NAME` is the attribute `NAME_cmd` of its module
_MODULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cmd_validate", ("validate",)),
    ("cmd_plan", ("plan",)),
    ("cmd_apply", ("apply",)),
    ("cmd_rehearse", ("rehearse",)),
    ("cmd_apply", ("promote", "abort")),
    ("cmd_audit", ("audit",)),
    ("cmd_init", ("init", "schema")),
    ("cmd_hosts", ("rollback", "status", "history")),
    ("cmd_report", ("report",)),
    ("cmd_publish", ("publish",)),
    ("cmd_hosts", ("unlock",)),
)
COMMANDS: dict[str, tuple[str, str]] = {
    name: (module, f"{name}_cmd") for module, names in _MODULES for name in names}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(name for name in super().list_commands(ctx) if name not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, attr = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"oxzep7_deploy.cli.{module}"), attr)
        assert isinstance(command, click.Command) and command.name == cmd_name, cmd_name
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oxzep7-deploy")
def cli() -> None:
    """Upgrade the Python interpreter under applications across a fleet, safely.

    One YAML spec says the target interpreter, how it gets there, the application's
    virtualenv and the rollout stages; oxzep7-deploy validates it, plans it, and carries
    it out with Ansible, with health gates and one-command rollback.
    """


def main() -> None:
    cli(prog_name="oxzep7-deploy")
