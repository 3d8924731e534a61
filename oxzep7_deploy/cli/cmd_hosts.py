"""`status`, `history`, `rollback`, `unlock`: an app's hosts, from host state alone."""

from __future__ import annotations

import click

from oxzep7_deploy.cli import runners
from oxzep7_deploy.cli.boundary import JsonCommand, error_boundary, records_root
from oxzep7_deploy.cli.options import (
    app_option,
    execution_node_option,
    inventory_option,
    json_option,
    yes_option,
)
from oxzep7_deploy.cli.output import confirm, emit_json, say
from oxzep7_deploy.cli.progress import ProgressPrinter
from oxzep7_deploy.errors import ExitCode
from oxzep7_deploy.fleet_ops import (
    history_of,
    not_read,
    ordered,
    read_states,
    rollback_app,
    select_target,
    summary_line,
    unlock_app,
)
from oxzep7_deploy.state.host import ReleaseStatus

limit_option = click.option("--limit", help="Only hosts matching this Ansible pattern.")


@click.command("status", cls=JsonCommand)
@inventory_option
@app_option
@limit_option
@execution_node_option
@json_option
@error_boundary
def status_cmd(inventory: tuple[str, ...], app: str, limit: str | None, as_json: bool,
               execution_node: str | None) -> None:
    """Per host: current release, interpreter, previous, last good, bad releases, lock."""
    target = select_target(inventory, app, limit, records_root(), "status",
                           runners.runner_factory(execution_node=execution_node)())
    states = ordered(read_states(target), target.hosts)
    summary = summary_line(states)
    missing = not_read(states)
    if as_json:
        emit_json({"app": app, "summary": summary, "complete": not missing, "not_read": missing,
                   "hosts": {h: s.to_json() for h, s in states.items()}})
        _exit_if_not_read(missing)
        return
    printer = ProgressPrinter()
    rows = []
    for host, s in states.items():
        if s.not_read:
            rows.append([host, s.not_read, "", "", "", "", "", s.error])
            continue
        lock = s.lock.describe() if s.lock else ""
        bad = ", ".join(s.with_status(ReleaseStatus.BAD)) if s.releases else ""
        current = s.current or (f"{s.current_link} (not managed yet)" if s.current_link else "-")
        rows.append([host, current, s.interpreter_version or "", s.previous or "", s.last_good or "",
                     bad, lock, ""])
    printer.table(f"{app}: {summary}", ["host", "current", "python", "previous", "last good",
                                        "bad", "lock", "not read because"], rows)
    say(summary)
    if states and all(s.ok and not s.managed and not s.current_link for s in states.values()):
        say(f"hint: oxzep7 has deployed no app named {app!r} on these hosts; --app takes the "
            "spec's application.name", err=True)
    _exit_if_not_read(missing)


def _exit_if_not_read(missing: dict[str, dict[str, str]]) -> None:
    """Exit 1 when any host could not be read: what was shown is not the whole fleet."""
    if not missing:
        return
    say(f"could not read {len(missing)} host(s): {', '.join(missing)} (the reason is in the "
        "table); check them with `ansible HOST -m ping` and run the command again", err=True)
    raise SystemExit(int(ExitCode.DEPLOY_FAILED))


@click.command("history", cls=JsonCommand)
@inventory_option
@app_option
@limit_option
@execution_node_option
@json_option
@error_boundary
def history_cmd(inventory: tuple[str, ...], app: str, limit: str | None, as_json: bool,
                execution_node: str | None) -> None:
    """Releases and deploys with their outcomes, across the app's hosts."""
    target = select_target(inventory, app, limit, records_root(), "history",
                           runners.runner_factory(execution_node=execution_node)())
    states = ordered(read_states(target), target.hosts)
    doc = history_of(states)
    missing = not_read(states)
    unreachable = [h for h, s in states.items() if s.unreachable]
    if as_json:
        emit_json({"app": app, **doc, "complete": not missing, "unreachable": unreachable,
                   "not_read": missing})
        _exit_if_not_read(missing)
        return
    printer = ProgressPrinter()
    printer.table(f"{app}: releases", ["release", "python", "created", "hosts"], [
        [r["release"], r["interpreter"], r["created"],
         ", ".join(f"{h}:{st}" for h, st in r["hosts"].items())] for r in doc["releases"]])
    printer.table(f"{app}: deploys", ["first", "last", "deploy", "release", "outcome"], [
        [d["first"], d["last"], d["deploy"], d["release"],
         d["outcome"] if d["outcome"] != "mixed"
         else ", ".join(f"{h}: {o}" for h, o in sorted(d["hosts"].items()))]
        for d in doc["deploys"]])
    printer.table(f"{app}: events", ["at", "event", "release", "deploy", "hosts"], [
        [e["at"] if e["last"] == e["at"] else f"{e['at']} … {e['last']}", e["event"],
         e["release"], e["deploy"], ", ".join(sorted(e["hosts"]))]
        for e in doc["events"]])
    if missing:
        printer.table(f"{app}: hosts not read (their history is missing above)",
                      ["host", "not read because", "error"],
                      [[h, m["reason"], m["error"]] for h, m in missing.items()])
    _exit_if_not_read(missing)


