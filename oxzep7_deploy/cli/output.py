"""Everything the CLI writes: one JSON document with --json, words and tables without.

A reader that goes away (`| head`) silences what it read, nothing more: the command goes on
and its exit code says how it ended (see progress.py for the tables and progress lines).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import sys
from typing import Any

import click

from oxzep7_deploy.errors import UsageError


def emit_json(document: Any) -> None:
    """One JSON document on stdout, nothing else there."""
    _echo(json.dumps(document, indent=2, sort_keys=False, default=str), err=False)


def say(text: str = "", err: bool = False) -> None:
    _echo(text, err=err)


def fail_line(message: str, hint: str | None) -> None:
    """A known error: one line of what, one of what to do next, on stderr."""
    _echo(click.style(f"error: {message}", fg="red"), err=True)
    if hint:
        _echo(f"hint: {hint}", err=True)


def _echo(text: str, err: bool) -> None:
    try:
        click.echo(text, err=err)
    except BrokenPipeError:
        silence(sys.stderr if err else sys.stdout)


def silence(stream: object) -> None:
    """Point a closed stream's file at /dev/null, so that what is still buffered and Python's
    last flush at exit go nowhere instead of failing again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())  # type: ignore[attr-defined]
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass


def is_terminal() -> bool:
    """Whether a person can answer a question: stdin is a terminal (the question goes to
    stderr, so `| tee log` or `--json > out` on a terminal still asks)."""
    return sys.stdin.isatty()


def read_secret(prompt: str) -> str:
    """A secret typed once: without echo on a terminal, else the first line of stdin (as
    `ansible-playbook -K` reads it). The prompt goes to stderr; the secret is never written."""
    if sys.stdin.isatty():
        try:
            return getpass.getpass(prompt, stream=sys.stderr)
        except EOFError:
            pass
    else:
        with contextlib.suppress(BrokenPipeError):
            click.echo(prompt, err=True, nl=False)
        line = sys.stdin.readline()
        if line:
            return line[:-1] if line.endswith("\n") else line
    raise UsageError("-K/--ask-become-pass: no password was given (stdin ended)",
                     hint="type the become (sudo) password when asked, or pipe it on stdin; or "
                          "set ansible_become_password in the inventory or a vault instead of -K")


def confirm(question: str, yes: bool) -> None:
    """Ask on a terminal (never with --yes, never when stdin is not one).

    "n" is an error the boundary reports like any other (a JSON document with --json): the
    caller has changed nothing yet, and says so.
    """
    if yes or not is_terminal():
        return
    if not click.confirm(question, default=False, err=True):
        raise UsageError("aborted; nothing done",
                         hint="answer y to go ahead, or pass --yes to skip the question")
