"""Comparison 4: a second apply of a spec that is already applied, beside the first apply.

    .venv/bin/python -m bench.noop_reapply [--hosts 3] [--repeat 3]

The first apply is a real first one: hosts as the sample app's installation left them (no
interpreter, no tool state), records in a fresh directory; it ships the CPython 3.13.5 build
from the tool's artifact cache (no compiler run: the cache already holds it), prepares the
release and switches every host, canary first. The second apply of the same spec from the same
directory checks the hosts once and changes nothing; the script records whether each host's
state file is byte for byte the same after it. Between repeats every trace of the tool is removed from the
hosts (not timed). Results: bench/results/noop_reapply.json and a markdown table row on stdout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

try:
    from bench import common as c
except ImportError:  # run as `python bench/noop_reapply.py`
    import common as c  # type: ignore[no-redef,import-not-found]

NAME = "noop_reapply"
GOAL = 0.10  # the second apply under 10% of the first

# the host as install_sample_app left it: no interpreter, no state, no release but `initial`
RESET = """\
set -e
rm -rf /var/lib/oxzep7 /opt/oxzep7 /var/tmp/oxzep7-artifacts /var/tmp/oxzep7-build
find /srv/sample/releases -mindepth 1 -maxdepth 1 ! -name initial -exec rm -rf {} +
find /srv/sample/app -name __pycache__ -prune -exec rm -rf {} +
ln -sfn releases/initial /srv/sample/current.new && mv -T /srv/sample/current.new /srv/sample/current
systemctl restart oxzep7-sample.service
"""
STATE = "cat /var/lib/oxzep7/sample/state.json"


def reset(fleet: c.Fleet) -> None:
    for host in fleet.hosts:
        fleet.sh(host, RESET)
    c.healthy_on(fleet, fleet.hosts, c.OLD_PYTHON)


def states(fleet: c.Fleet) -> dict[str, str]:
    return {h: fleet.sh(h, STATE) for h in fleet.hosts}


def measure(fleet: c.Fleet, work: Path, repeat: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"first": [], "second": [], "hosts_whose_state_changed": [],
                                       "first_compiled": []}
    cache = c.private_cache(work)
    for i in range(1, repeat + 1):
        if i > 1:
            reset(fleet)
        ours = c.Ours(fleet, work / f"r{i}", cache)
        ours.write_spec()
        first, report = ours.apply()
        if report.get("outcome") != "succeeded":
            raise c.FleetError(f"first apply did not succeed: {report}")
        c.healthy_on(fleet, fleet.hosts, c.VERSION)
        before = states(fleet)
        second, again = ours.apply()
        if again.get("outcome") != "succeeded" or again.get("release") != report["release"]:
            raise c.FleetError(f"second apply is not the same, finished deploy: {again}")
        changed = [h for h, text in states(fleet).items() if text != before[h]]
        samples["hosts_whose_state_changed"].append(len(changed))
        c.healthy_on(fleet, fleet.hosts, c.VERSION)
        samples["first_compiled"].append(float(c.compiled(ours.work)))
        samples["first"].append(first)
        samples["second"].append(second)
        c.log(f"repeat {i}/{repeat}: first apply {first:.1f} s, second {second:.1f} s")
    return samples


def report(hosts: int, repeat: int, samples: dict[str, list[float]],
           machine: dict[str, Any]) -> dict[str, Any]:
    first, second = c.median(samples["first"]), c.median(samples["second"])
    share = second / first
    return {
        "benchmark": NAME,
        "comparison": 4,
        "title": "No-op re-apply beside the first apply",
        "hosts": hosts,
        "repeat": repeat,
        "unit": "seconds, the command's wall time",
        "samples": samples,
        "median": {"first_apply": first, "second_apply": second},
        "second_over_first": share,
        "goal": f"second apply < {GOAL:.0%} of the first",
        "goal_met": share < GOAL,
        "summary": {
            "comparison": 4, "what": "no-op re-apply", "n": str(hosts), "repeats": repeat,
            "ours": f"second apply {second:.1f} s", "peer": f"first apply {first:.1f} s",
            "ratio": f"{share:.1%} of the first", "goal": f"< {GOAL:.0%}", "met": share < GOAL},
        "machine": machine,
        "code": c.code_version(),
        "when": c.now_utc(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    machine = c.machine()
    with tempfile.TemporaryDirectory(prefix="oxz-bench-") as tmp, \
            c.bench_fleet("bn", args.hosts) as (fleet, _app):
        samples = measure(fleet, Path(tmp), args.repeat)
    doc = report(args.hosts, args.repeat, samples, c.finish_machine(machine))
    c.log(f"results: {c.save(NAME, doc)}")
    print(c.table_row(doc["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
