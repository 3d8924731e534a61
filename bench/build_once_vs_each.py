"""Comparison 1: the upgrade of N hosts from source, built once and shipped (ours) beside compiled
on each host (the pyenv way), side by side on one fleet, wall time and CPU seconds.

    .venv/bin/python -m bench.build_once_vs_each [--hosts 3] [--app datasette|none]

--app datasette (the default, issue 15's row): datasette (28 packages, MarkupSafe's C extension
only as an sdist) runs on the system Python 3.11 on every host. Ours: `oxzep7-deploy apply` of a
spec with `build: once-per-platform`, `build_host: h1` and `wheels: once-per-platform`, from an
empty artifact cache: one CPython compile and one `pip wheel` on h1, both shipped to h2 and h3,
then prepare, switch, restart and health. The peer: bench/peer/pyenv_upgrade.yml, the way pyenv
roles do it: every host compiles CPython from the same tarball with the same configure flags
(configure, make -j<cores>, make altinstall) and pip-installs the locked requirements from the
package directory, compiling MarkupSafe, then switch, restart, health. Each side is timed from
its command's start until the controller has seen datasette answer from 3.13.5 on every host.

--app none (the earlier row): the interpreter alone, through `install_interpreter`, once with
`build: once-per-platform` and once with `build: on-each-host` (writes --json OUT).

CPU seconds are the hosts' (their containers' cgroup cpuacct, everything run inside them) plus
the controller's (this process and every child it waited for: the CLI, ansible-playbook, ssh).
Every host shares this machine's cores, so wall time also shows what parallel compiles cost on a
small machine. It compiles CPython four times: one run (repeats 1).
Results: bench/results/build_once_vs_each.json and one markdown table row on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import common as c  # noqa: E402
from bench import realistic as ds  # noqa: E402
from oxzep7_deploy.rules import sha256_file  # noqa: E402
from oxzep7_deploy.runner.ansible import AnsibleRunner  # noqa: E402
from oxzep7_deploy.spec.model import (  # noqa: E402
    Application,
    BuildMode,
    Interpreter,
    SourceInstall,
    Spec,
)
from oxzep7_deploy.steps.interpreter import install_interpreter  # noqa: E402
from tests.fleet.build import CONFIGURE  # noqa: E402
from tests.fleet.harness import CACHE_DIR, Fleet, podman_env  # noqa: E402

VERSION = "3.13.5"
FLAGS = {"fast": ("--enable-shared", "--disable-test-modules", "OPT=-O0 -g0"),
         "default": ("--enable-shared",)}
FLEET = ("t4bench", 43)


def host_cpu_seconds(fleet: Fleet) -> float:
    """CPU time every host's container has used so far (cgroup v1 cpuacct, or v2 cpu.stat)."""
    total = 0.0
    for host in fleet.hosts:
        path = subprocess.run(
            ["podman", "inspect", "--format", "{{.State.CgroupPath}}", fleet.container(host)],
            capture_output=True, text=True, check=True, env=podman_env()).stdout.strip()
        v1 = Path("/sys/fs/cgroup/cpuacct") / path.lstrip("/") / "cpuacct.usage"
        if v1.exists():
            total += int(v1.read_text()) / 1e9
            continue
        stat = (Path("/sys/fs/cgroup") / path.lstrip("/") / "cpu.stat").read_text()
        total += int(stat.split("usage_usec")[1].split()[0]) / 1e6
    return total


