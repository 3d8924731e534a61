"""Restart the app's services and run its health checks (of a release, or before a deploy)."""

import json
import os
import shutil
import time

from .base import AgentError, now, substitute
from .context import last_line
from .state import empty_state, load_state, release_config, subst_values


def has_systemd():
    return os.path.isdir("/run/systemd/system") and shutil.which("systemctl") is not None


def restart_verb(st, rid, leaving=None):
    """How the units take release `rid`: `reload` or `restart`, as its spec said. A release adopted
    from before oxzep7 has no spec of its own; the units are the app's, so it is restarted the way
    the release being left was (a reload-capable app stays served through a rollback to it)."""
    cfg = release_config(st, rid)
    if cfg.get("adopted") and leaving and leaving != rid:
        cfg = release_config(st, leaving)
    return "reload" if cfg.get("restart") == "reload" else "restart"


def restart_services(ctx, st, rid, leaving=None):
    cfg = release_config(st, rid)
    services = list(cfg.get("services") or [])
    done = []  # type: list
    env = ctx.command_env(rid)
    if services and has_systemd():
        verb = restart_verb(st, rid, leaving)
        for unit in services:
            restart_one(ctx, done, {"unit": unit, "verb": verb}, f"systemctl {verb} {unit}",
                        ["systemctl", verb, unit], env, timeout=300)
    elif cfg.get("restart_command"):
        command = substitute(cfg["restart_command"], subst_values(st, rid))
        restart_one(ctx, done, {"command": command}, f"restart command `{command}`",
                    command, env, cwd=st["root"], timeout=600, shell=True)
    elif services:
        raise AgentError(
            "restart-failed",
            "services {} are listed but this host has no systemd and the spec has no restart_command".format(
                ", ".join(services)
            ),
        )
    return done


def restart_one(ctx, done, record, what, argv, env, **options):
    """Run one restart; `done` gets `record` with its rc; a failure raises restart-failed."""
    rc, out = ctx.run(argv, env, **options)
    done.append(dict(record, rc=rc))
    if rc != 0:
        raise AgentError("restart-failed", f"{what} exited {rc}: {last_line(out)}", restarted=done)


def check_units(ctx, services):
    """Every unit the spec restarts after a switch exists here: a typo found while preparing,
    not after the first host has switched."""
    if not services or not has_systemd():
        return
    missing = []
    for unit in services:
        rc, out = ctx.run(["systemctl", "show", "--property=LoadState", "--value", unit], dict(os.environ))
        if rc != 0 or out.strip() in ("not-found", "bad-setting", "error"):
            missing.append(unit)
    if missing:
        raise AgentError(
            "unit-not-found",
            "application.services: no systemd unit {} on this host (systemctl list-unit-files shows "
            "what is there)".format(", ".join(missing)),
        )


def restart(ctx):
    st, _ = load_state(ctx.paths)
    ctx.use_env_keys(st.get("config", {}).get("env_keys"))
    return {"changed": True, "restarted": restart_services(ctx, st, st["current"])}


def http_check(check):
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    want = int(check.get("status", 200))
    try:
        resp = opener.open(check["url"], timeout=float(check.get("timeout", 5)))
        status, body = resp.status, resp.read(65536)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(65536)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    text = body.decode("utf-8", "replace")
    if status != want:
        return False, f"status {status} (wanted {want}): {last_line(text)[:600]}"
    if check.get("contains") and check["contains"] not in text:
        return False, f"status {status} but the body lacks {check['contains']!r}"
    return True, f"status {status}"


def run_checks(ctx, st, rid):
    values = subst_values(st, rid)
    results = []
    env = ctx.command_env(rid)
    for check in (release_config(st, rid).get("health") or {}).get("checks") or []:
        if "http" in check:
            http = dict(check["http"], url=substitute(check["http"]["url"], values, quote=False))
            ok, detail = http_check(http)
            results.append({"check": "http " + http["url"], "ok": ok, "detail": detail})
        else:
            command = substitute(check["command"], values)
            rc, out = ctx.run(command, env, cwd=st["root"], timeout=300, shell=True)
            results.append(
                {
                    "check": "command " + command,
                    "ok": rc == 0,
                    "detail": f"exit {rc}" + ((": " + last_line(out)[:600]) if out else ""),
                }
            )
    return results


def health(ctx, st, rid, retries=None, interval=None):
    cfg = release_config(st, rid).get("health") or {}
    if not cfg.get("checks"):
        return {"ok": True, "attempts": 0, "checks": [], "seconds": 0,
                "unchecked": "release {} has no health checks of its own{}".format(
                    rid, " (adopted: it ran before oxzep7 managed the app)"
                    if (st["releases"].get(rid) or {}).get("adopted") else "")}
    retries = max(1, int(cfg.get("retries", 10) if retries is None else retries))
    interval = float(cfg.get("interval", 2) if interval is None else interval)
    started = now()
    results = []
    for attempt in range(1, retries + 1):
        results = run_checks(ctx, st, rid)
        if all(r["ok"] for r in results):
            return {"ok": True, "attempts": attempt, "checks": results, "seconds": round(now() - started, 2)}
        if attempt < retries:
            time.sleep(interval)
    failed = next(r for r in results if not r["ok"])
    return {
        "ok": False,
        "attempts": retries,
        "checks": results,
        "failed_check": failed["check"],
        "message": "{}: {}".format(failed["check"], failed["detail"]),
        "seconds": round(now() - started, 2),
    }


def check_health(ctx, rid=None, retries=None, interval=None):
    """The current release's health checks (`rid`, when given, must be current)."""
    st, _ = load_state(ctx.paths)
    ctx.use_env_keys(st.get("config", {}).get("env_keys"))
    rid = rid or st["current"]
    if rid != st["current"]:
        raise AgentError(
            "not-current", "release {} is not current (current is {})".format(rid, st["current"])
        )
    report = health(ctx, st, rid, retries, interval)
    if not report["ok"]:
        raise AgentError(
            "health-failed",
            f"health check failed after {report['attempts']} attempts: {report['message']}",
            health=report,
            release=rid,
        )
    return {"changed": False, "release": rid, "health": report}


def preflight(ctx, req, root=None):
    """Health of what the host runs now, before a deploy changes anything: the current
    release's own checks, or (a release adopted or recorded without them, or no `current`) the
    checks of the spec about to be deployed, given on stdin. Read-only: no state, no lock."""
    paths = ctx.paths
    config = req.get("config") or {}
    if os.path.exists(paths.state) or root:
        st, _ = load_state(paths, root)  # adoption shown, not written
    else:
        st = empty_state(paths.app, root)
    ctx.use_env_keys(config.get("env_keys"))
    rid = st["current"]
    rel = st["releases"].get(rid) if rid else None
    own = rel is not None and not rel.get("adopted") and rel.get("config") is not None
    probe = json.loads(json.dumps(st))
    if rid is None:  # nothing to run the checks "of": {root} and {code} only
        rid = ".none"
        probe["releases"][rid] = {"id": rid, "path": None, "values": {}}
    if not own:
        probe["releases"][rid]["config"] = config
    retries = int((release_config(probe, rid).get("health") or {}).get("retries", 3))
    try:
        report = health(ctx, probe, rid, retries=min(3, retries))  # a running app answers at once
    except AgentError as exc:  # e.g. a placeholder that only the new release can fill
        report = {"ok": False, "attempts": 0, "checks": [], "message": exc.message}
    return {
        "changed": False,
        "current": st["current"],
        "managed": os.path.exists(paths.state),
        "checks_of": "release" if own else "spec",
        "healthy": bool(report["ok"]),
        "health": report,
    }
