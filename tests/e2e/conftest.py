"""End-to-end wiring: everything under tests/e2e is `e2e`; the sample app on the module's fleet."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fleet.harness import Fleet
from tests.fleet.sample_app import SampleApp, install_sample_app

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def sample_app(fleet: Fleet) -> SampleApp:
    """The sample app on every host of the module's fleet: /srv/sample, :8000, healthy on 3.11."""
    return install_sample_app(fleet)
