"""preview: the prepared release runs beside the old one on this host, before its switch.

A transient systemd unit `oxzep7-preview-<app>` runs the new release with the host's real
configuration and data: the ExecStart of the app's unit (application.services[0]) with
`<root>/current` replaced by the release's directory, or preview.command; as that unit's User,
Group, WorkingDirectory and Environment; with preview.env (default PORT) set to preview.port.
The release's health checks then run against it with {port} set to preview.port. The unit is
stopped afterwards whatever happened; a failure's message ends with the unit's journal.
"""

import json
import re
import shlex
import socket
import time

from .base import AgentError, substitute
from .health import has_systemd, health
from .state import load_state, release_config, subst_values

SHOWN = ("User", "Group", "WorkingDirectory", "Environment", "EnvironmentFiles", "ExecStart")
JOURNAL_LINES = 8


def unit_name(app):
    return f"oxzep7-preview-{app}"


def preview(ctx, rid):
    st, _ = load_state(ctx.paths)
    rel = st["releases"].get(rid)
    if rel is None or rel.get("status") not in ("prepared", "good", "live"):
        raise AgentError(
            "not-prepared",
            "release {} is not prepared on this host ({}): the preview runs a prepared release".format(
                rid, rel.get("status") if rel else "unknown"),
        )
    cfg = release_config(st, rid)
    settings = cfg.get("preview")
    if not settings:
        raise AgentError("usage", f"release {rid} was prepared without a preview section", 3)
    ctx.use_env_keys(cfg.get("env_keys"))
    if not has_systemd():
        raise AgentError("no-systemd", "the preview runs as a transient systemd unit; this host has "
                         "no systemd: remove the preview section for it")
    port = int(settings["port"])
    values = dict(subst_values(st, rid), port=str(port))
    unit = unit_name(ctx.paths.app)
    env = ctx.command_env(rid)
    props, argv = service_command(ctx, st, rid, settings, values, env)
    stop(ctx, unit, env)  # a leftover of an interrupted preview
    if listening(port):
        raise AgentError(
            "preview-port-busy",
            f"preview.port {port} is already in use on this host: choose a free preview.port "
            "(the preview must answer there, not something else)",
        )
    started = time.time()
    cmd = ["systemd-run", "--unit", unit, "--quiet", "--description",
           f"oxzep7 preview of {ctx.paths.app} release {rid}",
           "--setenv", "{}={}".format(settings.get("env") or "PORT", port)]
    cmd += [f"--property={p}" for p in props]
    rc, out = ctx.run([*cmd, "--", *argv], env, timeout=60)
    report = {"release": rid, "port": port, "unit": unit, "command": argv}
    try:
        if rc != 0:
            raise AgentError("preview-failed", f"the preview unit {unit} could not be started (systemd-run "
                             f"exited {rc}): {out.strip()[-600:]}", **report)
        probe = json.loads(json.dumps(st))
        prel = probe["releases"][rid]
        prel["values"] = dict(prel.get("values") or {}, port=str(port))
        prel["config"] = dict(cfg, port=port)  # {port} is preview.port inside the preview
        result = health(ctx, probe, rid)
        report["health"] = result
        alive = active(ctx, unit, env)
        if result["ok"] and not alive:
            result = dict(result, ok=False, message="the preview unit exited while its checks passed: "
                          f"something else answers on port {port}")
        if not result["ok"]:
            raise AgentError(
                "preview-failed",
                "the preview of release {} on port {} failed: {}; {}".format(
                    rid, port, result["message"], journal(ctx, unit, started, env)),
                **report,
            )
    finally:
        stop(ctx, unit, env)
    return dict(report, changed=False, seconds=round(time.time() - started, 2))


def service_command(ctx, st, rid, settings, values, env):
    """(systemd-run --property values, argv) of the preview: the service's own identity and
    environment, its ExecStart pointed at the release, or preview.command."""
    service = settings.get("service")
    shown = show(ctx, service, env) if service else {}
    release_dir = st["releases"][rid]["path"]
    current = st["root"].rstrip("/") + "/current"

    def moved(text):
        return text.replace(current + "/", release_dir + "/").replace(current, release_dir) if text else text

    props = [f"{key}={shown[key]}" for key in ("User", "Group") if shown.get(key)]
    if shown.get("WorkingDirectory"):
        props.append("WorkingDirectory=" + moved(shown["WorkingDirectory"]))
    if shown.get("Environment"):
        props.append("Environment=" + shown["Environment"])
    for path, optional in environment_files(shown.get("EnvironmentFiles") or ""):
        props.append("EnvironmentFile=" + ("-" if optional else "") + path)
    if settings.get("command"):
        command = substitute(settings["command"], values)
        return props, ["/bin/sh", "-c", "exec " + command]
    argv = exec_start(shown.get("ExecStart") or "")
    if not argv:
        raise AgentError(
            "preview-no-command",
            "the preview runs the ExecStart of {}, which shows none here (systemctl show {}): "
            "set preview.command".format(service or "application.services[0]", service or "UNIT"),
        )
    return props, [moved(arg) for arg in argv]


def show(ctx, unit, env):
    rc, out = ctx.run(["systemctl", "show", unit] + [f"--property={p}" for p in SHOWN], env)
    if rc != 0:
        raise AgentError("unit-not-found", f"systemctl show {unit} exited {rc}: {out.strip()[-300:]}")
    shown = {}  # type: dict
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep and key == "EnvironmentFiles":  # one line per file
            shown[key] = (shown.get(key, "") + " " + value.strip()).strip()
        elif sep and key in SHOWN and key not in shown:
            shown[key] = value.strip()
    return shown


def environment_files(value):
    """(path, optional) of `systemctl show -p EnvironmentFiles`: `/etc/app.env (ignore_errors=no)`."""
    out = []
    for path, flag in re.findall(r"(\S+) \(ignore_errors=(yes|no)\)", value):
        out.append((path, flag == "yes"))
    return out


def exec_start(value):
    """The argv of `systemctl show -p ExecStart`'s `{ path=... ; argv[]=... ; ... }`."""
    marker = "argv[]="
    if marker not in value:
        return []
    text = value.split(marker, 1)[1]
    text = text.split(" ; ", 1)[0]
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def listening(port):
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(1)
                if sock.connect_ex((address, port)) == 0:
                    return True
        except OSError:
            continue
    return False


def active(ctx, unit, env):
    rc, _ = ctx.run(["systemctl", "is-active", "--quiet", unit + ".service"], env)
    return rc == 0


def stop(ctx, unit, env):
    ctx.run(["systemctl", "stop", unit + ".service"], env, timeout=120)
    ctx.run(["systemctl", "reset-failed", unit + ".service"], env)


def journal(ctx, unit, since, env):
    rc, out = ctx.run(["journalctl", "--no-pager", "-o", "cat", "-n", str(JOURNAL_LINES),
                       "-u", unit + ".service", "--since", f"@{int(since) - 1}"], env)
    lines = [ln for ln in (out or "").splitlines() if ln.strip() and not ln.startswith("-- ")]
    if rc != 0 or not lines:
        return f"the preview unit {unit} logged nothing"
    return "the preview unit {} logged: {}".format(unit, " | ".join(ln.strip()[:200] for ln in lines))

