"""Everything the CLI writes: one JSON document with --json, words and tables without."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from oxzep7_deploy.errors import UsageError


def emit_json(document: Any) -> None:
    """One JSON document on stdout, nothing else there."""
    click.echo(json.dumps(document, indent=2, sort_keys=False, default=str))


def say(text: str = "", err: bool = False) -> None:
    click.echo(text, err=err)


def fail_line(message: str, hint: str | None) -> None:
    """A known error: one line of what, one of what to do next, on stderr."""
    click.secho(f"error: {message}", fg="red", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)


def is_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def confirm(question: str, yes: bool) -> None:
    """Ask on a terminal (never with --yes, never when stdin or stdout is not one).

    "n" is an error the boundary reports like any other (a JSON document with --json): the
    caller has changed nothing yet, and says so.
    """
    if yes or not is_terminal():
        return
    if not click.confirm(question, default=False, err=True):
        raise UsageError("aborted; nothing done",
                         hint="answer y to go ahead, or pass --yes to skip the question")
