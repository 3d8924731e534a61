"""Suite-wide wiring: when `e2e` tests skip or fail, the fleet fixtures, the CPython source.

`e2e` tests need root and podman (the fleet's setup installs podman with apt). Where they cannot
run they are skipped with the reason, unless OXZ_REQUIRE_FLEET=1 (CI, tests/run.sh): then they
fail, loudly, instead.

Fixtures:
    fleet            a fresh 3-host fleet for the module, torn down after it
    fleet_factory    fleet_factory(n=3, build_hosts=(), noisy_hosts=()) -> Fleet: more fleets for the module
    cpython_tarball  CPythonTarball(path, sha256, version) of Python-3.13.5 (cached, session)

OXZ_REVERSE_MODULES=1 runs the test modules in reverse order.

The tool's artifact cache is private to the run: OXZ_TOOL_CACHE names a fresh folder, removed at
the end, unless it was set before the run (to reuse a build on purpose). tests/e2e/conftest.py
has the session's one CPython build in it (`cpython_build`).

At the end of the session nothing of the fleets it started (through these fixtures or `Fleet.up`)
may remain (containers, namespaces, mounts, processes): a leftover fails the session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, NoReturn

import pytest

from tests.fleet import harness
from tests.fleet.harness import Fleet

REQUIRE_FLEET = os.environ.get("OXZ_REQUIRE_FLEET") == "1"


_PRIVATE_CACHE: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    """A tool cache of this run's own: nothing an earlier run or the demo cached is seen."""
    if not os.environ.get("OXZ_TOOL_CACHE"):
        path = Path(tempfile.mkdtemp(prefix="oxzep7-tool-cache-", dir="/var/tmp"))
        _PRIVATE_CACHE.append(path)
        os.environ["OXZ_TOOL_CACHE"] = str(path)


def pytest_unconfigure(config: pytest.Config) -> None:
    for path in _PRIVATE_CACHE:
        shutil.rmtree(path, ignore_errors=True)
        if os.environ.get("OXZ_TOOL_CACHE") == str(path):
            del os.environ["OXZ_TOOL_CACHE"]
    _PRIVATE_CACHE.clear()


def fleet_unavailable() -> str | None:
    """Why e2e tests cannot run here, or None."""
    why = harness.missing_prerequisite()
    if why is None and shutil.which("podman") is None and not REQUIRE_FLEET:
        why = ("podman is not installed (run `bash tests/setup.sh`, or set OXZ_REQUIRE_FLEET=1"
               " to let the tests set it up)")
    return why


def unavailable(why: str) -> NoReturn:
    """Skip, or fail when the fleet is required (OXZ_REQUIRE_FLEET=1)."""
    if REQUIRE_FLEET:
        pytest.fail(f"OXZ_REQUIRE_FLEET=1 but {why}", pytrace=False)
    pytest.skip(why)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """OXZ_REVERSE_MODULES=1: run the modules in reverse order (each module's tests in their own
    order), to show that no module depends on what an earlier one left behind."""
    if os.environ.get("OXZ_REVERSE_MODULES") != "1":
        return
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(str(item.path), []).append(item)
    items[:] = [item for path in reversed(modules) for item in modules[path]]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("e2e") is not None:
        why = fleet_unavailable()
        if why:
            unavailable(why)


@pytest.fixture(scope="session")
def fleet_ready() -> None:
    """The fleet's packages, podman configuration and host image (idempotent; first run ~75 s)."""
    why = fleet_unavailable()
    if why:
        unavailable(why)
    try:
        harness.setup()
    except harness.FleetError as exc:
        unavailable(f"the fleet's setup failed: {exc}")


@pytest.fixture(scope="module")
def fleet_factory(fleet_ready: None) -> Iterator[Callable[..., Fleet]]:
    """Makes fleets for this module, each with its own name and net; all go down after it."""
    made: list[Fleet] = []

    def make(n: int = 3, build_hosts: Sequence[str] = (), noisy_hosts: Sequence[str] = ()) -> Fleet:
        fleet = Fleet.allocate()
        made.append(fleet)
        return fleet.up(n, build_hosts=build_hosts, noisy_hosts=noisy_hosts)

    yield make
    errors = []
    for fleet in made:
        try:
            fleet.down()
        except harness.FleetError as exc:
            errors.append(str(exc))
    if errors:
        pytest.fail("fleet teardown failed:\n" + "\n".join(errors), pytrace=False)


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    """A fresh fleet of 3 hosts for this module."""
    return fleet_factory(3)


class CPythonTarball(NamedTuple):
    path: Path
    sha256: str
    version: str


@pytest.fixture(scope="session")
def cpython_tarball() -> CPythonTarball:
    """Upstream Python-3.13.5.tar.xz from Debian's source packages, fetched once and cached."""
    script = harness.FLEET_SH.with_name("cpython.sh")
    proc = subprocess.run(["bash", str(script), "python3.13"], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        unavailable(f"tests/fleet/cpython.sh failed: {proc.stderr.strip()}")
    path = Path(proc.stdout.strip().splitlines()[-1])
    sha256 = Path(f"{path}.sha256").read_text().split()[0]
    return CPythonTarball(path, sha256, path.name.removeprefix("Python-").removesuffix(".tar.xz"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session when anything of a fleet it started (fixture or not) remains."""
    leftovers = [(f, found) for f in harness.STARTED if (found := f.leftovers())]
    if not leftovers:
        return
    for fleet, _ in leftovers:  # clean up for the next session, but still fail this one
        with contextlib.suppress(harness.FleetError):
            fleet.down()
    lines = [f"  {f.name}: {item}" for f, found in leftovers for item in found]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "fleet leftovers", red=True)
        reporter.write_line("\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
