"""Get the spec's interpreter onto hosts: build once per platform and ship, or package, prebuilt, existing."""

from __future__ import annotations

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
    unpacked_bytes,
)
from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.plan.build import UNKNOWN_PLATFORM, plan_builds
from oxzep7_deploy.plan.model import BuildStep as PlanBuildStep
from oxzep7_deploy.rules import prefix_problem
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


def mirror_source(spec: Spec, sha256: str) -> dict[str, str]:
    """What a host's shipping entry adds with `artifacts.mirror`: the URL it downloads the
    artifact from (checked there against `sha256`); nothing without one (the controller pushes)."""
    return {"url": spec.artifacts.url(sha256)} if spec.artifacts.mirror else {}


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
    build: Sequence[PlanBuildStep] | None = None,
) -> InterpreterOutcome:
    """Install and verify `spec.interpreter` on `hosts`, carrying out `build` (the plan's build
    steps: which host compiles for which platform).

    Archives are fetched and checked on the controller before any host is touched (an
    `ArtifactError` says why one cannot be used). The probe reads each host's marker: a host
    that already has the same tree does nothing. Without `build` (a caller outside a deploy),
    the probe's platforms are planned as `plan` would. Per-host failures are in the outcome, not
    raised.
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
    probed = session.run("probe", [*hosts, *_builders_to_probe(install, hosts, build)], {})
    facts = {h: str(r.result.get("platform", "")) for h, r in probed.hosts.items() if r.ok}
    for result in probed.hosts.values():
        if not result.ok and result.host in hosts:  # a build host outside them: not recorded
            session.record(result, HostAction.FAILED)
    reachable = [h for h in hosts if h not in session.results]
    if isinstance(install, PrebuiltInstall):
        key = prebuilt_key(archive.sha256, spec.interpreter.prefix)
        _install_prebuilt(session, session.triage(probed, reachable, lambda h: key), archive, key)
        return session.outcome(hosts, facts)
    if build is None:  # no plan: the probe's platforms, planned as `plan` plans them
        build = plan_builds(spec, tuple(reachable), facts) if reachable else ()
    job = _SourceJob(session, install, archive, configure, ArtifactCache(cache_dir))
    reachable = job.follow(build, reachable, facts, probed)
    need = session.triage(probed, reachable, lambda h: job.keys[job.platforms[h]])
    return session.outcome(hosts, {**facts, **job.platforms}, job.run(need))


def _builders_to_probe(install: SourceInstall | PrebuiltInstall, hosts: Sequence[str],
                       build: Sequence[PlanBuildStep] | None) -> tuple[str, ...]:
    """Build hosts outside `hosts` that the probe must ask for their platform: without a plan,
    the spec's build_host; with one, the builder of a step whose platform the plan does not know."""
    if not isinstance(install, SourceInstall) or install.build is not BuildMode.ONCE_PER_PLATFORM:
        return ()
    if build is None:
        builder = install.build_host
        return (builder,) if builder and builder not in hosts else ()
    wanted = set(hosts)
    return tuple(dict.fromkeys(
        s.build_host for s in build
        if s.build_host and s.build_host not in wanted and wanted & set(s.hosts)
        and s.platform == UNKNOWN_PLATFORM))


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
    need = unpacked_bytes(archive.path)  # each host refuses early when its prefix lacks room
    shipping = {h: {"key": key, "path": str(archive.path), "sha256": archive.sha256,
                    "marker": marker, "unpacked_bytes": need,
                    **mirror_source(session.spec, archive.sha256)} for h in todo}
    shipped = session.run("ship", todo, {"oxzep7_interp_artifacts": shipping})
    for host in todo:
        session.record(shipped.hosts[host], HostAction.SHIPPED)


