"""The app's deploy lock (lock.json under the state dir): take, refresh, release, break."""

import contextlib
import os

from oxzep7_deploy.rules import fsync_dir

from .base import AgentError, iso, now
from .files import read_json, write_json_atomic
from .state import history, load_state, save_state


def lock_view(lock):
    if lock is None:
        return None
    view = dict(lock)
    view["expired"] = now() >= float(lock.get("expires_epoch", 0))
    return view


def holder_text(lock):
    return "deploy {} (owner {}, reason {!r}) until {}".format(
        lock.get("deploy"), lock.get("owner"), lock.get("reason"), lock.get("expires")
    )


def acquire_lock(paths, deploy, owner, reason, ttl):
    """Take the app's lock for `deploy` (or refresh it); the caller holds the guard."""
    if ttl <= 0:
        raise AgentError("usage", "--ttl must be positive", 3)
    held = read_json(paths.lock)
    stale = None
    # the same deploy run by another owner (another controller or directory) is someone else
    if held is not None and (held.get("deploy") != deploy or held.get("owner") != owner):
        if not lock_view(held)["expired"]:
            view = lock_view(held)
            raise AgentError("locked", f"{paths.app} is locked by {holder_text(held)}", 2, holder=view)
        stale = held
    created = held["created"] if held and stale is None else iso()
    lock = {
        "app": paths.app,
        "deploy": deploy,
        "owner": owner,
        "reason": reason,
        "created": created,
        "ttl": ttl,
        "expires": iso(now() + ttl),
        "expires_epoch": now() + ttl,
    }
    write_json_atomic(paths.lock, lock)
    return {
        "changed": held is None or stale is not None,
        "lock": lock_view(lock),
        "broke_stale": stale,
        "refreshed": held is not None and stale is None,
    }


def release_lock(paths, deploy=None, owner=None, force=False):
    """Drop the app's lock if it is `deploy`'s (or `owner`'s), expired, or with `force`; the
    caller holds the guard."""
    held = read_json(paths.lock)
    if held is None:
        return {"changed": False, "lock": None, "released": None}
    view = lock_view(held)
    if deploy and owner:  # both given: both must match (one deploy id, two owners: see acquire)
        mine = held.get("deploy") == deploy and held.get("owner") == owner
    else:
        mine = (deploy and held.get("deploy") == deploy) or (owner and held.get("owner") == owner)
    if not (force or mine or view["expired"]):
        raise AgentError(
            "locked",
            f"{paths.app} is locked by {holder_text(held)}; unlock --force breaks it",
            2,
            holder=view,
        )
    os.unlink(paths.lock)
    fsync_dir(paths.dir)
    if force and not mine and not view["expired"]:
        with contextlib.suppress(AgentError):
            st, _ = load_state(paths)
            history(st, "unlock-forced", deploy=held.get("deploy"), detail=holder_text(held))
            save_state(paths, st)
    return {"changed": True, "lock": None, "released": view}


def lock_if_asked(paths, deploy, lock):
    """`lock` = (ttl, owner, reason) from `--lock-ttl` on switch, rollback: take the lock for
    `deploy` in the same call (one SSH round trip instead of two); the caller holds the guard."""
    ttl, owner, reason = lock or (None, None, None)
    if not ttl:
        return None
    if not deploy:
        raise AgentError("usage", "--lock-ttl needs --deploy", 3)
    return acquire_lock(paths, deploy, owner or "oxzep7", reason or "", ttl)
