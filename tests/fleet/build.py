"""The test session's one CPython 3.13.5 build, and the tool cache that holds its artifact.

Every e2e module that needs 3.13.5 on its hosts depends on the `cpython_build` session fixture
(tests/e2e/conftest.py): it compiles once, on h1 of a session fleet as the spec's build_host
outside the targets h2 and h3, into the tool cache private to this test run. Later modules get
the artifact from that cache (shipped, never compiled again), in whatever order they run.

The cache is private to the run (OXZ_TOOL_CACHE, set by tests/conftest.py), so nothing the demo
or an earlier run left can stand in for it. Setting OXZ_TOOL_CACHE yourself to a folder that
already holds the build reuses it (the build test is then skipped): for working on later tests.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from oxzep7_deploy.artifacts import Artifact, ArtifactCache
from oxzep7_deploy.runner.ansible import AnsibleRunner
from oxzep7_deploy.spec.model import Application, Install, Interpreter, SourceInstall, Spec
from oxzep7_deploy.steps.interpreter import InterpreterOutcome, install_interpreter
from tests.fleet.harness import CACHE_DIR, Fleet

VERSION = "3.13.5"
PREFIX = f"/opt/oxzep7/python/{VERSION}"
EXE = f"{PREFIX}/bin/python3.13"
# fast flags for tests (about a third of a default build); shared, to prove the rpath
CONFIGURE = ("--enable-shared", "--disable-test-modules", "OPT=-O0 -g0")
BUILD_TARGETS = ("h2", "h3")  # the session build: h1 is the build_host, outside these targets


def tool_cache() -> Path:
    """The tool's artifact cache: the test run's private one (OXZ_TOOL_CACHE), else the demo's."""
    return Path(os.environ.get("OXZ_TOOL_CACHE") or CACHE_DIR / "demo-tool")


def make_spec(install: Install, prefix: str = PREFIX) -> Spec:
    return Spec(name="interp-e2e", targets="all",
                interpreter=Interpreter(version=VERSION, prefix=prefix, install=install),
                application=Application(name="app", root="/srv/app"))


def source_spec(path: Path, sha256: str, prefix: str = PREFIX, build_host: str | None = None,
                configure: Sequence[str] = CONFIGURE) -> Spec:
    return make_spec(SourceInstall(url=str(path), sha256=sha256, configure=tuple(configure),
                                   build_host=build_host), prefix)


def install(fleet: Fleet, spec: Spec, work: Path, hosts: Sequence[str] | None = None,
            cache: Path | None = None) -> InterpreterOutcome:
    """The tool's interpreter step on `hosts` (default: all) of `fleet`, as apply runs it."""
    work.mkdir(parents=True, exist_ok=True)
    runner = AnsibleRunner(fleet.ansible_env(work))
    return install_interpreter(spec, str(fleet.inventory), hosts or fleet.hosts, runner,
                               work / "run", cache or tool_cache())


def python3_fingerprint(fleet: Fleet, host: str) -> str:
    """The system python3: where /usr/bin/python3 points, its checksum, its version."""
    return fleet.sh(host, "readlink -f /usr/bin/python3; sha256sum \"$(readlink -f /usr/bin/python3)\";"
                          " sha256sum /usr/bin/python3; /usr/bin/python3 --version")


def interpreter_runs(fleet: Fleet, host: str, exe: str = EXE) -> str | None:
    """The version `exe` reports on `host`, or None when it is not there or does not run."""
    proc = fleet.run_on(host, f"{exe} -c 'import platform; print(platform.python_version())'")
    return proc.stdout.strip() if proc.returncode == 0 else None


@dataclass(frozen=True)
class Built:
    """The session's build: what the install reported, on which fleet, into which cache."""

    outcome: InterpreterOutcome
    fleet: Fleet
    source: Path
    sha256: str
    seconds: float
    python3_before: dict[str, str]
    markers: dict[str, str]
    cache: Path

    def artifact(self) -> Artifact:
        """The build's artifact, from the tool cache (checked against its checksum)."""
        key = json.loads(self.markers["h2"])["key"]
        found = ArtifactCache(self.cache).lookup(key)
        assert found is not None, f"the session's build left no artifact in {self.cache}"
        return found
