"""The one error boundary: known errors become a line and a hint, unknown ones a crash log."""

from __future__ import annotations

import datetime as dt
import functools
import os
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from oxzep7_deploy.cli.output import emit_json, fail_line
from oxzep7_deploy.errors import ExitCode, Oxzep7Error, SpecError

F = TypeVar("F", bound=Callable[..., Any])


def records_root() -> Path:
    """Where this controller keeps its records: `.oxzep7/` in the working directory."""
    return Path(os.environ.get("OXZEP7_RECORDS", ".oxzep7"))


def write_crash_log(exc: BaseException) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for folder in (records_root() / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"oxzep7-internal-error-{stamp}.txt"
            path.write_text(text)
            return path
        except OSError:
            continue
    return Path("(not written)")


def error_boundary(func: F) -> F:
    """Run a command; turn every failure into the exit codes of SPEC.md, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return func(*args, **kwargs)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except SpecError as exc:
            report(exc, as_json, problems=list(exc.problems))
            raise SystemExit(int(exc.exit_code)) from None
        except Oxzep7Error as exc:
            report(exc, as_json)
            raise SystemExit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            fail_line("interrupted", "run the same command again to resume, or `rollback`")
            raise SystemExit(int(ExitCode.DEPLOY_FAILED)) from None
        except Exception as exc:
            log = write_crash_log(exc)
            message = f"internal error: {type(exc).__name__}: {exc}"
            hint = f"the traceback is in {log}; please report it"
            if as_json:
                emit_json({"ok": False, "error": message, "hint": hint, "exit_code": 4})
            else:
                fail_line(message, hint)
            raise SystemExit(int(ExitCode.INTERNAL)) from None

    return wrapper  # type: ignore[return-value]


def report(exc: Oxzep7Error, as_json: bool, problems: list[str] | None = None) -> None:
    if as_json:
        doc: dict[str, Any] = {
            "ok": False,
            "error": exc.message,
            "hint": exc.hint,
            "exit_code": int(exc.exit_code),
        }
        if problems:
            doc["problems"] = problems
        emit_json(doc)
        return
    for line in problems or []:
        click.echo(line, err=True)
    fail_line(exc.message, exc.hint)