class _SourceJob:
    """A source install that carries out the plan's build steps: compile on each step's build
    host where the cache has no artifact yet, ship the artifacts to the rest."""

    def __init__(self, session: _Session, install: SourceInstall, archive: LocalArchive,
                 configure: tuple[str, ...], cache: ArtifactCache) -> None:
        self.session, self.install, self.archive = session, install, archive
        self.configure, self.cache = configure, cache
        self.platforms: dict[str, str] = {}  # host -> the platform its tree is built for
        self.builder: dict[str, str] = {}  # host -> the host that compiles its tree
        self.keys: dict[str, str] = {}  # platform -> artifact key
        self.marker = {"source_url": archive.url, "source_sha256": archive.sha256,
                       "configure": list(install.configure)}
        self.artifacts: dict[str, Artifact | None] = {}
        self.probe: RunResult | None = None

    def follow(self, build: Sequence[PlanBuildStep], hosts: Sequence[str], facts: Mapping[str, str],
               probed: RunResult) -> list[str]:
        """Take each host's platform and build host from the plan's steps; a host the plan
        cannot be carried out on fails here with the reason. The others are returned."""
        self.probe = probed
        step_of = {h: step for step in build for h in step.hosts}
        interp = self.session.spec.interpreter
        remaining = []
        for host in hosts:
            step = step_of.get(host)
            if step is None:
                self.fail(host, "not installed: the plan has no build step for this host")
                continue
            builder = step.build_host or host
            platform = step.platform
            if platform == UNKNOWN_PLATFORM:  # facts were not read when the plan was made
                platform = facts.get(builder) or UNKNOWN_PLATFORM
            if platform == UNKNOWN_PLATFORM:
                self.fail(host, f"not installed: its build host {builder} did not answer the "
                                f"probe: {self.probe_message(builder)}")
                continue
            if (facts.get(host) or platform) != platform:
                self.fail(host, f"not installed: the plan builds this host's interpreter for "
                                f"{platform} on {builder}, and this host is {facts[host]}; "
                                "plan the deploy again (abort it, then apply)")
                continue
            self.platforms[host], self.builder[host] = platform, builder
            self.keys.setdefault(platform, artifact_key(
                interp.version, self.install.configure, platform, self.archive.sha256,
                interp.prefix))
            remaining.append(host)
        return remaining

    def fail(self, host: str, message: str) -> None:
        self.session.record(HostResult(host, HostStatus.FAILED, 0, "build", message),
                            HostAction.FAILED)

    def probe_message(self, host: str) -> str:
        result = self.probe.hosts.get(host) if self.probe is not None else None
        return (result.message if result is not None else None) or "no platform facts"

    def run(self, need: Sequence[str]) -> tuple[BuildRecord, ...]:
        """Install on `need`: each plan step's build host compiles for its platform (a target
        or not) where the cache lacks the artifact; on each host when the plan says so."""
        if not need:
            return ()
        if self.install.build is BuildMode.ON_EACH_HOST:
            builders = {h: self.platforms[h] for h in need}
        else:
            wanted = dict.fromkeys(self.platforms[h] for h in need)
            self.artifacts = {p: self.cache.lookup(self.keys[p]) for p in wanted}
            chosen: dict[str, str] = {}  # platform -> its build host, from the plan
            for host in need:
                if self.artifacts[self.platforms[host]] is None:
                    chosen.setdefault(self.platforms[host], self.builder[host])
            need = self.refuse_unprobed(need, chosen)
            builders = {b: p for p, b in chosen.items() if self.answered(b)}
        builds = self.build(builders, need)
        self.ship([h for h in need if h not in builders], builds)
        return builds

    def answered(self, host: str) -> bool:
        """False when `host` was probed and did not answer (it cannot build)."""
        result = self.probe.hosts.get(host) if self.probe is not None else None
        return result is None or result.ok

    def refuse_unprobed(self, need: Sequence[str], chosen: Mapping[str, str]) -> list[str]:
        """A build host that did not answer the probe cannot build: the hosts that need its
        artifact fail with the reason; the rest of `need` remains."""
        remaining = []
        for host in need:
            platform = self.platforms[host]
            builder = chosen.get(platform)
            if builder is not None and builder != host and not self.answered(builder):
                self.fail(host, f"not installed: no artifact for {platform}, and build_host "
                                f"{builder} did not answer the probe: {self.probe_message(builder)}")
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
                "unpacked_bytes": artifact.unpacked_bytes,
                "marker": {**self.marker, "platform": platform, "artifact_sha256": artifact.sha256,
                           "built_on": artifact.meta.get("built_on")},
                **mirror_source(self.session.spec, artifact.sha256),
            }
        if shipping:
            shipped = self.session.run("ship", list(shipping), {"oxzep7_interp_artifacts": shipping})
            for host in shipping:
                self.session.record(shipped.hosts[host], HostAction.SHIPPED)
