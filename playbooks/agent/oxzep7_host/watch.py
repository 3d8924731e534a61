"""watch: the journal of the app's units since the switch against the same-length window before
it (lines matching the patterns, restarts, crashes), and the verdict: ok, failed, inconclusive.

The windows (epoch seconds): the switch moved `current` at S and the restart after it ended at R
(R = S without a restart); `after` is [R, now) and `before` is [S - (now - R), S). The restart
itself (the old release stopping, the new one starting) is in neither.

Counts, per window, over the journal of every unit in the release's `services`:
- matches: lines written by the app (not by systemd) containing any of the patterns, literal
  substrings, case-sensitive;
- restarts: systemd's "Scheduled restart job" lines (a unit restarted by its Restart= policy);
- crashes: systemd's "Main process exited, code=dumped" or "code=killed" lines (an exit by a
  signal; systemd logs a clean stop by SIGTERM at debug level only, so it is not among them),
  and core dumps `coredumpctl` lists for the unit when it is installed.

The verdict (`verdict_of`):
- failed: any crash after the switch; restarts after it beyond `restarts`; or matching lines
  beyond the tolerance: with a quiet `before` (no match) more than `max_new` matches after;
  with a noisy `before` (B matches) more than 2 * B + max_new after (a clear rise over the noise).
- inconclusive: `before` had matches and `after` has some too, but not a clear rise: the new
  lines cannot be told from the baseline.
- ok: otherwise (no match after, or within max_new of a quiet before).
- unavailable: no systemd journal or no units: nothing could be watched (the engine notes it).
"""

import json
import os
import shutil
import subprocess

from .base import AgentError, now
from .context import redact
from .health import has_systemd
from .state import load_state, release_config

SAMPLES = 3  # sample lines kept per window
SAMPLE_CHARS = 300  # each sample line cut to this many characters
RESTART_MARK = "Scheduled restart job"
CRASH_MARKS = ("code=dumped", "code=killed")


def verdict_of(counts, max_new=0, restarts=0):
    """(verdict, reason) from the counts of both windows: see the module's docstring."""
    before, after = counts["before"], counts["after"]
    if after["crashes"] or after.get("core_dumps"):
        n = after["crashes"] + after.get("core_dumps", 0)
        return "failed", "{} crash{} after the switch (exit by signal or core dump)".format(
            n, "es" if n != 1 else "")
    if after["restarts"] > restarts:
        return "failed", "{} unit restart{} after the switch (tolerated: {})".format(
            after["restarts"], "s" if after["restarts"] != 1 else "", restarts)
    base, new = before["matches"], after["matches"]
    if base == 0:
        if new > max_new:
            return "failed", "{} new matching line{} after the switch, none in the same time " \
                             "before it (tolerated: {})".format(new, "s" if new != 1 else "", max_new)
        return "ok", "no new matching lines" if new == 0 else \
            "{} matching line{} after the switch, within max_new {}".format(
                new, "s" if new != 1 else "", max_new)
    if new > 2 * base + max_new:
        return "failed", f"{new} matching lines after the switch against {base} in the same time before " \
                         f"it: more than twice the baseline plus max_new {max_new}"
    if new == 0:
        return "ok", f"no matching lines after the switch ({base} before it)"
    return "inconclusive", f"{new} matching lines after the switch, {base} in the same time before it: " \
                           "the baseline is noisy, so new lines cannot be told from it"


