"""confirm a release (disarm the dead-man, mark it good) or roll back to an earlier one."""

import math
import os

from .base import AgentError, iso, now
from .deadman import arm, disarm, timer_alive
from .files import guarded
from .gap import GapProbe
from .health import health, restart_services
from .lock import lock_if_asked, release_lock
from .prune import prune
from .snapshot import restore_snapshot, snapshot_for
from .state import (
    good_order,
    history,
    load_state,
    recompute_last_good,
    release,
    release_config,
    save_state,
    set_status,
)
from .switch import first_switch, switch_link, undo_adoption, usable


def confirm(ctx, rid, deploy=None, prune_keep=None, unlock=False):
    """`rid` is good: disarm the dead-man; then prune to `prune_keep` and drop `deploy`'s lock."""
    paths = ctx.paths
    with guarded(paths):
        st, _ = load_state(paths)
        if st["current"] != rid:
            fired = [h for h in st["history"][-20:] if h["event"] == "deadman"]
            why = " (the dead-man reverted it: {})".format(fired[-1].get("detail")) if fired else ""
            raise AgentError(
                "not-current",
                "release {} is no longer current; {} is{}".format(rid, st["current"], why),
            )
        record = st.get("deadman")
        if record and record.get("deploy") not in (deploy, None):
            raise AgentError(
                "deadman-other", "the armed dead-man belongs to deploy {}".format(record.get("deploy"))
            )
        disarm(ctx, st)
        set_status(st, rid, "good")
        st["last_good"] = rid
        history(st, "confirm", release=rid, deploy=deploy)
        save_state(paths, st)
        report = {"changed": True, "release": rid, "last_good": rid}
        if prune_keep:
            report["pruned"] = prune(paths, prune_keep)
        if unlock and deploy:
            report["unlocked"] = release_lock(paths, deploy)["released"] is not None
    return report


def rollback_target(st, to=None):
    cur = st["current"]
    if to is not None:
        rel = release(st, to)
        if to == cur:
            raise AgentError("already-current", f"release {to} is already current")
        if rel["status"] == "failed":
            raise AgentError("release-failed", f"release {to} failed to prepare; it cannot be rolled back to")
        return to
    for rid in good_order(st):
        if rid != cur:
            return rid
    others = ", ".join(
        "{} ({})".format(rid, rel["status"]) for rid, rel in st["releases"].items() if rid != cur
    )
    raise AgentError(
        "nothing-to-roll-back",
        "{} has no good release to roll back to besides the current one ({}); {}".format(
            st["app"],
            cur or "none",
            f"the others here: {others}; pick one with --to RELEASE" if others else "no other release here",
        ),
    )


def do_rollback(
    ctx, st, target, reason, deploy, check=True, event="rollback", restore=True, retries=None, interval=None
):
    """Restore the target's snapshot, switch to it, restart, health; mark what we left bad."""
    paths = ctx.paths
    rel = release(st, target)
    usable(rel)
    snap = snapshot_for(st, target) if restore else None
    restored = restore_snapshot(paths, snap) if snap else None  # raises before any switch
    disarm(ctx, st)
    old = st["current"]
    switch_link(st["root"], rel)
    st["previous"], st["current"] = old, target
    if old is not None and old != target:
        set_status(st, old, "bad", bad_reason=reason)
    history(st, event, release=target, deploy=deploy, to=target, detail=reason, **{"from": old})
    if rel["status"] in ("bad", "prepared", "live") and not check:
        set_status(st, target, "live")
    recompute_last_good(st)
    save_state(paths, st)
    result = {"changed": True, "from": old, "to": target, "restored": restored, "reason": reason}
    with GapProbe(release_config(st, target).get("port")) as gap:
        _restart_and_check(ctx, st, target, event, result, check, retries, interval)
    result.update(gap.report())
    if check:
        set_status(st, target, "good")
        st["last_good"] = target
        save_state(paths, st)
    return result


def _restart_and_check(ctx, st, target, event, result, check, retries, interval):
    paths = ctx.paths
    try:
        result["restarted"] = restart_services(ctx, st, target, leaving=result.get("from"))
    except AgentError as exc:
        history(st, event + "-incomplete", release=target, detail=exc.message)
        save_state(paths, st)
        raise AgentError(
            "rollback-incomplete",
            f"switched back to {target} but the restart failed: {exc.message}",
            **dict(result, restart=exc.extra),
        ) from exc
    if check:
        report = health(ctx, st, target, retries, interval)
        result["health"] = report
        if not report["ok"]:
            history(st, event + "-unhealthy", release=target, detail=report["message"])
            save_state(paths, st)
            raise AgentError(
                "rollback-unhealthy",
                "switched back to {} but it is unhealthy: {}".format(target, report["message"]),
                **result,
            )


