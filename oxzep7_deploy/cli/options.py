"""Options every command shares."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout, nothing else."
    )(func)


def inventory_option(func: F) -> F:
    return click.option(
        "-i", "--inventory", "inventory", required=True, multiple=True, metavar="INVENTORY",
        help="Ansible inventory: a file, a directory, or 'h1,h2,' (repeatable).",
    )(func)


def yes_option(func: F) -> F:
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(func)


def verbose_option(func: F) -> F:
    return click.option("-v", "--verbose", count=True, help="Show Ansible's own output too.")(func)


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
