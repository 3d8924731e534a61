"""state.json: load (adopting what the host runs), save, releases, their status and config."""

import contextlib
import os
import re
import subprocess

from .base import HISTORY_MAX, STATE_FORMAT, AgentError, iso
from .files import read_json, write_json_atomic


def empty_state(app, root):
    return {
        "format": STATE_FORMAT,
        "app": app,
        "root": root,
        "current": None,
        "previous": None,
        "last_good": None,
        "releases": {},
        "config": {},
        "deadman": None,
        "snapshots": [],
        "history": [],
        "updated": iso(),
    }


def current_link(root):
    """(release id, absolute target) that <root>/current points to; (None, None) without it."""
    link = os.path.join(root, "current")
    if not os.path.lexists(link):
        return None, None
    if not os.path.islink(link):
        raise AgentError(
            "current-not-symlink",
            f"{link} is not a symlink: move it to {root}/releases/<id> and link current to it",
        )
    target = os.path.normpath(os.path.join(root, os.readlink(link)))
    if os.path.dirname(target) == os.path.normpath(os.path.join(root, "releases")):
        return os.path.basename(target), target
    name = re.sub(r"[^A-Za-z0-9._-]", "-", os.path.basename(target)).strip(".-") or "release"
    return "adopted-" + name, target


