"""The benchmarks load: each bench/ script imports what it uses from the package and the tests."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCH.glob("*.py")))
def test_bench_script_imports(name: str) -> None:
    importlib.import_module(f"bench.{name}")
