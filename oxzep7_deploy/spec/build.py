"""Turn a validated document, defaults filled, into the frozen `Spec` model."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from oxzep7_deploy.rules import normalize_path
from oxzep7_deploy.spec.durations import parse_duration
from oxzep7_deploy.spec.model import (
    AnsibleOptions,
    Application,
    Artifacts,
    BuildMode,
    CommandCheck,
    ExistingInstall,
    Health,
    HealthCheck,
    HostCount,
    HttpCheck,
    Inconclusive,
    Install,
    Interpreter,
    Method,
    OnFailure,
    PackageInstall,
    PrebuiltInstall,
    Preview,
    Promote,
    Restart,
    Rollout,
    Snapshot,
    SourceInstall,
    Spec,
    Stage,
    Strategy,
    Watch,
)

Data = Mapping[str, Any]

DEFAULT_STAGES: Mapping[Strategy, tuple[Stage, ...]] = {
    Strategy.CANARY: (
        Stage("canary", HostCount(1)),
        Stage("all", HostCount(100, percent=True)),
    ),
    Strategy.BLUE_GREEN: (Stage("all", HostCount(100, percent=True)),),
    Strategy.ROLLING: (),
}


def build_spec(data: Data, digest: str) -> Spec:
    """The `Spec` of a document that passed validation and has its defaults filled."""
    return Spec(
        name=data["name"],
        targets=data["targets"],
        interpreter=_interpreter(data["interpreter"]),
        application=_application(data["application"]),
        description=data.get("description"),
        verify=tuple(data["verify"]),
        health=_health(data["health"]),
        snapshot=Snapshot(
            paths=tuple(normalize_path(path) for path in data["snapshot"]["paths"]),
            keep=int(data["snapshot"]["keep"]),
        ),
        rollout=_rollout(data["rollout"]),
        ansible=AnsibleOptions(forks=_forks(data["ansible"].get("forks")), become=data["ansible"]["become"],
                               execution_node=data["ansible"].get("execution_node")),
        preview=_preview(data.get("preview")),
        watch=_watch(data.get("watch")),
        artifacts=_artifacts(data.get("artifacts") or {}),
        api_version=data["apiVersion"],
        kind=data["kind"],
        digest=digest,
    )


def _artifacts(data: Data) -> Artifacts:
    mirror = data.get("mirror")
    return Artifacts(mirror=mirror.rstrip("/") if mirror else None)


def _interpreter(data: Data) -> Interpreter:
    version: str = data["version"]
    prefix = normalize_path(data["prefix"].replace("{version}", version))
    return Interpreter(
        version=version,
        prefix=prefix,
        install=_install(data["install"], version),
        verify_modules=tuple(data["verify_modules"]),
    )


def _install(data: Data, version: str) -> Install:
    method = Method(data["method"])
    if method is Method.SOURCE:
        return SourceInstall(
            url=data["url"],
            sha256=data["sha256"].lower(),
            configure=tuple(data["configure"]),
            build=BuildMode(data["build"]),
            build_host=data.get("build_host"),
        )
    if method is Method.PACKAGE:
        minor = ".".join(version.split(".")[:2])
        return PackageInstall(
            name=data["name"],
            executable=data.get("executable", f"/usr/bin/python{minor}"),
            manager=data["manager"],
            extra=tuple(data["extra"]),
            repository=data.get("repository"),
        )
    if method is Method.PREBUILT:
        return PrebuiltInstall(url=data["url"], sha256=data["sha256"].lower())
    return ExistingInstall(executable=data["executable"])


def _application(data: Data) -> Application:
    code: str | None = data.get("code")
    requirements: str | None = data.get("requirements")
    if requirements is not None and not requirements.startswith("/"):
        assert code is not None, "validation ensures a relative requirements path has a code"
        requirements = normalize_path(posixpath.join(code, requirements))
    return Application(
        name=data["name"],
        root=normalize_path(data["root"]),
        code=normalize_path(code) if code is not None else None,
        requirements=requirements,
        pip_args=tuple(data["pip_args"]),
        wheels=BuildMode(data["wheels"]),
        services=tuple(data["services"]),
        restart_command=data.get("restart_command"),
        keep_releases=int(data["keep_releases"]),
        port=int(data["port"]) if data.get("port") is not None else None,
        restart=Restart(data["restart"]),
        env=MappingProxyType(dict(data["env"])),
    )


def _preview(data: Data | None) -> Preview | None:
    if data is None:
        return None
    return Preview(port=int(data["port"]), env=data["env"], command=data.get("command"))


def _watch(data: Data | None) -> Watch | None:
    if data is None:
        return None
    journal = data["journal"]
    return Watch(patterns=tuple(journal["patterns"]), max_new=int(journal["max_new"]),
                 restarts=int(data["restarts"]), inconclusive=Inconclusive(data["inconclusive"]))


def _health(data: Data) -> Health:
    checks: list[HealthCheck] = []
    for check in data["checks"]:
        if "http" in check:
            http = check["http"]
            checks.append(HttpCheck(
                url=http["url"],
                status=int(http["status"]),
                timeout=parse_duration(http["timeout"]),
                contains=http.get("contains"),
            ))
        else:
            checks.append(CommandCheck(command=check["command"]))
    return Health(
        checks=tuple(checks),
        retries=int(data["retries"]),
        interval=parse_duration(data["interval"]),
    )


def _rollout(data: Data) -> Rollout:
    strategy = Strategy(data["strategy"])
    if "stages" in data:
        stages = tuple(
            Stage(
                name=stage["name"],
                hosts=HostCount.parse(stage["hosts"]),
                bake=parse_duration(stage["bake"]),
                promote=Promote(stage["promote"]),
            )
            for stage in data["stages"]
        )
    else:
        stages = DEFAULT_STAGES[strategy]
    batch_size = data.get("batch_size")
    return Rollout(
        strategy=strategy,
        stages=stages,
        batch_size=HostCount.parse(batch_size) if batch_size is not None else None,
        prestage=data["prestage"],
        max_failed=HostCount.parse(data["max_failed"]),
        on_failure=OnFailure(data["on_failure"]),
        dead_man=parse_duration(data["dead_man"]),
        lock_ttl=parse_duration(data["lock_ttl"]),
    )


def _forks(value: Any) -> int | None:
    return None if value is None else int(value)
