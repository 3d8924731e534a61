"""The demo: a 3-host fleet, a real canary upgrade of the sample app from Python 3.11 to 3.13.5,
status, and a rollback. Run it with `bash tests/demo.sh`; KEEP_FLEET=1 leaves the fleet up."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from tests.fleet.harness import Fleet, FleetError
from tests.fleet.sample_app import install_sample_app
from tests.fleet.scenario import Controller, cpython_source, sample_spec, write


def banner(text: str) -> None:
    print(f"\n\033[1;36m=== {text}\033[0m", flush=True)


def healthz(fleet: Fleet) -> None:
    for host in fleet.hosts:
        print(f"  {host} /healthz -> {fleet.http(host, 8000, '/healthz').body.strip()}", flush=True)


def main() -> int:
    keep = os.environ.get("KEEP_FLEET") == "1"
    work = Path(os.environ.get("OXZ_DEMO_DIR") or tempfile.mkdtemp(prefix="oxzep7-demo-"))
    banner("CPython 3.13.5 source, from Debian's source packages (cached after the first run)")
    tarball, sha = cpython_source()
    print(f"  {tarball}  sha256 {sha[:16]}…")
    banner("a fleet of 3 Debian 12 hosts (podman + systemd + sshd); h1 carries a compiler")
    fleet = Fleet.allocate("demo").up(3, build_hosts=["h1"])
    try:
        banner("the sample app, running on each host's system Python 3.11")
        install_sample_app(fleet)
        healthz(fleet)
        ctl = Controller(fleet, work)
        spec = write(work, "sample-py313.yaml", sample_spec(tarball, sha))
        inv = ctl.inventory()
        banner(f"the spec: {spec}")
        print(spec.read_text())
        banner("oxzep7-deploy validate")
        ctl.run("validate", str(spec), echo=True, check=True)
        banner("oxzep7-deploy apply --yes  (builds once on h1, ships to h2 and h3, canary first)")
        ctl.run("apply", str(spec), "-i", inv, "--yes", echo=True, check=True)
        healthz(fleet)
        banner("oxzep7-deploy status")
        ctl.run("status", "-i", inv, "--app", "sample", echo=True, check=True)
        banner("oxzep7-deploy rollback --yes  (no download, no build: the old release is still there)")
        ctl.run("rollback", "-i", inv, "--app", "sample", "--yes", echo=True, check=True)
        healthz(fleet)
        banner("oxzep7-deploy status")
        ctl.run("status", "-i", inv, "--app", "sample", echo=True, check=True)
        banner(f"done: records of every run are under {work}/.oxzep7/")
        return 0
    except FleetError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if keep:
            print(f"fleet {fleet.name} left up (inventory {fleet.inventory}); "
                  f"`OXZ_FLEET={fleet.name} bash tests/fleet/fleet.sh down` removes it")
        else:
            fleet.down()


if __name__ == "__main__":
    sys.exit(main())
