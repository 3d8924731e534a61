"""`audit [SPEC] -i INVENTORY`: what each host has before an upgrade, read-only, table or --json.

Exit status: 0 when every host was audited; 1 when the report is not the whole fleet: some hosts
were unreachable or their probe failed (they are listed as such: `unreachable` and `failed` in
--json, and `summary.complete` is false), as `status` and `history` do; 2 for a usage error, an
invalid spec or inventory; 4 for an internal error.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from oxzep7_deploy.audit import AuditRequest, Target, run_audit
from oxzep7_deploy.cli import runners
from oxzep7_deploy.cli.boundary import JsonCommand, error_boundary, records_root
from oxzep7_deploy.cli.options import host_options, inventory_option, json_option
from oxzep7_deploy.cli.output import emit_json, say
from oxzep7_deploy.cli.progress import PipeSafeConsole
from oxzep7_deploy.errors import ExitCode, UsageError
from oxzep7_deploy.inventory import Inventory, load_inventory
from oxzep7_deploy.records import prune_reads
from oxzep7_deploy.spec import load_spec


@click.command("audit", cls=JsonCommand)
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@inventory_option
@click.option("--limit", help="Only hosts matching this pattern (with SPEC: of its targets).")
@click.option("--path", "paths", multiple=True, metavar="DIR",
              help="Look for virtualenvs under DIR too (repeatable).")
@click.option("--on", "on_date", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Judge end of life on this date instead of today.")
@click.option("--timeout", type=click.IntRange(1, 300), metavar="SECONDS",
              help="SSH connection timeout per host (default: Ansible's, 10-15 s).")
@host_options
@json_option
@error_boundary
def audit_cmd(spec: str | None, inventory: tuple[str, ...], limit: str | None,
              paths: tuple[str, ...], on_date: dt.datetime | None, timeout: int | None,
              verbose: int, ask_become_pass: bool, execution_node: str | None,
              as_json: bool) -> None:
    """Per host: OS, arch, free disk, every Python with its version and end of life, venvs and
    what they run on (broken ones too), systemd units and cron jobs that run Python.

    Venvs are looked for under /opt, the application's root (with SPEC) and each --path, or
    under /srv when neither is given. With SPEC: its targets only, and what the upgrade would
    change on each host (from which version to which) with the risks found beforehand
    (Requires-Python, C extensions, disk). Changes nothing on any host. Exit 0 when the audit
    ran, even if hosts were unreachable: they are reported as such.
    """
    loaded = load_spec(spec) if spec else None
    target = Target.from_spec(loaded) if loaded else None
    inv = load_inventory(*inventory)
    hosts = select_hosts(inv, loaded.targets if loaded else None, limit)
    for path in paths:
        if not path.startswith("/"):
            raise UsageError(f"--path {path}: must be an absolute path on the hosts")
    request = AuditRequest(tuple(inventory), hosts, target, tuple(paths),
                           forks=loaded.ansible.forks if loaded else None,
                           reach_timeout=(timeout or 10) + 5)
    env = {"ANSIBLE_TIMEOUT": str(timeout)} if timeout else {}
    err = PipeSafeConsole(stderr=True, highlight=False)
    if not as_json:
        err.print(f"auditing {len(hosts)} host{'s' if len(hosts) != 1 else ''} (read-only)…")
    started = time.monotonic()
    now = dt.datetime.now(dt.timezone.utc)
    run_dir = _run_dir(now)
    node = execution_node or (loaded.ansible.execution_node if loaded else None)
    doc = run_audit(request, runners.for_command(verbose, ask_become_pass, env, node)(), run_dir,
                    now,
                    on_date.date() if on_date else None)
    (run_dir / "audit.json").write_text(json.dumps(doc, indent=2) + "\n")
    if as_json:
        emit_json(doc)
    else:
        err.print(f"done in {time.monotonic() - started:.1f} s; report saved in "
                  f"{run_dir / 'audit.json'}")
        print_report(doc, _console())
    if not doc["summary"]["complete"]:
        missing = doc["unreachable"] + doc["failed"]
        say(f"not audited: {', '.join(missing)} (the reason is in the report); check them with "
            "`ansible HOST -m ping` and run the audit again", err=True)
        raise SystemExit(int(ExitCode.DEPLOY_FAILED))


def select_hosts(inv: Inventory, targets: str | None, limit: str | None) -> tuple[str, ...]:
    """The spec's targets (or every host), narrowed by --limit, in inventory order."""
    hosts = inv.select(targets) if targets else inv.hosts
    if limit:
        allowed = set(inv.select(limit))
        hosts = tuple(h for h in hosts if h in allowed)
        if not hosts:
            raise UsageError(f"--limit {limit}: none of the {'spec targets' if targets else 'hosts'}"
                             " match it", hint=f"targets: {targets}" if targets else None)
    if not hosts:
        raise UsageError("the inventory has no hosts")
    return tuple(hosts)


def _run_dir(now: dt.datetime) -> Path:
    """A fresh ansible-runner directory under .oxzep7/audits; the oldest ones are pruned."""
    root = records_root() / "audits"
    path = root / now.strftime("%Y%m%dT%H%M%S%fZ")
    path.mkdir(parents=True, exist_ok=True)
    prune_reads(p for p in root.iterdir() if p.is_dir())
    return path


def _console() -> Console:
    """The terminal's width on a terminal; into a file or a pipe, rows that never wrap (grep)."""
    console = PipeSafeConsole(highlight=False)
    return console if console.is_terminal else PipeSafeConsole(highlight=False, width=400)


