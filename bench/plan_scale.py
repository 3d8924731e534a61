"""Validate + plan a spec against a 10,000-host inventory, beside Ansible resolving the same hosts.

    .venv/bin/python bench/plan_scale.py [--hosts 10000] [--repeat 3]

Each measurement is a fresh process (imports included), as a user runs the command. The peer
is `ansible-playbook --list-hosts` on the same inventory and pattern: what Ansible itself needs
just to know which hosts a play would touch. The two alternate, so both see the same load.
Goal: ours take at most 1.05x the peer's time (medians). Results, every sample with the machine's
load and the commit: bench/results/plan_scale.json; `bench/plot.py` puts its row in the table.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # `python bench/plan_scale.py` as well as `-m bench.plan_scale`
    sys.path.insert(0, str(HERE.parent))

from bench.common import code_version, finish_machine, machine, median, now_utc, save  # noqa: E402

VENV_BIN = Path(sys.executable).parent
GOAL_RATIO = 1.05

SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: bench-py313
targets: "web:&prod"
interpreter:
  version: "3.13.5"
  install: {method: source, url: @ARCHIVE@, sha256: "%s"}
application: {name: web, root: /srv/web}
rollout:
  strategy: canary
  stages:
    - {name: canary, hosts: 1}
    - {name: tenth, hosts: "10%%"}
    - {name: half, hosts: "50%%"}
    - {name: all, hosts: "100%%"}
  batch_size: 50
""" % ("0" * 64)

PLAYBOOK = "- hosts: 'web:&prod'\n  gather_facts: false\n  tasks: [{ping: }]\n"


def write_inventory(path: Path, hosts: int) -> None:
    lines = ["[web]"]
    lines += [f"web{i:05d} ansible_host=198.18.{i // 250}.{i % 250}" for i in range(hosts)]
    lines += ["", "[prod:children]", "web"]
    path.write_text("\n".join(lines) + "\n")


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{(done.stderr or done.stdout)[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    info = machine()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_inventory(work / "inventory.ini", args.hosts)
        archive = work / "Python-3.13.5.tar.xz"  # plan checks that a local archive is there, and its sha256
        archive.write_bytes(b"")
        (work / "spec.yaml").write_text(SPEC.replace("@ARCHIVE@", str(archive))
                                     .replace("0" * 64, hashlib.sha256(b"").hexdigest()))
        (work / "play.yml").write_text(PLAYBOOK)
        ours_cmd = [str(VENV_BIN / "oxzep7-deploy"), "plan", str(work / "spec.yaml"),
                    "-i", str(work / "inventory.ini"), "--json"]
        peer_cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(work / "inventory.ini"),
                    "--list-hosts", str(work / "play.yml")]
        ours, peer = [], []
        for _ in range(args.repeat):  # interleaved, so both see the same machine load
            ours.append(timed(ours_cmd))
            peer.append(timed(peer_cmd))
    ratio = median(ours) / median(peer)
    result = {
        "benchmark": "plan_scale",
        "hosts": args.hosts,
        "repeat": args.repeat,
        "ours_validate_plan_s": median(ours),
        "peer_ansible_list_hosts_s": median(peer),
        "ratio_ours_to_peer": ratio,
        "goal_ratio": GOAL_RATIO,
        "met": ratio <= GOAL_RATIO,
        "runs": {"ours": ours, "peer": peer},
        "machine": finish_machine(info),
        "code": code_version(),
        "when": now_utc(),
    }
    path = save("plan_scale", result)
    print(f"| plan, {args.hosts} hosts | ours {median(ours):.2f} s | "
          f"ansible-playbook --list-hosts {median(peer):.2f} s | ours take {ratio:.2f}x its time | "
          f"goal <= {GOAL_RATIO}x: {'met' if ratio <= GOAL_RATIO else 'NOT met'} | {path}")

if __name__ == "__main__":
    main()
