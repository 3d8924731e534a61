"""The watch's verdicts as the engine takes them: a finding per host, and which hosts fail.

The agent (playbooks/agent/oxzep7_host/watch.py) judges each host: ok, failed, inconclusive or
unavailable. Here `failed` becomes a failed host (on_failure applies), and `inconclusive` what
the spec's `watch.inconclusive` says: pause (the engine pauses like a manual gate), fail, or
ignore (noted only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from oxzep7_deploy.engine_model import Results
from oxzep7_deploy.runner.request import HostResult, HostStatus
from oxzep7_deploy.spec.model import Inconclusive, Watch

Step = Callable[[Sequence[str]], Results]


def finding(wave: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """One host's finding for the report and --json, from the agent's `watch` document."""
    out: dict[str, Any] = {"wave": wave, "verdict": str(doc.get("verdict") or "unknown"),
                           "reason": str(doc.get("reason") or "")}
    before, after = doc.get("before"), doc.get("after")
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        out["seconds"] = doc.get("seconds")
        for key in ("matches", "restarts", "crashes", "core_dumps"):
            out[f"{key}_before"] = before.get(key, 0)
            out[f"{key}_after"] = after.get(key, 0)
        for name, window in (("after", after), ("before", before)):
            if window.get("samples"):
                out[f"samples_{name}"] = list(window["samples"])
    return out


def unwatched(wave: str) -> dict[str, Any]:
    return {"wave": wave, "verdict": "unwatched",
            "reason": f"stage {wave} has no bake, so no watch window"}


def judging(step: Step, wave: str, watch: Watch, found: dict[str, dict[str, Any]]) -> Step:
    """`step` whose results fail the hosts the watch failed (and, with `inconclusive: fail`, the
    inconclusive ones); the finding of every host it judged goes into `found`."""
    def judged(hosts: Sequence[str]) -> Results:
        out: dict[str, HostResult] = {}
        for host, res in step(hosts).items():
            doc = res.result.get("watch") if res.ok else None
            if isinstance(doc, Mapping):
                found[host] = finding(wave, doc)
                verdict = found[host]["verdict"]
                if verdict == "failed" or (verdict == "inconclusive"
                                           and watch.inconclusive is Inconclusive.FAIL):
                    res = replace(res, status=HostStatus.FAILED, failed_task="watch",
                                  message=(f"{verdict}: " if verdict != "failed" else "")
                                  + found[host]["reason"] + _sample(found[host]))
            out[host] = res
        return out
    return judged


def held(found: Mapping[str, Mapping[str, Any]], watch: Watch, passed: Sequence[str]
         ) -> list[str]:
    """The hosts whose inconclusive watch pauses the deploy (with `inconclusive: pause`)."""
    if watch.inconclusive is not Inconclusive.PAUSE:
        return []
    return [h for h in passed if (found.get(h) or {}).get("verdict") == "inconclusive"]


def evidence(found: Mapping[str, Mapping[str, Any]], hosts: Sequence[str]) -> str:
    """The evidence of the inconclusive hosts, one clause each, for the pause's message."""
    parts = []
    for host in hosts:
        f = found.get(host) or {}
        parts.append(f"{host}: {f.get('reason', '')}{_sample(f)}")
    return "; ".join(parts)


def _sample(f: Mapping[str, Any]) -> str:
    samples = f.get("samples_after") or f.get("samples_before") or []
    return f" (e.g. {samples[0]!r})" if samples else ""
