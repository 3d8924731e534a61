"""Comparison 7: bytes the controller sends to install the interpreter on N hosts, pushed by the
controller (today's default) against pulled by each host from `artifacts.mirror`.

    .venv/bin/python -m bench.mirror_push_pull [--hosts 12] [--repeat 1]

On a fleet of N hosts with the sample app on the system Python, the same spec (the session's
CPython 3.13.5 build from the tool's artifact cache, installed as `method: prebuilt`: the cheapest
real artifact, no compiler run) is applied twice per repeat, each from hosts reset to the sample
app's installation: once without a mirror (the controller copies the archive to every host over
SSH) and once with `artifacts.mirror` served by h1 (`oxzep7-deploy publish` into a folder copied
to h1 with `podman cp`, outside the fleet's network; `python3 -m http.server` there). The order
alternates per repeat.

Bytes sent by the controller: the controller reaches the hosts only from the fleet's bridge
namespace (the inventory's ProxyCommand is `ip netns exec <fleet>-net nc`), whose one address
is on the bridge `br0`. The bridge device counts only what that namespace's own stack sends
(`ip -s link show br0`, tx bytes), not the frames it forwards between hosts, so h1 serving the
mirror to h2..hN is not counted, as it would not be on a real network. Each sample is the
difference of the counter around one `apply`; everything the controller sends in that apply is
in it (SSH, Ansible's modules, the host agent, the archive when pushed).
Results: bench/results/mirror_push_pull.json and a markdown table row on stdout.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

try:
    from bench import common as c
    from bench.noop_reapply import reset
except ImportError:  # run as `python bench/mirror_push_pull.py`
    import common as c  # type: ignore[no-redef,import-not-found]
    from noop_reapply import reset  # type: ignore[no-redef,import-not-found]

from tests.fleet.scenario import sample_spec, write

NAME = "mirror_push_pull"
PORT = 8808
MIRROR_DIR = "/srv/oxz-mirror"
UNIT = "oxz-bench-mirror"


def tx_rx(fleet: c.Fleet) -> tuple[int, int]:
    """Bytes the bridge namespace's own stack has sent to and received from the hosts."""
    out = subprocess.run(["ip", "-n", fleet.bridge_ns, "-j", "-s", "link", "show", "br0"],
                         capture_output=True, text=True, check=True).stdout
    stats = json.loads(out)[0]["stats64"]
    return int(stats["tx"]["bytes"]), int(stats["rx"]["bytes"])


def interpreter_artifact(cache: Path) -> tuple[Path, str]:
    """The session build's packed tree in the (private copy of the) tool's cache."""
    for manifest in sorted((cache / "artifacts").glob("*.json")):
        meta = json.loads(manifest.read_text())
        if meta.get("kind") != "wheels" and meta.get("version") == c.VERSION:
            return cache / "artifacts" / meta["name"], str(meta["sha256"])
    raise c.FleetError(f"no CPython {c.VERSION} build in {cache}: run the e2e suite or the demo "
                       "once to build it (this benchmark never compiles)")


def spec_text(archive: Path, sha256: str, name: str, mirror: str | None) -> str:
    text = sample_spec(archive, sha256, name=name)
    text, n = re.subn(r"  install:\n(?:    .*\n)+",
                      f'  install:\n    method: prebuilt\n    url: {archive}\n'
                      f'    sha256: "{sha256}"\n', text)
    assert n == 1, "the sample spec's install block moved"
    return text + (f"artifacts:\n  mirror: {mirror}\n" if mirror else "")


def start_mirror(fleet: c.Fleet, ours: c.Ours, url: str) -> None:
    """`publish` the spec's artifacts into a folder, copy it to h1, serve it there at `url`."""
    assert ours.spec_path is not None
    folder = ours.work / "mirror"
    ours.run("publish", str(ours.spec_path), "--dest", str(folder))
    fleet.sh("h1", f"rm -rf {MIRROR_DIR}; systemctl stop {UNIT} 2>/dev/null; true")
    fleet.copy_to("h1", folder, MIRROR_DIR)
    fleet.sh("h1", f"systemd-run --unit {UNIT} python3 -m http.server {PORT} "
                   f"--directory {MIRROR_DIR} >/dev/null")
    fleet.sh("h2", f"for i in $(seq 50); do curl -sf {url}index.json -o /dev/null && exit 0;"
                   " sleep 0.2; done; exit 1")


