"""The requirements' wheel set (`application.wheels: once-per-platform`): built once per platform
on its build host with the new interpreter, cached on the controller, shipped to every target.

Targets then install it with `--no-index` from a lock the build host wrote (each wheel pinned by
its own sha256), so they need neither a package index nor a compiler. The requirements' own
hashes (`--require-hashes`) are enforced where pip downloads: on the build host.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from oxzep7_deploy.artifacts import (
    Artifact,
    ArtifactCache,
    ArtifactError,
    artifact_key,
    prebuilt_key,
)
from oxzep7_deploy.plan.build import UNKNOWN_PLATFORM
from oxzep7_deploy.plan.model import Plan, WheelStep
from oxzep7_deploy.runner import HostResult, HostStatus, Runner, RunRequest, RunResult
from oxzep7_deploy.runner.request import InventorySources, inventory_sources
from oxzep7_deploy.spec.model import (
    BuildMode,
    ExistingInstall,
    PackageInstall,
    PrebuiltInstall,
    SourceInstall,
    Spec,
)
from oxzep7_deploy.steps.interpreter import install_interpreter, mirror_source

PLAYBOOK = "wheels.yml"
RECIPE = 1  # bump when the way a wheel set is built or packed changes
LOCK = "requirements.txt"  # in each wheel set: every wheel pinned by its sha256

Results = Mapping[str, HostResult]


def wheels_dir(spec: Spec, release_id: str) -> str:
    """Where a release's wheel set is unpacked on each target (prepare installs from it)."""
    return f"{spec.application.root.rstrip('/')}/.oxzep7-wheels/{release_id}"


def prepare_requirements(spec: Spec, release_id: str) -> tuple[str | None, list[str]]:
    """The requirements file and pip arguments of prepare's `pip install` on a target."""
    app = spec.application
    if not (app.requirements and app.wheels is BuildMode.ONCE_PER_PLATFORM):
        return app.requirements, list(app.pip_args)
    folder = wheels_dir(spec, release_id)
    return f"{folder}/{LOCK}", [*app.pip_args, "--no-index", "--find-links", folder]


def interpreter_identity(spec: Spec, platform: str) -> str:
    """What makes two new interpreters interchangeable for compiled wheels."""
    interp = spec.interpreter
    install = interp.install
    if isinstance(install, SourceInstall):
        return "source:" + artifact_key(interp.version, install.configure, platform,
                                        install.sha256, interp.prefix)
    if isinstance(install, PrebuiltInstall):
        return "prebuilt:" + prebuilt_key(install.sha256, interp.prefix)
    assert isinstance(install, (PackageInstall, ExistingInstall))
    return f"{install.method.value}:{install.executable}:{interp.version}"


def wheel_set_key(platform: str, interpreter: str, requirements_sha256: str,
                  pip_args: Sequence[str]) -> str:
    """The cache key of a wheel set: platform, interpreter build, requirements digest, pip_args."""
    ident = {"recipe": RECIPE, "kind": "wheels", "platform": platform,
             "interpreter": interpreter, "requirements_sha256": requirements_sha256,
             "pip_args": list(pip_args)}
    blob = json.dumps(ident, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


@dataclass(frozen=True)
class WheelSetRecord:
    """One platform's wheel set: where it came from (built now, or the cache), or why none."""

    platform: str
    build_host: str
    key: str | None
    built: bool
    artifact: Artifact | None
    message: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"platform": self.platform, "build_host": self.build_host, "key": self.key,
                "built": self.built, "message": self.message, "seconds": round(self.seconds, 1),
                "artifact": None if self.artifact is None else {
                    "path": str(self.artifact.path), "sha256": self.artifact.sha256,
                    "wheels": list(self.artifact.meta.get("wheels", []))}}


