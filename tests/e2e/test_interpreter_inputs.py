"""End to end: the `existing` method, and bad inputs refused with a clear message, nothing installed."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from oxzep7_deploy.artifacts import ArtifactError, ChecksumMismatch
from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.runner import RunRequest
from oxzep7_deploy.runner.ansible import AnsibleRunner
from oxzep7_deploy.spec.model import (
    Application,
    ExistingInstall,
    Install,
    Interpreter,
    PrebuiltInstall,
    SourceInstall,
    Spec,
)
from oxzep7_deploy.steps.interpreter import InterpreterOutcome, install_interpreter
from tests.fleet.harness import Fleet

pytestmark = pytest.mark.e2e

PREFIX = "/opt/oxzep7/python/3.13.5"
NOTHING_HERE = "test -e /opt/oxzep7 || test -e /var/tmp/oxzep7-build || test -e /var/tmp/oxzep7-artifacts"


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(1)


@pytest.fixture
def clean(fleet: Fleet) -> Fleet:
    fleet.sh("h1", "rm -rf /opt/oxzep7 /var/tmp/oxzep7-build /var/tmp/oxzep7-artifacts")
    return fleet


def make_spec(install: Install, version: str = "3.13.5") -> Spec:
    return Spec(name="interp-inputs", targets="all",
                interpreter=Interpreter(version=version, prefix=PREFIX, install=install),
                application=Application(name="app", root="/srv/app"))


def install(fleet: Fleet, spec: Spec, work: Path) -> InterpreterOutcome:
    runner = AnsibleRunner(fleet.ansible_env(work))
    return install_interpreter(spec, str(fleet.inventory), ["h1"], runner, work / "run",
                               work / "cache")


def tarball(path: Path, files: dict[str, bytes], mode: str = "w:gz") -> tuple[Path, str]:
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def system_python311(fleet: Fleet) -> str:
    return fleet.sh("h1", "python3.11 -c 'import platform; print(platform.python_version())'").strip()


# ---- existing ----

def test_existing_interpreter_of_the_exact_version_passes(fleet: Fleet, tmp_path: Path) -> None:
    version = system_python311(fleet)
    out = install(fleet, make_spec(ExistingInstall("/usr/bin/python3.11"), version), tmp_path)
    assert out.ok, out.problems()
    assert dict(out.actions) == {"h1": "verified"} and out.changed_total() == 0
    assert out.hosts["h1"].result["verify"]["version"] == version


def test_existing_interpreter_that_is_missing_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    out = install(fleet, make_spec(ExistingInstall("/opt/none/bin/python3.13")), tmp_path)
    assert not out.ok
    assert out.hosts["h1"].message == "no interpreter at /opt/none/bin/python3.13 on h1"


def test_existing_interpreter_of_another_version_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    out = install(fleet, make_spec(ExistingInstall("/usr/bin/python3.11"), "3.11.99"), tmp_path)
    assert not out.ok
    assert f"it reports version {system_python311(fleet)}, not 3.11.99" in (
        out.hosts["h1"].message or "")


# ---- refused on the controller, before any host is touched ----

def assert_untouched(fleet: Fleet, work: Path) -> None:
    assert not (work / "run").exists()  # not one playbook ran
    assert fleet.run_on("h1", NOTHING_HERE).returncode != 0


def test_a_wrong_sha256_is_refused_before_any_build(clean: Fleet, tmp_path: Path) -> None:
    src, actual = tarball(tmp_path / "Python-3.13.5.tar.xz", {"Python-3.13.5/configure": b""}, "w:xz")
    spec = make_spec(SourceInstall(url=str(src), sha256="ab" * 32))
    with pytest.raises(ChecksumMismatch) as err:
        install(clean, spec, tmp_path)
    assert err.value.message == (f"checksum mismatch for {src}: expected sha256 {'ab' * 32}, "
                                 f"got {actual}")
    assert_untouched(clean, tmp_path)


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("where", ["missing-path", "unreachable-url"])
def test_a_missing_or_unreachable_url_is_refused(clean: Fleet, tmp_path: Path, where: str) -> None:
    url = (str(tmp_path / "Python-3.13.5.tar.xz") if where == "missing-path"
           else f"http://127.0.0.1:{free_loopback_port()}/Python-3.13.5.tar.xz")
    with pytest.raises(ArtifactError) as err:
        install(clean, make_spec(SourceInstall(url=url, sha256="ab" * 32)), tmp_path)
    expected = "does not exist on the controller" if where == "missing-path" else "Connection refused"
    assert url in err.value.message and expected in err.value.message, err.value.message
    assert_untouched(clean, tmp_path)


def test_a_tarball_that_is_not_cpython_is_refused(clean: Fleet, tmp_path: Path) -> None:
    src, digest = tarball(tmp_path / "Python-3.13.5.tar.xz", {
        "leftpad-1.0/configure": b"#!/bin/sh\n", "leftpad-1.0/setup.py": b""}, "w:xz")
    with pytest.raises(ArtifactError, match="is not a CPython source tarball"):
        install(clean, make_spec(SourceInstall(url=str(src), sha256=digest)), tmp_path)
    assert_untouched(clean, tmp_path)


def test_a_prefix_under_usr_is_refused(clean: Fleet, tmp_path: Path) -> None:
    src, digest = tarball(tmp_path / "py.tar.gz", {"bin/python3.13": b""})
    spec = make_spec(PrebuiltInstall(url=str(src), sha256=digest))
    spec = Spec(name=spec.name, targets=spec.targets, application=spec.application,
                interpreter=Interpreter("3.13.5", "/usr/lib/python3.13", spec.interpreter.install))
    with pytest.raises(UsageError, match="must not be under /usr"):
        install(clean, spec, tmp_path)
    assert_untouched(clean, tmp_path)


# ---- refused on the host: the roles check again ----

def run_playbook(fleet: Fleet, work: Path, extravars: dict[str, Any],
                 hosts: Sequence[str] = ("h1",)) -> Any:
    request = RunRequest("interpreter.yml", str(fleet.inventory), tuple(hosts),
                         MappingProxyType({"oxzep7_interp_version": "3.13.5",
                                           "oxzep7_interp_method": "prebuilt", **extravars}))
    return AnsibleRunner(fleet.ansible_env(work)).run(request, work / "run")


@pytest.mark.parametrize("prefix", ["/usr/lib/python3.13", "/", "/opt/../usr/python"])
def test_the_role_refuses_a_system_prefix_itself(clean: Fleet, tmp_path: Path, prefix: str) -> None:
    result = run_playbook(clean, tmp_path, {"oxzep7_interp_action": "probe",
                                            "oxzep7_interp_prefix": prefix})
    host = result.hosts["h1"]
    assert not host.ok and (host.message or "").startswith(f"refused prefix {prefix}:")


def test_a_shipped_archive_is_checked_on_arrival(clean: Fleet, tmp_path: Path) -> None:
    src, digest = tarball(tmp_path / "py.tar.gz", {"bin/python3.13": b"#!/bin/sh\n"})
    shipping = {"h1": {"key": "k" * 24, "path": str(src), "sha256": "0" * 64}}
    result = run_playbook(clean, tmp_path, {"oxzep7_interp_action": "ship",
                                            "oxzep7_interp_prefix": PREFIX,
                                            "oxzep7_interp_artifacts": shipping})
    message = result.hosts["h1"].message or ""
    assert not result.ok and "checksum mismatch on arrival" in message and digest in message
    assert clean.sh("h1", "ls -A /var/tmp/oxzep7-artifacts; test ! -e " + PREFIX) == ""


def test_a_prefix_someone_else_installed_is_not_replaced(clean: Fleet, tmp_path: Path) -> None:
    clean.sh("h1", f"mkdir -p {PREFIX}/bin && echo mine > {PREFIX}/bin/python3.13")
    src, digest = tarball(tmp_path / "py.tar.gz", {"bin/python3.13": b"#!/bin/sh\n"})
    out = install(clean, make_spec(PrebuiltInstall(url=str(src), sha256=digest)), tmp_path)
    assert not out.ok
    assert "was not installed by oxzep7-deploy: refusing to replace it" in (
        out.hosts["h1"].message or "")
    assert clean.sh("h1", f"cat {PREFIX}/bin/python3.13").strip() == "mine"
    assert clean.run_on("h1", "test -e /var/tmp/oxzep7-artifacts").returncode != 0  # not shipped
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["interpreter-01-probe"]

