"""The one error boundary: known errors become a line and a hint, unknown ones a crash log."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar, overload

import click

from oxzep7_deploy.cli.output import emit_json, fail_line, silence
from oxzep7_deploy.errors import ExitCode, Oxzep7Error, SpecError
from oxzep7_deploy.records import default_root
from oxzep7_deploy.runner.ansible_config import control_path_dir
from oxzep7_deploy.runner.procs import stop_marked

F = TypeVar("F", bound=Callable[..., Any])

# What a shell reports for a command stopped by a signal (128 + the signal's number).
BROKEN_PIPE = 141  # SIGPIPE: the reader of stdout closed the pipe
INTERRUPTED = int(ExitCode.INTERRUPTED)


def records_root() -> Path:
    """Where this controller keeps its records: `.oxzep7/` in the working directory."""
    return default_root()


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


@overload
def error_boundary(func: F) -> F: ...


@overload
def error_boundary(*, read_only: bool = False) -> Callable[[F], F]: ...


def error_boundary(func: F | None = None, *, read_only: bool = False) -> Any:
    """Run a command; turn every failure into the exit codes of SPEC.md, never a traceback.

    `@error_boundary(read_only=True)` is for commands that change nothing anywhere (validate,
    plan, init, schema): Ctrl-C there stops them plainly, with nothing to resume or roll back.
    """
    if func is None:
        return functools.partial(error_boundary, read_only=read_only)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _sigterm_interrupts():
                return _run(func, args, kwargs, read_only)
        except BrokenPipeError:  # the reader of stdout went away (`| head`): nothing is wrong
            silence(sys.stdout)
            raise SystemExit(BROKEN_PIPE) from None
        finally:
            _end_of_command()

    return wrapper


def _end_of_command() -> None:
    """Nothing of ours outlives the command: the ssh masters its runs left (ControlPersist) are
    stopped and their directory, this command's own, removed."""
    with _signals_ignored():
        stop_marked()
        shutil.rmtree(control_path_dir(), ignore_errors=True)


def _raise_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """While a command runs, SIGTERM stops it as Ctrl-C does (by default Python would die at
    once: no record, Ansible's processes left running, exit 143)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(func: Callable[..., Any], args: Any, kwargs: dict[str, Any], read_only: bool) -> Any:
    as_json = bool(kwargs.get("as_json"))
    try:
        return func(*args, **kwargs)
    except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise
    except BrokenPipeError:
        # what the CLI writes itself falls silent on a closed pipe and goes on (output.py,
        # progress.py); this is output written some other way, cut short: not a crash either
        raise
    except SpecError as exc:
        report(exc, as_json, problems=list(exc.problems))
        raise SystemExit(int(exc.exit_code)) from None
    except Oxzep7Error as exc:
        report(exc, as_json)
        raise SystemExit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        _interrupted(as_json, read_only)
    except Exception as exc:
        _internal_error(exc, as_json)


def _interrupted(as_json: bool, read_only: bool) -> NoReturn:
    """Ctrl-C or SIGTERM: stop whatever Ansible still runs for us, say so, exit 130."""
    with _signals_ignored():  # a second Ctrl-C must not cut the cleanup short
        # a run cancelled inside the runner is stopped already; this catches the ssh masters
        # of earlier runs, and anything left when the signal came between two runs
        stop_marked()
        # not exit 1: nothing was rolled back. Hosts switched and confirmed stay so; a switch
        # not yet confirmed is reverted by that host's dead-man
        hint = None if read_only else "run the same command again to resume it, or `rollback`"
        try:
            if as_json:
                emit_json({"ok": False, "error": "interrupted", "hint": hint, "exit_code": INTERRUPTED})
            else:
                fail_line("interrupted", hint)
        except BrokenPipeError:
            silence(sys.stdout)
    raise SystemExit(INTERRUPTED) from None


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _internal_error(exc: BaseException, as_json: bool) -> NoReturn:
    log = write_crash_log(exc)
    message = f"internal error: {type(exc).__name__}: {exc}"
    hint = f"the traceback is in {log}; please report it"
    try:
        if as_json:
            emit_json({"ok": False, "error": message, "hint": hint, "exit_code": 4})
        else:
            fail_line(message, hint)
    except BrokenPipeError:
        pass
    raise SystemExit(int(ExitCode.INTERNAL)) from None


class JsonCommand(click.Command):
    """A command whose usage errors (a missing argument, a bad option) honour `--json` too.

    click reports those before the command runs, on stderr only; with `--json` the caller
    reads stdout, so it gets the same JSON document as for every other error.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        wants_json = "--json" in args
        try:
            _refuse_check(self, args)
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if not wants_json:
                raise
            emit_json({
                "ok": False,
                "error": exc.format_message(),
                "hint": f"`{ctx.command_path} --help` shows the arguments and options",
                "exit_code": int(ExitCode.USAGE),
            })
            raise click.exceptions.Exit(int(ExitCode.USAGE)) from None


NO_CHECK = "oxzep7-deploy has no --check: use `oxzep7-deploy plan` to see what would change"


def _refuse_check(command: click.Command, args: list[str]) -> None:
    """Ansible's `--check` (dry run) is `plan` here: say so, not click's "no such option"."""
    options = args[:args.index("--")] if "--" in args else args
    if "--check" in options and not any("--check" in p.opts for p in command.params):
        raise click.UsageError(NO_CHECK)


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
