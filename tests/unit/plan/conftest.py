"""Hermetic records: `plan` reads this controller's deploy records, so each test has its own."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_records(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    records: Path = tmp_path_factory.mktemp("records")
    monkeypatch.setenv("OXZEP7_RECORDS", str(records))