def controller_cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(fleet: Fleet, source: Path, flags: tuple[str, ...], mode: BuildMode,
            work: Path) -> dict[str, Any]:
    prefix = f"/opt/oxzep7/bench/{mode.value}/{VERSION}"
    install = SourceInstall(url=str(source), sha256=sha256_file(source), configure=flags, build=mode)
    spec = Spec(name="bench", targets="all",
                interpreter=Interpreter(version=VERSION, prefix=prefix, install=install),
                application=Application(name="bench", root="/srv/bench"))
    runner = AnsibleRunner(fleet.ansible_env(work))
    hosts0, ctl0, wall0 = host_cpu_seconds(fleet), controller_cpu_seconds(), time.monotonic()
    out = install_interpreter(spec, str(fleet.inventory), fleet.hosts, runner, work / "run",
                              work / "cache")  # an empty cache: this run compiles
    wall = time.monotonic() - wall0
    hosts_cpu, ctl_cpu = host_cpu_seconds(fleet) - hosts0, controller_cpu_seconds() - ctl0
    if not out.ok:
        raise SystemExit(f"{mode.value} failed: {out.problems()}")
    return {
        "mode": mode.value,
        "wall_s": round(wall, 1),
        "cpu_s": round(hosts_cpu + ctl_cpu, 1),
        "hosts_cpu_s": round(hosts_cpu, 1),
        "controller_cpu_s": round(ctl_cpu, 1),
        "compiles": len(out.builds),
        "actions": dict(out.actions),
        "phases_s": {k: round(v, 1) for k, v in out.timings.items()},
    }


NAME = "build_once_vs_each"
WALL_GOAL, CPU_GOAL = 2.0, 3.0


def cpu_now(fleet: Fleet) -> tuple[float, float]:
    return host_cpu_seconds(fleet), controller_cpu_seconds()


def side(fleet: Fleet, mode: str, action: Any) -> dict[str, Any]:
    """Run one side to healthy on 3.13.5; its wall and CPU seconds."""
    hosts0, ctl0 = cpu_now(fleet)
    wall, detail = _timed(fleet, action)
    hosts1, ctl1 = cpu_now(fleet)
    hosts_cpu, ctl_cpu = hosts1 - hosts0, ctl1 - ctl0
    row = {"mode": mode, "wall_s": round(wall, 1), "cpu_s": round(hosts_cpu + ctl_cpu, 1),
           "hosts_cpu_s": round(hosts_cpu, 1), "controller_cpu_s": round(ctl_cpu, 1), **detail}
    c.log(f"  {mode}: {row['wall_s']} s wall, {row['cpu_s']} CPU s "
          f"(hosts {row['hosts_cpu_s']}, controller {row['controller_cpu_s']})")
    return row


def _timed(fleet: Fleet, action: Any) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    detail = action()
    command_s = time.perf_counter() - start
    ds.healthy_on(fleet, fleet.hosts, c.VERSION, timeout=120)
    return time.perf_counter() - start, {"command_s": round(command_s, 1), **detail}


