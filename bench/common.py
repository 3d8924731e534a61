"""What the fleet benchmarks share: a fleet of their own, the CLI and the peer's ansible-playbook
run side by side with cold SSH, health checks from the controller, medians, results JSON.

Every timed command starts with a fresh SSH control directory, ours and the peer's alike, so no
run borrows a master connection an earlier one opened; inside a run each side keeps whatever
connection reuse its own settings give it.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(REPO) not in sys.path:  # `python bench/x.py` as well as `python -m bench.x`
    sys.path.insert(0, str(REPO))

from bench.plot import row as table_row  # noqa: E402
from tests.fleet.build import tool_cache  # noqa: E402
from tests.fleet.harness import Fleet, FleetError  # noqa: E402
from tests.fleet.sample_app import SampleApp, install_sample_app  # noqa: E402
from tests.fleet.scenario import (  # noqa: E402
    VERSION,
    Controller,
    cpython_source,
    sample_spec,
    write,
)

RESULTS = BENCH / "results"
PEER = BENCH / "peer"
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
OLD_PYTHON = "3.11"  # the hosts' system Python, which the sample app runs on before the upgrade
INITIAL = "initial"  # the sample app's hand-made release on the system Python
_cold = itertools.count(1)


def machine() -> dict[str, Any]:
    """The machine the figures come from (absolute times are only comparable on it)."""
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    os_name = next((line.split("=", 1)[1].strip('"') for line in
                    Path("/etc/os-release").read_text().splitlines()
                    if line.startswith("PRETTY_NAME=")), platform.system())
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?")
    return {"nproc": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1), "os": os_name,
            "kernel": platform.release(), "cpu": cpu, "python": platform.python_version(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()]}


def finish_machine(info: dict[str, Any]) -> dict[str, Any]:
    return {**info, "loadavg_end": [round(x, 2) for x in os.getloadavg()]}


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                          text=True).stdout.strip()


def _product_state() -> tuple[str, list[str]]:
    dirty = _git("status", "--porcelain", "--", "oxzep7_deploy", "playbooks").splitlines()
    return _git("rev-parse", "--short", "HEAD"), [line[3:] for line in dirty]


_AT_START = _product_state()  # when the benchmark's process started (it imports this first)


def code_version() -> dict[str, Any]:
    """The commit measured, and whether the product's files differed from it (the work tree is
    shared: figures taken with someone's uncommitted change say so); taken when the benchmark
    started, and the commit at its end too where a commit landed while it ran."""
    commit, dirty = _AT_START
    now, dirty_now = _product_state()
    out: dict[str, Any] = {"commit": commit, "uncommitted_product_files": dirty}
    if (now, dirty_now) != (commit, dirty):
        out.update(commit_at_end=now, uncommitted_product_files_at_end=dirty_now)
    return out


def _events(run_dir: Path) -> list[dict[str, Any]]:
    found = [json.loads(f.read_text()) for f in run_dir.glob("artifacts/*/job_events/*.json")]
    return sorted(found, key=lambda e: str(e.get("created", "")))


def ops_breakdown(work: Path) -> dict[str, Any]:
    """Where our `rollback` commands recorded under `work` spent their time, from the event logs
    ansible-runner keeps: each batch's span (first to last event) and each task's span (its
    start to the next task's start), medians over the commands."""
    import datetime as dt

    def at(event: dict[str, Any]) -> float:
        return dt.datetime.fromisoformat(str(event["created"])).timestamp()

    spans: dict[str, list[float]] = {}
    for op in sorted(work.glob(".oxzep7/ops/*/*")):
        batches = [(p, _events(p)) for p in op.iterdir() if p.is_dir()]
        for batch, events in sorted((b for b in batches if b[1]), key=lambda b: at(b[1][0])):
            spans.setdefault(f"batch {batch.name}", []).append(at(events[-1]) - at(events[0]))
            starts = [e for e in events if e.get("event") == "playbook_on_task_start"]
            for task, nxt in zip(starts, [*starts[1:], events[-1]], strict=True):
                name = f"  task {batch.name}: {task['event_data'].get('task', '?')}"
                spans.setdefault(name, []).append(at(nxt) - at(task))
    return {k: round(median(v), 2) for k, v in spans.items()}


def private_cache(work: Path) -> Path:
    """A copy of the tool's artifact cache for this run: a concurrent test that drops the shared
    cache's build (tests/e2e/test_interpreter.py does) cannot make one of our applies compile."""
    dest = work / "tool-cache"
    shared = tool_cache()
    if shared.exists():
        shutil.copytree(shared, dest, ignore=shutil.ignore_patterns("incoming"), symlinks=True)
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def compiled(work: Path) -> bool:
    """Whether an apply recorded under `work` ran a compiler (its records have a build run)."""
    return any(work.glob(".oxzep7/deploys/*/*/runs/*/interpreter-*-build"))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def save(name: str, doc: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def down_on_term() -> None:
    """SIGTERM ends the benchmark through its `finally` blocks, so its fleet comes down (a job
    started in the background ignores SIGINT)."""
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


@contextmanager
def bench_fleet(prefix: str, hosts: int) -> Iterator[tuple[Fleet, SampleApp]]:
    """A fleet of `hosts` with the sample app healthy on the system Python; always torn down."""
    if not prefix.startswith("b"):
        raise ValueError("benchmark fleets are named b…")
    down_on_term()
    fleet = Fleet.allocate(prefix)
    try:
        log(f"fleet {fleet.name}: {hosts} hosts coming up (h1 carries a compiler)")
        fleet.up(hosts, build_hosts=["h1"])
        log("the sample app on every host, on the system Python")
        app = install_sample_app(fleet)
        yield fleet, app
    finally:
        log(f"fleet {fleet.name}: down")
        fleet.down()
        left = fleet.leftovers()
        if left:
            log(f"fleet {fleet.name} left behind: {left}")


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def cold_control_dir(fleet: Fleet) -> Path:
    """A fresh SSH control directory (fleet.down removes every /tmp/oxz-cp-<fleet>-*)."""
    path = Path(f"/tmp/oxz-cp-{fleet.name}-b{os.getpid() % 10000}-{next(_cold)}")
    path.mkdir(parents=True)
    return path


@dataclass
class Ours:
    """The real `oxzep7-deploy` CLI against the fleet, records in `work` (as a user runs it)."""

    fleet: Fleet
    work: Path
    cache: Path
    spec_path: Path | None = None
    app: str = "sample"

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.ctl = Controller(self.fleet, self.work)

    def write_spec(self, name: str = "sample-py313") -> Path:
        tarball, sha = cpython_source()
        self.spec_path = write(self.work, f"{name}.yaml", sample_spec(tarball, sha, name=name))
        return self.spec_path

    def run(self, *args: str) -> tuple[float, Any]:
        """Wall seconds and the --json document of one command; FleetError unless it exits 0."""
        env = self.ctl.env()
        env["OXZEP7_CACHE"] = str(self.cache)
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(cold_control_dir(self.fleet))
        argv = [str(Path(sys.executable).with_name("oxzep7-deploy")), *args, "--json"]
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=self.work, env=env, capture_output=True, text=True,
                              timeout=3600)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise FleetError(f"oxzep7-deploy {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return elapsed, json.loads(proc.stdout)

    def apply(self) -> tuple[float, Any]:
        assert self.spec_path is not None, "write_spec first"
        return self.run("apply", str(self.spec_path), "-i", str(self.fleet.inventory), "--yes")

    def rollback(self, to: str | None = None, limit: Sequence[str] = (),
                 extra: Sequence[str] = ()) -> tuple[float, Any]:
        args = ["rollback", "-i", str(self.fleet.inventory), "--app", self.app, "--yes", *extra]
        args += ["--to", to] if to else []
        args += ["--limit", ",".join(limit)] if limit else []
        return self.run(*args)


def peer_env(fleet: Fleet, work: Path, *, tuned: bool, forks: int) -> dict[str, str]:
    """ansible-playbook's environment: Ansible's defaults, or tuned by hand.

    Defaults: facts gathered (the playbooks leave gather_facts to ANSIBLE_GATHERING), 5 forks,
    no pipelining, Ansible's own ssh_args (ControlPersist=60s inside the run). Tuned: no facts,
    pipelining, ControlPersist, forks >= hosts. Both start with cold SSH (a fresh control dir).
    """
    env = fleet.ansible_env(work)  # inventory access, host key checking off, no retry files
    env.pop("ANSIBLE_PIPELINING", None)
    env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(cold_control_dir(fleet))
    if tuned:
        env.update({"ANSIBLE_PIPELINING": "True", "ANSIBLE_GATHERING": "explicit",
                    "ANSIBLE_FORKS": str(max(forks, 5)),
                    "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=120s"})
    return env


def run_peer(fleet: Fleet, work: Path, playbook: str, *, tuned: bool,
             extravars: dict[str, Any] | None = None, limit: Sequence[str] = ()) -> float:
    """Wall seconds of one `ansible-playbook bench/peer/<playbook>`; FleetError unless it exits 0."""
    work.mkdir(parents=True, exist_ok=True)
    hosts = list(limit) or fleet.hosts
    argv = [str(ANSIBLE_PLAYBOOK), "-i", str(fleet.inventory), str(PEER / playbook)]
    argv += ["--limit", ",".join(limit)] if limit else []
    argv += ["-e", json.dumps(extravars)] if extravars else []
    env = peer_env(fleet, work, tuned=tuned, forks=len(hosts))
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=3600)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise FleetError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                         f"{proc.stderr[-2000:]}")
    return elapsed


