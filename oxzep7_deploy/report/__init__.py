"""`report`: a deploy's records drawn as one self-contained HTML page (model, page, style)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.records import write_bytes_atomic
from oxzep7_deploy.report.model import find_record, load_view
from oxzep7_deploy.report.page import render_page


@dataclass(frozen=True)
class WrittenReport:
    path: Path
    deploy: str
    release: str
    outcome: str


def write_report(root: Path, name: str, release: str | None, out: Path | None) -> WrittenReport:
    """Render the deploy `name` (its `release`, else the latest) from the records under `root`;
    write it to `out`, by default `report.html` beside the deploy's records."""
    record = find_record(root, name, release)
    view = load_view(record)
    path = out if out is not None else record.dir / "report.html"
    if path.is_dir():
        raise UsageError(f"-o {path}: is a directory", hint="give a file name, e.g. "
                         f"{path / f'{name}-{record.release}.html'}")
    try:
        write_bytes_atomic(path, render_page(view).encode())
    except OSError as exc:
        raise UsageError(f"cannot write the report to {path}: {exc.strerror or exc}",
                         hint="choose a writable place with -o FILE") from exc
    return WrittenReport(path, record.name, record.release, view.outcome)
