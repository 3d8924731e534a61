"""The `host` fixture: a temp host with an initial hand-made release; `bare`: one without."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.agent.hosts import Host


@pytest.fixture
def host(tmp_path: Path) -> Host:
    h = Host(tmp_path)
    h.initial()
    return h


@pytest.fixture
def bare(tmp_path: Path) -> Host:
    """A host where the app has a root but no `current` at all (nothing to adopt)."""
    return Host(tmp_path)
