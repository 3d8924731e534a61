"""The controller's archive cache and the pure helpers of the interpreter install."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import socket
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest

from oxzep7_deploy.artifacts import (
    ArtifactCache,
    ArtifactError,
    ChecksumMismatch,
    LocalArchive,
    artifact_key,
    check_cpython_source,
    check_prebuilt_archive,
    fetch_archive,
    sha256_file,
    unpacked_bytes,
)
from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.plan.model import BuildStep
from oxzep7_deploy.runner import HostResult, HostStatus, RunRequest
from oxzep7_deploy.spec.model import (
    Application,
    BuildMode,
    Interpreter,
    SourceInstall,
    Spec,
)
from oxzep7_deploy.steps.interpreter import (
    BuildRecord,
    InterpreterOutcome,
    configure_args,
    install_interpreter,
    prefix_problem,
)
from tests.fakes import FakeHosts


def make_tar(path: Path, files: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def cpython_tarball(path: Path, version: str = "3.13.5") -> Path:
    top = f"Python-{version}"
    return make_tar(path, {
        f"{top}/configure": b"#!/bin/sh\n",
        f"{top}/README.rst": b"This is Python\n",
        f"{top}/Include/patchlevel.h": f'#define PY_VERSION "{version}"\n'.encode(),
    }, "w:xz")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """An HTTP server on loopback serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **k: object) -> None:
            super().__init__(*a, directory=str(root), **k)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


# ---- fetch_archive ----

def test_a_local_archive_is_used_in_place_when_its_checksum_matches(tmp_path: Path) -> None:
    src = cpython_tarball(tmp_path / "Python-3.13.5.tar.xz")
    got = fetch_archive(str(src), sha(src).upper(), tmp_path / "cache")
    assert got.path == src and got.sha256 == sha(src)
    assert not (tmp_path / "cache").exists()


def test_a_wrong_checksum_names_expected_and_actual(tmp_path: Path) -> None:
    src = cpython_tarball(tmp_path / "Python-3.13.5.tar.xz")
    with pytest.raises(ChecksumMismatch) as err:
        fetch_archive(str(src), "0" * 64, tmp_path / "cache")
    assert "0" * 64 in err.value.message and sha(src) in err.value.message
    assert err.value.hint and "nothing was installed" in err.value.hint


def test_a_missing_local_archive_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist on the controller"):
        fetch_archive(str(tmp_path / "nope.tar.xz"), "0" * 64, tmp_path / "cache")


@pytest.mark.parametrize("url", ["Python-3.13.5.tar.xz", "ftp://example.invalid/x.tar.xz"])
def test_a_relative_path_or_other_scheme_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ArtifactError, match="http\\(s\\) URL or an absolute path"):
        fetch_archive(url, "0" * 64, tmp_path / "cache")


def test_a_download_is_cached_and_reused(tmp_path: Path, server: str) -> None:
    src = cpython_tarball(tmp_path / "www" / "Python-3.13.5.tar.xz")
    digest = sha(src)
    first = fetch_archive(f"{server}/Python-3.13.5.tar.xz", digest, tmp_path / "cache")
    assert first.path == tmp_path / "cache" / "downloads" / digest / "Python-3.13.5.tar.xz"
    src.unlink()  # the second fetch must not need the server's file
    assert fetch_archive(f"{server}/Python-3.13.5.tar.xz", digest, tmp_path / "cache") == first


def test_a_downloaded_file_with_the_wrong_checksum_is_not_kept(tmp_path: Path, server: str) -> None:
    cpython_tarball(tmp_path / "www" / "Python-3.13.5.tar.xz")
    with pytest.raises(ChecksumMismatch):
        fetch_archive(f"{server}/Python-3.13.5.tar.xz", "1" * 64, tmp_path / "cache")
    assert list((tmp_path / "cache" / "downloads").rglob("*.tar.xz")) == []


def test_a_missing_url_is_refused(tmp_path: Path, server: str) -> None:
    with pytest.raises(ArtifactError, match=r"cannot download .*: HTTP 404"):
        fetch_archive(f"{server}/Python-9.9.9.tar.xz", "0" * 64, tmp_path / "cache")
    assert list((tmp_path / "cache").rglob("*.part-*")) == []


