"""Options every command shares."""

from __future__ import annotations

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