class WheelSets:
    """The wheel step of one deploy: each platform's set is made once (built or from the cache),
    then shipped to the targets of each batch that reaches the step."""

    def __init__(self, spec: Spec, plan: Plan, inventory: InventorySources, runner: Runner,
                 run_dir: Callable[[str], Path], cache_dir: Path) -> None:
        self.spec, self.plan, self.inventory, self.runner = spec, plan, inventory, runner
        self.run_dir, self.cache = run_dir, ArtifactCache(cache_dir)
        self.cache_dir = cache_dir
        self.records: dict[str, WheelSetRecord] = {}  # platform -> its set

    def run(self, hosts: Sequence[str]) -> Results:
        """Make the wheel sets `hosts` need, then ship each host its platform's set."""
        step_of = {h: step for step in self.plan.wheels for h in step.hosts}
        for step in self.plan.wheels:
            if step.platform not in self.records and set(step.hosts) & set(hosts):
                self.records[step.platform] = self.make(step, hosts)
        out: dict[str, HostResult] = {}
        shipping: dict[str, dict[str, Any]] = {}
        for host in hosts:
            wanted = step_of.get(host)
            record = self.records.get(wanted.platform) if wanted is not None else None
            if record is None:
                out[host] = _failed(host, "the plan has no wheel set for this host")
            elif record.artifact is None:
                out[host] = _failed(host, f"no wheel set for {record.platform}: {record.message}")
            else:
                artifact = record.artifact
                shipping[host] = {"path": str(artifact.path), "sha256": artifact.sha256,
                                  "key": artifact.key,
                                  "requirements_sha256": artifact.meta["requirements_sha256"],
                                  "built_on": artifact.meta.get("built_on"),
                                  **mirror_source(self.spec, artifact.sha256)}
        if shipping:
            release = self.plan.release
            shipped = self._run("ship", list(shipping), {
                "oxzep7_wheels_sets": shipping,
                "oxzep7_wheels_dest": wheels_dir(self.spec, release)})
            out.update({h: shipped.hosts[h] for h in shipping})
        return MappingProxyType({h: out[h] for h in hosts})

    def make(self, step: WheelStep, installed: Sequence[str]) -> WheelSetRecord:
        """The wheel set of one platform: from the cache, else built on its build host."""
        started = time.monotonic()
        builder = step.build_host
        if step.platform == UNKNOWN_PLATFORM:
            return self._none(step, "the platform of these hosts is not known (their facts were "
                                    "not read); check that they are reachable and apply again")
        why = self._interpreter_on(builder, installed)
        if why:
            return self._none(step, why)
        digest = self._run("digest", [builder], {}).hosts[builder]
        if not digest.ok:
            return self._none(step, f"the build host {builder} could not read "
                                    f"{self.spec.application.requirements}: {digest.message}")
        req_sha = str(digest.result.get("requirements_sha256", ""))
        key = wheel_set_key(step.platform, interpreter_identity(self.spec, step.platform),
                            req_sha, self.spec.application.pip_args)
        cached = self.cache.lookup(key)
        if cached is not None:
            return WheelSetRecord(step.platform, builder, key, False, cached,
                                  seconds=time.monotonic() - started)
        refused = (f"the cached wheel set {key} does not match its sha256 manifest: refused, "
                   "built again" if (self.cache.root / f"{key}.json").exists() else None)
        return self._build(step, key, req_sha, started, refused)

    def _build(self, step: WheelStep, key: str, req_sha: str, started: float,
               refused: str | None) -> WheelSetRecord:
        builder = step.build_host
        name = f"wheels-{self.spec.application.name}-{step.platform}-{key}.tar.gz"
        built = self._run("build", [builder], {
            "oxzep7_wheels_key": key, "oxzep7_wheels_name": name,
            "oxzep7_wheels_fetch_dir": str(self.cache.incoming)}).hosts[builder]
        seconds = time.monotonic() - started
        if not built.ok:
            return self._none(step, f"building the wheels on {builder} failed: {built.message}",
                              key)
        report = built.result
        meta = {"kind": "wheels", "platform": step.platform, "built_on": builder,
                "requirements": self.spec.application.requirements,
                "requirements_sha256": req_sha, "pip_args": list(self.spec.application.pip_args),
                "interpreter": interpreter_identity(self.spec, step.platform),
                "wheels": list(report.get("wheels") or [])}
        try:
            artifact = self.cache.store(self.cache.incoming / name, key,
                                        str(report.get("sha256", "")), meta)
        except (ArtifactError, OSError) as exc:
            return self._none(step, f"the wheel set built on {builder} did not reach the "
                                    f"controller's cache: {exc}", key)
        return WheelSetRecord(step.platform, builder, key, True, artifact, refused, seconds)

    def _interpreter_on(self, builder: str, installed: Sequence[str]) -> str | None:
        """Why the new interpreter is not on the build host (None: it is). A target of this
        batch has it already; another host gets it as the install step gives it to targets."""
        if builder in installed:
            return None
        build = self.plan.build if builder in self.plan.targets else None
        outcome = install_interpreter(self.spec, self.inventory, [builder], self.runner,
                                      self.run_dir("wheels-interpreter"), self.cache_dir, build)
        if outcome.ok:
            return None
        return (f"the new interpreter could not be put on the build host {builder}: "
                + "; ".join(outcome.problems()))

    def _none(self, step: WheelStep, message: str, key: str | None = None) -> WheelSetRecord:
        return WheelSetRecord(step.platform, step.build_host, key, False, None, message)

    def _run(self, action: str, hosts: Sequence[str], extra: Mapping[str, Any]) -> RunResult:
        app = self.spec.application
        request = RunRequest(
            playbook=PLAYBOOK,
            inventory=inventory_sources(self.inventory),
            limit=tuple(hosts),
            extravars=MappingProxyType({
                "oxzep7_wheels_action": action,
                "oxzep7_wheels_python": self.spec.interpreter.executable,
                "oxzep7_wheels_requirements": app.requirements,
                "oxzep7_wheels_pip_args": list(app.pip_args),
                **extra}),
            forks=self.spec.ansible.forks,
            become=self.spec.ansible.become,
            ident=f"wheels-{action}",
        )
        return self.runner.run(request, self.run_dir(f"wheels-{action}"))


def _failed(host: str, message: str) -> HostResult:
    return HostResult(host, HostStatus.FAILED, 0, "wheels", message)