def rollback(ctx, to=None, only_from=None, deploy=None, reason=None, check=True, restore=True,
             retries=None, interval=None, lock=None, unlock=False):
    """Roll back (to `to`, or the newest good release); with `lock` = (ttl, owner, reason) take
    `deploy`'s lock first and with `unlock` release it after, success or not (lock, rollback
    and unlock in one agent call). `only_from`: only if that release is current here."""
    paths = ctx.paths
    if not os.path.exists(paths.state):  # before the guard makes any directory on this host
        load_state(paths)  # raises no-state
    with guarded(paths):
        taken = lock_if_asked(paths, deploy, lock)
        try:
            report = rollback_locked(ctx, to, only_from, deploy, reason, check, restore, retries, interval)
        finally:
            if taken and unlock:
                release_lock(paths, deploy)
    report["lock"] = taken["lock"] if taken else None
    return report


def rollback_locked(ctx, to, only_from, deploy, reason, check, restore, retries, interval):
    st, _ = load_state(ctx.paths)
    ctx.use_env_keys(st.get("config", {}).get("env_keys"))
    if only_from and st["current"] != only_from:
        return {
            "changed": False,
            "from": None,
            "to": st["current"],
            "reason": "release {} is not current here ({} is): nothing to undo".format(
                only_from, st["current"]
            ),
        }
    reason = reason or "rollback requested"
    try:
        target = rollback_target(st, to)
    except AgentError as exc:
        if exc.code != "nothing-to-roll-back" or not first_switch(st):
            raise
        return undo_adoption(ctx, st, reason, deploy)  # the first release: back to none
    return do_rollback(
        ctx, st, target, reason, deploy, check=check, restore=restore, retries=retries, interval=interval
    )


def deadman_fire(ctx, token):
    """Run by the dead-man timer: revert the switch it was armed for, if still armed (`token`)."""
    paths = ctx.paths
    with guarded(paths):
        st, _ = load_state(paths)
        record = st.get("deadman")
        if not record or record.get("token") != token:
            return {"changed": False, "fired": False, "reason": "disarmed"}
        return fire_locked(ctx, st, record)


def fire_locked(ctx, st, record):
    """Revert the switch `record` was armed for; the caller holds the guard."""
    paths = ctx.paths
    st["deadman"] = None
    reason = f"dead-man: deploy {record['deploy']} was not confirmed within {record['seconds']}s"
    if record.get("restarted"):
        reason += "; the host restarted at {} while it was unconfirmed".format(record["restarted"])
    if st["current"] == record["to"] and not record.get("from") and first_switch(st):
        return dict(undo_adoption(ctx, st, reason, record["deploy"], event="deadman"), fired=True)
    if st["current"] != record["to"] or not record.get("from"):
        history(st, "deadman", detail="fired with nothing to undo", deploy=record["deploy"])
        save_state(paths, st)
        return {"changed": False, "fired": True, "reason": "nothing to undo"}
    result = do_rollback(
        ctx, st, record["from"], reason, record["deploy"], check=False, event="deadman"
    )
    return dict(result, fired=True)


def deadman_boot(ctx):
    """Run at boot (oxzep7-deadman@<app>.service): a dead-man armed before the host went down
    lost its timer or process. Re-arm it for the time left, or fire it now if its time has
    passed. Nothing armed (the switch was confirmed): nothing to do."""
    paths = ctx.paths
    if not os.path.exists(paths.state):
        return {"changed": False, "fired": False, "reason": "no state"}
    with guarded(paths):
        st, _ = load_state(paths)
        record = st.get("deadman")
        if not record:
            return {"changed": False, "fired": False, "reason": "nothing armed"}
        if timer_alive(ctx, record):
            return {"changed": False, "fired": False, "reason": "its timer still runs"}
        left = float(record.get("fires_epoch") or 0) - now()
        record = dict(record, restarted=record.get("restarted") or iso())
        due = "due {}".format(record.get("fires"))
        if left <= 0:
            history(st, "deadman-boot", release=record.get("to"), deploy=record.get("deploy"),
                    detail=f"the host restarted while this release was unconfirmed; its dead-man "
                           f"was {due}: reverting now")
            return dict(fire_locked(ctx, st, record), rearmed=False)
        seconds = max(1, math.ceil(left))
        again = arm(ctx, seconds, record.get("deploy"), record.get("from"), record.get("to"),
                    token=record["token"])
        for key in ("seconds", "armed", "fires", "fires_epoch", "restarted"):
            again[key] = record.get(key)
        st["deadman"] = again
        history(st, "deadman-boot", release=record.get("to"), deploy=record.get("deploy"),
                detail=f"the host restarted while this release was unconfirmed; its dead-man "
                       f"re-armed for the {seconds}s left ({due})")
        save_state(paths, st)
    return {"changed": True, "fired": False, "rearmed": True, "deadman": again}
