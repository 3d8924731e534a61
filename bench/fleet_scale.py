"""Issue 16, item 5: apply and rollback on N = 4, 12, 25, 50 hosts of ONE fleet, time per host.

    .venv/bin/python -m bench.fleet_scale [--sizes 4,12,25,50] [--repeat 2]

One fleet of max(sizes) podman hosts (systemd, sshd, the sample app on the system Python 3.11)
comes up once; each measurement works on its first N hosts through the real CLI with
`--limit h1,...,hN`:

- `apply` of a release that is cheap but real: `install.method: existing` with the hosts' own
  /usr/bin/python3.11 (no interpreter to ship or build), so the release is the sample app's
  venv built on it (hash-locked wheels from the app's own directory), verify, the canary switch,
  then the rest, restart and health on every host; the tool's defaults otherwise;
- `rollback --to initial` back to the sample app's hand-made release (the tool's default
  batches: half the selected hosts at a time, so two batches at every N).

Spec: forks 50 (`ansible.forks`), rollout canary [1 host, then 100%], `rollout.batch_size` 50
(a stage switches all its hosts at once), health: the app's /healthz on the host.

**Time per host = the command's whole wall time / N.** At N = 4 that is dominated by fixed
costs (the CLI's start, `ansible-playbook`'s start, the canary stage, health waits), so it is
the larger of the two; the goal asks that at N = 50 it be at most 1.2x its value at N = 4, i.e.
that nothing in the tool grows faster than linearly with the hosts.

Each repeat goes through every N, the order of the sizes alternating (up, then down) between
repeats, so a load that drifts during the run does not favour one end. Every sample, the load
at the start and end, and the commit are in bench/results/fleet_scale.json.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.fleet.sample_app import install_sample_app

try:
    from bench import common as c
except ImportError:  # run as `python bench/fleet_scale.py`
    import common as c  # type: ignore[no-redef,import-not-found]

NAME = "fleet_scale"
GOAL = 1.2  # per-host time at the largest N at most 1.2x that at the smallest
FORKS = 50
BATCH = 50
SPEC = f"""\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: sample-scale
description: A cheap but real release of the sample app on the hosts' own Python 3.11
targets: "fleet"
interpreter:
  version: "3.11.2"
  install:
    method: existing
    executable: /usr/bin/python3.11
application:
  name: sample
  root: /srv/sample
  code: /srv/sample/app
  requirements: requirements.lock
  pip_args: ["--no-index", "--find-links", "/srv/sample/app/wheels", "--require-hashes"]
  services: [oxzep7-sample.service]
health:
  checks:
    - http: {{url: "http://127.0.0.1:8000/healthz", status: 200, contains: '"status": "ok"'}}
  retries: 20
  interval: 1s
rollout:
  strategy: canary
  stages:
    - {{name: canary, hosts: 1}}
    - {{name: all, hosts: "100%"}}
  batch_size: {BATCH}
  dead_man: 300s
ansible:
  forks: {FORKS}
