"""Everything the CLI writes: one JSON document with --json, words and tables without."""

from __future__ import annotations

import json
import sys
from typing import Any

import click


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
