"""Live progress on stderr; the report tables on stdout (with --json, only the JSON is there).

A reader that goes away (`apply 2>&1 | head`) silences what it read, nothing more: the deploy
goes on and its exit code says how it ended.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from oxzep7_deploy.engine_model import ProgressEvent

_STYLE = {"phase": "bold cyan", "batch": "cyan", "gate": "yellow", "rollback": "bold red",
          "done": "bold green", "host": "red"}


class PipeSafeConsole(Console):
    """A console that falls silent when its reader closes the pipe.

    rich's own answer is SystemExit(1), which in the middle of a deploy would leave hosts
    switched and locked and tell the shell "rolled back".
    """

    def print(self, *objects: Any, **kwargs: Any) -> None:
        try:
            super().print(*objects, **kwargs)
        except BrokenPipeError:  # where rich lets it through
            self.on_broken_pipe()

    def on_broken_pipe(self) -> None:
        self.quiet = True
        try:  # what is still buffered goes nowhere, so Python's last flush at exit cannot fail
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.file.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass


class ProgressPrinter:
    """Prints each engine event as one line; quiet when --json is on."""

    def __init__(self, quiet: bool = False) -> None:
        self.console = _console(stderr=True)  # progress
        self.out = _console(stderr=False)  # the report: tables go where `> file` and `| grep` look
        self.quiet = quiet

    def __call__(self, event: ProgressEvent) -> None:
        if self.quiet:
            return
        mark = "✓" if event.ok else "✗"
        style = _STYLE.get(event.kind, "") if event.ok or event.kind != "done" else "bold red"
        if event.kind in ("phase", "gate", "done", "rollback"):
            self.console.print(f"[{style}]{mark if event.kind == 'done' else '▸'} "
                               f"{escape(event.message)}[/]")
        else:  # a message quotes hosts' output (e.g. "[CRITICAL] …"): never read as markup
            self.console.print(f"  [{style}]{'·' if event.ok else mark} {escape(event.message)}[/]")

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        if self.quiet:
            return
        table = Table(title=title, title_justify="left")
        for col in columns:
            table.add_column(col, overflow="fold")  # a long path or error is kept whole
        for row in rows:
            table.add_row(*("" if c is None else escape(str(c)) for c in row))
        self.out.print(table)

    def line(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text)


def _console(stderr: bool) -> Console:
    console = PipeSafeConsole(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = 120  # logs and CI: no terminal to fit, keep tables whole
    return console