"""


INOTIFY = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_PER_HOST = 8  # systemd and journald in each host take several; the default 128 stops ~30


def preflight(hosts: int) -> dict[str, int]:
    """The machine limits a fleet of `hosts` systemd containers runs into, checked before it
    comes up (a host that cannot get its inotify instances never starts sshd)."""
    instances = int(INOTIFY.read_text())
    if instances < INOTIFY_PER_HOST * hosts:
        raise SystemExit(
            f"fs.inotify.max_user_instances is {instances}: a fleet of {hosts} hosts (beside the "
            f"other fleets on this machine) needs about {INOTIFY_PER_HOST * hosts} or more; "
            f"raise it with `sysctl -w fs.inotify.max_user_instances={max(2048, 16 * hosts)}`")
    return {"inotify_max_user_instances": instances, "pid_max": int(
        Path("/proc/sys/kernel/pid_max").read_text())}


def controller_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children: the CLI, its
    ansible-playbook runs, their forks and ssh clients; never the hosts' own processes, which
    podman's conmon parents. The controller's cost, apart from the hosts sharing its cores."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def memory_mib() -> dict[str, int]:
    info = {line.split(":")[0]: int(line.split()[1]) // 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.split(":")[0] in ("MemTotal", "MemAvailable")}
    return {"total_mib": info["MemTotal"], "available_mib": info["MemAvailable"]}


@contextmanager
def attached(name: str, hosts: int) -> Iterator[tuple[c.Fleet, c.SampleApp]]:
    """A bench fleet left up by an interrupted run: the sample app wherever it does not answer
    healthy on the system Python; torn down at the end like one this run brought up."""
    if not name.startswith("b"):
        raise SystemExit("--attach takes a bench fleet (named b…)")
    fleet = c.Fleet.attach(name)
    try:
        if fleet.size < hosts:
            raise c.FleetError(f"fleet {name} has {fleet.size} hosts; {hosts} are needed")

        def healthy(host: str) -> bool:
            try:
                c.healthy_on(fleet, [host], c.OLD_PYTHON, timeout=3)
                return True
            except c.FleetError:
                return False

        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(healthy, fleet.hosts))
        missing = [h for h, ok in zip(fleet.hosts, answers, strict=True) if not ok]
        c.log(f"fleet {name} attached; the sample app (again) on {len(missing)} host(s)")
        app = install_sample_app(fleet, missing) if missing else c.SampleApp(fleet)
        yield fleet, app
    finally:
        c.log(f"fleet {fleet.name}: down")
        fleet.down()


def one(ours: c.Ours, spec: Path, n: int) -> dict[str, Any]:
    """One apply and one rollback on h1..hN: their wall seconds and what they reported."""
    hosts = ours.fleet.hosts[:n]
    limit = ",".join(hosts)
    inv = str(ours.fleet.inventory)
    load = [round(x, 2) for x in os.getloadavg()]
    cpu0 = controller_cpu()
    apply_s, report = ours.run("apply", str(spec), "-i", inv, "--limit", limit, "--yes")
    apply_cpu = controller_cpu() - cpu0
    if report.get("outcome") != "succeeded":
        raise c.FleetError(f"apply on {n} hosts did not succeed: {report}")
    c.healthy_on(ours.fleet, hosts, c.OLD_PYTHON)  # not timed
    cpu0 = controller_cpu()
    rollback_s, doc = ours.run("rollback", "-i", inv, "--app", "sample", "--to", c.INITIAL,
                               "--limit", limit, "--yes")
    rollback_cpu = controller_cpu() - cpu0
    if not doc.get("complete"):
        raise c.FleetError(f"rollback on {n} hosts incomplete: {doc}")
    c.healthy_on(ours.fleet, hosts, c.OLD_PYTHON)  # not timed
    c.log(f"  N={n}: apply {apply_s:.1f} s ({apply_s / n:.2f} s/host), rollback {rollback_s:.1f} s"
          f" ({rollback_s / n:.2f} s/host), load {load[0]}")
    return {"n": n, "apply_s": apply_s, "rollback_s": rollback_s,
            "apply_controller_cpu_s": apply_cpu, "rollback_controller_cpu_s": rollback_cpu,
            "load1_before": load[0],
            "release": report.get("release"), "rollback_batches": len(doc.get("batches", []))}


def measure(fleet: c.Fleet, work: Path, sizes: list[int], repeat: int,
            saved: Any = None) -> list[dict[str, Any]]:
    ours = c.Ours(fleet, work / "ours", c.private_cache(work))
    spec = ours.work / "sample-scale.yaml"
    spec.write_text(SPEC)
    samples = []
    for i in range(1, repeat + 1):
        order = sizes if i % 2 else sizes[::-1]
        c.log(f"repeat {i}/{repeat}: N in {order}")
        for n in order:
            samples.append({"repeat": i, **one(ours, spec, n)})
            if saved is not None:  # what is measured so far survives an interrupted run
                saved(samples)
    return samples


def report(sizes: list[int], repeat: int, samples: list[dict[str, Any]], fleet_up_s: float,
           machine: dict[str, Any], memory: dict[str, Any]) -> dict[str, Any]:
    per_host: dict[str, dict[str, float]] = {"apply": {}, "rollback": {}}
    wall: dict[str, dict[str, float]] = {"apply": {}, "rollback": {}}
    sizes = [n for n in sizes if any(s["n"] == n for s in samples)]
    for cmd in per_host:
        for n in sizes:
            runs = [s[f"{cmd}_s"] for s in samples if s["n"] == n]
            wall[cmd][str(n)] = c.median(runs)
            per_host[cmd][str(n)] = c.median(runs) / n
    cpu_per_host = {cmd: {str(n): c.median([s[f"{cmd}_controller_cpu_s"] for s in samples
                                            if s["n"] == n]) / n for n in sizes}
                    for cmd in per_host}
    lo, hi = str(sizes[0]), str(sizes[-1])
    ratios = {cmd: per_host[cmd][hi] / per_host[cmd][lo] for cmd in per_host}
    met = all(r <= GOAL for r in ratios.values())
    fmt = "{cmd} {v:.2f} s/host at {n}"
    return {
        "benchmark": NAME,
        "comparison": 8,
        "title": "Apply and rollback on 4 to 50 hosts of one machine: time per host",
        "sizes": sizes,
        "repeat": repeat,
        "unit": "time per host = the command's wall seconds / N (fixed costs included)",
        "spec": {"forks": FORKS, "rollout": "canary: 1 host, then 100%", "batch_size": BATCH,
                 "install": "existing /usr/bin/python3.11 (no interpreter shipped)",
                 "rollback": "--to initial, default batches (half the selected hosts at once)"},
        "samples": samples,
        "median_wall_s": wall,
        "median_per_host_s": per_host,
        "median_controller_cpu_per_host_s": cpu_per_host,
        "ratio_per_host_largest_to_smallest": ratios,
        "goal": f"time per host at N={hi} <= {GOAL}x that at N={lo}",
        "goal_met": met,
        "fleet_up_and_app_s": fleet_up_s,
        "summary": {
            "comparison": 8, "what": "apply + rollback, time per host (wall / N)",
            "n": ", ".join(map(str, sizes)), "repeats": repeat,
            "ours": "; ".join(fmt.format(cmd=cmd, v=per_host[cmd][hi], n=hi) for cmd in per_host),
            "peer": "; ".join(fmt.format(cmd=cmd, v=per_host[cmd][lo], n=lo) for cmd in per_host),
            "ratio": ", ".join(f"{cmd} {r:.2f}x" for cmd, r in ratios.items()),
            "goal": f"<= {GOAL}x the per-host time at {lo}", "met": met},
        "machine": {**machine, "memory_before_fleet": memory["before"],
                    "memory_with_fleet": memory["with_fleet"]},
        "code": c.code_version(),
        "when": c.now_utc(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="4,12,25,50")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--attach", metavar="FLEET",
                        help="use this bench fleet (b…), already up, instead of bringing one up; "
                             "the app is installed where it does not answer; torn down at the end")
    parser.add_argument("--out", default=NAME, help="result name (bench/results/<out>.json)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    limits = preflight(sizes[-1])
    machine = {**c.machine(), "limits": limits}
    memory: dict[str, Any] = {"before": memory_mib()}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="oxz-bench-") as tmp, \
            (attached(args.attach, sizes[-1]) if args.attach
             else c.bench_fleet("bs", sizes[-1])) as (fleet, _app):
        up_s = time.perf_counter() - started
        memory["with_fleet"] = memory_mib()
        c.log(f"fleet and app up in {up_s:.0f} s; memory {memory['with_fleet']}")
        def saved(so_far: list[dict[str, Any]]) -> None:
            partial = report(sizes, args.repeat, so_far, up_s, c.finish_machine(machine), memory)
            c.save(args.out, {**partial, "complete": False})

        samples = measure(fleet, Path(tmp), sizes, args.repeat, saved)
    doc = {**report(sizes, args.repeat, samples, up_s, c.finish_machine(machine), memory),
           "complete": True}
    path = c.save(args.out, doc)
    c.log(f"results: {path}")
    print(c.table_row(doc["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
