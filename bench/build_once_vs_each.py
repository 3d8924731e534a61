"""Build once and ship vs compile on each host: wall time and total CPU seconds, one run, side by side.

    sudo .venv/bin/python bench/build_once_vs_each.py [--hosts 3] [--flags fast|default] [--json OUT]

On a fresh fleet of N hosts (all with compilers, so that on-each-host can run), the same CPython
source is installed twice through `install_interpreter`, each time under its own prefix with an
empty artifact cache: once with `build: once-per-platform`, once with `build: on-each-host`.
CPU seconds are the hosts' (their containers' cgroup cpuacct) plus the controller's (this
process and the ansible-playbook processes it waited for). Every host shares this machine's
cores, so wall time also shows what parallel compiles cost on a small machine; the load average
printed beside the figures says how busy the machine was anyway.
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
sys.path.insert(0, str(REPO))

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--flags", choices=sorted(FLAGS), default="fast",
                        help="configure flags: fast (the tests' -O0 build) or default (the spec's)")
    parser.add_argument("--source", type=Path, default=CACHE_DIR / "cpython" / "Python-3.13.5.tar.xz")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
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