def stop_mirror(fleet: c.Fleet) -> int:
    """Stop h1's web server; the number of artifact downloads it answered."""
    log = fleet.sh("h1", f"journalctl -u {UNIT} --no-pager -o cat 2>/dev/null; "
                         f"systemctl stop {UNIT} 2>/dev/null; true")
    return sum(1 for line in log.splitlines() if '"GET /sha256/' in line and '" 200 ' in line)


def measure(fleet: c.Fleet, work: Path, repeat: int) -> tuple[dict[str, list[float]], int]:
    samples: dict[str, list[float]] = {f"{m}_{k}": [] for m in ("push", "pull")
                                       for k in ("tx_bytes", "rx_bytes", "seconds")}
    samples["pull_downloads"] = []
    cache = c.private_cache(work)
    archive, sha256 = interpreter_artifact(cache)
    for i in range(1, repeat + 1):
        for mode in (("push", "pull") if i % 2 else ("pull", "push")):
            reset(fleet)
            ours = c.Ours(fleet, work / f"r{i}-{mode}", cache)
            mirror = f"http://{fleet.address('h1')}:{PORT}/" if mode == "pull" else None
            ours.spec_path = write(ours.work, "spec.yaml",
                                   spec_text(archive, sha256, f"mirror-{mode}", mirror))
            if mirror:
                start_mirror(fleet, ours, mirror)
            tx0, rx0 = tx_rx(fleet)
            seconds, report = ours.apply()
            tx1, rx1 = tx_rx(fleet)
            if report.get("outcome") != "succeeded":
                raise c.FleetError(f"{mode} apply did not succeed: {report}")
            if mode == "pull":
                samples["pull_downloads"].append(stop_mirror(fleet))
            c.healthy_on(fleet, fleet.hosts, c.VERSION)
            samples[f"{mode}_tx_bytes"].append(tx1 - tx0)
            samples[f"{mode}_rx_bytes"].append(rx1 - rx0)
            samples[f"{mode}_seconds"].append(seconds)
            c.log(f"repeat {i}/{repeat} {mode}: controller sent {(tx1 - tx0) / 1e6:.1f} MB, "
                  f"apply {seconds:.1f} s")
    return samples, archive.stat().st_size


def report(hosts: int, repeat: int, samples: dict[str, list[float]], artifact_bytes: int,
           machine: dict[str, Any]) -> dict[str, Any]:
    push, pull = c.median(samples["push_tx_bytes"]), c.median(samples["pull_tx_bytes"])
    met = pull < artifact_bytes
    return {
        "benchmark": NAME,
        "comparison": 7,
        "title": "Bytes the controller sends: push vs pull from artifacts.mirror",
        "hosts": hosts,
        "repeat": repeat,
        "unit": "bytes sent by the controller's side of the fleet network (br0 tx) per apply",
        "artifact_bytes": artifact_bytes,
        "samples": samples,
        "median": {"push_tx_bytes": push, "pull_tx_bytes": pull,
                   "push_seconds": c.median(samples["push_seconds"]),
                   "pull_seconds": c.median(samples["pull_seconds"])},
        "goal": "with a mirror the controller sends less than one copy of the artifact",
        "goal_met": met,
        "summary": {
            "comparison": 7, "what": "bytes sent by the controller: pull from a mirror vs push",
            "n": str(hosts), "repeats": repeat,
            "ours": f"pull {pull / 1e6:.1f} MB", "peer": f"push {push / 1e6:.1f} MB "
                                                         f"(artifact {artifact_bytes / 1e6:.1f} MB)",
            "ratio": f"{push / pull:.0f}x less" if pull else "?",
            "goal": "pull < one artifact", "met": met},
        "machine": machine,
        "code": c.code_version(),
        "when": c.now_utc(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    machine = c.machine()
    with tempfile.TemporaryDirectory(prefix="oxz-bench-") as tmp, \
            c.bench_fleet("bm", args.hosts) as (fleet, _app):
        samples, size = measure(fleet, Path(tmp), args.repeat)
    doc = report(args.hosts, args.repeat, samples, size, c.finish_machine(machine))
    c.log(f"results: {c.save(NAME, doc)}")
    print(c.table_row(doc["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