def healthy_on(fleet: Fleet, hosts: Sequence[str], version: str, timeout: float = 60) -> None:
    """Wait until every host's /healthz answers ok from a Python starting with `version`."""
    def one(host: str) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            try:
                body = fleet.http(host, 8000, "/healthz", timeout=2).json()
                if body.get("status") == "ok" and str(body.get("python", "")).startswith(version):
                    return
                last = json.dumps(body)
            except (FleetError, ValueError) as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                raise FleetError(f"{host} not healthy on Python {version} in {timeout:.0f} s: {last}")
            time.sleep(0.2)

    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        list(pool.map(one, hosts))


def timed_to_healthy(action: Any, fleet: Fleet, hosts: Sequence[str], version: str
                     ) -> tuple[float, float]:
    """(seconds from the command's start to every host verified healthy on `version`, command
    seconds): the controller checks /healthz itself once the command returns."""
    start = time.perf_counter()
    command_s = action()
    healthy_on(fleet, hosts, version)
    return time.perf_counter() - start, command_s


__all__ = ["INITIAL", "OLD_PYTHON", "VERSION", "Fleet", "FleetError", "Ours", "SampleApp",
           "bench_fleet", "code_version", "compiled", "cpython_source", "down_on_term",
           "finish_machine",
           "healthy_on", "log", "machine", "median", "now_utc", "ops_breakdown", "private_cache",
           "run_peer", "save", "table_row", "timed_to_healthy", "write"]
