"""Run the read-only audit playbook on the hosts and turn each host's answer into a HostProbe."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from oxzep7_deploy.audit.model import AuditRequest, HostProbe
from oxzep7_deploy.audit.report import build_report
from oxzep7_deploy.runner import EventHandler, HostResult, HostStatus, Runner, RunRequest

PLAYBOOK = "audit.yml"
EXTRAVAR = "oxzep7_audit"
REACH_TASK = "Reach the host"  # the playbook's first task: failing it means unreachable


def to_probe(host: str, result: HostResult | None) -> HostProbe:
    """A host's outcome as the audit reports it: ok (with the probe's document), or why not."""
    if result is None or result.status is HostStatus.SKIPPED:
        return HostProbe(host, "failed", "the audit playbook did not run on this host")
    if result.status is HostStatus.UNREACHABLE:
        return HostProbe(host, "unreachable", result.message or "unreachable")
    if result.status is HostStatus.FAILED and result.failed_task == REACH_TASK:
        return HostProbe(host, "unreachable", f"no answer: {result.message or 'timed out'}")
    if result.status is HostStatus.FAILED:
        where = f"{result.failed_task}: " if result.failed_task else ""
        return HostProbe(host, "failed", f"{where}{result.message or 'failed'}",
                         changed=result.changed)
    data: Mapping[str, Any] = result.result
    if data.get("error"):
        return HostProbe(host, "failed", f"the probe failed: {data['error']}", changed=result.changed)
    if "interpreters" not in data:
        return HostProbe(host, "failed", "the probe reported nothing", changed=result.changed)
    return HostProbe(host, "ok", None, MappingProxyType(dict(data)), changed=result.changed)


def run_probes(request: AuditRequest, runner: Runner, data_dir: Path,
               on_event: EventHandler | None = None) -> list[HostProbe]:
    """One ansible-runner call over every host; the probes in the order of `request.hosts`."""
    extravars = {EXTRAVAR: request.probe_config(),
                 "oxzep7_audit_reach_timeout": request.reach_timeout,
                 "oxzep7_audit_timeout": request.budget + 60}
    run = RunRequest(PLAYBOOK, request.inventory, request.hosts, extravars=extravars,
                     forks=request.forks, ident="audit")
    result = runner.run(run, data_dir, on_event)
    return [to_probe(h, result.hosts.get(h)) for h in request.hosts]


def run_audit(request: AuditRequest, runner: Runner, data_dir: Path, now: dt.datetime,
              on: dt.date | None = None, on_event: EventHandler | None = None) -> dict[str, Any]:
    """Audit the hosts; the report document. End of life is judged on `on` (default: now's date)."""
    probes = run_probes(request, runner, data_dir, on_event)
    return build_report(probes, now, on or now.date(), request.target)
