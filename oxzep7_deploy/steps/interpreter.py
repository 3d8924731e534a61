"""Get the spec's interpreter onto hosts: build once per platform and ship, or package, prebuilt, existing."""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from oxzep7_deploy.artifacts import (
    Artifact,
    ArtifactCache,
    ArtifactError,
    LocalArchive,
    artifact_key,
    artifact_name,
    check_cpython_source,
    check_prebuilt_archive,
    fetch_archive,
    prebuilt_key,
)
from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.runner import HostResult, HostStatus, Runner, RunRequest, RunResult
from oxzep7_deploy.runner.request import InventorySources, inventory_sources
from oxzep7_deploy.spec.model import (
    BuildMode,
    ExistingInstall,
    Interpreter,
    PackageInstall,
    PrebuiltInstall,
    SourceInstall,
    Spec,
)

PLAYBOOK = "interpreter.yml"


class HostAction:
    """What happened on a host, as `InterpreterOutcome.actions` names it."""

    BUILT = "built"  # compiled here, installed here, artifact fetched to the controller
    SHIPPED = "shipped"  # received an artifact (or a prebuilt archive) and installed it
    PRESENT = "present"  # the same tree was there already: nothing done
    INSTALLED = "installed"  # package method
    VERIFIED = "verified"  # existing method
    FAILED = "failed"


@dataclass(frozen=True)
class BuildStep:
    """One compile: on `host`, for `platform`; its artifact then goes to `ship_to`."""

    platform: str
    host: str
    ship_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildRecord:
    platform: str
    host: str
    key: str
    ok: bool
    seconds: float
    artifact: Artifact | None = None
    message: str | None = None


@dataclass(frozen=True)
class InterpreterOutcome:
    """Per host: the run's result and what happened; plus the builds and where time went."""

    hosts: Mapping[str, HostResult]
    actions: Mapping[str, str]
    platforms: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    builds: tuple[BuildRecord, ...] = ()
    timings: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.hosts.values())

    def hosts_where(self, action: str) -> tuple[str, ...]:
        return tuple(h for h, a in self.actions.items() if a == action)

    @property
    def shipped(self) -> tuple[str, ...]:
        return self.hosts_where(HostAction.SHIPPED)

    @property
    def present(self) -> tuple[str, ...]:
        return self.hosts_where(HostAction.PRESENT)

    def failed_hosts(self) -> tuple[str, ...]:
        return tuple(h for h, r in self.hosts.items() if not r.ok)

    def changed_total(self) -> int:
        return sum(r.changed for r in self.hosts.values())

    def to_json(self) -> dict[str, Any]:
        """For the deploy report: per host what happened, the builds, where time went."""
        return {
            "hosts": {h: {"action": self.actions.get(h), "status": r.status.value,
                          "changed": r.changed, "failed_task": r.failed_task,
                          "message": r.message} for h, r in self.hosts.items()},
            "platforms": dict(self.platforms),
            "builds": [{"platform": b.platform, "host": b.host, "key": b.key, "ok": b.ok,
                        "seconds": round(b.seconds, 1), "message": b.message,
                        "artifact": None if b.artifact is None else {
                            "path": str(b.artifact.path), "sha256": b.artifact.sha256,
                            "size": b.artifact.size}} for b in self.builds],
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
        }

    def problems(self) -> tuple[str, ...]:
        """One line per failed host: host, task, message."""
        return tuple(
            f"{h}: {r.failed_task or r.status.value}: {r.message or 'failed'}"
            for h, r in self.hosts.items()
            if not r.ok
        )


def prefix_problem(prefix: str) -> str | None:
    """Why an interpreter prefix is refused (the role asserts the same on the host), or None."""
    if not prefix.startswith("/"):
        return "the prefix must be an absolute path"
    if ".." in prefix.split("/"):
        return "the prefix must not contain '..'"
    norm = posixpath.normpath(prefix)
    if norm == "/":
        return "the prefix must not be '/'"
    if (norm == "/usr" or norm.startswith("/usr/")) and not norm.startswith("/usr/local/"):
        return "a prefix under /usr is refused (the system Python lives there); use /usr/local/<dir> or /opt"
    if norm.count("/") < 2:
        return "the prefix must be a dedicated directory at least two levels deep"
    return None


