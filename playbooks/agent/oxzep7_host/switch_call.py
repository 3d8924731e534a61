"""The switch command: switch, restart, run the health checks, and put the previous release
back on the host when the restart or a check fails."""

from .base import AgentError, now, pause_at
from .files import guarded
from .gap import GapProbe
from .health import check_health, restart_services
from .lock import lock_if_asked
from .rollback import do_rollback, rollback_target
from .state import load_state, release_config, save_state
from .switch import first_switch, switch_locked, undo_adoption


def switch(ctx, rid, deploy=None, deadman=0, deadman_mode="auto", snapshot_paths=None, keep=None,
           restart=False, check=False, retries=None, interval=None, lock=None):
    """Switch to `rid`; with `restart` and `check` also restart and run the health checks,
    putting the previous release back on the host when either fails (one agent call for the
    whole switch of a host). `snapshot_paths` (a list, maybe empty): archive them first;
    `lock`: (ttl, owner, reason) to take `deploy`'s lock in the same call."""
    paths = ctx.paths
    with guarded(paths):
        taken = lock_if_asked(paths, deploy, lock)
        if taken:
            pause_at("switch:lock")
        report = switch_locked(ctx, rid, deploy, deadman, deadman_mode, snapshot_paths, keep)
    report["lock"] = taken["lock"] if taken else None
    part = "Restart services"
    st, _ = load_state(paths)
    gap = GapProbe(release_config(st, rid).get("port") if restart else None)
    try:
        with gap:
            if restart:
                ctx.use_env_keys(st.get("config", {}).get("env_keys"))
                report["restarted"] = restart_services(ctx, st, st["current"])
                note_restarted(paths, rid)
            if check:
                part = "Health checks"
                report["health"] = check_health(ctx, rid, retries, interval)["health"]
    except AgentError as exc:
        exc.extra.update(gap.report())
        raise switch_failed(ctx, rid, deploy, report, part, exc) from exc
    if restart:
        report.update(gap.report())
    return report


def switch_failed(ctx, rid, deploy, report, part, exc):
    """The error of a failed restart or health check, after putting the previous release back."""
    health_report = exc.extra.get("health")
    partial = {
        "release": rid,
        "switched": bool(report["changed"]),
        "health": health_report,
        "failed_check": (health_report or {}).get("failed_check"),
        "reverted": None,
        "revert_ok": False,
        "revert_error": None,
        "failed_part": part,
        "restart_gap_s": exc.extra.get("restart_gap_s"),
        "restart_window": exc.extra.get("restart_window"),
    }
    message = exc.message
    paths = ctx.paths
    if report["changed"]:
        try:
            with guarded(paths):
                st, _ = load_state(paths)
                reason = f"{part} failed: {exc.message}"
                if st["current"] != rid:  # the dead-man or someone else moved it already
                    reverted = {"changed": False, "from": None, "to": st["current"]}
                elif report["from"] is None and first_switch(st):
                    reverted = undo_adoption(ctx, st, reason, deploy)
                else:
                    target = report["from"] or rollback_target(st)
                    reverted = do_rollback(ctx, st, target, reason, deploy)
            partial.update(reverted=reverted, revert_ok=True)
            if reverted["to"] is None:
                message += "; back to no current release, as before oxzep7's first switch"
            else:
                message += "; back on release {}".format(reverted["to"])
        except AgentError as revert:
            partial.update(revert_error=revert.message)
            message += "; ROLLBACK INCOMPLETE: " + revert.message
    return AgentError(exc.code, message, exc.exit_status, **partial)


def note_restarted(paths, rid):
    """When the restart after the switch to `rid` ended: the watch's window starts there."""
    with guarded(paths):
        st, _ = load_state(paths)
        rel = st["releases"].get(rid)
        if st["current"] == rid and rel is not None:
            rel["restarted_at"] = now()
            save_state(paths, st)
