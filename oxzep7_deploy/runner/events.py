"""Turn ansible-runner's event stream into one result per host."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from oxzep7_deploy.runner.request import HostResult, HostStatus

_OUTCOME_EVENTS = {"runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped"}


def _message(res: Mapping[str, Any]) -> str:
    """The most useful line of a failed task's result."""
    for key in ("msg", "stderr", "stdout", "reason"):
        value = res.get(key)
        if isinstance(value, str) and value.strip():
            lines = [ln for ln in value.strip().splitlines() if ln.strip()]
            return lines[-1] if key != "msg" else value.strip()
    return "failed (no message)"


class HostResultCollector:
    """Feeds on events; `results()` then says what happened on each host of the batch."""

    def __init__(self, hosts: Iterable[str]) -> None:
        self._hosts = tuple(hosts)
        self._seen: set[str] = set()
        self._changed: dict[str, int] = {}
        self._failed: dict[str, tuple[str, str]] = {}
        self._unreachable: dict[str, tuple[str, str]] = {}
        self._result: dict[str, Mapping[str, Any]] = {}

    def feed(self, event: Mapping[str, Any]) -> None:
        kind = event.get("event")
        if kind not in _OUTCOME_EVENTS:
            return
        data = event.get("event_data") or {}
        host = data.get("host")
        if not isinstance(host, str):
            return
        self._seen.add(host)
        res = data.get("res") or {}
        task = str(data.get("task") or "")
        if kind == "runner_on_unreachable":
            self._unreachable[host] = (task, _message(res))
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self._failed[host] = (task, _message(res))
        elif kind == "runner_on_ok":
            if res.get("changed"):
                self._changed[host] = self._changed.get(host, 0) + 1
            facts = res.get("ansible_facts") or {}
            if "oxzep7_result" in facts:
                self._result[host] = facts["oxzep7_result"]

    def results(self) -> Mapping[str, HostResult]:
        out: dict[str, HostResult] = {}
        for host in self._hosts:
            changed = self._changed.get(host, 0)
            result = MappingProxyType(dict(self._result.get(host, {})))
            if host in self._unreachable:
                task, msg = self._unreachable[host]
                status, ftask, fmsg = HostStatus.UNREACHABLE, task, msg
            elif host in self._failed:
                task, msg = self._failed[host]
                status, ftask, fmsg = HostStatus.FAILED, task, msg
            elif host not in self._seen:
                status, ftask, fmsg = HostStatus.SKIPPED, None, None
            else:
                status = HostStatus.CHANGED if changed else HostStatus.OK
                ftask, fmsg = None, None
            out[host] = HostResult(host, status, changed, ftask, fmsg, result)
        return MappingProxyType(out)