def choose_build_hosts(
    hosts: Sequence[str], platforms: Mapping[str, str], build_host: str | None = None
) -> dict[str, str]:
    """platform -> the one host that compiles for it, for the platforms of `hosts`.

    `build_host` compiles for its own platform, whether it is one of `hosts` or a build host
    outside them (its platform must then be in `platforms`); the other platforms get the first
    of `hosts` on each (in `hosts` order). A build host whose platform none of `hosts` has is not
    used: `plan` refuses one that no target of the whole deploy matches.
    """
    missing = [h for h in hosts if h not in platforms]
    if missing:
        raise UsageError(f"no platform facts for {', '.join(missing)}")
    chosen: dict[str, str] = {}
    if build_host is not None:
        if build_host not in platforms:
            raise UsageError(
                f"no platform facts for build_host {build_host}",
                hint="the build host must answer the probe, as the targets do",
            )
        chosen[platforms[build_host]] = build_host
    for host in hosts:
        chosen.setdefault(platforms[host], host)
    return {p: chosen[p] for p in dict.fromkeys(platforms[h] for h in hosts)}


def plan_builds(
    spec: Spec, hosts: Sequence[str], platforms: Mapping[str, str]
) -> tuple[BuildStep, ...]:
    """The compiles a source install of `hosts` needs (before looking at the cache or hosts)."""
    install = spec.interpreter.install
    if not isinstance(install, SourceInstall):
        return ()
    if install.build is BuildMode.ON_EACH_HOST:
        return tuple(BuildStep(platforms[h], h) for h in hosts)
    builders = choose_build_hosts(hosts, platforms, install.build_host)
    return tuple(
        BuildStep(p, b, tuple(h for h in hosts if platforms[h] == p and h != b))
        for p, b in builders.items()
    )


def configure_args(interp: Interpreter, configure: Sequence[str]) -> tuple[str, ...]:
    """`./configure` arguments: the prefix, the spec's flags, and with --enable-shared an rpath
    so the tree finds its own libpython."""
    for arg in configure:
        if arg == "--prefix" or arg.startswith(("--prefix=", "--exec-prefix")):
            raise UsageError(
                f"interpreter.install.configure must not set {arg.split('=')[0]}",
                hint="the prefix comes from interpreter.prefix",
            )
    args = [f"--prefix={interp.prefix}", *configure]
    if "--enable-shared" in configure:
        rpath = f"-Wl,-rpath,{interp.prefix}/lib"
        for i, arg in enumerate(args):
            if arg.startswith("LDFLAGS="):
                args[i] = f"{arg} {rpath}"
                break
        else:
            args.append(f"LDFLAGS={rpath}")
    return tuple(args)


