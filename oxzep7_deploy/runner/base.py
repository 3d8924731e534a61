"""The runner seam: the `Runner` protocol every caller depends on, and the factory that makes one.

Callers never construct a runner: the composition root (`oxzep7_deploy.cli.runners`) builds one
`RunnerFactory` from the command's options and passes it down. Two implementations: the local
`runner.ansible.AnsibleRunner`, and `runner.remote.RemoteRunner`, which runs each batch on an
execution node (ansible-runner transmit | worker | process); nothing below the CLI tells them apart.
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
