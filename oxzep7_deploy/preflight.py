"""Pre-flight: the health of what the targets run, before a deploy changes anything.

A host already unhealthy is named before the first lock, build or switch: `apply` refuses
(exit 2) unless the operator says `--allow-unhealthy`. A host the agent could not check (its
`current` is not a symlink, its state is unreadable) is named the same way; an unreachable host
is left to the deploy, which reports it as it does any step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from oxzep7_deploy.engine_model import ProgressEvent, ProgressHandler
from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.runner.request import HostResult, HostStatus

Results = Mapping[str, HostResult]


@dataclass(frozen=True)
class PreflightReport:
    """Per host: healthy, unhealthy (why), not checked (why), or unreachable."""

    healthy: tuple[str, ...] = ()
    unhealthy: dict[str, str] = field(default_factory=dict)
    unchecked: dict[str, str] = field(default_factory=dict)
    unreachable: tuple[str, ...] = ()

    @property
    def bad(self) -> dict[str, str]:
        return {**self.unhealthy, **self.unchecked}


def read_preflight(results: Results, hosts: Sequence[str]) -> PreflightReport:
    healthy: list[str] = []
    unhealthy: dict[str, str] = {}
    unchecked: dict[str, str] = {}
    unreachable: list[str] = []
    for host in hosts:
        res = results.get(host)
        if res is None or res.status is HostStatus.UNREACHABLE:
            unreachable.append(host)
        elif not res.ok or not res.result:
            unchecked[host] = f"could not be checked: {res.message or 'no answer from the agent'}"
        elif res.result.get("healthy"):
            healthy.append(host)
        else:
            health = res.result.get("health") or {}
            current = res.result.get("current")
            what = f"release {current}" if current else "no current release"
            unhealthy[host] = f"unhealthy ({what}): {health.get('message') or 'health checks failed'}"
    return PreflightReport(tuple(healthy), unhealthy, unchecked, tuple(unreachable))


def check_preflight(
    run: Callable[[Sequence[str]], Results],
    hosts: Sequence[str],
    *,
    spec_path: str,
    allow_unhealthy: bool,
    on_event: ProgressHandler | None = None,
) -> PreflightReport:
    """Run the pre-flight on `hosts`; UsageError (exit 2) naming every host already unhealthy,
    unless `allow_unhealthy` (then they are named and the deploy goes on)."""
    emit = on_event or (lambda _e: None)
    emit(ProgressEvent("phase", "pre-flight: health of what the targets run now", hosts=tuple(hosts)))
    report = read_preflight(run(hosts), hosts)
    bad = report.bad
    if not bad:
        return report
    listing = "; ".join(f"{h}: {why}" for h, why in bad.items())
    if allow_unhealthy:
        emit(ProgressEvent("phase", f"pre-flight: {listing}; going on (--allow-unhealthy): a "
                           "rollback there puts back what runs now, unhealthy as it is",
                           hosts=tuple(bad), ok=False))
        return report
    raise UsageError(
        f"pre-flight: {len(bad)} target(s) unhealthy before anything changed: {listing}; "
        "nothing was changed",
        hint=f"fix what they run first (or drop them from the targets), or "
             f"`oxzep7-deploy apply {spec_path} -i INVENTORY --allow-unhealthy` to deploy anyway",
    )
