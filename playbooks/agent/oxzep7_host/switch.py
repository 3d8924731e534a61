"""switch: move `current` to a release (snapshot and dead-man first), then restart and check,
putting the previous release back when either fails; undoing oxzep7's first switch."""

import os

from oxzep7_deploy.rules import fsync_dir

from .base import AgentError, iso, now, pause_at
from .context import last_line
from .deadman import arm, disarm
from .health import has_systemd
from .snapshot import take_snapshot
from .state import history, load_state, recompute_last_good, release, release_config, save_state, set_status


def switch_link(root, rel, point=None):
    """<root>/current -> the release, by rename(2) of a new symlink over it; dir fsync'd. The
    temp links of agents killed before their rename are removed (the guard is held: no other
    agent is between its symlink and its rename)."""
    link = os.path.join(root, "current")
    target = os.path.relpath(rel["path"], root)
    for name in os.listdir(root):
        if name.startswith(".current.tmp-"):
            os.unlink(os.path.join(root, name))
    tmp = os.path.join(root, f".current.tmp-{os.getpid()}")
    os.symlink(target, tmp)
    if point:
        pause_at(point)
    os.rename(tmp, link)
    fsync_dir(root)


def usable(rel):
    if rel.get("adopted"):  # made by hand: its venv may be anywhere; put back as it was found
        if not os.path.isdir(rel["path"]):
            raise AgentError("release-broken", "release {} ({}) is gone".format(rel["id"], rel["path"]))
        return
    python = os.path.join(rel["path"], "venv", "bin", "python")
    if not os.path.exists(python):
        raise AgentError("release-broken", "release {} has no {}".format(rel["id"], python))


def switch_locked(ctx, rid, deploy, deadman, deadman_mode, snapshot_paths, keep):
    """The switch itself: snapshot, arm the dead-man, move `current`; the caller holds the guard."""
    paths = ctx.paths
    st, _ = load_state(paths)
    rel = release(st, rid)
    if st["current"] == rid:
        if rel["status"] == "prepared":
            set_status(st, rid, "live", deploy=deploy or rel.get("deploy"))
        save_state(paths, st)
        return {
            "changed": False,
            "from": st["previous"],
            "to": rid,
            "deadman": st["deadman"],
            "snapshot": None,
        }
    # a release the dead-man took back from this very deploy (its controller was lost) was never
    # judged unhealthy: the deploy, resumed, may switch to it again
    resumed = deploy and (rel.get("bad_reason") or "").startswith(
        f"dead-man: deploy {deploy} was not confirmed")
    if rel["status"] in ("failed", "bad") and not resumed:
        raise AgentError(
            "release-{}".format(rel["status"]),
            "release {} is {} on this host; it is not switched to".format(rid, rel["status"]),
        )
    usable(rel)
    old = st["current"]
    snapshot = None
    if snapshot_paths is not None:  # what is live right now, under the same guard as the switch
        snapshot = take_snapshot(paths, st, snapshot_paths, keep or 5, deploy)
        if snapshot is not None:
            history(st, "snapshot", release=old, deploy=deploy, detail=snapshot["id"])
    if old is None:  # the first switch of an app that had no `current`: how to go back to that
        st["adoption"] = {"release": rid, "deploy": deploy, "at": iso(),
                          "units": unit_states(ctx, release_config(st, rid).get("services"))}
    else:
        st["adoption"] = None  # past the first release: rollbacks go to releases from here on
    if deadman:
        disarm(ctx, st)
        st["deadman"] = arm(ctx, deadman, deploy, old, rid, deadman_mode)
        save_state(paths, st)  # armed before the link moves: a crash in between is covered
        pause_at("switch:deadman")
    switch_link(st["root"], rel, point="switch:tmp-link")
    pause_at("switch:link")  # the link moved, the state not yet: the next load sees the link
    st["previous"], st["current"] = old, rid
    # the switch time (the watch compares the journal since it with the same time before it)
    rel.pop("restarted_at", None)
    set_status(st, rid, "live", deploy=deploy or rel.get("deploy"), switched_at=now())
    history(st, "switch", release=rid, deploy=deploy, to=rid, **{"from": old})
    save_state(paths, st)
    pause_at("switch:state")
    return {"changed": True, "from": old, "to": rid, "deadman": st["deadman"], "snapshot": snapshot}


def first_switch(st):
    """True when the current release is the first one switched to where the app had no
    `current` at all: undoing it means no `current` again (see undo_adoption)."""
    record = st.get("adoption") or {}
    return st["current"] is not None and record.get("release") == st["current"]


def unit_states(ctx, services):
    """{unit: "active" | "inactive" | "failed" | ...} of the app's units now (no systemd: {})."""
    if not services or not has_systemd():
        return {}
    states = {}
    for unit in services:
        _, out = ctx.run(["systemctl", "is-active", unit], dict(os.environ), timeout=60)
        states[unit] = (out.strip().splitlines() or ["unknown"])[-1]
    return states


def undo_adoption(ctx, st, reason, deploy, event="rollback"):
    """Back to how the app was before oxzep7's first switch on this host: no `current`, and
    its units as they were then (active ones restarted, the others stopped); the caller holds
    the guard. The release it leaves is marked bad."""
    paths = ctx.paths
    first = st["current"]
    record = st.get("adoption") or {}
    disarm(ctx, st)
    link = os.path.join(st["root"], "current")
    if os.path.islink(link):
        os.unlink(link)
        fsync_dir(st["root"])
    st["previous"], st["current"] = first, None
    st["adoption"] = None
    if first is not None:
        set_status(st, first, "bad", bad_reason=reason)
    detail = reason + "; no current release, as before oxzep7's first switch"
    history(st, event, deploy=deploy, detail=detail, **{"from": first})
    recompute_last_good(st)
    save_state(paths, st)
    result = {"changed": True, "from": first, "to": None, "restored": None, "reason": reason,
              "units": {}}
    problems = []
    for unit, was in sorted((record.get("units") or {}).items()):
        verb = "restart" if was in ("active", "activating", "reloading") else "stop"
        rc, out = ctx.run(["systemctl", verb, unit], ctx.command_env(), timeout=300)
        result["units"][unit] = {"was": was, "did": verb, "rc": rc}
        if rc != 0:
            problems.append(f"systemctl {verb} {unit} exited {rc}: {last_line(out)}")
    if problems:
        history(st, event + "-incomplete", detail="; ".join(problems))
        save_state(paths, st)
        raise AgentError("rollback-incomplete", "removed current (as before oxzep7's first switch) "
                         "but " + "; ".join(problems), **result)
    return result