def watch(ctx, rid, settings):
    """The watch of release `rid` (the current one) since its switch; `settings`: patterns,
    max_new, restarts (the spec's `watch`). Read-only."""
    st, _ = load_state(ctx.paths)
    if st["current"] != rid:
        raise AgentError("not-current", "release {} is not the current release here (current: {}); "
                         "nothing to watch".format(rid, st["current"]))
    rel = st["releases"][rid]
    cfg = release_config(st, rid)
    ctx.use_env_keys(cfg.get("env_keys"))
    env = ctx.command_env(rid)  # its values are what the samples must not show
    units = list(cfg.get("services") or [])
    switched = rel.get("switched_at")
    t_now = now()
    result = {"changed": False, "release": rid, "units": units}
    if not units or not has_systemd() or not shutil.which("journalctl") or switched is None:
        why = ("the release lists no systemd units" if not units else
               "this host has no systemd journal" if not has_systemd() or not shutil.which("journalctl")
               else "the release has no switch time recorded (switched by an older agent)")
        result["watch"] = {"verdict": "unavailable", "reason": why + ": nothing watched"}
        return result
    start = float(rel.get("restarted_at") or switched)
    length = max(0.0, t_now - start)
    windows = {"before": (float(switched) - length, float(switched)), "after": (start, t_now)}
    patterns = [p for p in settings.get("patterns") or [] if p]
    counts = {}
    journal = []  # both windows' entries, one journalctl call per unit
    for unit in units:
        journal += read_journal(unit, windows["before"][0], windows["after"][1])
    for name, (since, until) in windows.items():
        entries = [e for e in journal if since <= e["at"] < until]
        counts[name] = count_window(entries, patterns, lambda t: redact(t, env, ctx.secret_keys))
        counts[name]["core_dumps"] = core_dumps(units, since, until)
        counts[name]["window"] = [round(since, 3), round(until, 3)]
    verdict, reason = verdict_of(counts, int(settings.get("max_new") or 0),
                                 int(settings.get("restarts") or 0))
    result["watch"] = {"verdict": verdict, "reason": reason, "seconds": round(length, 1),
                       "patterns": patterns, **counts}
    return result


def count_window(entries, patterns, clean):
    """Counts and samples of one window's journal entries ({"message", "systemd", …} each)."""
    out = {"matches": 0, "restarts": 0, "crashes": 0, "samples": []}  # type: dict
    for entry in entries:
        message = entry["message"]
        if entry["systemd"]:
            if RESTART_MARK in message:
                out["restarts"] += 1
            elif any(mark in message for mark in CRASH_MARKS):
                out["crashes"] += 1
                keep(out["samples"], clean(message))
            continue
        if any(p in message for p in patterns):
            out["matches"] += 1
            keep(out["samples"], clean(message))
    return out


def keep(samples, line):
    if len(samples) < SAMPLES:
        samples.append(line if len(line) <= SAMPLE_CHARS else line[:SAMPLE_CHARS - 3] + "...")


def read_journal(unit, since, until):
    """The unit's journal entries in [since, until): [{"at", "message", "systemd"}]; `systemd`
    is True for the lines systemd itself wrote about the unit."""
    argv = ["journalctl", "-u", unit, "-o", "json", "--no-pager", "-q",
            "--since", f"@{int(since) - 1}", "--until", f"@{int(until) + 2}"]
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,  # noqa: UP022 (3.6)
                              universal_newlines=True, errors="replace")  # noqa: UP021 (3.6)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AgentError("watch-journal", f"journalctl -u {unit} could not be read: {exc}") from None
    if proc.returncode != 0:
        raise AgentError("watch-journal", "journalctl -u {} exited {}: {}".format(
            unit, proc.returncode, (proc.stderr or "").strip()[-300:]))
    entries = []
    for line in proc.stdout.splitlines():
        try:
            doc = json.loads(line)
            at = int(doc.get("__REALTIME_TIMESTAMP")) / 1e6
        except (ValueError, TypeError):
            continue
        if not since <= at < until:
            continue
        entries.append({"at": at, "message": message_text(doc.get("MESSAGE")),
                        "systemd": from_systemd(doc)})
    return entries


def message_text(value):
    """MESSAGE as text: journald gives bytes that are not UTF-8 as a list of numbers."""
    if isinstance(value, list):
        try:
            return bytes(value).decode("utf-8", "replace")
        except (ValueError, TypeError):
            return ""
    return value if isinstance(value, str) else ""


def from_systemd(doc):
    """A line systemd (PID 1, or a user manager) wrote about the unit, not the app's own."""
    return doc.get("_PID") == "1" or doc.get("SYSLOG_IDENTIFIER") == "systemd" or \
        ("UNIT" in doc and "_SYSTEMD_UNIT" in doc and doc.get("_SYSTEMD_UNIT") != doc.get("UNIT"))


def core_dumps(units, since, until):
    """Core dumps of the units in the window, as `coredumpctl` lists them (0 without it)."""
    if not shutil.which("coredumpctl"):
        return 0
    total = 0
    for unit in units:
        argv = ["coredumpctl", "list", "--no-pager", "--no-legend", "-q",
                "--since", f"@{int(since)}", "--until", f"@{int(until) + 1}",
                f"COREDUMP_UNIT={unit}"]
        try:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  timeout=60, universal_newlines=True, env=dict(os.environ))  # noqa: UP021
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode == 0:
            total += len([ln for ln in proc.stdout.splitlines() if ln.strip()])
    return total