def probe_interpreter(python):
    """{"executable", "version"} of an interpreter, by running it; None if it does not run."""
    code = "import platform,sys;print(platform.python_version());print(sys.prefix)"
    try:
        proc = subprocess.Popen(
            [python, "-I", "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
        )
        out, _ = proc.communicate(timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    lines = out.splitlines()
    return {"executable": python, "version": lines[0].strip(), "sys_prefix": lines[1].strip()}


def venv_interpreter(venv):
    """What interpreter a venv was made from, from its pyvenv.cfg (no process started)."""
    info = {"executable": None, "version": None, "prefix": None, "managed": False}
    cfg = os.path.join(venv, "pyvenv.cfg")
    try:
        with open(cfg) as handle:
            for line in handle:
                key, _, value = line.partition("=")
                key, value = key.strip(), value.strip()
                if key in ("version", "version_info"):
                    info["version"] = ".".join(value.split(".")[:3])
                elif key == "executable":
                    info["executable"] = value
                elif key == "home" and not info["executable"]:
                    info["executable"] = os.path.join(value, "python3")
    except OSError:
        pass
    return info


def adopt_release(st, rid, target, reason):
    """A release made by hand (or drift) becomes known: status good, it is what was running."""
    venv = os.path.join(target, "venv")
    interp = venv_interpreter(venv)
    try:
        created = iso(os.lstat(target).st_mtime)
    except OSError:
        created = iso()
    st["releases"][rid] = {
        "id": rid,
        "seq": next_seq(st),
        "status": "good",
        "path": target,
        "adopted": True,
        "created": created,
        "updated": iso(),
        "deploy": None,
        "interpreter": interp,
        "spec": None,
        "values": {
            "python": interp.get("executable"),
            "venv": venv,
            "release": target,
            "version": interp.get("version"),
        },
    }
    history(st, "adopt", release=rid, detail=reason)


def history(st, event, **fields):
    entry = {"at": iso(), "event": event}
    entry.update({k: v for k, v in fields.items() if v is not None})
    st["history"].append(entry)
    del st["history"][:-HISTORY_MAX]


def load_state(paths, root=None):
    """The app's state (adopting what the host runs if there is no state yet); (state, changed)."""
    st = read_json(paths.state)
    changed = False
    if st is None:
        if root is None:
            raise AgentError(
                "no-state", f"oxzep7 has no state for {paths.app} on this host (it never deployed it here)"
            )
        st = empty_state(paths.app, root)
        changed = True
    elif st.get("format") != STATE_FORMAT:
        raise AgentError(
            "state-format",
            f"{paths.state} has format {st.get('format')!r}; this agent reads {STATE_FORMAT}",
        )
    if root is not None and os.path.normpath(root) != os.path.normpath(st["root"]):
        raise AgentError(
            "root-mismatch", "state of {} says its root is {}, not {}".format(paths.app, st["root"], root)
        )
    rid, target = current_link(st["root"])
    if rid is not None and rid != st["current"]:
        if rid not in st["releases"]:
            why = "running before oxzep7 managed it" if st["current"] is None else "found live"
            adopt_release(st, rid, target, why)
        else:
            history(
                st,
                "drift",
                release=rid,
                detail="current pointed to {}, state said {}".format(rid, st["current"]),
            )
        if st["current"] is not None:
            st["previous"] = st["current"]
        st["current"] = rid
        if st["releases"][rid]["status"] == "good" and st["last_good"] is None:
            st["last_good"] = rid
        changed = True
    return st, changed


def save_state(paths, st):
    st["updated"] = iso()
    paths.ensure()
    write_json_atomic(paths.state, st)


def release(st, rid):
    rel = st["releases"].get(rid)
    if rel is None:
        raise AgentError(
            "unknown-release",
            "no release {} of {} on this host (known: {})".format(
                rid, st["app"], ", ".join(sorted(st["releases"])) or "none"
            ),
        )
    return rel


def set_status(st, rid, status, **fields):
    rel = release(st, rid)
    rel["status"] = status
    rel["updated"] = iso()
    rel.update(fields)
    manifest = os.path.join(rel["path"], "release.json")
    if not rel.get("adopted") and os.path.isdir(rel["path"]):
        with contextlib.suppress(OSError, IOError):
            write_json_atomic(manifest, release_manifest(rel), mode=0o644)


def release_manifest(rel):
    keys = ("id", "status", "created", "updated", "deploy", "interpreter", "spec", "error")
    return {k: rel.get(k) for k in keys}


def good_order(st):
    """Releases that were good, most recently live first (from history), for rollback targets."""
    seen = []
    for entry in reversed(st["history"]):
        rid = entry.get("to") or entry.get("release")
        if (
            entry["event"] in ("switch", "rollback", "confirm", "adopt", "deadman")
            and rid
            and rid not in seen
        ):
            seen.append(rid)
    for rid in sorted(st["releases"], key=lambda r: age(st, r), reverse=True):
        if rid not in seen:
            seen.append(rid)
    return [r for r in seen if st["releases"].get(r, {}).get("status") == "good"]


def recompute_last_good(st):
    if st["last_good"] and st["releases"].get(st["last_good"], {}).get("status") == "good":
        return
    order = good_order(st)
    st["last_good"] = order[0] if order else None


def release_config(st, rid):
    """What release `rid` was deployed with: its health checks, restart command, services,
    env keys (a rollback or dead-man revert to it uses these, not the newest spec's). A release
    recorded before releases kept their own falls back to the app's last config."""
    rel = st["releases"].get(rid) if rid else None
    if rel is not None and rel.get("config") is not None:
        return rel["config"]
    return st.get("config") or {}


def adopted_config(config):
    """An adopted release (running before oxzep7 managed it) is restarted the way the app is, but
    has no health checks of its own: the first spec's checks may name its new version."""
    own = dict(config or {})
    own["health"] = dict(own.get("health") or {}, checks=[])
    own["adopted"] = True
    return own


def subst_values(st, rid):
    rel = release(st, rid)
    values = dict(rel.get("values") or {})
    values["root"] = st["root"]
    values["code"] = release_config(st, rid).get("code")
    port = release_config(st, rid).get("port")
    values["port"] = str(port) if port is not None else None
    return values


def next_seq(st):
    """Releases are ordered by when they were recorded here (timestamps tie within a second)."""
    return 1 + max([r.get("seq", 0) for r in st["releases"].values()] or [0])


def age(st, rid):
    rel = st["releases"][rid]
    return (rel.get("seq", 0), rel.get("created") or "")
