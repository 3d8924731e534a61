"""The one exception root: every known failure carries an exit code and a hint."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes of the CLI contract (README.md, "Commands"; docs/spec.md, "Errors")."""

    OK = 0
    DEPLOY_FAILED = 1  # the deploy failed and what it switched was rolled back
    USAGE = 2  # usage error, invalid spec or inventory, lock held
    ROLLBACK_INCOMPLETE = 3  # a rollback did not complete: manual action needed
    INTERNAL = 4
    INTERRUPTED = 130  # SIGINT (Ctrl-C) or SIGTERM: stopped; run the same command again to resume


class Oxzep7Error(Exception):
    """A failure we know how to explain: one line of what, plus a hint of what to do next."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(Oxzep7Error):
    exit_code = ExitCode.USAGE


class SpecError(Oxzep7Error):
    """The spec cannot be loaded or is invalid; `problems` holds every error found."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, problems: tuple[str, ...] = (), hint: str | None = None):
        super().__init__(message, hint)
        self.problems = problems


class SpecRuleError(UsageError):
    """A rule of the spec that only the inventory can break (stages that shrink on its targets, a
    build host it lacks or of another platform): `path` is where in the spec, for the file, line
    and column the command points at."""

    def __init__(self, message: str, path: tuple[str | int, ...], hint: str | None = None):
        super().__init__(message, hint)
        self.path = path


class InventoryError(Oxzep7Error):
    exit_code = ExitCode.USAGE


class LockHeldError(Oxzep7Error):
    exit_code = ExitCode.USAGE


class DeployFailed(Oxzep7Error):
    exit_code = ExitCode.DEPLOY_FAILED


class RollbackIncomplete(Oxzep7Error):
    exit_code = ExitCode.ROLLBACK_INCOMPLETE
