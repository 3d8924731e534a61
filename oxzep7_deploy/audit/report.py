"""The audit's one document: every host's probe merged with end-of-life, venv health and risks.

    {"audited_at", "audit_date", "target": {...} | null,
     "hosts": {host: {"status": "ok", "os", "disk", "interpreters", "venvs", "units", "cron",
                      "upgrade": {...} | null, "warnings"}
               | {"status": "unreachable" | "failed", "message"}},
     "unreachable": [hosts], "failed": [hosts], "summary": {...}}

Pure: the probes, the time and the date EOL is judged on come in; nothing is read or run here.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from oxzep7_deploy.audit.eol import branch_of, eol_status
from oxzep7_deploy.audit.model import HostProbe, Target
from oxzep7_deploy.audit.upgrade import plan_upgrade

MiB = 1024 * 1024


def with_eol(item: Mapping[str, Any], version: str | None, on: dt.date) -> dict[str, Any]:
    return {**item, "version": version, **eol_status(version, on).to_json()}


def merge_interpreters(items: Sequence[Mapping[str, Any]], on: dt.date) -> list[dict[str, Any]]:
    return [with_eol(item, item.get("version"), on) for item in items]


def venv_problems(venv: Mapping[str, Any]) -> list[str]:
    """The probe's problems, plus a venv whose python now runs another minor version."""
    problems = list(venv.get("problems") or ())
    built, running = venv.get("version"), venv.get("running_version")
    if built and running and branch_of(built) != branch_of(running):
        problems.append(f"built on Python {built} but its python now runs {running}: "
                        f"lib/python{branch_of(built)}/site-packages is not on its path")
    return problems


def merge_venvs(items: Sequence[Mapping[str, Any]], on: dt.date) -> list[dict[str, Any]]:
    out = []
    for item in items:
        problems = venv_problems(item)
        version = item.get("running_version") or item.get("version")
        out.append({**with_eol(item, version, on), "built_on": item.get("version"),
                    "problems": problems, "broken": bool(problems)})
    return out


def merge_runners(items: Sequence[Mapping[str, Any]], interpreters: Sequence[Mapping[str, Any]],
                  venvs: Sequence[Mapping[str, Any]], on: dt.date) -> list[dict[str, Any]]:
    """Units or cron entries with the version and EOL of the interpreter they end up on."""
    by_real = {i["realpath"]: i for i in interpreters}
    by_venv = {v["path"]: v for v in venvs}
    out = []
    for item in items:
        venv = by_venv.get(item.get("venv") or "")
        problems = []
        if venv is not None:
            version = venv.get("version")
            if venv["broken"]:
                problems.append(f"runs on a broken venv {venv['path']}: " + "; ".join(venv["problems"]))
        else:
            found = by_real.get(item.get("interpreter") or "")
            version = found.get("version") if found else None
            if not item.get("exists"):
                problems.append(f"{item.get('python')} does not exist")
        out.append({**with_eol(item, version, on), "problems": problems})
    return out


def merge_disks(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{**d, "free_mb": d["free_bytes"] // MiB} if "free_bytes" in d else dict(d)
            for d in items]


def merge_host(probe: HostProbe, on: dt.date, target: Target | None) -> dict[str, Any]:
    """One host's part of the document."""
    if probe.status != "ok":
        return {"status": probe.status, "message": probe.message}
    data = probe.data
    interpreters = merge_interpreters(data.get("interpreters") or (), on)
    venvs = merge_venvs(data.get("venvs") or (), on)
    host: dict[str, Any] = {
        "status": "ok",
        "os": dict(data.get("os") or {}),
        "disk": merge_disks(data.get("disk") or ()),
        "interpreters": interpreters,
        "venvs": venvs,
        "units": merge_runners(data.get("units") or (), interpreters, venvs, on),
        "cron": merge_runners(data.get("cron") or (), interpreters, venvs, on),
        "warnings": list(data.get("warnings") or ()),
        "probe_seconds": data.get("seconds"),
    }
    if probe.changed:
        host["warnings"].append(f"Ansible reported {probe.changed} changed task(s) on this host: "
                                "the audit must change nothing, please report it")
    host["upgrade"] = plan_upgrade({**host, "app_probe": data.get("app")}, target, on
                                   ) if target else None
    return host


def summarize(hosts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    ok = {h: d for h, d in hosts.items() if d["status"] == "ok"}
    versions: Counter[str] = Counter()
    eol_hosts = []
    for name, host in ok.items():
        versions.update(i["version"] or "unknown" for i in host["interpreters"])
        if any(i["eol"] for i in host["interpreters"]):
            eol_hosts.append(name)
    risky = [h for h, d in ok.items() if d.get("upgrade") and d["upgrade"]["risks"]]
    return {
        "hosts": len(hosts),
        "audited": len(ok),
        "unreachable": sum(1 for d in hosts.values() if d["status"] == "unreachable"),
        "failed": sum(1 for d in hosts.values() if d["status"] == "failed"),
        "complete": len(ok) == len(hosts),
        "interpreters": sum(len(d["interpreters"]) for d in ok.values()),
        "eol_interpreters": sum(1 for d in ok.values() for i in d["interpreters"] if i["eol"]),
        "hosts_with_eol": eol_hosts,
        "versions": dict(sorted(versions.items())),
        "venvs": sum(len(d["venvs"]) for d in ok.values()),
        "broken_venvs": sum(1 for d in ok.values() for v in d["venvs"] if v["broken"]),
        "units": sum(len(d["units"]) for d in ok.values()),
        "cron": sum(len(d["cron"]) for d in ok.values()),
        "risks": sum(len(d["upgrade"]["risks"]) for d in ok.values() if d.get("upgrade")),
        "hosts_at_risk": risky,
    }


def build_report(probes: Sequence[HostProbe], audited_at: dt.datetime, on: dt.date,
                 target: Target | None = None) -> dict[str, Any]:
    """The whole document, hosts in the order given (inventory order)."""
    hosts = {p.host: merge_host(p, on, target) for p in probes}
    return {
        "audited_at": audited_at.isoformat(timespec="seconds"),
        "audit_date": on.isoformat(),
        "target": target.to_json() if target else None,
        "hosts": hosts,
        "unreachable": [h for h, d in hosts.items() if d["status"] == "unreachable"],
        "failed": [h for h, d in hosts.items() if d["status"] == "failed"],
        "summary": summarize(hosts),
    }
