"""The runner seam: the `Runner` protocol every caller depends on, and the factory that makes one.

Callers never construct a runner: the composition root (`oxzep7_deploy.cli.runners`) builds one
`RunnerFactory` from the command's options and passes it down. Another implementation (e.g.
ansible-runner's transmit/worker on an execution node) is a class with this `run` and a factory
that returns it; nothing below the CLI changes.
"""

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


class RunnerFactory(Protocol):
    def __call__(self, *, become: bool = True) -> Runner:
        """A runner for one deploy or operation; `become: False` (ansible.become in the spec)
        runs every play without privilege escalation."""
        ...