class _Session:
    """One install_interpreter call: numbered runs in run_dir, and what each host ended with."""

    def __init__(self, spec: Spec, inventory: InventorySources, runner: Runner,
                 run_dir: Path) -> None:
        self.spec = spec
        self.inventory = inventory_sources(inventory)
        self.runner = runner
        self.run_dir = run_dir
        self.count = 0
        self.timings: dict[str, float] = {}
        self.results: dict[str, HostResult] = {}
        self.actions: dict[str, str] = {}

    def run(self, action: str, hosts: Sequence[str], extra: Mapping[str, Any]) -> RunResult:
        interp = self.spec.interpreter
        extravars: dict[str, Any] = {
            "oxzep7_interp_action": action,
            "oxzep7_interp_method": interp.install.method.value,
            "oxzep7_interp_version": interp.version,
            "oxzep7_interp_prefix": interp.prefix,
            "oxzep7_interp_executable": interp.executable,
            "oxzep7_interp_verify_modules": list(interp.verify_modules),
            **extra,
        }
        self.count += 1
        ident = f"interpreter-{self.count:02d}-{action}"
        request = RunRequest(
            playbook=PLAYBOOK,
            inventory=self.inventory,
            limit=tuple(hosts),
            extravars=MappingProxyType(extravars),
            forks=self.spec.ansible.forks,
            become=self.spec.ansible.become,
            ident=ident,
        )
        started = time.monotonic()
        result = self.runner.run(request, self.run_dir / ident)
        self.timings[action] = self.timings.get(action, 0.0) + time.monotonic() - started
        return result

    def record(self, result: HostResult, done: str) -> None:
        self.results[result.host] = result
        self.actions[result.host] = done if result.ok else HostAction.FAILED

    def triage(self, probed: RunResult, hosts: Sequence[str], key_of: Callable[[str], str]
               ) -> list[str]:
        """The hosts that need the tree; the others are recorded as present or refused here."""
        todo = []
        for host in hosts:
            probe = probed.hosts[host]
            marker = probe.result.get("marker") or {}
            if (isinstance(marker, Mapping) and marker.get("key") == key_of(host)
                    and probe.result.get("starts") is True):  # a marker alone proves nothing
                self.record(HostResult(host, HostStatus.OK, 0, None, None,
                                       MappingProxyType({**probe.result, "present": True})),
                            HostAction.PRESENT)
            elif probe.result.get("foreign"):
                self.record(HostResult(
                    host, HostStatus.FAILED, 0, "Look at the prefix",
                    f"{probe.result.get('prefix')} exists and was not installed by oxzep7-deploy: "
                    "refusing to replace it (move it away or choose another interpreter.prefix)",
                    probe.result), HostAction.FAILED)
            else:
                todo.append(host)
        return todo

    def outcome(self, hosts: Sequence[str], platforms: Mapping[str, str] | None = None,
                builds: tuple[BuildRecord, ...] = ()) -> InterpreterOutcome:
        def ordered(values: Mapping[str, Any]) -> Mapping[str, Any]:
            return MappingProxyType({h: values[h] for h in hosts if h in values})

        return InterpreterOutcome(ordered(self.results), ordered(self.actions),
                                  MappingProxyType(dict(platforms or {})), builds,
                                  MappingProxyType(self.timings))


def install_interpreter(
    spec: Spec,
    inventory: InventorySources,
    hosts: Sequence[str],
    runner: Runner,
    run_dir: Path,
    cache_dir: Path,
    platforms: Mapping[str, str] | None = None,
) -> InterpreterOutcome:
    """Install and verify `spec.interpreter` on `hosts`.

    Archives are fetched and checked on the controller before any host is touched (an
    `ArtifactError` says why one cannot be used). A host that already has the same tree does
    nothing. Per-host failures are in the outcome, not raised.
    """
    if not hosts:
        raise ValueError("install_interpreter needs at least one host")
    session = _Session(spec, inventory, runner, run_dir)
    install = spec.interpreter.install
    if isinstance(install, (PackageInstall, ExistingInstall)):
        _install_simple(session, hosts, install)
        return session.outcome(hosts)
    problem = prefix_problem(spec.interpreter.prefix)
    if problem:
        raise UsageError(f"interpreter.prefix {spec.interpreter.prefix} is refused: {problem}")
    started = time.monotonic()
    archive = fetch_archive(install.url, install.sha256, cache_dir)
    if isinstance(install, SourceInstall):
        check_cpython_source(archive, spec.interpreter.version, cache_dir)
        configure = configure_args(spec.interpreter, install.configure)  # refuses before any run
    else:
        check_prebuilt_archive(archive, spec.interpreter.minor)
    session.timings["fetch"] = time.monotonic() - started
    builder = outside_build_host(install, hosts, platforms or {})  # probed for its platform
    probed = session.run("probe", [*hosts, *builder], {})
    facts = {h: str(r.result.get("platform", "")) for h, r in probed.hosts.items() if r.ok}
    found = {**facts, **(platforms or {})}  # the caller's facts win; the probe fills gaps
    for result in probed.hosts.values():
        if not result.ok and result.host in hosts:  # the build host is no target: not recorded
            session.record(result, HostAction.FAILED)
    reachable = [h for h in hosts if h not in session.results]
    if isinstance(install, PrebuiltInstall):
        key = prebuilt_key(archive.sha256, spec.interpreter.prefix)
        _install_prebuilt(session, session.triage(probed, reachable, lambda h: key), archive, key)
        return session.outcome(hosts, found)
    job = _SourceJob(session, install, archive, configure, found, ArtifactCache(cache_dir))
    job.builder_probe = probed.hosts.get(builder[0]) if builder else None
    need = session.triage(probed, reachable, lambda h: job.keys[found[h]])
    return session.outcome(hosts, found, job.run(reachable, need))


