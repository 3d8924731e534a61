"""The runner interface the engine depends on; real and fake implementations follow it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from oxzep7_deploy.runner.request import RunRequest, RunResult

EventHandler = Callable[[Mapping[str, Any]], None]


class Runner(Protocol):
    def run(
        self, request: RunRequest, data_dir: Path, on_event: EventHandler | None = None
    ) -> RunResult:
        """Run one batch with `data_dir` as its private data directory (kept for replay)."""
        ...
