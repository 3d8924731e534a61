"""An execution node on a test fleet: ansible-runner and ansible-core (the controller's versions)
in a venv on one host, from wheels the controller downloads once (fleet hosts have no index).

    wheels = runner_wheelhouse()          # tests/setup.sh does it once; cached, idempotent
    install_execution_node(fleet, "h1")   # /opt/oxzep7-runner, ansible-runner on PATH, a key
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from tests.fleet.harness import CACHE_DIR, Fleet, FleetError, _locked

WHEELS_DIR = CACHE_DIR / "exec-node-wheels"
VENV = "/opt/oxzep7-runner"


def runner_pins() -> list[str]:
    """What the node must run: the controller's own ansible-runner and ansible-core, and pip."""
    return [f"ansible-core=={version('ansible-core')}",
            f"ansible-runner=={version('ansible-runner')}", "pip"]


def runner_wheelhouse() -> Path:
    """The wheels of `runner_pins` and their dependencies, downloaded once into the cache."""
    with _locked("exec-node-wheels"):
        WHEELS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = WHEELS_DIR / ".pins"
        pins = "\n".join(runner_pins())
        if stamp.exists() and stamp.read_text() == pins:
            return WHEELS_DIR
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q",
                               "--only-binary=:all:", "-d", str(WHEELS_DIR), *runner_pins()],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise FleetError(f"pip download of {runner_pins()} failed:\n{proc.stderr[-3000:]}")
        stamp.write_text(pins)
        return WHEELS_DIR


def install_execution_node(fleet: Fleet, host: str) -> None:
    """ansible-runner in a venv on `host`, on PATH for every login; the deploy user gets the
    fleet's key as its own, so the node reaches the other hosts with its own credentials."""
    wheels = runner_wheelhouse()
    fleet.run_on(host, "rm -rf /tmp/exec-wheels", check=True)
    fleet.copy_to(host, wheels, "/tmp/exec-wheels")
    pip = next(wheels.glob("pip-*.whl")).name
    fleet.sh(host, f"python3 -m venv --without-pip {VENV} && {VENV}/bin/python "
                   f"/tmp/exec-wheels/{pip}/pip install -q --no-index --find-links /tmp/exec-wheels "
                   f"{' '.join(runner_pins()[:2])} && ln -sf {VENV}/bin/ansible-runner "
                   "/usr/local/bin/ansible-runner && rm -rf /tmp/exec-wheels", timeout=300)
    fleet.copy_to(host, fleet.ssh_key, "/home/deploy/.ssh/id_ed25519")
    fleet.sh(host, "chown deploy: /home/deploy/.ssh/id_ed25519 && "
                   "chmod 600 /home/deploy/.ssh/id_ed25519")


if __name__ == "__main__":  # tests/setup.sh
    print(runner_wheelhouse())
