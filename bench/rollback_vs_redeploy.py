"""Comparison 2: time to restore the old version after an upgrade, our `rollback` beside the peer
way of redeploying the old version (bench/peer/redeploy_old.yml: make sure the old interpreter is
installed, rebuild the release's venv on it, repoint current, restart, wait for health) and, on
datasette, beside the hand-written minimum (bench/peer/switch.yml tuned: flip the symlink back,
restart, wait for health).

    .venv/bin/python -m bench.rollback_vs_redeploy [--app datasette|sample] [--hosts 3] [--repeat 3]

--app datasette (the default, issue 15's rows): the realistic app (bench/realistic.py), 28
packages; the peer's redeploy rebuilds the old release's venv on the system Python from the
app's cp311 wheel directory. Each repeat restores three times, in an order that rotates per
repeat, each after an apply (not timed) that moved every host to a new release on 3.13.5: ours
(`rollback --to initial`), the peer's redeploy, the minimum. --app sample: the sample app (the
earlier row), ours and the redeploy only.

Time to restore = from the command's start until the controller itself has seen every host's
/healthz answer ok from the old Python (3.11). Each repeat: apply (not timed) -> time our
rollback -> apply again (not timed; the hosts moved away, so it is a new attempt with a new
release) -> time the peer's redeploy. The peer gets its best honest settings: no facts,
pipelining, ControlPersist, forks >= hosts. Both start with cold SSH.

Our rollback names its target (`--to initial`): after the first repeat the hosts hold more than
one good release, and the one to restore is the sample app's release on the system Python.
Results: bench/results/rollback_vs_redeploy.json and one markdown table row on stdout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    from bench import common as c
except ImportError:  # run as `python bench/rollback_vs_redeploy.py`
    import common as c  # type: ignore[no-redef,import-not-found]
from bench import realistic as ds

NAME = "rollback_vs_redeploy"
GOAL = 10.0  # ours at least 10x faster
MINIMUM_GOAL = 1.2  # ours at most 1.2x the hand-written minimum's time


def apply_new(ours: c.Ours, hosts: list[str]) -> float:
    """Every host on a (new) release of the upgrade, verified: the state a restore starts from."""
    seconds, report = ours.apply()
    if report.get("outcome") != "succeeded":
        raise c.FleetError(f"apply did not succeed: {report}")
    c.healthy_on(ours.fleet, hosts, c.VERSION)
    c.log(f"  apply (not timed): {seconds:.1f} s, release {report['release']}")
    return seconds


def restore_ours(ours: c.Ours, *extra: str) -> float:
    seconds, doc = ours.rollback(to=c.INITIAL, extra=extra)
    if not doc.get("complete"):
        raise c.FleetError(f"rollback incomplete: {doc}")
    return seconds


def measure(fleet: c.Fleet, work: Path, repeat: int) -> tuple[dict[str, list[float]], dict[str, Any]]:
    hosts = fleet.hosts
    ours = c.Ours(fleet, work / "ours", c.private_cache(work))
    ours.write_spec()
    samples: dict[str, list[float]] = {"ours": [], "peer": [], "ours_command": [],
                                       "peer_command": [], "apply_not_timed": []}
    for i in range(1, repeat + 1):
        c.log(f"repeat {i}/{repeat}")
        samples["apply_not_timed"].append(apply_new(ours, hosts))
        total, command = c.timed_to_healthy(lambda: restore_ours(ours), fleet, hosts, c.OLD_PYTHON)
        samples["ours"].append(total)
        samples["ours_command"].append(command)
        c.log(f"  ours: rollback {total:.1f} s to healthy on {c.OLD_PYTHON} ({command:.1f} s command)")
        samples["apply_not_timed"].append(apply_new(ours, hosts))
        total, command = c.timed_to_healthy(
            lambda: c.run_peer(fleet, work / "peer", "redeploy_old.yml", tuned=True),
            fleet, hosts, c.OLD_PYTHON)
        samples["peer"].append(total)
        samples["peer_command"].append(command)
        c.log(f"  peer: redeploy {total:.1f} s to healthy on {c.OLD_PYTHON} ({command:.1f} s command)")
    return samples, c.ops_breakdown(ours.work)


def apply_datasette(ours: c.Ours) -> float:
    seconds, report = ours.apply()
    if report.get("outcome") != "succeeded":
        raise c.FleetError(f"apply did not succeed: {report}")
    ds.healthy_on(ours.fleet, ours.fleet.hosts, c.VERSION)
    c.log(f"  apply (not timed): {seconds:.1f} s, release {report['release']}")
    return seconds


def timed_ds(action: Callable[[], float], fleet: c.Fleet) -> tuple[float, float]:
    start = time.perf_counter()
    command_s = action()
    ds.healthy_on(fleet, fleet.hosts, c.OLD_PYTHON)
    return time.perf_counter() - start, command_s


def measure_datasette(fleet: c.Fleet, work: Path, repeat: int,
                      checkpoint: Callable[[dict[str, list[float]], int], None]
                      ) -> tuple[dict[str, list[float]], dict[str, Any]]:
    source, sha = c.cpython_source()
    ours = c.Ours(fleet, work / "ours", c.private_cache(work), app=ds.NAME)
    ours.spec_path = c.write(ours.work, "datasette.yaml", ds.spec_text(source, sha))
    sides: dict[str, Callable[[], float]] = {
        "ours": lambda: restore_ours(ours),
        # every host at once, as the minimum does it (ours by default goes in batches of at most
        # half the hosts, keeping the app served: 3 batches of 1 here)
        "ours_all_at_once": lambda: restore_ours(ours, "--all-at-once"),
        "peer": lambda: c.run_peer(fleet, work / "peer", "redeploy_old.yml", tuned=True,
                                   extravars=ds.peer_vars()),
        "minimum": lambda: c.run_peer(fleet, work / "minimum", "switch.yml", tuned=True,
                                      extravars=ds.peer_vars()),
    }
    samples: dict[str, list[float]] = {k: [] for k in (
        "ours", "ours_all_at_once", "peer", "minimum", "ours_command",
        "ours_all_at_once_command", "peer_command", "minimum_command", "apply_not_timed")}
    order = list(sides)
    for i in range(1, repeat + 1):
        c.log(f"repeat {i}/{repeat}")
        for name in order[i - 1:] + order[:i - 1]:
            samples["apply_not_timed"].append(apply_datasette(ours))
            total, command = timed_ds(sides[name], fleet)
            samples[name].append(total)
            samples[f"{name}_command"].append(command)
            c.log(f"  {name}: {total:.1f} s to datasette on {c.OLD_PYTHON} everywhere "
                  f"({command:.1f} s command)")
        checkpoint(samples, i)
    return samples, c.ops_breakdown(ours.work)


def report(hosts: int, repeat: int, samples: dict[str, list[float]],
           machine: dict[str, Any], app: str = "sample") -> dict[str, Any]:
    ours, peer = c.median(samples["ours"]), c.median(samples["peer"])
    speedup = peer / ours
    doc: dict[str, Any] = {
        "benchmark": NAME,
        "comparison": 2,
        "title": "Time to restore: rollback vs redeploying the old version",
        "hosts": hosts,
        "repeat": repeat,
        "unit": "seconds from command start to every host healthy on the old Python",
        "samples": samples,
        "median": {"ours_rollback": ours, "peer_redeploy": peer},
        "speedup_peer_over_ours": speedup,
        "goal": f"ours >= {GOAL:g}x faster",
        "goal_met": speedup >= GOAL,
        "peer": {"playbook": "bench/peer/redeploy_old.yml",
                 "settings": "gather_facts false, pipelining, ControlPersist=120s, forks >= hosts"},
        "summary": {
            "comparison": 2, "what": "time to restore the old version", "n": str(hosts),
            "repeats": repeat, "ours": f"rollback {ours:.1f} s",
            "peer": f"redeploy (venv rebuilt) {peer:.1f} s",
            "ratio": f"{speedup:.1f}x faster", "goal": f">= {GOAL:g}x faster",
            "met": speedup >= GOAL},
        "machine": machine,
        "code": c.code_version(),
        "when": c.now_utc(),
        "app": app if app == "sample" else ds.describe(),
    }
    if samples.get("minimum"):
        minimum = c.median(samples["minimum"])
        ratio = ours / minimum
        doc["median"]["peer_minimum"] = minimum
        doc["ours_over_minimum"] = ratio
        doc["minimum_goal_met"] = ratio <= MINIMUM_GOAL
        doc["minimum"] = {"playbook": "bench/peer/switch.yml",
                          "settings": doc["peer"]["settings"]}
        doc["summary"] = [
            {**doc["summary"], "what": f"time to restore the old version ({app}): vs redeploy"},
            {"comparison": 2, "what": f"time to restore ({app}): vs the hand-written minimum",
             "n": str(hosts), "repeats": repeat, "ours": f"rollback {ours:.1f} s",
             "peer": f"flip + restart + health playbook {minimum:.1f} s",
             "ratio": f"ours take {ratio:.2f}x its time", "goal": f"<= {MINIMUM_GOAL:g}x its time",
             "met": ratio <= MINIMUM_GOAL}]
    if samples.get("ours_all_at_once") and samples.get("minimum"):
        at_once = c.median(samples["ours_all_at_once"])
        ratio = at_once / doc["median"]["peer_minimum"]
        doc["median"]["ours_rollback_all_at_once"] = at_once
        doc["ours_all_at_once_over_minimum"] = ratio
        doc["summary"][1]["ours"] += " (in batches of 1, the default)"
        doc["summary"].append(
            {"comparison": 2, "what": f"time to restore ({app}): --all-at-once vs the minimum",
             "n": str(hosts), "repeats": repeat, "ours": f"rollback --all-at-once {at_once:.1f} s",
             "peer": f"flip + restart + health playbook {doc['median']['peer_minimum']:.1f} s",
             "ratio": f"ours take {ratio:.2f}x its time", "goal": f"<= {MINIMUM_GOAL:g}x its time",
             "met": ratio <= MINIMUM_GOAL})
    return doc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--app", choices=("datasette", "sample"), default="datasette")
    args = parser.parse_args()
    machine = c.machine()
    if args.app == "datasette":
        def checkpoint(samples: dict[str, list[float]], done: int) -> None:
            """The repeats done so far, saved: a run stopped later keeps them (`partial`)."""
            if done < args.repeat:
                doc = report(args.hosts, done, samples, c.finish_machine(machine), args.app)
                doc["partial"] = f"{done} of {args.repeat} repeats"
                c.log(f"saved {done} repeat(s): {c.save(NAME, doc)}")

        with ds.realistic_fleet("br", args.hosts) as (fleet, work):
            samples, breakdown = measure_datasette(fleet, work, args.repeat, checkpoint)
    else:
        with tempfile.TemporaryDirectory(prefix="oxz-bench-") as tmp, \
                c.bench_fleet("br", args.hosts) as (fleet, _app):
            samples, breakdown = measure(fleet, Path(tmp), args.repeat)
    doc = report(args.hosts, args.repeat, samples, c.finish_machine(machine), args.app)
    doc["ours_breakdown"] = breakdown
    path = c.save(NAME, doc)
    c.log(f"results: {path}")
    summaries = doc["summary"] if isinstance(doc["summary"], list) else [doc["summary"]]
    for summary in summaries:  # datasette: two rows (vs the redeploy, vs the minimum)
        print(c.table_row(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