@click.command("rollback", cls=JsonCommand)
@inventory_option
@app_option
@click.option("--to", "to_release", help="A release id to go back to (default: previous good).")
@click.option("--force", is_flag=True, help="Break a lock a running deploy holds, and roll back.")
@limit_option
@yes_option
@execution_node_option
@json_option
@error_boundary
def rollback_cmd(inventory: tuple[str, ...], app: str, to_release: str | None, force: bool,
                 limit: str | None, yes: bool, as_json: bool,
                 execution_node: str | None) -> None:
    """Back to the previous good release on every host of the app, from host state alone."""
    target = select_target(inventory, app, limit, records_root(), "rollback",
                           runners.runner_factory(execution_node=execution_node)())
    confirm(f"{'force-' if force else ''}roll back {app} on {len(target.hosts)} host(s)"
             + (f" to {to_release}" if to_release else "") + "?", yes)
    outcome = rollback_app(target, to_release, force)
    if not outcome.complete:
        code = ExitCode.ROLLBACK_INCOMPLETE  # a host was touched and is not back: a person is needed
    elif outcome.nothing_to_do:
        code = ExitCode.USAGE  # untouched, but not where asked: say so, and how to choose
    else:
        code = ExitCode.OK
    hosts = {h: {"ok": r.ok, "status": r.status.value, "task": r.failed_task, "message": r.message,
                 "release": r.result.get("to") or r.result.get("current")}
             for h, r in outcome.results.items()}
    if as_json:
        emit_json({"app": app, "complete": outcome.complete, "exit_code": int(code),
                   "hosts": hosts, "skipped": outcome.skipped,
                   "nothing_to_roll_back": outcome.nothing_to_do})
    else:
        printer = ProgressPrinter()
        printer.table(f"{app}: rollback {'complete' if outcome.complete else 'INCOMPLETE'}",
                      ["host", "result", "detail"],
                      [[h, "rolled back" if d["ok"] else d["status"],
                        d["message"] if not d["ok"] else (d["release"] or "")]
                       for h, d in hosts.items()]
                      + [[h, "skipped", why] for h, why in outcome.skipped.items()]
                      + [[h, "not rolled back", why] for h, why in outcome.nothing_to_do.items()])
        if not outcome.complete:
            say("manual action needed on the hosts above: fix what the detail says, then run "
                "the same rollback again", err=True)
        elif outcome.nothing_to_do:
            say(f"{len(outcome.nothing_to_do)} host(s) had no good release to go back to and were "
                "left as they are: choose one with --to RELEASE (see `history`)", err=True)
    raise SystemExit(int(code))


@click.command("unlock", cls=JsonCommand)
@inventory_option
@app_option
@click.option("--force", is_flag=True, help="Break a lock held by someone else.")
@limit_option
@yes_option
@execution_node_option
@json_option
@error_boundary
def unlock_cmd(inventory: tuple[str, ...], app: str, force: bool, limit: str | None, yes: bool,
               as_json: bool,
               execution_node: str | None) -> None:
    """Release the app's deploy lock on its hosts (yours or expired; any with --force)."""
    target = select_target(inventory, app, limit, records_root(), "unlock",
                           runners.runner_factory(execution_node=execution_node)())
    confirm(f"{'force-' if force else ''}unlock {app} on {len(target.hosts)} host(s)?", yes)
    results = unlock_app(target, force)
    ok = all(r.ok for r in results.values())
    hosts = {h: {"ok": r.ok, "message": r.message, "code": r.result.get("code"),
                 "released": r.result.get("released")}
             for h, r in results.items()}
    if as_json:
        emit_json({"app": app, "ok": ok, "hosts": hosts})
    else:
        for host, d in hosts.items():
            say(f"{host}: {_unlock_word(d) if d['ok'] else 'refused: ' + str(d['message'])}")
    if not ok:
        raise SystemExit(int(ExitCode.USAGE))


def _unlock_word(host: dict[str, object]) -> str:
    released = host.get("released")
    if isinstance(released, dict):
        return f"unlocked (was held by deploy {released.get('deploy')}, owner {released.get('owner')})"
    return "no lock was held"