def outside_build_host(install: SourceInstall | PrebuiltInstall, hosts: Sequence[str],
                       platforms: Mapping[str, str]) -> tuple[str, ...]:
    """`(build_host,)` when it is a build host outside `hosts` whose platform `platforms` lacks
    (the probe asks it; it is never recorded as one of `hosts`), else `()`."""
    if (isinstance(install, SourceInstall) and install.build is BuildMode.ONCE_PER_PLATFORM
            and install.build_host and install.build_host not in hosts
            and install.build_host not in platforms):
        return (install.build_host,)
    return ()


def _install_simple(
    session: _Session, hosts: Sequence[str], install: PackageInstall | ExistingInstall
) -> None:
    if isinstance(install, ExistingInstall):
        result = session.run("existing", hosts, {})
        done = HostAction.VERIFIED
    else:
        package = {"name": install.name, "manager": install.manager, "extra": list(install.extra),
                   "repository": install.repository or ""}
        result = session.run("package", hosts, {"oxzep7_interp_package": package})
        done = HostAction.INSTALLED
    for host_result in result.hosts.values():
        session.record(host_result, done)


def _install_prebuilt(session: _Session, todo: Sequence[str], archive: LocalArchive,
                      key: str) -> None:
    if not todo:
        return
    marker = {"url": archive.url, "archive_sha256": archive.sha256}
    shipping = {h: {"key": key, "path": str(archive.path), "sha256": archive.sha256,
                    "marker": marker} for h in todo}
    shipped = session.run("ship", todo, {"oxzep7_interp_artifacts": shipping})
    for host in todo:
        session.record(shipped.hosts[host], HostAction.SHIPPED)


