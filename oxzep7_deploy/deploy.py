"""One deploy from start to end: the checks before any host, run the engine, report.

Loading and planning are `oxzep7_deploy.prepared` (shared with `plan`); the CLI's `apply`,
`promote` and `abort` are thin wrappers over these functions.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from oxzep7_deploy.engine import Engine
from oxzep7_deploy.engine_model import HostSteps, Outcome, Progress, ProgressEvent, ProgressHandler
from oxzep7_deploy.errors import ExitCode, Oxzep7Error, UsageError
from oxzep7_deploy.plan import Plan
from oxzep7_deploy.plan.release_id import release_id
from oxzep7_deploy.records import DeployRecord, find_deploys
from oxzep7_deploy.rules import sha256_file
from oxzep7_deploy.spec import load_spec, parse_spec
from oxzep7_deploy.spec.loader import YamlError, load_document
from oxzep7_deploy.spec.model import Spec

StepsFactory = Callable[[Spec, Plan, tuple[str, ...], DeployRecord], HostSteps]
LiveReleases = Callable[[tuple[str, ...], str, tuple[str, ...]], dict[str, str | None]]
BadReleases = Callable[[tuple[str, ...], str, tuple[str, ...]], dict[str, tuple[str, ...]]]
PlatformProbe = Callable[[tuple[str, ...], tuple[str, ...], DeployRecord], dict[str, str]]


@dataclass(frozen=True)
class DeployContext:
    """What a deploy needs that does not come from the spec."""

    records_root: Path
    make_steps: StepsFactory | None = None  # None: `plan`, which runs no step
    probe_platforms: PlatformProbe | None = None  # facts, for build-once-per-platform
    live_releases: LiveReleases | None = None  # what each host runs now, to trust a "done" record
    bad_releases: BadReleases | None = None  # release -> hosts where it is marked bad
    on_event: ProgressHandler | None = None


def read_spec_bytes(spec: Spec, spec_path: str) -> bytes:
    """The bytes `spec` was read from, for the records (resume, promote and abort run them)."""
    try:
        data = Path(spec_path).read_bytes()
    except OSError as exc:
        data, why = b"", exc.strerror or str(exc)
    else:
        why = "it was changed while being read"
    if hashlib.sha256(data).hexdigest() != spec.digest:
        raise UsageError(f"{spec_path}: the spec could not be read again for the records: {why}; "
                         "nothing was changed", hint="run the command again")
    return data


# what the records keep in place of each application.env value (secrets stay in the spec file)
NOT_STORED = "(not stored: see the spec file)"


def spec_for_records(spec: Spec, data: bytes) -> bytes:
    """The spec's bytes for the records, with application.env's values left out: they are often
    secrets, and the controller keeps no copy of them (the spec file is the user's own)."""
    if not spec.application.env:
        return data
    import yaml

    doc = load_document(data).data
    doc["application"]["env"] = dict.fromkeys(doc["application"]["env"], NOT_STORED)
    header = (f"# {spec.name}: as applied (sha256 {spec.digest}); application.env's values are "
              "not kept here\n")
    return (header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)).encode()


def _with_env_from_file(stored: Spec, record: DeployRecord, abort: bool,
                        on_event: ProgressHandler | None) -> Spec:
    """The stored spec with its digest as applied and application.env's values read again from
    the spec file (the records keep none); refused when the file no longer has them, but for
    an abort, which goes on without them."""
    try:
        meta = record.meta()
    except (OSError, ValueError):  # records written by hand or damaged: the copy as it is
        meta = {}
    digest = str(meta.get("spec_digest") or stored.digest)
    spec = replace(stored, digest=digest)
    if not stored.application.env:
        return spec
    path = str(meta.get("spec", ""))
    try:
        env = load_spec(path).application.env
    except Oxzep7Error:
        env = {}
    if set(env) == set(stored.application.env):
        return replace(spec, application=replace(spec.application, env=MappingProxyType(dict(env))))
    why = (f"application.env of deploy {record.name} (release {record.release}) is not kept in "
           f"its records, and {path or 'its spec file'} no longer has the same keys "
           f"({', '.join(sorted(stored.application.env))})")
    if not abort:
        raise UsageError(why, hint=f"put those keys back in {path}, or `oxzep7-deploy abort "
                                   f"{record.name}` to roll it back without them")
    if on_event is not None:
        on_event(ProgressEvent("phase", f"{why}: the abort runs without them"))
    return replace(spec, application=replace(spec.application, env=MappingProxyType({})))


