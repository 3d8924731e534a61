"""`oxzep7-deploy audit -i INV --json` on a 4-host fleet, beside Ansible's own ad-hoc collection.

    .venv/bin/python bench/audit_time.py [--hosts 4] [--repeat 3] [--fleet NAME]

Brings up its own test fleet (t7b on 198.18.72.0/24; root and podman, as tests/fleet/fleet.sh)
unless --fleet names one that is up, plants on every host the cases of tests/e2e/test_audit.py
(venvs, a broken one, units, cron jobs, a fake pyenv), and takes it down at the end.

Each measurement is a fresh process, as a user runs the command, with SSH control masters
warm for both (one untimed run each first; runs interleaved so both see the same load). The
peer is what people do by hand: `ansible -m setup` (OS, arch, disks) then `ansible -m shell`
listing /usr/bin/python* and asking python3 its version: it finds far less (no venvs, units,
cron, pyenv or EOL) and is the floor of "ask every host something over Ansible".
Results: bench/results/audit_time.json; the printed table row goes to bench/README.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from tests.e2e.test_audit import PLANT, SPEC  # noqa: E402  (the planted cases, one source)
from tests.fleet.harness import Fleet, missing_prerequisite  # noqa: E402

VENV_BIN = Path(sys.executable).parent
GOAL_S = 10.0
PEER_SHELL = ("ls /usr/bin/python* /usr/local/bin/python* 2>/dev/null; "
              "python3 --version; df -P /opt | tail -1")


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def controller_env(fleet: Fleet, work: Path) -> dict[str, str]:
    """The fleet's controller environment, with the speed settings our runner also uses."""
    env = fleet.ansible_env(work)
    env.update({"OXZEP7_RECORDS": str(work / "records"), "ANSIBLE_PIPELINING": "True",
                "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=120s",
                "ANSIBLE_FORKS": "50"})
    return env


def measure(fleet: Fleet, work: Path, repeat: int) -> dict[str, Any]:
    env = controller_env(fleet, work)
    inv = str(fleet.inventory)
    (work / "spec.yaml").write_text(SPEC)
    ours_cmd = [str(VENV_BIN / "oxzep7-deploy"), "audit", "-i", inv, "--json"]
    spec_cmd = [str(VENV_BIN / "oxzep7-deploy"), "audit", str(work / "spec.yaml"), "-i", inv,
                "--json"]
    peer_cmds = [[str(VENV_BIN / "ansible"), "all", "-i", inv, "-m", "ansible.builtin.setup"],
                 [str(VENV_BIN / "ansible"), "all", "-i", inv, "-m", "ansible.builtin.shell",
                  "-a", PEER_SHELL]]
    timed(ours_cmd, env, work)  # warm SSH masters, untimed
    for cmd in peer_cmds:
        timed(cmd, env, work)
    ours: list[float] = []
    with_spec: list[float] = []
    peer: list[float] = []
    probe_s: list[float] = []
    for _ in range(repeat):
        seconds, out = timed(ours_cmd, env, work)
        ours.append(seconds)
        doc = json.loads(out)
        if doc["summary"]["audited"] != len(fleet.hosts):
            raise SystemExit(f"not every host was audited: {doc['summary']}")
        probe_s += [h["probe_seconds"] for h in doc["hosts"].values()]
        with_spec.append(timed(spec_cmd, env, work)[0])
        peer.append(sum(timed(cmd, env, work)[0] for cmd in peer_cmds))
    hosts = len(fleet.hosts)
    return {
        "hosts": hosts,
        "ours_audit_s": statistics.median(ours),
        "ours_audit_per_host_s": statistics.median(ours) / hosts,
        "ours_audit_with_spec_s": statistics.median(with_spec),
        "ours_probe_on_host_s": statistics.median(probe_s),
        "peer_setup_plus_shell_s": statistics.median(peer),
        "peer_per_host_s": statistics.median(peer) / hosts,
        "ratio_ours_to_peer": statistics.median(ours) / statistics.median(peer),
        "runs": {"ours": ours, "ours_with_spec": with_spec, "peer": peer},
        "findings_ours": {k: doc["summary"][k] for k in (
            "interpreters", "eol_interpreters", "venvs", "broken_venvs", "units", "cron")},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fleet", help="an existing fleet to use (as is: nothing planted)")
    args = parser.parse_args()
    why = missing_prerequisite()
    if why:
        raise SystemExit(f"no fleet here: {why}")
    own = args.fleet is None
    fleet = Fleet("t7b", 72) if own else Fleet.attach(args.fleet)
    try:
        if own:
            fleet.down()
            fleet.up(args.hosts)
            for host in fleet.hosts:
                fleet.run_on(host, ["sh", "-c", PLANT], check=True, timeout=300)
        with tempfile.TemporaryDirectory(prefix="oxz-audit-bench-") as tmp:
            result = measure(fleet, Path(tmp), args.repeat)
    finally:
        if own:
            fleet.down()
    result.update({
        "benchmark": "audit_time",
        "repeat": args.repeat,
        "goal_s": GOAL_S,
        "machine": f"{platform.node()} {platform.machine()} {platform.python_version()} "
                   f"load {os.getloadavg()[0]:.1f}",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "audit_time.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"| audit, {result['hosts']} hosts | ours {result['ours_audit_s']:.2f} s "
          f"({result['ours_audit_per_host_s']:.2f} s/host; with a spec "
          f"{result['ours_audit_with_spec_s']:.2f} s) | ansible setup + shell "
          f"{result['peer_setup_plus_shell_s']:.2f} s | ratio {result['ratio_ours_to_peer']:.2f} | "
          f"goal < {GOAL_S:.0f} s: {'met' if result['ours_audit_s'] < GOAL_S else 'NOT met'} |")


if __name__ == "__main__":
    main()
