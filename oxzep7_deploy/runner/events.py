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


def _unreachable_message(host: str, res: Mapping[str, Any]) -> str:
    """Why `host` could not be reached; with what to do when ssh refused its host key."""
    msg = _message(res)
    text = " ".join(str(res.get(k) or "") for k in ("msg", "stderr", "stdout"))
    if "IDENTIFICATION HAS CHANGED" in text:
        return (f"{msg} {host}'s SSH host key differs from the one in known_hosts: if the host "
                f"was rebuilt, remove the old key with `ssh-keygen -R ADDRESS` and add the new "
                f"one with `ssh-keyscan ADDRESS >> ~/.ssh/known_hosts` (ADDRESS: {host}'s "
                f"ansible_host), after checking its fingerprint; otherwise find out why it changed")
    if "Host key verification failed" in text or "No matching host key" in text:
        return (f"{msg} {host}'s SSH host key is not in known_hosts, and Ansible checks host "
                f"keys (host_key_checking, on by default): check its fingerprint, then add it "
                f"with `ssh-keyscan ADDRESS >> ~/.ssh/known_hosts` (ADDRESS: {host}'s "
                f"ansible_host) or by answering `yes` to a first `ssh` to it")
    return msg


def _become_message(host: str, msg: str) -> str:
    """A become (sudo) password that is missing or wrong: say so, with what to do."""
    lowered = msg.lower()
    if "missing sudo password" in lowered or "missing become password" in lowered:
        return (f"{msg}: sudo on {host} asks for a password: pass -K (--ask-become-pass) to be "
                f"asked for it once, or set ansible_become_password for {host} in the inventory "
                "(best in an Ansible vault)")
    if "incorrect sudo password" in lowered or "incorrect su password" in lowered \
            or "incorrect become password" in lowered:
        return (f"{msg}: the become password was refused on {host}: run again with -K and the "
                f"right password, or fix ansible_become_password for {host}")
    return msg


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
            self._unreachable[host] = (task, _become_message(host, _unreachable_message(host, res)))
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self._failed[host] = (task, _become_message(host, _message(res)))
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
