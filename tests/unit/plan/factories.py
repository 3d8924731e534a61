"""Specs built in code for planner tests (the loader has its own tests)."""

from __future__ import annotations

from dataclasses import replace

from oxzep7_deploy.spec.model import (
    Application,
    ExistingInstall,
    HostCount,
    Install,
    Interpreter,
    Rollout,
    SourceInstall,
    Spec,
    Stage,
    Strategy,
)

NO_FAILURES = HostCount(0)


def make_spec(
    strategy: Strategy = Strategy.CANARY,
    stages: tuple[Stage, ...] = (),
    batch_size: int | HostCount | None = None,
    install: Install | None = None,
    prestage: bool = True,
    max_failed: HostCount = NO_FAILURES,
) -> Spec:
    if not stages and strategy is Strategy.CANARY:
        stages = (Stage("canary", HostCount(1)), Stage("all", HostCount(100, True)))
    if not stages and strategy is Strategy.BLUE_GREEN:
        stages = (Stage("all", HostCount(100, True)),)
    return Spec(
        name="app-py313",
        targets="all",
        interpreter=Interpreter(
            version="3.13.5",
            prefix="/opt/oxzep7/python/3.13.5",
            install=install or ExistingInstall("/usr/local/bin/python3.13"),
        ),
        application=Application(name="app", root="/srv/app"),
        rollout=Rollout(
            strategy=strategy,
            stages=stages,
            batch_size=HostCount(batch_size) if isinstance(batch_size, int) else batch_size,
            prestage=prestage,
            max_failed=max_failed,
        ),
        digest="0" * 64,
    )


SOURCE = SourceInstall(url="/srv/Python-3.13.5.tar.xz", sha256="a" * 64)


def with_source(spec: Spec, **changes: object) -> Spec:
    install = replace(SOURCE, **changes)  # type: ignore[arg-type]
    return replace(spec, interpreter=replace(spec.interpreter, install=install))
