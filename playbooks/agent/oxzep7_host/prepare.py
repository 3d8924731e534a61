"""prepare: a release directory with a venv, requirements, release.json, verify."""

import contextlib
import errno
import os
import shutil

from .base import _ID, STATUSES, AgentError, iso, now
from .context import last_line, store_env
from .files import guarded, write_json_atomic
from .health import check_units
from .state import (
    adopted_config,
    history,
    load_state,
    next_seq,
    probe_interpreter,
    recompute_last_good,
    release_manifest,
    save_state,
    set_status,
)


def prepare(ctx, req):
    """Build release req["release"] from the controller's request (see build_release)."""
    paths = ctx.paths
    rid = req["release"]
    if not _ID.match(rid):
        raise AgentError("usage", f"invalid release id {rid!r}", 3)
    root = req["root"]
    ctx.use_env_keys(req.get("config", {}).get("env_keys"))
    os.umask(0o022)
    with guarded(paths):
        st, changed = load_state(paths, root)
        st["config"] = req.get("config") or st.get("config") or {}
        rel = st["releases"].get(rid)
        path = os.path.join(root, "releases", rid)
        interp = dict(req["interpreter"])
        if (
            rel is not None
            and rel["status"] in ("prepared", "good", "live")
            and os.path.isfile(os.path.join(path, "venv", "bin", "python"))
            and (rel.get("spec") or {}).get("digest") == req["spec"].get("digest")
            and (rel.get("interpreter") or {}).get("executable") == interp["executable"]
        ):
            save_state(paths, st)
            return {"changed": changed, "release": rel, "already": True}
        if rel is not None and rel["status"] == "bad":
            raise AgentError(
                "release-bad", f"release {rid} was marked bad on this host; deploy with a new release id"
            )
        if rid == st["current"] or (rel is not None and rel["status"] in ("good", "live")):
            raise AgentError(
                "release-exists",
                "release {} is already here ({}), built from another "
                "spec or interpreter; deploy with a new release id".format(
                    rid, rel["status"] if rel else "live"
                ),
            )
        st["releases"].pop(rid, None)
        adopted = [r for r, other in st["releases"].items()
                   if other.get("adopted") and other.get("config") is None]
        for other in adopted:  # what it runs is restarted like the app, checked by none of ours
            st["releases"][other]["config"] = adopted_config(req.get("config"))
        save_state(paths, st)  # adoption (if any) is recorded before anything is built
        store_env(paths, ctx.secret_keys, [rid, *adopted], keep=set(st["releases"]) | {rid})
    check_units(ctx, (req.get("config") or {}).get("services") or [])
    started = now()
    steps = []  # type: list
    try:
        build_release(ctx, req, path, interp, steps)
    except Exception as failure:
        exc = failure if isinstance(failure, AgentError) else AgentError(
            "prepare-failed", f"preparing {rid} failed: {type(failure).__name__}: {failure}")
        if no_space(failure, path):
            exc = disk_full(rid, root, path, exc)
        with guarded(paths):
            st, _ = load_state(paths, root)
            add_release(st, req, path, interp, "failed")
            st["releases"][rid]["error"] = exc.message
            set_status(st, rid, "failed")
            history(st, "prepare-failed", release=rid, deploy=req.get("deploy"), detail=exc.message)
            save_state(paths, st)
        exc.extra.setdefault("steps", steps)
        raise exc from None
    with guarded(paths):
        st, _ = load_state(paths, root)
        add_release(st, req, path, interp, "prepared")
        set_status(st, rid, "prepared")
        history(st, "prepare", release=rid, deploy=req.get("deploy"))
        save_state(paths, st)
        rel = st["releases"][rid]
    return {
        "changed": True,
        "release": rel,
        "already": False,
        "steps": steps,
        "seconds": round(now() - started, 2),
    }


def no_space(failure, path):
    """The build failed because the filesystem filled: a write of ours or a command said so,
    or (venv hides what its ensurepip said) the filesystem of `path` is full now."""
    if isinstance(failure, OSError) and failure.errno == errno.ENOSPC:
        return True
    text = " ".join(str(x) for x in (failure.message, failure.extra.get("output")) if x) \
        if isinstance(failure, AgentError) else str(failure)
    return "No space left on device" in text or "[Errno 28]" in text or full(path)


def room(path):
    """(bytes, inodes) free to this process (root may use the reserved blocks) where `path` is."""
    st = os.statvfs(path)
    if os.geteuid() == 0:
        return st.f_bfree * st.f_frsize, (st.f_ffree if st.f_files else None)
    return st.f_bavail * st.f_frsize, (st.f_favail if st.f_files else None)


def full(path, slack=1 << 20):
    """Less than `slack` bytes (or no inode) left on the filesystem of `path`."""
    try:
        free, inodes = room(path)
    except OSError:
        return False
    return free < slack or inodes == 0


def disk_usage(path):
    """Bytes `path` takes on disk (its blocks), 0 if it is not there."""
    total = 0
    for top, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(top, name)).st_blocks * 512
    return total


