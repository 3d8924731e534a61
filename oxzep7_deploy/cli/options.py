"""Options every command shares."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout, nothing else."
    )(func)


def inventory_option(func: F) -> F:
    return click.option(
        "-i", "--inventory", "inventory", multiple=True, metavar="INVENTORY",
        callback=_configured_inventory,
        help="Ansible inventory: a file, a directory, or 'h1,h2,' (repeatable). Default: "
             "as ansible-playbook's, `inventory =` in ansible.cfg or ANSIBLE_INVENTORY.",
    )(func)


def _configured_inventory(_ctx: click.Context, _param: click.Parameter,
                          value: tuple[str, ...]) -> tuple[str, ...]:
    """No -i: the inventory ansible-playbook would use (ansible.cfg's `inventory =`,
    ANSIBLE_INVENTORY, else /etc/ansible/hosts), when it exists."""
    if value:
        return value
    from oxzep7_deploy.errors import Oxzep7Error
    from oxzep7_deploy.runner.ansible_config import AnsibleConfig

    try:
        config = AnsibleConfig()
    except Oxzep7Error as exc:
        raise click.BadParameter(f"{exc.message} ({exc.hint})") from None
    sources, origin = config.inventory()
    found = tuple(s for s in sources if Path(s).exists() or "," in s)
    if not found:
        if origin != "default":
            where = f"{origin} names {', '.join(sources)}, which does not exist"
        else:
            where = (f"{config.file} sets no `inventory =`" if config.file
                     else "no ansible.cfg found from here") + ", and /etc/ansible/hosts is missing"
        raise click.MissingParameter(
            f"No inventory: {where}; give -i INVENTORY, or set `inventory = PATH` in "
            f"{config.file or './ansible.cfg'} [defaults].", ctx=_ctx, param=_param)
    return found


def yes_option(func: F) -> F:
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(func)


def verbose_option(func: F) -> F:
    return click.option(
        "-v", "--verbose", count=True,
        help="Show Ansible's own output on stderr; -vv, -vvv, -vvvv pass that verbosity on to "
             "Ansible (-vvv: SSH connections too).",
    )(func)


def become_password_option(func: F) -> F:
    return click.option(
        "-K", "--ask-become-pass", "ask_become_pass", is_flag=True,
        help="Ask once for the sudo (become) password, as ansible-playbook -K does; it is kept in "
             "memory only. Without it, ansible_become_password from the inventory or a vault "
             "applies.",
    )(func)


def host_options(func: F) -> F:
    """What every command that talks to hosts takes: -v… and -K, as Ansible does, and
    --execution-node."""
    return verbose_option(become_password_option(execution_node_option(func)))


def limit_option(func: F) -> F:
    return click.option(
        "--limit", metavar="PATTERN",
        help="Only hosts matching this Ansible pattern (names, groups, 'h*', 'a:b', 'a:&b', "
             "'a:!b').",
    )(func)


def _schema_rule(*path: str) -> tuple[str, str]:
    """The pattern and its message for a name in the spec's JSON Schema (the one source of truth)."""
    from oxzep7_deploy.spec.schema import resolve, schema

    node: Any = schema()
    for key in path:
        node = resolve(node)["properties"][key]
    return str(node["pattern"]), str(node.get("patternErrorMessage", f"must match {node['pattern']}"))


def _named(what: str, *path: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback that refuses a value the spec would refuse at `path` (exit 2).

    Names become paths on the controller (`.oxzep7/ops/<app>/…`): `../../etc` must not.
    """

    def check(_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is None:
            return value
        pattern, rule = _schema_rule(*path)
        if not re.fullmatch(pattern, value):
            raise click.BadParameter(f"{value!r} is not {what}: it {rule}")
        return value

    return check


def app_option(func: F) -> F:
    return click.option(
        "--app", required=True, callback=_named("an application name", "application", "name"),
        help="The application's name: the spec's application.name.",
    )(func)


def deploy_name_argument(func: F) -> F:
    return click.argument("name", callback=_named("a deploy name", "name"))(func)


def execution_node_option(func: F) -> F:
    return click.option(
        "--execution-node", "execution_node", metavar="DESTINATION",
        callback=_named("an SSH destination", "ansible", "execution_node"),
        help="Run the playbooks on this SSH destination (ansible-runner transmit | worker | "
             "process); overrides the spec's ansible.execution_node.",
    )(func)