def measure_datasette(hosts: int) -> dict[str, Any]:
    source, sha = c.cpython_source()
    names = [f"h{i}" for i in range(1, hosts + 1)]
    with ds.realistic_fleet("bb", hosts, build_hosts=names) as (fleet, work):
        cache = work / "empty-cache"
        cache.mkdir()
        ours = c.Ours(fleet, work / "ours", cache, app=ds.NAME)
        ours.spec_path = c.write(ours.work, "datasette.yaml", ds.spec_text(source, sha))

        def apply() -> dict[str, Any]:
            _, report = ours.apply()
            if report.get("outcome") != "succeeded":
                raise c.FleetError(f"apply did not succeed: {json.dumps(report)[-3000:]}")
            sets = [json.loads(p.read_text()) for p in (cache / "artifacts").glob("*.json")]
            return {"compiles": 1 if c.compiled(ours.work) else 0,
                    "wheel_sets_built_on": [m.get("built_on") for m in sets
                                            if m.get("kind") == "wheels"],
                    "release": report.get("release")}

        def pyenv() -> dict[str, Any]:
            c.run_peer(fleet, work / "peer", "pyenv_upgrade.yml", tuned=True, extravars={
                **ds.peer_vars(release="peer"), "source": str(source), "version": c.VERSION,
                "configure_flags": list(CONFIGURE)})
            return {"compiles": hosts}

        c.log("ours: apply, interpreter and wheels built once on h1, shipped")
        rows = [side(fleet, "once-per-platform", apply)]
        c.log("peer: pyenv_upgrade.yml, CPython and MarkupSafe compiled on every host")
        rows.append(side(fleet, "on-each-host", pyenv))
        so = "lib/python3.13/site-packages/markupsafe/_speedups.cpython-313-x86_64-linux-gnu.so"
        for host in fleet.hosts:  # the peer really compiled the extension on each host
            fleet.sh(host, f"test -f {ds.ROOT}/releases/peer/venv/{so}")
    return {"runs": rows, "hosts": hosts, "flags": list(CONFIGURE), "app": ds.describe()}


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    runs = {r["mode"]: r for r in doc["runs"]}
    once, each, n = runs["once-per-platform"], runs["on-each-host"], doc["hosts"]
    cpu, wall = each["cpu_s"] / once["cpu_s"], each["wall_s"] / once["wall_s"]
    return {"comparison": 1, "what": "upgrade of datasette from source: build once vs on each "
            "host (pyenv way)", "n": str(n), "repeats": 1,
            "ours": f"once, shipped: {once['wall_s']:.0f} s wall, {once['cpu_s']:.0f} CPU s",
            "peer": f"pyenv way: {each['wall_s']:.0f} s wall, {each['cpu_s']:.0f} CPU s",
            "ratio": f"{cpu:.1f}x less CPU, {wall:.1f}x less wall",
            "goal": f">= {CPU_GOAL:g}x less CPU, >= {WALL_GOAL:g}x less wall",
            "met": cpu >= CPU_GOAL and wall >= WALL_GOAL}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--app", choices=("datasette", "none"), default="datasette",
                        help="datasette: the whole upgrade of the realistic app (issue 15); "
                             "none: the interpreter alone")
    parser.add_argument("--flags", choices=sorted(FLAGS), default="fast",
                        help="configure flags: fast (the tests' -O0 build) or default (the spec's)")
    parser.add_argument("--source", type=Path, default=CACHE_DIR / "cpython" / "Python-3.13.5.tar.xz")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.app == "datasette":
        info = c.machine()
        doc = measure_datasette(args.hosts)
        doc = {"benchmark": NAME, "comparison": 1, **doc, "cores": os.cpu_count(),
               "unit": "seconds from the command's start to datasette answering from 3.13.5 "
                       "on every host; CPU: hosts' cgroups + controller's rusage",
               "peer_playbook": "bench/peer/pyenv_upgrade.yml",
               "machine": c.finish_machine(info), "code": c.code_version(), "when": c.now_utc()}
        doc["summary"] = summarize(doc)
        c.log(f"results: {c.save(NAME, doc)}")
        print(c.table_row(doc["summary"]))
        return 0
    if not args.source.is_file():
        print(f"no CPython source at {args.source} (run tests/setup.sh)", file=sys.stderr)
        return 2
    fleet = Fleet(*FLEET)
    fleet.down()
    fleet.up(args.hosts, build_hosts=[f"h{i}" for i in range(1, args.hosts + 1)])
    try:
        with tempfile.TemporaryDirectory(prefix="oxzep7-bench-") as tmp:
            load = os.getloadavg()
            rows = [measure(fleet, args.source, FLAGS[args.flags], mode, Path(tmp) / mode.value)
                    for mode in (BuildMode.ONCE_PER_PLATFORM, BuildMode.ON_EACH_HOST)]
    finally:
        fleet.down()
    report = {"hosts": args.hosts, "flags": list(FLAGS[args.flags]), "cores": os.cpu_count(),
              "loadavg_before": [round(x, 1) for x in load],
              "loadavg_after": [round(x, 1) for x in os.getloadavg()], "runs": rows}
    print(f"{'mode':<20}{'wall s':>8}{'CPU s':>8}{'hosts CPU':>11}{'ctl CPU':>9}{'compiles':>10}")
    for r in rows:
        print(f"{r['mode']:<20}{r['wall_s']:>8}{r['cpu_s']:>8}{r['hosts_cpu_s']:>11}"
              f"{r['controller_cpu_s']:>9}{r['compiles']:>10}")
    print(f"{args.hosts} hosts, {os.cpu_count()} cores, flags {' '.join(FLAGS[args.flags])}; "
          f"load average before {report['loadavg_before']}, after {report['loadavg_after']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