def stored_deploy(record: DeployRecord, abort: bool = False,
                  on_event: ProgressHandler | None = None) -> tuple[Spec, Plan]:
    """The spec and plan a recorded deploy runs: the copies in its records, never the spec file
    as it is now (it may have been edited since)."""
    try:
        plan = Plan.from_json(record.plan_document())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise record.damaged("plan.json", "the stored plan", exc, "look at the hosts with "
                             "`oxzep7-deploy status` and `oxzep7-deploy rollback` by hand") from exc
    data = record.spec_bytes()
    if data is not None:
        stored = parse_spec(data, str(record.dir / "spec.yaml"))
        return _with_env_from_file(stored, record, abort, on_event), plan
    # written before the spec was kept beside the plan: the file, if it is still the same spec
    path = str(record.meta().get("spec", ""))
    spec = load_spec(path)
    if release_id(spec) == release_base(record.release):
        return spec, plan
    if not abort:
        raise UsageError(
            f"{path} was edited after deploy {record.name} (release {record.release}) started, "
            "and its records keep no copy of the spec it runs: it cannot continue",
            hint=f"`oxzep7-deploy abort {record.name}` rolls it back; then apply the spec",
        )
    if on_event is not None:
        on_event(ProgressEvent("phase", f"{path} was edited since release {record.release} "
                               "started: the abort runs the stored plan with the spec as it is now"))
    return spec, plan


def release_base(release: str) -> str:
    """The release id without its attempt number: `3.13.5-1a2b3c4d5e.2` -> `3.13.5-1a2b3c4d5e`."""
    head, _, attempt = release.rpartition(".")
    return head if head and attempt.isdigit() and "-" in head else release


def refuse_while_paused(spec: Spec, data: bytes, spec_path: str, records_root: Path) -> None:
    """Refuse (exit 2) a spec other than the one a paused deploy of the same name runs."""
    wanted = release_id(spec)
    for record in find_deploys(records_root, spec.name):
        try:
            progress = record.load_progress()
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if progress.outcome is not Outcome.PAUSED or release_base(record.release) == wanted:
            continue
        try:
            waves = record.plan_document()["waves"]
            gate = ("after wave {}, its watch inconclusive" if progress.paused_for == "watch"
                    else "before wave {}").format(waves[progress.paused_at or 0]['name'])
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            gate = "at a manual gate"
        old = record.spec_bytes()
        changes = spec_changes(old, data) if old is not None else [
            f"its digest (release {release_base(record.release)} -> {wanted})"]
        raise UsageError(
            f"{spec_path}: deploy {spec.name} is paused {gate} (release {record.release}), and "
            f"this spec is not the one it runs; changed: {'; '.join(changes)}; nothing was changed",
            hint=f"finish the paused deploy first: `oxzep7-deploy promote {spec.name}` continues "
                 f"it, `oxzep7-deploy abort {spec.name}` rolls it back; then apply this spec",
        )


def spec_changes(old: bytes, new: bytes, most: int = 8) -> list[str]:
    """What differs between two spec files, key by key: `rollout.stages[1].bake: 30 -> 60`."""
    try:
        before, after = _flatten(load_document(old).data), _flatten(load_document(new).data)
    except YamlError:
        return ["the file (one of them is not YAML)"]
    lines = []
    for key in [*after, *(k for k in before if k not in after)]:
        if key.startswith("application.env."):  # values the records do not keep: keys only
            if (key in before) != (key in after):
                lines.append(f"{key}: {'added' if key in after else 'removed'}")
            continue
        if key not in before:
            lines.append(f"{key}: added ({_show(after[key])})")
        elif key not in after:
            lines.append(f"{key}: removed (was {_show(before[key])})")
        elif before[key] != after[key]:
            lines.append(f"{key}: {_show(before[key])} -> {_show(after[key])}")
    if not lines:
        return ["only comments or layout (the release id follows the file's bytes)"]
    if len(lines) > most:
        lines = [*lines[:most], f"and {len(lines) - most} more"]
    return lines


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(_flatten(item, f"{path}[{index}]"))
        return out
    return {path or "(the document)": value}


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def run_deploy(spec: Spec, plan: Plan, record: DeployRecord, ctx: DeployContext,
               promote_wave: int | None = None, abort: bool = False) -> Progress:
    """Run (or resume, or promote, or abort) the deploy the record describes."""
    progress = record.load_progress() if record.exists() else Progress(plan.name, plan.release)
    if progress.outcome in (Outcome.SUCCEEDED, Outcome.SUCCEEDED_WITHIN_BUDGET, Outcome.ROLLED_BACK,
                            Outcome.FAILED, Outcome.STOPPED) and not abort:
        if ctx.on_event is not None:  # finished before: re-applying changes nothing
            state = progress.outcome.value if progress.outcome else "unknown"
            ctx.on_event(ProgressEvent("done", f"already applied: release {plan.release}, {state}"))
        return progress
    if promote_wave is not None and promote_wave not in progress.promoted:
        progress.promoted.append(promote_wave)
    if ctx.make_steps is None:
        raise ValueError("run_deploy needs a context that makes host steps")
    steps = ctx.make_steps(spec, plan, tuple(record.meta()["inventories"]), record)
    engine = Engine(plan, steps, progress, record.save_progress, ctx.on_event,
                    health_interval=spec.health.interval,
                    log_error=functools.partial(_log_traceback, record))
    try:
        result = engine.abort() if abort else engine.run()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: record how far it came, then stop
        record.save_progress(progress)
        report = build_report(plan, progress)
        report.update(outcome="interrupted", exit_code=int(ExitCode.INTERRUPTED))
        record.save_report(report)
        raise
    record.save_report(build_report(plan, result))
    error = engine.error
    if (isinstance(error, Oxzep7Error) and error.exit_code is ExitCode.USAGE
            and result.outcome is Outcome.FAILED):
        raise error  # e.g. a lock held by another deploy: exit 2, as before any host changed
    return result


