"""The fleet audit: what Pythons, venvs, units and cron jobs each host has, read-only."""

from oxzep7_deploy.audit.model import AuditRequest, HostProbe, Target
from oxzep7_deploy.audit.report import build_report
from oxzep7_deploy.audit.run import run_audit, run_probes

__all__ = ["AuditRequest", "HostProbe", "Target", "build_report", "run_audit", "run_probes"]
