"""Comparison 9: the restart gap of each switched host, with a plain restart, a graceful reload and
socket activation, as the users of the app see it.

    .venv/bin/python -m bench.restart_gap [--hosts 3] [--repeat 3]

One fleet, the sample app installed twice, as tests/e2e/test_serving.py does: binding its port
itself (port 8000; `restart: restart` and `restart: reload`) and under a .socket unit (port 8001,
systemd holds the port across restarts). The "new" interpreter is the hosts' own python3.11
(`existing`): what is measured is the switch, not the interpreter. Each repeat, for each mode in
an order that rotates: `apply` (canary, one host at a time) while the request loop of
tests/fleet/load.py (2 threads per host, GET / back to back, 3 s timeout) runs from the
controller, then `rollback` under the loop too. Per switched host and command: the gap the loop
saw (from the first failed request to the next answered one, summed), the failed requests, and
the gap the tool's agent measured (`restart_gap_s` of --json). Every sample is in the JSON.
Results: bench/results/restart_gap.json and its table rows on stdout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    from bench import common as c
except ImportError:  # run as `python bench/restart_gap.py`
    import common as c  # type: ignore[no-redef,import-not-found]
from tests.e2e.test_serving import spec
from tests.fleet.load import THREADS, TIMEOUT, RequestLoop
from tests.fleet.sample_app import install_sample_app
from tests.fleet.scenario import Controller

NAME = "restart_gap"
MODES = ("restart", "reload", "socket")


def one(ctl: Controller, app: Any, name: str, restart: str, command: str
        ) -> dict[str, dict[str, Any]]:
    """Run one command under the request loop; per host what the users saw and the agent said."""
    path = c.write(ctl.work, f"{name}.yaml", spec(app, name, restart))
    argv = (["apply", str(path), "-i", ctl.inventory(), "--yes"] if command == "apply" else
            ["rollback", "-i", ctl.inventory(), "--app", app.root.rsplit("/", 1)[-1], "--yes"])
    with RequestLoop(ctl.fleet, app.port) as loop:
        code, doc = ctl.json(*argv)
    if code != 0:
        raise c.FleetError(f"{command} ({name}) exited {code}: {doc}")
    for host in ctl.fleet.hosts:
        app.wait_healthy(host)
    out = {}
    for host, entry in doc["hosts"].items():
        out[host] = {"loop_gap_s": round(loop.gap(host), 3),
                     "failed_requests": len(loop.failed(host)),
                     "requests": len(loop.of(host)),
                     "agent_restart_gap_s": entry.get("restart_gap_s"),
                     "restart_window": entry.get("restart_window")}
    return out


def measure(fleet: c.Fleet, work: Path, repeat: int,
            checkpoint: Callable[[dict[str, Any], int], None]) -> dict[str, Any]:
    plain = install_sample_app(fleet)
    socketed = install_sample_app(fleet, root="/srv/sock", port=8001,
                                  service="oxzep7-sock.service", socket_activated=True)
    apps = {"restart": (plain, "restart"), "reload": (plain, "reload"),
            "socket": (socketed, "restart")}
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {
        m: {"apply": [], "rollback": []} for m in MODES}
    ctls = {m: Controller(fleet, work / m) for m in MODES}  # each mode's records, kept
    for i in range(1, repeat + 1):
        c.log(f"repeat {i}/{repeat}")
        for mode in MODES[i - 1:] + MODES[:i - 1]:
            app, restart = apps[mode]
            ctl = ctls[mode]
            for command in ("apply", "rollback"):
                hosts = one(ctl, app, f"gap-{mode}", restart, command)
                samples[mode][command].append(hosts)
                c.log(f"  {mode} {command}: loop gap "
                      + ", ".join(f"{h} {v['loop_gap_s']:.2f} s ({v['failed_requests']} failed)"
                                  for h, v in sorted(hosts.items())))
        checkpoint(samples, i)
    return samples


def per_host(samples: list[dict[str, Any]], key: str) -> list[float]:
    return [float(v[key]) for run in samples for v in run.values() if v[key] is not None]


def report(hosts: int, repeat: int, samples: dict[str, Any], machine: dict[str, Any]
           ) -> dict[str, Any]:
    medians: dict[str, Any] = {}
    rows = []
    for mode in MODES:
        switch = samples[mode]["apply"]
        gaps = per_host(switch, "loop_gap_s")
        failed = per_host(switch, "failed_requests")
        agent = per_host(switch, "agent_restart_gap_s")
        medians[mode] = {"loop_gap_s": c.median(gaps), "max_loop_gap_s": max(gaps),
                         "agent_restart_gap_s": c.median(agent) if agent else None,
                         "failed_requests_total": int(sum(failed))}
        back = per_host(samples[mode]["rollback"], "failed_requests")
        medians[mode]["rollback_failed_requests_total"] = int(sum(back))
        zero = mode != "restart"
        met = sum(failed) == 0 and sum(back) == 0 if zero else None
        rows.append({
            "comparison": 9, "what": f"restart gap per switched host: {mode}",
            "n": str(hosts), "repeats": f"{repeat} (x{hosts} hosts)",
            "ours": f"apply: {c.median(gaps):.2f} s (max {max(gaps):.2f} s), "
                    f"{int(sum(failed))} failed requests; rollback: {int(sum(back))} failed",
            "peer": "", "ratio": (f"agent measured {c.median(agent):.2f} s" if agent else ""),
            "goal": "no failed request (apply and rollback)" if zero
                    else "measured, one host at a time",
            "met": met})
    return {
        "benchmark": NAME, "comparison": 9,
        "title": "Restart gap per switched host: restart, reload, socket activation",
        "hosts": hosts, "repeat": repeat,
        "unit": "seconds without an answer per switched host (request loop on the controller)",
        "load": {"threads_per_host": THREADS, "timeout_s": TIMEOUT, "request": "GET /",
                 "loop": "tests/fleet/load.py"},
        "samples": samples, "median": medians, "summary": rows,
        "machine": machine, "code": c.code_version(), "when": c.now_utc()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    machine = c.machine()
    def checkpoint(samples: dict[str, Any], done: int) -> None:
        """The repeats done so far, saved: a run stopped later keeps them (`partial`)."""
        if done < args.repeat:
            doc = report(args.hosts, done, samples, c.finish_machine(machine))
            doc["partial"] = f"{done} of {args.repeat} repeats"
            c.log(f"saved {done} repeat(s): {c.save(NAME, doc)}")

    c.down_on_term()
    fleet = c.Fleet.allocate("bg")
    try:
        c.log(f"fleet {fleet.name}: {args.hosts} hosts coming up")
        fleet.up(args.hosts)
        with tempfile.TemporaryDirectory(prefix="oxz-bench-") as tmp:
            samples = measure(fleet, Path(tmp), args.repeat, checkpoint)
    finally:
        c.log(f"fleet {fleet.name}: down")
        fleet.down()
    doc = report(args.hosts, args.repeat, samples, c.finish_machine(machine))
    c.log(f"results: {c.save(NAME, doc)}")
    for row in doc["summary"]:
        print(c.table_row(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