def rehearsal_record(records_root: Path, name: str, release: str) -> DeployRecord:
    """A fresh folder for one rehearsal of `release`, beside the release's deploys (never taken
    for a deploy attempt: `apply` of the same spec starts, or resumes, its own)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    record = DeployRecord(records_root, name, f"{release}.rehearsal-{stamp}")
    n = 1
    while record.dir.exists():
        n += 1
        record = DeployRecord(records_root, name, f"{release}.rehearsal-{stamp}-{n}")
    return record


def run_rehearsal(spec: Spec, plan: Plan, record: DeployRecord, ctx: DeployContext) -> Progress:
    """Everything of the deploy before its first switch, on every target (lock, install,
    prepare and verify, the preview); nothing switches. The prepared release stays for `apply`."""
    if ctx.make_steps is None:
        raise ValueError("run_rehearsal needs a context that makes host steps")
    progress = Progress(plan.name, plan.release)
    steps = ctx.make_steps(spec, plan, tuple(record.meta()["inventories"]), record)
    engine = Engine(plan, steps, progress, record.save_progress, ctx.on_event,
                    health_interval=spec.health.interval,
                    log_error=functools.partial(_log_traceback, record))
    try:
        result = engine.rehearse()
    except KeyboardInterrupt:
        record.save_progress(progress)
        raise
    report = build_report(plan, result)
    report["rehearsal"] = True
    record.save_report(report)
    error = engine.error
    if isinstance(error, Oxzep7Error) and error.exit_code is ExitCode.USAGE:
        raise error  # e.g. a lock held by another deploy: exit 2
    return result


def _log_traceback(record: DeployRecord, step: str, exc: Exception) -> str | None:
    """Keep the traceback of an unexpected error beside the deploy's records; its path."""
    path = record.dir / f"error-{step}.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    except OSError:
        return None
    return str(path)


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
        # "gate": paused before wave paused_at; "watch": after it, its watch inconclusive
        "paused_for": progress.paused_for if progress.paused_at is not None else None,
        "waves_done": [w.name for w in plan.waves[: progress.waves_done]],
        "error": progress.error,
        "hosts": {
            host: {
                "state": r.state,
                "failed_step": r.failed_step,
                "failed_task": r.failed_task,
                "message": r.message,
                "restart_gap_s": r.restart_gap_s,
                "restart_window": r.restart_window,
                "watch": r.watch,
            }
            for host, r in progress.hosts.items()
        },
        "finished": _now(),
    }


def check_world(spec: Spec, spec_path: str) -> None:
    """What `validate` cannot know, checked before any host is contacted: a local archive the
    spec names must be a file on the controller, with the sha256 the spec gives."""
    install = spec.interpreter.install
    url = getattr(install, "url", None)
    if not (isinstance(url, str) and url.startswith("/")):
        return
    path = Path(url)
    if path.is_dir():
        raise UsageError(
            f"{spec_path}: interpreter.install.url: {url} is a directory on this controller; "
            "the url names the archive file itself",
            hint="give the path of the archive in it (a .tar.xz or .tar.gz file), or an http(s) URL",
        )
    if not path.is_file():
        raise UsageError(
            f"{spec_path}: interpreter.install.url: no such file on this controller: {url}",
            hint="fetch the archive first, or give an http(s) URL",
        )
    expected = str(getattr(install, "sha256", "") or "").lower()
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise UsageError(
            f"{spec_path}: interpreter.install.url: cannot read {url} on this controller: "
            f"{exc.strerror or exc}",
            hint="make the archive readable by this user, or give an http(s) URL",
        ) from exc
    if expected and actual != expected:
        raise UsageError(
            f"{spec_path}: interpreter.install.sha256: checksum mismatch for {url}: the spec says "
            f"{expected}, the file's sha256 is {actual}; no host was contacted",
            hint="fix interpreter.install.sha256 in the spec (`sha256sum FILE`), or the url if it "
                 "names the wrong file",
        )


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
