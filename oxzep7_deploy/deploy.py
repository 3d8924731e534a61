"""One deploy from start to end: load, plan, record, run the engine, report.

The CLI's `apply`, `promote` and `abort` are thin wrappers over these functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oxzep7_deploy.engine import Engine
from oxzep7_deploy.engine_model import HostSteps, Outcome, Progress, ProgressEvent, ProgressHandler
from oxzep7_deploy.errors import UsageError
from oxzep7_deploy.inventory import load_inventory
from oxzep7_deploy.plan import Plan, build_plan
from oxzep7_deploy.plan.release_id import release_id
from oxzep7_deploy.records import DeployRecord, find_deploys, owner
from oxzep7_deploy.runner.request import absolute_sources
from oxzep7_deploy.spec import load_spec
from oxzep7_deploy.spec.model import BuildMode, SourceInstall, Spec

INTERRUPTED = 130  # the exit code of a deploy stopped by SIGINT or SIGTERM: run it again to resume
_FAILED = (Outcome.ROLLED_BACK, Outcome.STOPPED, Outcome.ROLLBACK_INCOMPLETE,
           Outcome.SUCCEEDED_WITHIN_BUDGET)  # over: a re-apply starts a new attempt
StepsFactory = Callable[[Spec, Plan, tuple[str, ...], DeployRecord], HostSteps]
LiveReleases = Callable[[tuple[str, ...], str, tuple[str, ...]], dict[str, str | None]]
BadReleases = Callable[[tuple[str, ...], str, tuple[str, ...]], dict[str, tuple[str, ...]]]
PlatformProbe = Callable[[tuple[str, ...], tuple[str, ...], DeployRecord], dict[str, str]]


@dataclass(frozen=True)
class DeployContext:
    """What a deploy needs that does not come from the spec."""

    records_root: Path
    make_steps: StepsFactory
    probe_platforms: PlatformProbe | None = None  # facts, for build-once-per-platform
    live_releases: LiveReleases | None = None  # what each host runs now, to trust a "done" record
    bad_releases: BadReleases | None = None  # release -> hosts where it is marked bad
    on_event: ProgressHandler | None = None


def prepare_deploy(spec_path: str, inventories: tuple[str, ...], ctx: DeployContext
                   ) -> tuple[Spec, Plan, DeployRecord]:
    """Load and plan; reuse the records of an unfinished deploy of the same release."""
    spec = load_spec(spec_path)
    check_world(spec, spec_path)
    inventory = load_inventory(*inventories)
    targets = inventory.select(spec.targets)
    release = release_id(spec)
    record = DeployRecord(ctx.records_root, spec.name, release)
    attempt = 1
    bad: dict[str, tuple[str, ...]] | None = None
    while True:  # a new attempt, a new release id: the last one failed, or hosts moved on
        if record.exists():
            if not _finished_elsewhere(record, ctx, inventories, spec.application.name, targets):
                break
        elif attempt < _last_attempt(ctx.records_root, spec.name, release):
            pass  # this directory went on to a later attempt before
        else:  # no record here (a fresh directory): the hosts may still know this release as bad
            if ctx.bad_releases is None:
                break
            if bad is None:
                bad = ctx.bad_releases(inventories, spec.application.name, targets)
            if record.release not in bad:
                break
            if ctx.on_event is not None:
                ctx.on_event(ProgressEvent("phase", f"release {record.release} was marked bad on "
                                           f"{', '.join(bad[record.release])} (rolled back "
                                           "before): this deploy is a new attempt"))
        attempt += 1
        record = DeployRecord(ctx.records_root, spec.name, f"{release}.{attempt}")
    if record.exists():  # resume: the same plan as before, platforms included
        plan_doc = record.meta().get("platforms") or {}
        return spec, build_plan(spec, targets, record.release, plan_doc), record
    platforms: dict[str, str] = {}
    sources = absolute_sources(inventories)  # host lists ('h1,h2,') as written
    if ctx.probe_platforms is not None and _needs_platforms(spec):
        builder = outside_build_host(spec, targets, inventory.hosts)
        platforms = ctx.probe_platforms((*targets, *builder), sources, record)
        if builder and builder[0] not in platforms:
            raise UsageError(
                f"{spec.name}: interpreter.install.build_host {builder[0]!r} did not answer the "
                "platform probe (facts); nothing was changed",
                hint=f"check that {builder[0]} is reachable (`ansible {builder[0]} -m ping`), "
                     "or leave build_host out",
            )
    plan = build_plan(spec, targets, record.release, platforms)
    record.start(
        meta={
            "spec": str(Path(spec_path).resolve()),
            "inventories": list(sources),
            "owner": owner(),
            "started": _now(),
            "platforms": platforms,
        },
        plan=plan.to_json(),
    )
    return spec, plan, record


def _last_attempt(records_root: Path, name: str, release: str) -> int:
    """The highest N of the `<release>.N` attempts recorded here (1: none)."""
    found = [r.release.rsplit(".", 1)[1] for r in find_deploys(records_root, name)
             if r.release.startswith(release + ".")]
    return max((int(n) for n in found if n.isdigit()), default=1)


def run_deploy(spec: Spec, plan: Plan, record: DeployRecord, ctx: DeployContext,
               promote_wave: int | None = None, abort: bool = False) -> Progress:
    """Run (or resume, or promote, or abort) the deploy the record describes."""
    progress = record.load_progress() if record.exists() else Progress(plan.name, plan.release)
    if progress.outcome in (Outcome.SUCCEEDED, Outcome.SUCCEEDED_WITHIN_BUDGET, Outcome.ROLLED_BACK,
                            Outcome.STOPPED) and not abort:
        if ctx.on_event is not None:  # finished before: re-applying changes nothing
            state = progress.outcome.value if progress.outcome else "unknown"
            ctx.on_event(ProgressEvent("done", f"already applied: release {plan.release}, {state}"))
        return progress
    if promote_wave is not None and promote_wave not in progress.promoted:
        progress.promoted.append(promote_wave)
    steps = ctx.make_steps(spec, plan, tuple(record.meta()["inventories"]), record)
    engine = Engine(plan, steps, progress, record.save_progress, ctx.on_event,
                    health_interval=spec.health.interval)
    try:
        result = engine.abort() if abort else engine.run()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: record how far it came, then stop
        record.save_progress(progress)
        report = build_report(plan, progress)
        report.update(outcome="interrupted", exit_code=INTERRUPTED)
        record.save_report(report)
        raise
    record.save_report(build_report(plan, result))
    return result


def paused_deploy(records_root: Path, name: str) -> DeployRecord:
    """The deploy of spec `name` that waits at a manual gate."""
    for record in reversed(find_deploys(records_root, name)):
        progress = record.load_progress()
        if progress.outcome is Outcome.PAUSED:
            return record
    raise UsageError(
        f"no paused deploy named {name!r} in {records_root}",
        hint="promote and abort act on a deploy that `apply` left at a `promote: manual` stage; "
             "run them from the directory where apply ran",
    )


def build_report(plan: Plan, progress: Progress) -> dict[str, Any]:
    """The per-host JSON report, written beside the records and printed with --json."""
    outcome = progress.outcome or Outcome.ROLLED_BACK
    return {
        "name": plan.name,
        "app": plan.app,
        "release": plan.release,
        "outcome": outcome.value,
        "exit_code": int(outcome.exit_code),
        "paused_at": (plan.waves[progress.paused_at].name
                      if progress.paused_at is not None else None),
        "waves_done": [w.name for w in plan.waves[: progress.waves_done]],
        "hosts": {
            host: {
                "state": r.state,
                "failed_step": r.failed_step,
                "failed_task": r.failed_task,
                "message": r.message,
            }
            for host, r in progress.hosts.items()
        },
        "finished": _now(),
    }


def _finished_elsewhere(record: DeployRecord, ctx: DeployContext, inventories: tuple[str, ...],
                        app: str, targets: tuple[str, ...]) -> bool:
    """True when a recorded deploy cannot simply be resumed or reported as done.

    A failed deploy is over. A succeeded one is done only while every target still runs its
    release (the hosts are the truth: someone may have rolled back, or hosts were added).
    """
    outcome = record.load_progress().outcome
    if outcome in _FAILED:
        return True
    if outcome is not Outcome.SUCCEEDED or ctx.live_releases is None:
        return False
    live = ctx.live_releases(inventories, app, targets)
    return any(live.get(host) != record.release for host in targets)


def check_world(spec: Spec, spec_path: str) -> None:
    """What `validate` cannot know: a local archive the spec names must be a file on the controller."""
    install = spec.interpreter.install
    url = getattr(install, "url", None)
    if not (isinstance(url, str) and url.startswith("/")) or Path(url).is_file():
        return
    if Path(url).is_dir():
        raise UsageError(
            f"{spec_path}: interpreter.install.url: {url} is a directory on this controller; "
            "the url names the archive file itself",
            hint="give the path of the archive in it (a .tar.xz or .tar.gz file), or an http(s) URL",
        )
    raise UsageError(
        f"{spec_path}: interpreter.install.url: no such file on this controller: {url}",
        hint="fetch the archive first, or give an http(s) URL",
    )


def outside_build_host(spec: Spec, targets: tuple[str, ...], inventory_hosts: tuple[str, ...]
                       ) -> tuple[str, ...]:
    """The build_host when it is not a target (a build box): `(host,)`, else `()`.

    It compiles for its platform and gets nothing of the release. One the inventory does not
    have is refused.
    """
    install = spec.interpreter.install
    if not (isinstance(install, SourceInstall) and install.build is BuildMode.ONCE_PER_PLATFORM
            and install.build_host and install.build_host not in targets):
        return ()
    if install.build_host not in inventory_hosts:
        raise UsageError(
            f"{spec.name}: interpreter.install.build_host {install.build_host!r} is not a host of "
            "the inventory",
            hint="name a host of the inventory (a target or a build box) as the inventory spells "
                 "it, or leave build_host out",
        )
    return (install.build_host,)


def _needs_platforms(spec: Spec) -> bool:
    install = spec.interpreter.install
    return isinstance(install, SourceInstall) and install.build is BuildMode.ONCE_PER_PLATFORM


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
