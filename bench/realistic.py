"""The realistic application for the benchmarks of issue 15: datasette (28 hash-pinned packages,
MarkupSafe's C extension compiled from its sdist), as tests/e2e/test_wheels.py deploys it.

    with realistic_fleet("bx", 3, build_hosts=["h1"]) as (fleet, work):
        ...   # datasette healthy on the system Python 3.11 on every host, release `initial`

Every host gets the app's code (its requirements.lock), the cp311 wheels of its first release
in CP311 (the app's own wheel directory, what a peer redeploy of the old version installs from),
and the package directory PKGS (the cp313 and pure wheels, MarkupSafe only as an sdist, and its
build requirements): the build host needs it for ours, every host for the peer's pyenv way.
The packages come from the controller's wheelhouse (tests/fleet/wheelhouse.py, made by
tests/setup.sh); the hosts have no route out.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import common as c
from tests.fleet import wheelhouse
from tests.fleet.build import CONFIGURE
from tests.fleet.harness import Fleet, FleetError

NAME = "ds"
ROOT, CODE, PORT, UNIT = "/srv/ds", "/srv/ds/app", 8001, "oxzep7-datasette.service"
PKGS = "/var/tmp/oxzep7-pkgs"
CP311 = "/var/tmp/oxzep7-cp311"
VERSIONS = "/-/versions.json"
HEALTH_URL = f"http://127.0.0.1:{PORT}{VERSIONS}"
HEALTH_MARKER = '"datasette"'


def _copy_dir(fleet: Fleet, host: str, archive: Path, dest: str) -> None:
    fleet.copy_to(host, archive, f"/tmp/{archive.name}")
    fleet.sh(host, f"mkdir -p {dest} && tar -C {dest} -xf /tmp/{archive.name} && "
                   f"rm /tmp/{archive.name}")


def install(fleet: Fleet, work: Path, hosts: Sequence[str] | None = None) -> None:
    """datasette's first release on the system Python 3.11, made by hand, on `hosts`."""
    home = wheelhouse.ensure()
    work.mkdir(parents=True, exist_ok=True)
    archives = {}
    for folder in ("index", "cp311"):
        archives[folder] = work / f"{folder}.tar"
        subprocess.run(["tar", "-C", str(home / folder), "-cf", str(archives[folder]), "."],
                       check=True)
    unit = (wheelhouse.APP / UNIT).read_text().replace("@ROOT@", ROOT).replace("@PORT@", str(PORT))
    venv = f"{ROOT}/releases/initial/venv"

    def one(host: str) -> None:
        fleet.sh(host, f"mkdir -p {CODE} {ROOT}/releases")
        fleet.copy_to(host, wheelhouse.LOCK, f"{CODE}/requirements.lock")
        _copy_dir(fleet, host, archives["index"], PKGS)
        _copy_dir(fleet, host, archives["cp311"], CP311)
        fleet.sh(host, f"set -e; id dsapp >/dev/null 2>&1 || useradd -r -s /usr/sbin/nologin dsapp;"
                       f" python3 -m venv {venv}; PIP_DISABLE_PIP_VERSION_CHECK=1 {venv}/bin/pip"
                       f" install -q --no-index --find-links {CP311} --require-hashes"
                       f" -r {CODE}/requirements.lock; ln -sfn releases/initial {ROOT}/current",
                 timeout=600)
        fleet.write_file(host, f"/etc/systemd/system/{UNIT}", unit)
        fleet.sh(host, f"systemctl daemon-reload && systemctl enable -q --now {UNIT}")

    targets = list(hosts or fleet.hosts)
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        list(pool.map(one, targets))
    healthy_on(fleet, targets, c.OLD_PYTHON, timeout=300)


def python_of(fleet: Fleet, host: str) -> str:
    body = fleet.http(host, PORT, VERSIONS, timeout=2).json()
    return str(body["python"]["version"])


def healthy_on(fleet: Fleet, hosts: Sequence[str], version: str, timeout: float = 180) -> None:
    """Wait until datasette answers on every host from a Python starting with `version`."""
    def one(host: str) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            try:
                seen = python_of(fleet, host)
                if seen.startswith(version):
                    return
                last = f"answers from Python {seen}"
            except (FleetError, ValueError, KeyError) as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                journal = fleet.run_on(host, f"journalctl -u {UNIT} -n 20 --no-pager").stdout
                raise FleetError(f"{host}: datasette not serving from Python {version} in "
                                 f"{timeout:.0f} s: {last}\n{journal}")
            time.sleep(0.2)

    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        list(pool.map(one, hosts))


def spec_text(source: Path, sha256: str, *, build_host: str = "h1", name: str = "datasette-py313",
              rollout: str = "rollout:\n  strategy: blue-green\n") -> str:
    """The upgrade of datasette to CPython 3.13.5: the interpreter and the wheel set each built
    once (on `build_host`) and shipped to the other targets. The health check waits up to 180 s:
    datasette on the tests' -O0 build starts in seconds on an idle machine, in more than 30 s on
    this shared one at a load of 50 (the time to healthy is measured by the controller anyway)."""
    return f"""\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: {name}
targets: fleet
interpreter:
  version: "{c.VERSION}"
  install:
    method: source
    url: {source}
    sha256: "{sha256}"
    configure: {json.dumps(list(CONFIGURE))}
    build: once-per-platform
    build_host: {build_host}
application:
  name: {NAME}
  root: {ROOT}
  code: {CODE}
  requirements: requirements.lock
  pip_args: ["--require-hashes", "--no-index", "--find-links", "{PKGS}"]
  wheels: once-per-platform
  services: [{UNIT}]
health:
  checks:
    - http: {{url: "{HEALTH_URL}", contains: '{HEALTH_MARKER}'}}
  retries: 180
  interval: 1s
{rollout}"""


def peer_vars(release: str = "initial") -> dict[str, Any]:
    """The peer playbooks' variables for datasette (bench/peer/*.yml default to the sample app)."""
    return {"app_root": ROOT, "app_code": CODE, "release": release, "service": UNIT,
            "health_url": HEALTH_URL, "health_marker": HEALTH_MARKER, "wheels_dir": CP311,
            "pkgs_dir": PKGS, "health_retries": 180}


@contextmanager
def realistic_fleet(prefix: str, hosts: int, build_hosts: Sequence[str] = ("h1",)
                    ) -> Iterator[tuple[Fleet, Path]]:
    """A fleet of `hosts` with datasette healthy on the system Python; always torn down."""
    if not prefix.startswith("b"):
        raise ValueError("benchmark fleets are named b…")
    c.down_on_term()
    fleet = Fleet.allocate(prefix)
    work = Path(tempfile.mkdtemp(prefix="oxz-bench-"))
    try:
        c.log(f"fleet {fleet.name}: {hosts} hosts coming up (compilers on {list(build_hosts)})")
        fleet.up(hosts, build_hosts=list(build_hosts))
        c.log("datasette on every host, on the system Python 3.11")
        install(fleet, work / "setup")
        yield fleet, work
    finally:
        c.log(f"fleet {fleet.name}: down")
        fleet.down()
        shutil.rmtree(work, ignore_errors=True)


def describe() -> dict[str, Any]:
    return {"name": "datasette", "packages": len(wheelhouse.pins()),
            "compiled_from_sdist": [wheelhouse.SDIST], "requirements": "tests/app/datasette/"
            "requirements.lock", "served_by": "datasette's uvicorn under systemd"}
