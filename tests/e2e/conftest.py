"""End-to-end wiring: everything under tests/e2e is `e2e`; the sample app on the module's fleet;
the session's one CPython build (see tests/fleet/build.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxzep7_deploy.artifacts import ArtifactCache
from tests.conftest import CPythonTarball
from tests.fleet import build
from tests.fleet.harness import Fleet, FleetError
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


@pytest.fixture(scope="session")
def build_fleet(fleet_ready: None) -> Iterator[Fleet]:
    """The session build's fleet: h1 has a compiler, h2 and h3 have none. Up for the session."""
    fleet = Fleet.allocate().up(3, build_hosts=["h1"])
    yield fleet
    try:
        fleet.down()
    except FleetError as exc:
        pytest.fail(f"build fleet teardown failed: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def cpython_build(build_fleet: Fleet, cpython_tarball: CPythonTarball,
                  tmp_path_factory: pytest.TempPathFactory) -> build.Built:
    """CPython 3.13.5 built once for the session (on h1, the build_host, outside the targets h2
    and h3), its artifact in the run's private tool cache. Fails when the build fails."""
    fleet = build_fleet
    before = {h: build.python3_fingerprint(fleet, h) for h in fleet.hosts}
    started = time.monotonic()
    spec = build.source_spec(cpython_tarball.path, cpython_tarball.sha256, build_host="h1")
    outcome = build.install(fleet, spec, tmp_path_factory.mktemp("cpython-build"),
                            list(build.BUILD_TARGETS))
    seconds = time.monotonic() - started
    assert outcome.ok, f"the session's CPython build failed: {outcome.problems()}"
    markers = {h: fleet.sh(h, f"cat {build.PREFIX}/.oxzep7-artifact.json || true")
               for h in fleet.hosts}
    key = json.loads(markers["h2"])["key"]
    assert ArtifactCache(build.tool_cache()).lookup(key) is not None, \
        "the session's CPython build left no artifact in the tool cache"
    return build.Built(outcome, fleet, cpython_tarball.path, cpython_tarball.sha256, seconds,
                       before, markers, build.tool_cache())
