"""End to end: the `package` method from a local apt repository the test serves to the hosts.

The package is what a vendor would ship: `oxzep7-python3.13` (a .deb built here from the source
build's artifact) puts the interpreter tree in /opt/oxzep7/python/3.13.5 and links
/usr/bin/python3.13 to it, beside the system python3. The repository is flat and unsigned
(`[trusted=yes]`), served over HTTP on the fleet's bridge address, the only place hosts reach.
"""

from __future__ import annotations

import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from oxzep7_deploy.artifacts import Artifact
from oxzep7_deploy.spec.model import (
    Application,
    Install,
    Interpreter,
    PackageInstall,
    Spec,
)
from oxzep7_deploy.steps.interpreter import InterpreterOutcome
from tests.fleet import build
from tests.fleet.build import PREFIX, VERSION, Built
from tests.fleet.harness import Fleet

pytestmark = pytest.mark.e2e

PACKAGE = "oxzep7-python3.13"
PORT = 8047
DEPENDS = "libc6, libssl3, libsqlite3-0, libffi8, liblzma5, libbz2-1.0, zlib1g, libreadline8, libuuid1"


def make_spec(install: Install) -> Spec:
    return Spec(name="interp-package", targets="all",
                interpreter=Interpreter(version=VERSION, prefix=PREFIX, install=install),
                application=Application(name="app", root="/srv/app"))


def install(fleet: Fleet, spec: Spec, work: Path, hosts: list[str]) -> InterpreterOutcome:
    return build.install(fleet, spec, work, hosts)


def build_deb(artifact: Artifact, repo: Path, work: Path) -> Path:
    root = work / "pkgroot"
    tree = root / PREFIX.lstrip("/")
    tree.mkdir(parents=True)
    with tarfile.open(artifact.path) as tar:
        tar.extractall(tree, filter="tar")
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "python3.13").symlink_to(f"{PREFIX}/bin/python3.13")
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(
        f"Package: {PACKAGE}\nVersion: {VERSION}-1\nArchitecture: amd64\n"
        "Maintainer: oxzep7 tests <tests@example.invalid>\n"
        f"Depends: {DEPENDS}\nSection: python\nPriority: optional\n"
        f"Description: CPython {VERSION} in {PREFIX}, with /usr/bin/python3.13\n")
    deb = repo / f"{PACKAGE}_{VERSION}-1_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "-b", str(root), str(deb)],
                   check=True, capture_output=True)
    packages = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo, check=True,
                              capture_output=True, text=True).stdout
    (repo / "Packages").write_text(packages)
    return deb


@dataclass
class Repo:
    line: str
    log: Path

    def requests(self) -> int:
        return sum(1 for ln in self.log.read_text().splitlines() if '"GET ' in ln)


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(3)  # no compiler: the package is made from the session build's artifact


@pytest.fixture(scope="module")
def repo(fleet: Fleet, cpython_build: Built,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    work = tmp_path_factory.mktemp("package")
    folder = work / "repo"
    folder.mkdir()
    build_deb(cpython_build.artifact(), folder, work)
    address = f"198.18.{fleet.net}.1"
    log = work / "http.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            fleet.in_bridge(["python3", "-m", "http.server", "--bind", address, str(PORT),
                             "--directory", str(folder)]), stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(50):
            if fleet.run_on("h1", f"curl -sf http://{address}:{PORT}/Packages -o /dev/null"
                            ).returncode == 0:
                break
            time.sleep(0.1)
        yield Repo(f"deb [trusted=yes] http://{address}:{PORT}/ ./", log)
    finally:
        server.terminate()
        server.wait(timeout=10)


def python3_fingerprint(fleet: Fleet, host: str) -> str:
    return fleet.sh(host, "readlink -f /usr/bin/python3; sha256sum /usr/bin/python3.11;"
                          " /usr/bin/python3 --version; ls -l /usr/bin/python3")


@pytest.mark.slow
def test_package_installs_beside_the_system_python_and_a_second_run_changes_nothing(
        fleet: Fleet, repo: Repo, tmp_path: Path) -> None:
    hosts = ["h1", "h2"]
    before = {h: python3_fingerprint(fleet, h) for h in hosts}
    spec = make_spec(PackageInstall(name=PACKAGE, executable="/usr/bin/python3.13",
                                    repository=repo.line))
    out = install(fleet, spec, tmp_path / "first", hosts)
    assert out.ok, out.problems()
    assert dict(out.actions) == {"h1": "installed", "h2": "installed"}
    for host in hosts:
        assert out.hosts[host].result["verify"]["ok"]
        assert fleet.sh(host, "python3.13 -c 'import platform; print(platform.python_version())'"
                        ).strip() == VERSION
        assert "install ok installed" in fleet.sh(host, f"dpkg -s {PACKAGE}")
        assert python3_fingerprint(fleet, host) == before[host]
        assert "Python 3.11." in before[host]
    served = repo.requests()
    again = install(fleet, spec, tmp_path / "again", hosts)
    assert again.ok and again.changed_total() == 0, again.problems()
    assert repo.requests() == served  # nothing missing: no index refresh, no download


def test_a_package_missing_from_the_repository_is_refused(fleet: Fleet, repo: Repo,
                                                          tmp_path: Path) -> None:
    spec = make_spec(PackageInstall(name="oxzep7-python3.99", executable="/usr/bin/python3.99",
                                    repository=repo.line))
    out = install(fleet, spec, tmp_path, ["h2"])
    assert not out.ok
    message = out.hosts["h2"].message or ""
    assert "apt-get install oxzep7-python3.99 failed on h2" in message
    assert "Unable to locate package oxzep7-python3.99" in message


def test_a_package_that_is_the_system_python_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    spec = make_spec(PackageInstall(name="python3", executable="/usr/bin/python3"))
    out = install(fleet, spec, tmp_path, ["h2"])
    assert not out.ok
    assert "must not touch the system python3" in (out.hosts["h2"].message or "")
