"""Comparison 3: orchestration overhead on the same switch + restart + health work.

    .venv/bin/python -m bench.orchestration_overhead [--sizes 3,4] [--repeat 3]

The work: point `current` at a release that is already on every host, restart the unit, wait
until /healthz answers. Ours is `oxzep7-deploy rollback --to RELEASE --limit HOSTS`, which is
exactly that work plus what the tool adds around it (it reads the hosts' state first, takes
and releases the deploy lock, records the switch in the host state). The peer is one plain
playbook (bench/peer/switch.yml) run twice:

- Ansible's defaults: facts gathered, 5 forks, no pipelining, Ansible's own ssh_args
  (ControlMaster=auto, ControlPersist=60s inside the run);
- tuned by hand: no facts, pipelining, ControlPersist=120s, forks >= hosts.

Every run starts with cold SSH (a fresh control directory), ours too. A fleet of max(sizes)
hosts gets the upgrade once (not timed); then, per repeat and per N, each of the three switches
N hosts to the old release and back (two samples each), in an order that rotates per repeat.
After each switch the controller checks every host's /healthz (not timed).
Results: bench/results/orchestration_overhead.json and markdown table rows on stdout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

try:
    from bench import common as c
except ImportError:  # run as `python bench/orchestration_overhead.py`
    import common as c  # type: ignore[no-redef,import-not-found]

NAME = "orchestration_overhead"
VARIANTS = ("ours", "ansible_defaults", "ansible_tuned")
GOAL_VS_DEFAULTS = 2.0  # ours at least 2x faster than Ansible's defaults
GOAL_VS_TUNED = 1.2  # ours within 1.2x of hand-tuned Ansible


def switch(variant: str, fleet: c.Fleet, ours: c.Ours, work: Path, release: str,
           hosts: list[str]) -> float:
    """Seconds of one switch of `hosts` to `release` by `variant` (the command's wall time)."""
    if variant == "ours":
        seconds, doc = ours.rollback(to=release, limit=hosts)
        if not doc.get("complete"):
            raise c.FleetError(f"rollback --to {release} incomplete: {doc}")
        return seconds
    return c.run_peer(fleet, work / variant, "switch.yml", tuned=variant == "ansible_tuned",
                      extravars={"release": release}, limit=hosts)


def measure(fleet: c.Fleet, work: Path, sizes: list[int], repeat: int
            ) -> tuple[str, dict[str, dict[str, list[float]]], dict[str, Any]]:
    cache = c.private_cache(work)
    setup = c.Ours(fleet, work / "apply", cache)
    setup.write_spec()
    seconds, applied = setup.apply()
    if applied.get("outcome") != "succeeded":
        raise c.FleetError(f"apply did not succeed: {applied}")
    new = applied["release"]
    c.log(f"apply (not timed): {seconds:.1f} s, release {new}")
    by_n: dict[str, dict[str, list[float]]] = {str(n): {v: [] for v in VARIANTS} for n in sizes}
    ours_by_n = {n: c.Ours(fleet, work / f"ours-{n}", cache) for n in sizes}  # records per N
    for i in range(repeat):
        order = VARIANTS[i % 3:] + VARIANTS[: i % 3]
        for n in sizes:
            hosts, ours = fleet.hosts[:n], ours_by_n[n]
            for variant in order:
                for release, version in ((c.INITIAL, c.OLD_PYTHON), (new, c.VERSION)):
                    took = switch(variant, fleet, ours, work, release, hosts)
                    c.healthy_on(fleet, hosts, version)
                    by_n[str(n)][variant].append(took)
                    c.log(f"repeat {i + 1}/{repeat} N={n} {variant}: -> {release} {took:.1f} s")
    return new, by_n, {str(n): c.ops_breakdown(o.work) for n, o in ours_by_n.items()}


def summarise(n: str, samples: dict[str, list[float]], repeat: int) -> dict[str, Any]:
    med = {v: c.median(samples[v]) for v in VARIANTS}
    vs_defaults = med["ansible_defaults"] / med["ours"]
    vs_tuned = med["ours"] / med["ansible_tuned"]
    met = vs_defaults >= GOAL_VS_DEFAULTS and vs_tuned <= GOAL_VS_TUNED
    return {
        "median": med,
        "speedup_defaults_over_ours": vs_defaults,
        "ours_over_tuned": vs_tuned,
        "goal_vs_defaults_met": vs_defaults >= GOAL_VS_DEFAULTS,
        "goal_vs_tuned_met": vs_tuned <= GOAL_VS_TUNED,
        "summary": {
            "comparison": 3, "what": "switch + restart + health", "n": n,
            "repeats": f"{repeat} (x2 switches)", "ours": f"{med['ours']:.1f} s",
            "peer": f"defaults {med['ansible_defaults']:.1f} s; tuned {med['ansible_tuned']:.1f} s",
            "ratio": f"defaults take {vs_defaults:.2f}x ours; ours take {vs_tuned:.2f}x tuned",
            "goal": f">= {GOAL_VS_DEFAULTS:g}x faster than defaults, <= {GOAL_VS_TUNED:g}x tuned",
            "met": met},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="3,4", help="host counts N, e.g. 3 or 3,4")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    machine = c.machine()
    with tempfile.TemporaryDirectory(prefix="oxz-bench-") as tmp, \
            c.bench_fleet("bo", max(sizes)) as (fleet, _app):
        release, by_n, breakdown = measure(fleet, Path(tmp), sizes, args.repeat)
    results = {n: {"samples": s, **summarise(n, s, args.repeat)} for n, s in by_n.items()}
    doc = {
        "benchmark": NAME,
        "comparison": 3,
        "title": "Orchestration overhead: the same switch + restart + health",
        "sizes": sizes,
        "repeat": args.repeat,
        "samples_per_median": 2 * args.repeat,
        "unit": "seconds, the command's wall time",
        "release": release,
        "variants": {
            "ours": "oxzep7-deploy rollback --to RELEASE --limit HOSTS",
            "ansible_defaults": "ansible-playbook bench/peer/switch.yml; facts, 5 forks, no pipelining, "
                                "default ssh_args",
            "ansible_tuned": "the same playbook; no facts, pipelining, ControlPersist=120s, forks >= hosts",
        },
        "by_n": results,
        "ours_breakdown": breakdown,
        "goal": f"ours >= {GOAL_VS_DEFAULTS:g}x faster than defaults and <= {GOAL_VS_TUNED:g}x tuned",
        "goal_met": all(r["summary"]["met"] for r in results.values()),
        "summary": [r["summary"] for r in results.values()],
        "machine": c.finish_machine(machine),
        "code": c.code_version(),
        "when": c.now_utc(),
    }
    c.log(f"results: {c.save(NAME, doc)}")
    for r in results.values():
        print(c.table_row(r["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
