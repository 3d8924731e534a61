"""The records of read-only commands (status, history, audit) are kept within a bound: a count
and an age, OXZEP7_KEEP_READS and OXZEP7_KEEP_READS_DAYS; deploy records are never pruned."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from oxzep7_deploy.fleet_ops import select_target
from oxzep7_deploy.records import prune_reads, read_bounds
from tests.fakes import FakeHosts


def runs(root: Path, n: int, step: float = 3600.0) -> list[Path]:
    now = time.time()
    made = []
    for i in range(n):
        path = root / f"run{i:02d}"
        path.mkdir(parents=True)
        (path / "x").write_text("x")
        os.utime(path, (now - (n - i) * step, now - (n - i) * step))
        made.append(path)
    return made


def test_keeps_the_newest_within_count_and_age(tmp_path: Path) -> None:
    made = runs(tmp_path, 10)  # one an hour, the newest one hour old
    removed = prune_reads(made, keep=4, days=365)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"run{i:02d}" for i in range(6, 10)]
    assert len(removed) == 6
    prune_reads(list(tmp_path.iterdir()), keep=100, days=2.5 / 24)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run08", "run09"]
    prune_reads(list(tmp_path.iterdir()), keep=0, days=0)
    assert [p.name for p in tmp_path.iterdir()] == ["run09"], "the run just made stays"


def test_bounds_from_the_environment() -> None:
    assert read_bounds({}) == (20, 7.0)
    assert read_bounds({"OXZEP7_KEEP_READS": "3", "OXZEP7_KEEP_READS_DAYS": "0.5"}) == (3, 0.5)
    assert read_bounds({"OXZEP7_KEEP_READS": "many"}) == (20, 7.0)


def test_status_records_are_bounded_rollback_records_are_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OXZEP7_KEEP_READS", "3")
    inv = tmp_path / "inv.ini"
    inv.write_text("h1\n")
    for _ in range(6):
        select_target((str(inv),), "app", None, tmp_path / "rec", "status", FakeHosts())
        select_target((str(inv),), "app", None, tmp_path / "rec", "rollback", FakeHosts()
                      ).run_dir("rollback")
        time.sleep(0.01)
    names = [p.name for p in (tmp_path / "rec" / "ops" / "app").iterdir()]
    assert sum("-status-" in n for n in names) == 3
    assert sum("-rollback-" in n for n in names) == 6
