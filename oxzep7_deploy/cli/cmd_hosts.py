"""`status`, `history`, `rollback`, `unlock`: an app's hosts, from host state alone."""

from __future__ import annotations

import functools
from collections.abc import Callable

import click

from oxzep7_deploy.cli import runners
from oxzep7_deploy.cli.boundary import JsonCommand, error_boundary, records_root
from oxzep7_deploy.cli.options import (
    app_option,
    host_options,
    inventory_option,
    json_option,
    limit_option,
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
from oxzep7_deploy.spec.model import HostCount
from oxzep7_deploy.state.host import HostState, ReleaseStatus


def _host_view(name: str) -> Callable[[Callable[..., None]], click.Command]:
    """`status` and `history`: a read-only view of an app's hosts (--inventory, --app, --limit,
    -v, -K, --execution-node, --json). The function gets the app, each selected host's state in
    inventory order, and as_json."""
    def decorate(func: Callable[..., None]) -> click.Command:
        def command(inventory: tuple[str, ...], app: str, limit: str | None, verbose: int,
                    ask_become_pass: bool, execution_node: str | None, as_json: bool) -> None:
            target = select_target(inventory, app, limit, records_root(), name,
                                   runners.for_command(verbose, ask_become_pass,
                                                       execution_node=execution_node)())
            func(app, ordered(read_states(target), target.hosts), as_json)

        functools.update_wrapper(command, func)
        for option in (error_boundary, json_option, host_options, limit_option, app_option,
                       inventory_option):
            command = option(command)
        return click.command(name, cls=JsonCommand)(command)
    return decorate


@_host_view("status")
def status_cmd(app: str, states: dict[str, HostState], as_json: bool) -> None:
    """Per host: current release, interpreter, previous, last good, bad releases, lock."""
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
    columns = ["host", "current", "python", "previous", "last good", "bad", "lock"]
    if missing:  # the reason's column only where a host could not be read
        columns.append("not read because")
    else:
        rows = [row[:-1] for row in rows]
    printer.table(f"{app}: {summary}", columns, rows)
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


@_host_view("history")
def history_cmd(app: str, states: dict[str, HostState], as_json: bool) -> None:
    """Releases and deploys with their outcomes, across the app's hosts."""
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


def _gap(seconds: object) -> str:
    """`0.42 s`; empty where nothing was measured (no application.port)."""
    return f"{seconds:.2f} s" if isinstance(seconds, (int, float)) else ""


def _host_count(_ctx: click.Context, _param: click.Parameter, value: str | None
                ) -> HostCount | None:
    if value is None:
        return None
    try:
        count = HostCount.parse(int(value) if value.isdigit() else value)
    except ValueError:
        count = None
    if count is None or count.value == 0:
        raise click.BadParameter(f"{value!r} is not a number of hosts (1 or more) or a percentage "
                                 'from "1%" to "100%"')
    return count


@click.command("rollback", cls=JsonCommand)
@inventory_option
@app_option
@click.option("--to", "to_release", help="A release id to go back to (default: previous good).")
@click.option("--force", is_flag=True, help="Break a lock a running deploy holds, and roll back.")
@click.option("--batch-size", callback=_host_count, metavar="N|N%",
              help="Hosts switched back at once: a number, or a percentage of the selected hosts "
                   "(rounded up). Default: half of them (at least one), so the app keeps serving.")
@click.option("--all-at-once", is_flag=True, help="Switch every selected host back at once.")
@limit_option
@host_options
@yes_option
@json_option
@error_boundary
def rollback_cmd(inventory: tuple[str, ...], app: str, to_release: str | None, force: bool,
                 batch_size: HostCount | None, all_at_once: bool, limit: str | None, yes: bool,
                 verbose: int, ask_become_pass: bool, execution_node: str | None,
                 as_json: bool) -> None:
    """Back to the previous good release on every host of the app, from host state alone.

    Hosts go back in batches, each restarted and health-checked before the next; a batch that
    does not come back healthy stops the rest."""
    if batch_size is not None and all_at_once:
        raise click.UsageError("--batch-size and --all-at-once contradict each other: give one")
    target = select_target(inventory, app, limit, records_root(), "rollback",
                           runners.for_command(verbose, ask_become_pass,
                                               execution_node=execution_node)())
    confirm(f"{'force-' if force else ''}roll back {app} on {len(target.hosts)} host(s)"
             + (f" to {to_release}" if to_release else "") + "?", yes)
    outcome = rollback_app(target, to_release, force, batch_size, all_at_once)
    if not outcome.complete:
        code = ExitCode.ROLLBACK_INCOMPLETE  # a host was touched and is not back: a person is needed
    elif outcome.nothing_to_do or outcome.locked:
        code = ExitCode.USAGE  # untouched, but not where asked: say so, and how to choose
    else:
        code = ExitCode.OK
    hosts = {h: {"ok": r.ok, "status": r.status.value, "task": r.failed_task, "message": r.message,
                 "release": r.result.get("to") or r.result.get("current"),
                 "restart_gap_s": r.result.get("restart_gap_s"),
                 "restart_window": r.result.get("restart_window")}
             for h, r in outcome.results.items()}
    if as_json:
        emit_json({"app": app, "complete": outcome.complete, "exit_code": int(code),
                   "hosts": hosts, "skipped": outcome.skipped,
                   "nothing_to_roll_back": outcome.nothing_to_do,
                   "locked": outcome.locked,
                   "batches": [list(b) for b in outcome.batches],
                   "not_tried": outcome.stopped})
    else:
        printer = ProgressPrinter()
        printer.table(f"{app}: rollback {'complete' if outcome.complete else 'INCOMPLETE'}",
                      ["host", "result", "restart gap", "detail"],
                      [[h, "rolled back" if d["ok"] else d["status"], _gap(d["restart_gap_s"]),
                        d["message"] if not d["ok"] else (d["release"] or "")]
                       for h, d in hosts.items()]
                      + [[h, "skipped", "", why] for h, why in outcome.skipped.items()]
                      + [[h, "not rolled back", "", why]
                         for h, why in outcome.nothing_to_do.items()]
                      + [[h, "locked", "", why] for h, why in outcome.locked.items()]
                      + [[h, "not tried", "", why] for h, why in outcome.stopped.items()])
        if outcome.stopped:
            say(f"the rollback stopped after a batch that did not come back healthy: "
                f"{len(outcome.stopped)} host(s) were not tried; fix the failed host(s), then run "
                "the same rollback again", err=True)
        elif not outcome.complete:
            say("manual action needed on the hosts above: fix what the detail says, then run "
                "the same rollback again", err=True)
        else:
            if outcome.locked:
                say(f"{len(outcome.locked)} host(s) were left as they are because another deploy "
                    "holds their lock: wait for it to finish, or break it with --force if it is "
                    "dead, then run the same rollback again", err=True)
            if outcome.nothing_to_do:
                say(f"{len(outcome.nothing_to_do)} host(s) had no good release to go back to and "
                    "were left as they are: choose one with --to RELEASE (see `history`)", err=True)
    raise SystemExit(int(code))


@click.command("unlock", cls=JsonCommand)
@inventory_option
@app_option
@click.option("--force", is_flag=True, help="Break a lock held by someone else.")
@limit_option
@host_options
@yes_option
@json_option
@error_boundary
def unlock_cmd(inventory: tuple[str, ...], app: str, force: bool, limit: str | None, yes: bool,
               verbose: int, ask_become_pass: bool, execution_node: str | None,
               as_json: bool) -> None:
    """Release the app's deploy lock on its hosts (yours or expired; any with --force)."""
    target = select_target(inventory, app, limit, records_root(), "unlock",
                           runners.for_command(verbose, ask_become_pass,
                                               execution_node=execution_node)())
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