def disk_full(rid, root, path, exc):
    """The error of a release whose build filled the disk under `root`: the partial release
    directory is removed (nothing half-built is left), and the message says how much it had
    written (it needs more than that) and how much is free there now."""
    written = disk_usage(path)
    shutil.rmtree(path, ignore_errors=True)
    where = os.path.normpath(root)
    while not os.path.isdir(where):
        where = os.path.dirname(where)
    free = room(where)[0]
    message = (
        f"no space left on device under {where} while building release {rid}: it needs more than "
        f"{mb(written)} (written when the disk filled), {where} has {mb(free)} free; the partial "
        f"release {path} was removed and nothing was switched: free space there and deploy again"
    )
    extra = dict(exc.extra, no_space=True, path=where, needed_bytes=written, free_bytes=free,
                 cause=exc.message)
    return AgentError("no-space", message, exc.exit_status, **extra)


def mb(n):
    return f"{n / (1 << 20):.1f} MB"


def add_release(st, req, path, interp, status):
    record = new_release_record(req, path, interp, status)
    record["seq"] = next_seq(st)
    st["releases"][req["release"]] = record
    return record


def new_release_record(req, path, interp, status):
    venv = os.path.join(path, "venv")
    return {
        "id": req["release"],
        "status": status,
        "path": path,
        "adopted": False,
        "created": iso(),
        "updated": iso(),
        "deploy": req.get("deploy"),
        "interpreter": interp,
        "spec": req.get("spec"),
        "config": req.get("config"),  # its own checks, restart, env keys: rollbacks to it use them
        "values": {
            "python": interp["executable"],
            "venv": venv,
            "release": path,
            "version": req.get("version") or interp.get("version"),
        },
    }


def build_release(ctx, req, path, interp, steps):
    """venv with the target interpreter, requirements, release.json, verify; AgentError if any fails."""
    env = ctx.command_env(req["release"])
    if os.path.lexists(path):
        shutil.rmtree(path)
    os.makedirs(path, 0o755)
    found = probe_interpreter(interp["executable"])
    if found is None:
        raise AgentError(
            "interpreter", "interpreter {} does not run on this host".format(interp["executable"])
        )
    want = req.get("version")
    if want and found["version"] != want:
        raise AgentError(
            "interpreter",
            "interpreter {} is Python {}, not {}".format(interp["executable"], found["version"], want),
        )
    interp["version"] = found["version"]
    venv = os.path.join(path, "venv")
    step(ctx, steps, "venv", [interp["executable"], "-m", "venv", venv], env)
    if req.get("requirements"):
        pip = [
            os.path.join(venv, "bin", "python"),
            "-m",
            "pip",
            "install",
            "--no-input",
            "--disable-pip-version-check",
            *list(req.get("pip_args") or []),
            "-r",
            req["requirements"],
        ]
        step(ctx, steps, "requirements", pip, env)
        pip_check(ctx, steps, venv, env)
    rel = new_release_record(req, path, interp, "prepared")
    write_json_atomic(os.path.join(path, "release.json"), release_manifest(rel), mode=0o644)
    cwd = req.get("code") if req.get("code") and os.path.isdir(req["code"]) else path
    active = dict(env, VIRTUAL_ENV=venv, PATH=os.path.join(venv, "bin") + os.pathsep + env.get("PATH", ""))
    active.pop("PYTHONHOME", None)
    for command in req.get("verify") or []:  # in the new release: its venv is the active one
        step(ctx, steps, "verify", command, active, cwd=cwd, shell=True)


def pip_check(ctx, steps, venv, env):
    """`pip check` in the new venv: a dependency set that does not hold together (a package
    needs one that is missing, or another version than the one installed, as `--no-deps` or a
    hand-edited lock leaves it) fails prepare, so the release is never switched to."""
    argv = [os.path.join(venv, "bin", "python"), "-m", "pip", "check", "--disable-pip-version-check"]
    started = now()
    rc, out = ctx.run(argv, env)
    steps.append({"step": "pip-check", "command": " ".join(argv), "rc": rc,
                  "seconds": round(now() - started, 2)})
    if rc == 0:
        return
    lines = [ln.strip() for ln in (out or "").splitlines() if ln.strip()]
    steps[-1]["output"] = out
    shown = "; ".join(lines[:10]) + (f"; and {len(lines) - 10} more" if len(lines) > 10 else "")
    raise AgentError(
        "pip-check-failed",
        "pip check failed: the release's requirements do not hold together: {} (pin the "
        "missing or conflicting packages in the requirements file; the release is not switched "
        "to)".format(shown or f"exit {rc}"),
        output=out,
        failed_command=" ".join(argv),
        pip_check=lines,
    )


def step(ctx, steps, name, argv, env, cwd=None, shell=False):
    started = now()
    rc, out = ctx.run(argv, env, cwd=cwd, shell=shell)
    shown = argv if shell else " ".join(argv)
    steps.append({"step": name, "command": shown, "rc": rc, "seconds": round(now() - started, 2)})
    if rc != 0:
        steps[-1]["output"] = out
        raise AgentError(
            f"{name}-failed",
            f"{name} failed: `{shown}` exited {rc}: {last_line(out) or '(no output)'}",
            output=out,
            failed_command=shown,
        )


def record_release(paths, rid, status):
    if status not in STATUSES:
        raise AgentError("usage", "status must be one of {}".format(", ".join(STATUSES)), 3)
    with guarded(paths):
        st, _ = load_state(paths)
        set_status(st, rid, status)
        if status == "good":
            st["last_good"] = rid
        recompute_last_good(st)
        history(st, "record", release=rid, detail=status)
        save_state(paths, st)
    return {"changed": True, "release": st["releases"][rid]}
