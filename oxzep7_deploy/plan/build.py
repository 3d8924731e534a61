"""Pure planning: spec + target hosts + release id -> waves -> batches. No I/O, no clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from oxzep7_deploy.errors import SpecRuleError, UsageError
from oxzep7_deploy.plan.model import Batch, BuildStep, Gate, Plan, Wave, WheelStep
from oxzep7_deploy.spec.model import (
    BuildMode,
    ExistingInstall,
    HostCount,
    PackageInstall,
    PrebuiltInstall,
    SourceInstall,
    Spec,
    Stage,
    Strategy,
)

UNKNOWN_PLATFORM = "unknown"
_ALL = HostCount(100, percent=True)


def build_plan(
    spec: Spec,
    targets: Sequence[str],
    release: str,
    platforms: Mapping[str, str] | None = None,
    forks: int = 50,
) -> Plan:
    """The whole deploy, decided up front: `plan` prints it and `apply` carries it out.

    `forks` is Ansible's (its configuration's, else 50), used where the spec sets none.
    """
    if not targets:
        raise UsageError(f"{spec.name}: no target hosts", hint="check `targets` against the inventory")
    if len(set(targets)) != len(targets):
        raise UsageError(f"{spec.name}: a target host is listed twice")
    hosts = tuple(targets)
    rollout = spec.rollout
    prestage = rollout.prestage or rollout.strategy is Strategy.BLUE_GREEN
    build = plan_builds(spec, hosts, platforms or {})
    return Plan(
        name=spec.name,
        app=spec.application.name,
        release=release,
        strategy=rollout.strategy,
        targets=hosts,
        interpreter={
            "version": spec.interpreter.version,
            "method": spec.interpreter.install.method.value,
            "executable": spec.interpreter.executable,
            "prefix": spec.interpreter.prefix,
        },
        build=build,
        prestage=hosts if prestage else (),
        waves=plan_waves(spec, hosts),
        max_failed=rollout.max_failed.resolve(len(hosts)),
        on_failure=rollout.on_failure,
        dead_man=rollout.dead_man,
        lock_ttl=rollout.lock_ttl,
        forks=spec.ansible.forks if spec.ansible.forks is not None else forks,
        wheels=plan_wheels(spec, build),
        watch=spec.watch,
        mirror=spec.artifacts.mirror,
    )


def plan_waves(spec: Spec, hosts: tuple[str, ...]) -> tuple[Wave, ...]:
    """Split the targets along the stages; a stage that would add no host is dropped."""
    rollout = spec.rollout
    stages = rollout.stages or (Stage("all", _ALL),)
    if rollout.strategy is Strategy.ROLLING:
        stages = (Stage("all", _ALL),)
    health_checks = len(spec.health.checks)
    _check_stages_grow(spec, stages, len(hosts))
    waves: list[Wave] = []
    done = 0
    for stage in stages:
        wanted = max(stage.hosts.resolve(len(hosts)), done + 1)
        upto = min(wanted, len(hosts))
        if upto <= done:
            continue
        wave_hosts = hosts[done:upto]
        waves.append(
            Wave(
                name=stage.name,
                hosts=wave_hosts,
                batches=split_batches(wave_hosts, batch_cap(rollout.batch_size, len(hosts))),
                gate=Gate(promote=stage.promote, health_checks=health_checks, bake=stage.bake),
            )
        )
        done = upto
    if done < len(hosts):  # the schema demands a last stage of 100%: this is only a safety net
        raise UsageError(f"{spec.name}: the stages reach only {done} of {len(hosts)} hosts")
    return tuple(waves)


def _check_stages_grow(spec: Spec, stages: Sequence[Stage], total: int) -> None:
    """Counts and percentages must not decrease, which `validate` cannot tell between a count
    and a percentage: `5` then `"10%"` is fine for 100 targets, not for 20.

    Once a stage reaches every target, the later ones add nothing and are not compared.
    """
    before: tuple[int, Stage] | None = None
    for index, stage in enumerate(stages):
        count = stage.hosts.resolve(total)
        if before is not None and before[1].hosts.resolve(total) >= total:
            return
        if before is not None and count < before[1].hosts.resolve(total):
            first, earlier = before
            raise SpecRuleError(
                f"{spec.name}: rollout.stages[{index}].hosts: {_share(stage, total)} is fewer "
                f"than the {_share(earlier, total)} of stages[{first}]: hosts counts are "
                "cumulative (how many targets run the new release once the stage is done)",
                ("rollout", "stages", index, "hosts"),
                hint=f"make stages[{index}] reach more hosts, or stages[{first}] fewer",
            )
        before = (index, stage)


def _share(stage: Stage, total: int) -> str:
    """`"10%" of the 20 targets (2 hosts)` or `5 hosts`, for messages."""
    count = stage.hosts.resolve(total)
    hosts = f"{count} host{'s' if count != 1 else ''}"
    if stage.hosts.percent:
        return f'"{stage.hosts}" of the {total} targets ({hosts})'
    return hosts


def batch_cap(batch_size: HostCount | None, total: int) -> int | None:
    """Hosts per batch for `total` targets: a percentage rounds up and is at least one host."""
    if batch_size is None:
        return None
    return max(1, batch_size.resolve(total))


def split_batches(hosts: tuple[str, ...], batch_size: int | None) -> tuple[Batch, ...]:
    """Consecutive batches of at most `batch_size` hosts (one batch when there is no cap)."""
    size = batch_size or len(hosts) or 1
    return tuple(hosts[i : i + size] for i in range(0, len(hosts), size))


def plan_builds(
    spec: Spec, hosts: tuple[str, ...], platforms: Mapping[str, str]
) -> tuple[BuildStep, ...]:
    """Per platform: where the interpreter is built or how it arrives.

    `build_host` may be any inventory host: a target builds for its own platform; a host outside
    the targets (a build box) builds for its platform, which `platforms` may hold for it too.
    """
    by_platform: dict[str, list[str]] = {}
    for host in hosts:
        by_platform.setdefault(platforms.get(host, UNKNOWN_PLATFORM), []).append(host)
    install = spec.interpreter.install
    outside: tuple[str, str] | None = None  # the platform a build host outside the targets builds for
    if (isinstance(install, SourceInstall) and install.build is BuildMode.ONCE_PER_PLATFORM
            and install.build_host and install.build_host not in hosts):
        outside = (outside_build_platform(spec, install.build_host, platforms, tuple(by_platform)),
                   install.build_host)
    steps = []
    for platform, members in by_platform.items():
        group = tuple(members)
        if isinstance(install, SourceInstall) and install.build is BuildMode.ONCE_PER_PLATFORM:
            if outside is not None and outside[0] == platform:
                builder = outside[1]
            else:
                builder = install.build_host if install.build_host in group else group[0]
            steps.append(BuildStep(platform, builder, group, "build-and-ship"))
        elif isinstance(install, SourceInstall):
            steps.append(BuildStep(platform, None, group, "build-on-each-host"))
        elif isinstance(install, PackageInstall):
            steps.append(BuildStep(platform, None, group, "install-package"))
        elif isinstance(install, PrebuiltInstall):
            steps.append(BuildStep(platform, None, group, "unpack"))
        elif isinstance(install, ExistingInstall):
            steps.append(BuildStep(platform, None, group, "check"))
    return tuple(steps)


def outside_build_platform(spec: Spec, build_host: str, platforms: Mapping[str, str],
                           target_platforms: Sequence[str]) -> str:
    """Which of the targets' platforms a build host outside the targets builds for.

    Its own platform; while that or the targets' is not known yet (no `oxzep7_platform` in the
    inventory: apply reads facts), the unknown group, else the first platform. A known platform
    that no target has is refused: the tree would not run on any target.
    """
    own = platforms.get(build_host, UNKNOWN_PLATFORM)
    if own in target_platforms:
        return own
    if UNKNOWN_PLATFORM in target_platforms:
        return UNKNOWN_PLATFORM
    if own == UNKNOWN_PLATFORM:
        return target_platforms[0]
    raise SpecRuleError(
        f"{spec.name}: interpreter.install.build_host {build_host!r} is {own}, and no target "
        f"host is: the targets are {', '.join(target_platforms)}",
        ("interpreter", "install", "build_host"),
        hint="name a build host of the targets' platform, or leave build_host out "
             "(the first target of each platform builds then)",
    )


def plan_wheels(spec: Spec, build: Sequence[BuildStep]) -> tuple[WheelStep, ...]:
    """Per platform, where the requirements' wheel set is built (`wheels: once-per-platform`):
    the host that builds the interpreter for it (`install.build_host`), else its first target."""
    app = spec.application
    if app.wheels is not BuildMode.ONCE_PER_PLATFORM or not app.requirements:
        return ()
    return tuple(WheelStep(step.platform, step.build_host or step.hosts[0], step.hosts)
                 for step in build)