class _SourceJob:
    """A source install: compile where no artifact exists yet, ship the artifacts to the rest."""

    def __init__(self, session: _Session, install: SourceInstall, archive: LocalArchive,
                 configure: tuple[str, ...], platforms: Mapping[str, str],
                 cache: ArtifactCache) -> None:
        interp = session.spec.interpreter
        self.session, self.install, self.archive = session, install, archive
        self.configure, self.platforms, self.cache = configure, platforms, cache
        self.keys = {p: artifact_key(interp.version, install.configure, p, archive.sha256,
                                     interp.prefix) for p in set(platforms.values())}
        self.marker = {"source_url": archive.url, "source_sha256": archive.sha256,
                       "configure": list(install.configure)}
        self.artifacts: dict[str, Artifact | None] = {}
        self.builder_probe: HostResult | None = None  # of a build host outside the targets

    def run(self, hosts: Sequence[str], need: Sequence[str]) -> tuple[BuildRecord, ...]:
        """Install on `need` (a subset of `hosts`); the build hosts are the install's build_host
        for its platform (a target or not) and the first of `hosts` for the others."""
        if not need:
            return ()
        if self.install.build is BuildMode.ON_EACH_HOST:
            builders = {h: self.platforms[h] for h in need}
        else:
            wanted = dict.fromkeys(self.platforms[h] for h in need)
            self.artifacts = {p: self.cache.lookup(self.keys[p]) for p in wanted}
            missing = [p for p in wanted if self.artifacts[p] is None]
            if missing and not self.builder_known(hosts):
                need = self.refuse_unprobed(need, missing)
                missing = []
            chosen = choose_build_hosts(hosts, self.platforms, self.install.build_host) \
                if missing else {}
            builders = {chosen[p]: p for p in missing}
        builds = self.build(builders, need)
        self.ship([h for h in need if h not in builders], builds)
        return builds

    def builder_known(self, hosts: Sequence[str]) -> bool:
        """Whether the build_host, if it is outside `hosts`, has a platform to build for."""
        build_host = self.install.build_host
        return build_host is None or build_host in hosts or build_host in self.platforms

    def refuse_unprobed(self, need: Sequence[str], missing: Sequence[str]) -> list[str]:
        """A build host outside the targets did not answer and a platform has no artifact yet:
        its hosts fail (which platform it builds for is unknown); the rest of `need` remains."""
        probe = self.builder_probe
        why = (probe.message if probe is not None else None) or "no platform facts"
        remaining = []
        for host in need:
            if self.platforms[host] in missing:
                self.session.record(HostResult(
                    host, HostStatus.FAILED, 0, "build",
                    f"not installed: no artifact for {self.platforms[host]}, and build_host "
                    f"{self.install.build_host} did not answer the probe: {why}"),
                    HostAction.FAILED)
            else:
                remaining.append(host)
        return remaining

    def build(self, builders: Mapping[str, str], need: Sequence[str]) -> tuple[BuildRecord, ...]:
        """Compile on each of `builders` (host -> platform); keep what they fetch in the cache."""
        if not builders:
            return ()
        interp = self.session.spec.interpreter
        pack = self.install.build is BuildMode.ONCE_PER_PLATFORM
        names = {h: artifact_name(interp.version, p, self.keys[p]) for h, p in builders.items()}
        started = time.monotonic()
        run = self.session.run("build", list(builders), {
            "oxzep7_interp_source": {"path": str(self.archive.path), "name": self.archive.name,
                                     "sha256": self.archive.sha256},
            "oxzep7_interp_configure_args": list(self.configure),
            "oxzep7_interp_artifacts": {
                h: {"key": self.keys[p], "name": names[h], "marker": {**self.marker, "platform": p}}
                for h, p in builders.items()},
            "oxzep7_interp_pack": pack,
            "oxzep7_interp_fetch_dir": str(self.cache.incoming),
        })
        seconds = time.monotonic() - started
        records = []
        for host, platform in builders.items():
            result = run.hosts[host]
            ok, message, artifact = result.ok, result.message, None
            if ok and pack:
                packed = result.result.get("artifact") or {}
                meta = {**self.marker, "platform": platform, "version": interp.version,
                        "built_on": host, "prefix": interp.prefix,
                        "configure_args": list(self.configure)}
                try:
                    artifact = self.cache.store(self.cache.incoming / names[host], self.keys[platform],
                                                str(packed.get("sha256", "")), meta)
                except (ArtifactError, OSError) as exc:
                    ok, message = False, f"the artifact did not reach the cache: {exc}"
                self.artifacts[platform] = artifact
            if host in need:
                self.session.record(result, HostAction.BUILT if ok else HostAction.FAILED)
            records.append(BuildRecord(platform, host, self.keys[platform], ok, seconds, artifact,
                                       message))
        return tuple(records)

    def ship(self, hosts: Sequence[str], builds: Sequence[BuildRecord]) -> None:
        """Ship each platform's artifact to the hosts of that platform that lack the tree."""
        shipping: dict[str, dict[str, Any]] = {}
        for host in hosts:
            platform = self.platforms[host]
            artifact = self.artifacts.get(platform)
            if artifact is None:
                why = next((f"the build on {b.host} failed: {b.message}" for b in builds
                            if b.platform == platform and not b.ok), "no artifact was built")
                self.session.record(HostResult(host, HostStatus.FAILED, 0, "build",
                                               f"not installed: no artifact for {platform}: {why}"),
                                    HostAction.FAILED)
                continue
            shipping[host] = {
                "key": self.keys[platform], "path": str(artifact.path), "sha256": artifact.sha256,
                "marker": {**self.marker, "platform": platform, "artifact_sha256": artifact.sha256,
                           "built_on": artifact.meta.get("built_on")},
            }
        if shipping:
            shipped = self.session.run("ship", list(shipping), {"oxzep7_interp_artifacts": shipping})
            for host in shipping:
                self.session.record(shipped.hosts[host], HostAction.SHIPPED)
