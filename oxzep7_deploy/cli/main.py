"""The `oxzep7-deploy` command group: thin click commands over the library."""

from __future__ import annotations

import click

from oxzep7_deploy import __version__
from oxzep7_deploy.cli.cmd_apply import abort_cmd, apply_cmd, promote_cmd
from oxzep7_deploy.cli.cmd_audit import audit_cmd
from oxzep7_deploy.cli.cmd_hosts import history_cmd, rollback_cmd, status_cmd, unlock_cmd
from oxzep7_deploy.cli.cmd_init import init_cmd, schema_cmd
from oxzep7_deploy.cli.cmd_plan import plan_cmd
from oxzep7_deploy.cli.cmd_validate import validate_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oxzep7-deploy")
def cli() -> None:
    """Upgrade the Python interpreter under applications across a fleet, safely.

    One YAML spec says the target interpreter, how it gets there, the application's
    virtualenv and the rollout stages; oxzep7-deploy validates it, plans it, and carries
    it out with Ansible, with health gates and one-command rollback.
    """


for command in (validate_cmd, plan_cmd, apply_cmd, promote_cmd, abort_cmd, audit_cmd, init_cmd,
                schema_cmd, rollback_cmd, status_cmd, history_cmd, unlock_cmd):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="oxzep7-deploy")