# ---- the text report ----


def print_report(doc: dict[str, Any], console: Console) -> None:
    for line in header_lines(doc):
        console.print(line)
    _table(console, "fleet", ["host", "status", "os", "arch", "prefix free", "pythons", "EOL",
                              "venvs (broken)", "units", "cron", "upgrade"], fleet_rows(doc))
    for host, data in doc["hosts"].items():
        if data["status"] == "ok":
            os_ = data["os"]
            _table(console, f"{host}: {os_.get('name')} {os_.get('arch')}",
                   ["kind", "what", "runs on", "version", "status"], host_rows(data))
    for host in doc["unreachable"] + doc["failed"]:
        data = doc["hosts"][host]
        console.print(f"[red]{host}: {data['status']}: {data['message']}[/]")


def _table(console: Console, title: str, columns: list[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*("" if c is None else str(c) for c in row))
    console.print(table)


def header_lines(doc: dict[str, Any]) -> list[str]:
    s = doc["summary"]
    lines = [f"audit of {s['hosts']} host(s), {doc['audited_at']}; end of life judged on "
             f"{doc['audit_date']}"]
    if doc.get("target"):
        t = doc["target"]
        lines.append(f"spec {t['spec']}: app {t['app']} ({t['venv']}) to Python {t['version']} "
                     f"at {t['executable']}")
    lines.append(f"{s['audited']} audited, {s['unreachable']} unreachable, {s['failed']} failed; "
                 f"{s['eol_interpreters']} EOL interpreter(s), {s['broken_venvs']} broken venv(s)"
                 + (f", {s['risks']} upgrade risk(s)" if doc.get("target") else ""))
    return lines


def fleet_rows(doc: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for host, d in doc["hosts"].items():
        if d["status"] != "ok":  # its message follows the tables
            rows.append([host, d["status"], "", "", "", "", "", "", "", "", ""])
            continue
        prefix: dict[str, Any] = next((x for x in d["disk"] if x.get("role") == "prefix"), {})
        broken = sum(1 for v in d["venvs"] if v["broken"])
        up = d.get("upgrade")
        upgrade = f"{up['change']}, {len(up['risks'])} risk(s)" if up else ""
        rows.append([host, "ok", f"{d['os'].get('id')} {d['os'].get('release')}",
                     d["os"].get("arch"), _mb(prefix.get("free_mb")), len(d["interpreters"]),
                     sum(1 for i in d["interpreters"] if i["eol"]), f"{len(d['venvs'])} ({broken})",
                     len(d["units"]), len(d["cron"]), upgrade])
    return rows


def eol_text(item: dict[str, Any]) -> str:
    if item.get("eol") is None:
        return "EOL unknown" if item.get("version") else "version unknown"
    if item["eol"]:
        return f"EOL since {item['eol_date']}" if item.get("eol_date") else "EOL"
    return f"supported until {item['eol_date']}"


def host_rows(d: dict[str, Any]) -> list[list[Any]]:
    """One host's findings, a row each: interpreters, venvs, units, cron, disk, upgrade."""
    rows: list[list[Any]] = []
    for i in d["interpreters"]:
        others = [p for p in i["paths"] if p != i["path"]]
        what = i["path"] + (f" (also {', '.join(others)})" if others else "")
        status = eol_text(i) if not i.get("error") else f"error: {i['error']}"
        rows.append(["interpreter", what, ", ".join(i["sources"]), i.get("version") or "?", status])
    for v in d["venvs"]:
        status = "BROKEN: " + "; ".join(v["problems"]) if v["broken"] else eol_text(v)
        what = v["path"] + (f" (= {', '.join(v['aliases'])})" if v.get("aliases") else "")
        rows.append(["venv", what, v.get("base") or "?", v.get("version") or "?", status])
    for u in d["units"]:
        state = ", ".join(x for x in (u.get("enabled"), u.get("sub") or u.get("active")) if x)
        rows.append(["unit", f"{u['unit']} ({state})", _runs_on(u), u.get("version") or "?",
                     _runner_status(u)])
    for c in d["cron"]:
        where = f"{c['file']}:{c['line']}" if c.get("line") else c["file"]
        rows.append(["cron", f"{c.get('user') or '?'}: {c['schedule']} ({where})", _runs_on(c),
                     c.get("version") or "?", _runner_status(c)])
    for x in d["disk"]:
        rows.append(["disk", f"{x['path']} ({x['role']})", f"on {x.get('mount', '?')}", "",
                     f"{_mb(x.get('free_mb'))} free" if "free_mb" in x else x.get("error", "")])
    up = d.get("upgrade")
    if up:
        rows.append(["upgrade", f"{up['app']} ({up['venv']})", up["to"]["interpreter"],
                     up["change"], "target present" if up["to"]["present"] else "target to install"])
        rows += [["risk", r["kind"], "", "", r["message"]] for r in up["risks"]]
        rows += [["note", "", "", "", n] for n in up["notes"]]
    rows += [["warning", "", "", "", w] for w in d.get("warnings", ())]
    return rows


def _runs_on(item: dict[str, Any]) -> str:
    if item.get("venv"):
        return f"{item['python']} (venv on {item.get('interpreter') or '?'})"
    return str(item.get("python"))


def _runner_status(item: dict[str, Any]) -> str:
    return "; ".join(item["problems"]) if item.get("problems") else eol_text(item)


def _mb(value: int | None) -> str:
    if value is None:
        return "?"
    return f"{value / 1024:.1f} GiB" if value >= 10240 else f"{value} MiB"