def test_an_unreachable_url_is_refused(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ArtifactError, match=r"cannot download .*refused"):
        fetch_archive(f"http://127.0.0.1:{port}/Python-3.13.5.tar.xz", "0" * 64,
                      tmp_path / "cache", timeout=5)


# ---- what an archive holds ----

def local(path: Path) -> LocalArchive:
    return LocalArchive(path, sha(path), str(path))


def test_the_cpython_source_of_the_version_passes_and_is_remembered(tmp_path: Path) -> None:
    src = local(cpython_tarball(tmp_path / "Python-3.13.5.tar.xz"))
    check_cpython_source(src, "3.13.5", tmp_path / "cache")
    assert (tmp_path / "cache" / "checked" / f"{src.sha256}.cpython-3.13.5").exists()


def test_a_tarball_that_is_not_cpython_is_refused(tmp_path: Path) -> None:
    bogus = local(make_tar(tmp_path / "Python-3.13.5.tar.xz",
                           {"leftpad-1.0/setup.py": b"", "leftpad-1.0/configure": b""}, "w:xz"))
    with pytest.raises(ArtifactError, match="is not a CPython source tarball"):
        check_cpython_source(bogus, "3.13.5", tmp_path / "cache")


def test_a_file_that_is_not_a_tarball_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "Python-3.13.5.tar.xz"
    junk.write_bytes(b"<html>404</html>")
    with pytest.raises(ArtifactError, match="is not a CPython source tarball"):
        check_cpython_source(local(junk), "3.13.5", tmp_path / "cache")


def test_the_source_of_another_version_is_refused(tmp_path: Path) -> None:
    src = local(cpython_tarball(tmp_path / "Python-3.12.0.tar.xz", "3.12.0"))
    with pytest.raises(ArtifactError, match=r"source of CPython 3\.12\.0, not 3\.13\.5"):
        check_cpython_source(src, "3.13.5", tmp_path / "cache")


@pytest.mark.parametrize("top", ["", "python/"])
def test_a_prebuilt_tree_plain_or_standalone_layout_passes(tmp_path: Path, top: str) -> None:
    tree = make_tar(tmp_path / "py.tar.gz", {f"{top}bin/python3.13": b"", f"{top}lib/x": b""})
    check_prebuilt_archive(local(tree), "3.13")


def test_a_prebuilt_archive_without_the_interpreter_is_refused(tmp_path: Path) -> None:
    tree = make_tar(tmp_path / "py.tar.gz", {"python/bin/python3.12": b""})
    with pytest.raises(ArtifactError, match=r"holds no bin/python3\.13"):
        check_prebuilt_archive(local(tree), "3.13")


# ---- keys and the cache ----

def test_the_key_changes_with_every_input() -> None:
    base = ("3.13.5", ("--enable-shared",), "debian-12-x86_64", "a" * 64, "/opt/py")
    keys = {artifact_key(*base)}
    for i, other in enumerate(["3.13.6", ("--enable-shared", "--with-lto"), "debian-12-aarch64",
                               "b" * 64, "/opt/py2"]):
        changed = list(base)
        changed[i] = other
        keys.add(artifact_key(*changed))  # type: ignore[arg-type]
    assert len(keys) == 6
    assert artifact_key(*base) == artifact_key(*base)


