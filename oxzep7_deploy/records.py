"""The controller's records of each deploy: `.oxzep7/deploys/<name>/<release>/`.

    meta.json      spec and inventory paths, owner, started
    plan.json      the plan, exactly as `plan --json` prints it; resume, promote and abort run it
    spec.yaml      the spec file's bytes as applied (its digest is in the release id)
    progress.json  how far the deploy came (rewritten atomically after every step)
    runs/NNN-step/ one ansible-runner private data directory per batch, kept for replay; its
                   artifacts/<ident>/job_events/ hold every Ansible event of that batch
    report.json    the final report
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import socket
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from oxzep7_deploy import rules
from oxzep7_deploy.engine_model import Progress
from oxzep7_deploy.errors import UsageError


def default_root() -> Path:
    """Where this controller keeps its records: `.oxzep7/` in the working directory, or
    OXZEP7_RECORDS."""
    return Path(os.environ.get("OXZEP7_RECORDS", ".oxzep7"))


# Records of read-only commands (status, history, audit): the newest KEEP are kept, and none
# older than MAX_AGE days; deploy, rollback and unlock records are never pruned.
KEEP_READS_VAR = "OXZEP7_KEEP_READS"
READS_DAYS_VAR = "OXZEP7_KEEP_READS_DAYS"
KEEP_READS = 20
READS_DAYS = 7.0


def read_bounds(env: Mapping[str, str] | None = None) -> tuple[int, float]:
    """(count, days) kept of read-only commands' records: OXZEP7_KEEP_READS (default 20) and
    OXZEP7_KEEP_READS_DAYS (default 7); a value that is not a number is the default."""
    env = os.environ if env is None else env

    def number(name: str, default: float) -> float:
        try:
            value = float(env.get(name, default))
        except ValueError:
            return default
        return value if value >= 0 else default

    return int(number(KEEP_READS_VAR, KEEP_READS)), number(READS_DAYS_VAR, READS_DAYS)


def prune_reads(runs: Iterable[Path], keep: int | None = None, days: float | None = None,
                now: float | None = None) -> list[Path]:
    """Remove the records of read-only runs beyond the newest `keep` or older than `days`
    (the newest one always stays: it is the run just made); returns what was removed."""
    default_keep, default_days = read_bounds()
    keep = default_keep if keep is None else keep
    days = default_days if days is None else days
    now = time.time() if now is None else now
    found = []
    for path in runs:
        with contextlib.suppress(OSError):
            found.append((path.stat().st_mtime, path))
    found.sort(reverse=True)
    removed = []
    for n, (mtime, path) in enumerate(found):
        if n == 0:
            continue
        if n >= max(keep, 1) or now - mtime > days * 86400:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def owner() -> str:
    """`user@controller:directory`, for locks and history: the directory whose records drive the
    deploy (two operators on one controller, or one in two directories, are two owners)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    root = default_root().resolve()
    return f"{user}@{socket.gethostname()}:{root.parent if root.name == '.oxzep7' else root}"


def write_json_atomic(path: Path, document: Any) -> None:
    """Write JSON so a reader never sees half a file: temp file, fsync, rename."""
    write_bytes_atomic(path, (json.dumps(document, indent=2, default=str) + "\n").encode())


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write a file so a reader never sees half of it (the shared rule: oxzep7_deploy/rules.py)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rules.write_bytes_atomic(path, data)


class DeployRecord:
    """One deploy's folder of records."""

    def __init__(self, root: Path, name: str, release: str) -> None:
        self.dir = root / "deploys" / name / release
        self.name = name
        self.release = release
        self._counter = len(list((self.dir / "runs").glob("*"))) if (self.dir / "runs").exists() else 0

    def exists(self) -> bool:
        return (self.dir / "progress.json").exists()

    def start(self, meta: dict[str, Any], plan: dict[str, Any], spec: bytes | None = None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if spec is not None:
            write_bytes_atomic(self.dir / "spec.yaml", spec)
        write_json_atomic(self.dir / "meta.json", meta)
        write_json_atomic(self.dir / "plan.json", plan)

    def discard_unstarted(self) -> None:
        """Remove this folder if no step of the deploy ever ran (no progress.json), and the
        folders above it that this leaves empty; a started deploy keeps its records."""
        if self.exists():
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        with contextlib.suppress(OSError):  # other releases or deploys are there
            self.dir.parent.rmdir()  # deploys/<name>
            self.dir.parent.parent.rmdir()  # deploys

    def damaged(self, file: str, what: str, reason: object, next_step: str) -> UsageError:
        """The error for one of these records that cannot be read: `file` in this deploy's folder,
        `what` it holds; the hint says the records are damaged and what to do instead."""
        return UsageError(
            f"{self.dir / file}: {what} of deploy {self.name} (release {self.release}) cannot be "
            f"read: {reason}",
            hint=f"the records of this deploy are damaged; check the file, or {next_step}",
        )

    def plan_document(self) -> Any:
        """plan.json as written (`Plan.from_json` reads it)."""
        return json.loads((self.dir / "plan.json").read_text())

    def spec_bytes(self) -> bytes | None:
        """The spec as applied, or None for a record written before the copy was kept."""
        try:
            return (self.dir / "spec.yaml").read_bytes()
        except FileNotFoundError:
            return None

    def meta(self) -> dict[str, Any]:
        return dict(json.loads((self.dir / "meta.json").read_text()))

    def load_progress(self) -> Progress:
        return Progress.from_json(json.loads((self.dir / "progress.json").read_text()))

    def save_progress(self, progress: Progress) -> None:
        write_json_atomic(self.dir / "progress.json", progress.to_json())

    def save_report(self, report: dict[str, Any]) -> None:
        write_json_atomic(self.dir / "report.json", report)

    def run_dir(self, step: str) -> Path:
        """A fresh private data directory for one batch."""
        self._counter += 1
        path = self.dir / "runs" / f"{self._counter:03d}-{step}"
        path.mkdir(parents=True, exist_ok=True)
        return path


def find_deploys(root: Path, name: str) -> list[DeployRecord]:
    """Every recorded deploy of spec `name`, oldest first."""
    base = root / "deploys" / name
    if not base.is_dir():
        return []
    found = [DeployRecord(root, name, d.name) for d in base.iterdir() if (d / "progress.json").exists()]
    return sorted(found, key=lambda r: (r.dir / "progress.json").stat().st_mtime)