def test_the_cache_keeps_a_checked_artifact_and_notices_corruption(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    fetched = cache.incoming / "cpython-x.tar.gz"
    fetched.write_bytes(b"tree")
    stored = cache.store(fetched, "k1", sha256_file(fetched), {"platform": "p"})
    assert not fetched.exists()
    found = cache.lookup("k1")
    assert found is not None and found.path == stored.path and found.meta["platform"] == "p"
    stored.path.write_bytes(b"TREE")  # same size, other bytes
    assert cache.lookup("k1") is None
    assert cache.lookup("nothing") is None


def test_the_cache_refuses_a_fetched_file_that_differs_from_the_build_hosts(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    fetched = cache.incoming / "cpython-x.tar.gz"
    fetched.write_bytes(b"tree")
    with pytest.raises(ChecksumMismatch, match="fetched from the build host"):
        cache.store(fetched, "k1", "0" * 64, {})
    assert cache.lookup("k1") is None and not fetched.exists()


# ---- planning the builds ----

PLATFORMS = {"h1": "debian-12-x86_64", "h2": "debian-12-x86_64", "h3": "rocky-9-x86_64",
             "h4": "debian-12-x86_64", "h5": "rocky-9-x86_64"}


def spec_with(install: SourceInstall, prefix: str = "/opt/oxzep7/python/3.13.5") -> Spec:
    return Spec(name="t", targets="all",
                interpreter=Interpreter(version="3.13.5", prefix=prefix, install=install),
                application=Application(name="a", root="/srv/a"))


def test_configure_gets_the_prefix_and_an_rpath_for_a_shared_build() -> None:
    interp = spec_with(SourceInstall(url="/x", sha256="0" * 64)).interpreter
    assert configure_args(interp, ["--with-lto"]) == (
        "--prefix=/opt/oxzep7/python/3.13.5", "--with-lto")
    assert configure_args(interp, ["--enable-shared"])[-1] == (
        "LDFLAGS=-Wl,-rpath,/opt/oxzep7/python/3.13.5/lib")
    assert configure_args(interp, ["--enable-shared", "LDFLAGS=-L/x"])[-1] == (
        "LDFLAGS=-L/x -Wl,-rpath,/opt/oxzep7/python/3.13.5/lib")


def test_configure_must_not_set_the_prefix() -> None:
    interp = spec_with(SourceInstall(url="/x", sha256="0" * 64)).interpreter
    with pytest.raises(UsageError, match="must not set --prefix"):
        configure_args(interp, ["--prefix=/usr"])


@pytest.mark.parametrize("prefix,ok", [
    ("/opt/oxzep7/python/3.13.5", True),
    ("/usr/local/python3.13", True),
    ("/", False),
    ("/usr", False),
    ("/usr/lib/python3.13", False),
    ("/usr/local", False),
    ("/opt", False),
    ("/opt/../usr/python", False),
    ("opt/python", False),
])
def test_prefixes_that_would_touch_the_system_are_refused(prefix: str, ok: bool) -> None:
    assert (prefix_problem(prefix) is None) is ok


def test_the_outcome_reports_per_host_what_happened_as_json() -> None:
    hosts = {"h1": HostResult("h1", HostStatus.CHANGED, 12),
             "h2": HostResult("h2", HostStatus.FAILED, 0, "Stage the tree", "no space left")}
    out = InterpreterOutcome(hosts, {"h1": "built", "h2": "failed"},
                             builds=(BuildRecord("debian-12-x86_64", "h1", "k", True, 61.04),))
    doc = json.loads(json.dumps(out.to_json()))
    assert doc["hosts"]["h2"] == {"action": "failed", "status": "failed", "changed": 0,
                                  "failed_task": "Stage the tree", "message": "no space left"}
    assert doc["builds"][0]["seconds"] == 61.0 and doc["builds"][0]["artifact"] is None
    assert not out.ok and out.failed_hosts() == ("h2",)
    assert out.problems() == ("h2: Stage the tree: no space left",)


# ---- orchestration, with a scripted runner (the e2e tests are the evidence that it works) ----

class ScriptedRunner(FakeHosts):
    """Hosts that answer interpreter.yml runs the way they would: probe markers, builds, ships."""

    def __init__(self, platforms: dict[str, str], markers: dict[str, str] | None = None,
                 failing_build: bool = False, unreachable: tuple[str, ...] = (),
                 broken: tuple[str, ...] = ()) -> None:
        down = dict.fromkeys(unreachable, "ssh: connect to host box port 22: No route to host")
        super().__init__({"interpreter.yml": self.interpreter}, unreachable=down)
        self.platforms, self.markers, self.failing_build = platforms, markers or {}, failing_build
        self.broken = broken  # hosts whose marked tree no longer starts (removed by hand)

    def interpreter(self, request: RunRequest, host: str) -> HostResult:
        action = request.extravars["oxzep7_interp_action"]
        result: dict[str, object] = {"action": action}
        status = HostStatus.CHANGED
        if action == "probe":
            status = HostStatus.OK
            key = self.markers.get(host)
            result.update(platform=self.platforms[host], marker={"key": key} if key else None,
                          starts=bool(key) and host not in self.broken)
        elif action == "build" and self.failing_build:
            return HostResult(host, HostStatus.FAILED, 3, "Make", "cc1: out of memory")
        elif action == "build" and request.extravars["oxzep7_interp_pack"]:
            name = request.extravars["oxzep7_interp_artifacts"][host]["name"]
            fetched = Path(request.extravars["oxzep7_interp_fetch_dir"]) / name
            fetched.write_bytes(f"tree built on {host}".encode())
            result["artifact"] = {"name": name, "sha256": sha256_file(fetched)}
        return HostResult(host, status, 0 if status is HostStatus.OK else 5, None, None,
                          MappingProxyType(result))


def source_run(tmp_path: Path, runner: ScriptedRunner, hosts: list[str],
               build: BuildMode = BuildMode.ONCE_PER_PLATFORM, build_host: str | None = None,
               plan: tuple[BuildStep, ...] | None = None) -> InterpreterOutcome:
    src = cpython_tarball(tmp_path / "Python-3.13.5.tar.xz")
    spec = spec_with(SourceInstall(url=str(src), sha256=sha(src), build=build,
                                   build_host=build_host))
    return install_interpreter(spec, "inv", hosts, runner, tmp_path / "run", tmp_path / "cache",
                               plan)


def actions_of(runner: ScriptedRunner) -> list[tuple[str, tuple[str, ...]]]:
    return [(r.extravars["oxzep7_interp_action"], r.limit) for r in runner.requests]


def test_one_build_per_platform_then_ship_then_nothing(tmp_path: Path) -> None:
    runner = ScriptedRunner(PLATFORMS)
    hosts = ["h1", "h2", "h3", "h4", "h5"]
    out = source_run(tmp_path, runner, hosts)
    assert actions_of(runner) == [("probe", tuple(hosts)), ("build", ("h1", "h3")),
                                  ("ship", ("h2", "h4", "h5"))]
    assert dict(out.actions) == {"h1": "built", "h2": "shipped", "h3": "built", "h4": "shipped",
                                 "h5": "shipped"}
    shipped = runner.requests[2].extravars["oxzep7_interp_artifacts"]
    assert shipped["h2"]["path"] == shipped["h4"]["path"] != shipped["h5"]["path"]
    # a later batch of the same deploy: the cache has both artifacts, nothing compiles
    later = ScriptedRunner(PLATFORMS)
    source_run(tmp_path, later, ["h4", "h5"])
    assert actions_of(later) == [("probe", ("h4", "h5")), ("ship", ("h4", "h5"))]


def test_hosts_with_the_marker_do_nothing(tmp_path: Path) -> None:
    first = ScriptedRunner(PLATFORMS)
    source_run(tmp_path, first, ["h1", "h2"])
    key = first.requests[1].extravars["oxzep7_interp_artifacts"]["h1"]["key"]
    again = ScriptedRunner(PLATFORMS, markers={"h1": key, "h2": key})
    out = source_run(tmp_path, again, ["h1", "h2"])
    assert actions_of(again) == [("probe", ("h1", "h2"))]
    assert set(out.present) == {"h1", "h2"} and out.changed_total() == 0


def test_a_marked_tree_that_does_not_start_is_shipped_again_from_the_cache(tmp_path: Path
                                                                         ) -> None:
    first = ScriptedRunner(PLATFORMS)
    source_run(tmp_path, first, ["h1", "h2"])  # h1 built, h2 shipped; the cache has the artifact
    key = first.requests[1].extravars["oxzep7_interp_artifacts"]["h1"]["key"]
    # the build host's tree was removed since, its marker left behind: it is no installed tree
    again = ScriptedRunner(PLATFORMS, markers={"h1": key, "h2": key}, broken=("h1",))
    out = source_run(tmp_path, again, ["h1", "h2"])
    assert actions_of(again) == [("probe", ("h1", "h2")), ("ship", ("h1",))]
    assert dict(out.actions) == {"h1": "shipped", "h2": "present"}


def test_a_failed_build_fails_its_platform_with_the_reason(tmp_path: Path) -> None:
    runner = ScriptedRunner(PLATFORMS, failing_build=True)
    out = source_run(tmp_path, runner, ["h1", "h2"])
    assert actions_of(runner) == [("probe", ("h1", "h2")), ("build", ("h1",))]
    assert out.failed_hosts() == ("h1", "h2")
    assert out.hosts["h2"].message == ("not installed: no artifact for debian-12-x86_64: "
                                       "the build on h1 failed: cc1: out of memory")


def test_on_each_host_compiles_everywhere_and_ships_nothing(tmp_path: Path) -> None:
    runner = ScriptedRunner(PLATFORMS)
    out = source_run(tmp_path, runner, ["h1", "h2"], BuildMode.ON_EACH_HOST)
    assert actions_of(runner) == [("probe", ("h1", "h2")), ("build", ("h1", "h2"))]
    assert runner.requests[1].extravars["oxzep7_interp_pack"] is False
    assert dict(out.actions) == {"h1": "built", "h2": "built"}


# ---- a build host outside the targets (a build box) ----

BOX_PLATFORMS = {**PLATFORMS, "box": "debian-12-x86_64"}


def test_a_build_box_compiles_ships_to_every_target_of_its_platform_and_is_no_target(
        tmp_path: Path) -> None:
    runner = ScriptedRunner(BOX_PLATFORMS)
    out = source_run(tmp_path, runner, ["h1", "h2", "h3"], build_host="box")
    assert actions_of(runner) == [("probe", ("h1", "h2", "h3", "box")),  # its platform: facts
                                  ("build", ("box", "h3")), ("ship", ("h1", "h2"))]
    assert dict(out.actions) == {"h1": "shipped", "h2": "shipped", "h3": "built"}
    assert list(out.hosts) == ["h1", "h2", "h3"]  # what the engine gets: targets only
    assert [(b.platform, b.host, b.ok) for b in out.builds] == [
        ("debian-12-x86_64", "box", True), ("rocky-9-x86_64", "h3", True)]
    shipped = runner.requests[2].extravars["oxzep7_interp_artifacts"]
    key = runner.requests[1].extravars["oxzep7_interp_artifacts"]["box"]["key"]
    assert shipped["h1"]["key"] == shipped["h2"]["key"] == key
    assert shipped["h1"]["marker"]["built_on"] == "box"
    assert Path(shipped["h1"]["path"]).read_bytes() == b"tree built on box"


def test_a_later_batch_ships_from_the_cache_without_touching_the_build_box(
        tmp_path: Path) -> None:
    source_run(tmp_path, ScriptedRunner(BOX_PLATFORMS), ["h1"], build_host="box")
    later = ScriptedRunner(BOX_PLATFORMS, unreachable=("box",))  # the cache has the artifact
    plan = (BuildStep(DEBIAN, "box", ("h1", "h2", "h4"), "build-and-ship"),)
    out = source_run(tmp_path, later, ["h2", "h4"], build_host="box", plan=plan)
    assert actions_of(later) == [("probe", ("h2", "h4")), ("ship", ("h2", "h4"))]  # plan's platform
    assert dict(out.actions) == {"h2": "shipped", "h4": "shipped"} and out.ok


def test_a_build_box_that_does_not_answer_fails_the_hosts_that_need_a_build(
        tmp_path: Path) -> None:
    runner = ScriptedRunner(BOX_PLATFORMS, unreachable=("box",))
    out = source_run(tmp_path, runner, ["h1", "h2"], build_host="box")
    assert actions_of(runner) == [("probe", ("h1", "h2", "box"))]
    assert list(out.hosts) == ["h1", "h2"] and out.failed_hosts() == ("h1", "h2")
    assert out.hosts["h1"].message == (
        "not installed: no artifact for debian-12-x86_64, and build_host box did not answer the "
        "probe: ssh: connect to host box port 22: No route to host")


def test_without_a_plan_a_build_box_of_no_host_platform_is_refused_as_plan_does(
        tmp_path: Path) -> None:
    runner = ScriptedRunner({**PLATFORMS, "box": "rocky-9-x86_64"})
    with pytest.raises(UsageError, match="build_host 'box' is rocky-9-x86_64, and no target host "
                                         "is: the targets are debian-12-x86_64"):
        source_run(tmp_path, runner, ["h1", "h2"], build_host="box")
    assert actions_of(runner) == [("probe", ("h1", "h2", "box"))]


# ---- the plan's build steps: the install carries them out, it does not choose again ----

DEBIAN, ROCKY = "debian-12-x86_64", "rocky-9-x86_64"
PLAN = (BuildStep(DEBIAN, "h1", ("h1", "h2", "h4"), "build-and-ship"),
        BuildStep(ROCKY, "h3", ("h3", "h5"), "build-and-ship"))


def test_a_later_wave_is_built_on_the_plans_build_hosts_not_on_its_own_first_hosts(
        tmp_path: Path) -> None:
    runner = ScriptedRunner(PLATFORMS)  # an empty cache: the artifacts must be built
    out = source_run(tmp_path, runner, ["h4", "h5"], plan=PLAN)
    assert actions_of(runner) == [("probe", ("h4", "h5")), ("build", ("h1", "h3")),
                                  ("ship", ("h4", "h5"))]
    assert dict(out.actions) == {"h4": "shipped", "h5": "shipped"} and out.ok
    assert [(b.platform, b.host) for b in out.builds] == [(DEBIAN, "h1"), (ROCKY, "h3")]


def test_the_plans_build_host_outside_the_batch_is_not_probed_again(tmp_path: Path) -> None:
    plan = (BuildStep(DEBIAN, "box", ("h1", "h2"), "build-and-ship"),)
    runner = ScriptedRunner(BOX_PLATFORMS)
    out = source_run(tmp_path, runner, ["h1", "h2"], build_host="box", plan=plan)
    assert actions_of(runner) == [("probe", ("h1", "h2")), ("build", ("box",)),
                                  ("ship", ("h1", "h2"))]
    assert dict(out.actions) == {"h1": "shipped", "h2": "shipped"}


def test_a_host_whose_platform_is_not_the_planned_one_gets_no_tree(tmp_path: Path) -> None:
    runner = ScriptedRunner({**PLATFORMS, "h2": ROCKY})  # reinstalled since the plan was made
    out = source_run(tmp_path, runner, ["h1", "h2"], plan=PLAN)
    assert actions_of(runner) == [("probe", ("h1", "h2")), ("build", ("h1",))]
    assert dict(out.actions) == {"h1": "built", "h2": "failed"}
    assert out.hosts["h2"].message == (
        f"not installed: the plan builds this host's interpreter for {DEBIAN} on h1, and this "
        f"host is {ROCKY}; plan the deploy again (abort it, then apply)")


def test_a_group_planned_without_facts_builds_on_its_planned_host_for_that_hosts_platform(
        tmp_path: Path) -> None:
    plan = (BuildStep("unknown", "box", ("h1", "h2"), "build-and-ship"),)
    runner = ScriptedRunner(BOX_PLATFORMS)
    out = source_run(tmp_path, runner, ["h1", "h2"], build_host="box", plan=plan)
    assert actions_of(runner) == [("probe", ("h1", "h2", "box")), ("build", ("box",)),
                                  ("ship", ("h1", "h2"))]
    assert dict(out.platforms) == {"h1": DEBIAN, "h2": DEBIAN, "box": DEBIAN} and out.ok


# ---- the space a tree takes unpacked ----


def test_the_manifest_records_the_unpacked_size_in_disk_blocks(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "tree.tar.gz", {"bin/python3.13": b"x" * 5000,
                                                  "lib/libpython.so": b"y" * 10,
                                                  "lib/empty": b""})
    assert unpacked_bytes(archive) == (2 + 1 + 1) * 4096  # 5000 B: two blocks; an empty file one
    fetched = tmp_path / "cpython-3.13.5-x-key.tar.gz"
    fetched.write_bytes(archive.read_bytes())
    cache = ArtifactCache(tmp_path / "cache")
    stored = cache.store(fetched, "key", sha(archive), {"version": "3.13.5"})
    manifest = json.loads((tmp_path / "cache" / "artifacts" / "key.json").read_text())
    assert manifest["unpacked_bytes"] == 4 * 4096 == stored.unpacked_bytes
    assert unpacked_bytes(tmp_path / "cache" / "artifacts" / "key.json") == 0, "not a tar: unknown"
