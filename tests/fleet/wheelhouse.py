"""The realistic application's packages on the controller, downloaded once (tests/setup.sh).

datasette and its 27 dependencies (tests/app/datasette/requirements.in, hash-pinned in
requirements.lock), in <FLEET_DIR>/wheelhouse:

    cp311/   binary wheels for CPython 3.11: the app's first release, made by hand on the targets
    index/   the local package directory for the build host: the cp313 and pure wheels, MarkupSafe
             only as its sdist (it must be compiled for the new interpreter) and the sdist's
             build requirements setuptools and wheel

Fleet hosts have no route out: they get packages only from a copy of a directory made here.

    python -m tests.fleet.wheelhouse          # download (idempotent), check against the lock
    python -m tests.fleet.wheelhouse --lock   # (re)write requirements.lock from the downloads
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.fleet.harness import FLEET_DIR, REPO, FleetError, _locked

APP = REPO / "tests" / "app" / "datasette"
PINS = APP / "requirements.in"
LOCK = APP / "requirements.lock"
HOME = Path(os.environ.get("OXZ_WHEELHOUSE", FLEET_DIR / "wheelhouse"))
SDIST = "markupsafe"  # only as an sdist in index/: compiled on the build host
BUILD_REQUIREMENTS = ("setuptools==84.2.1", "wheel==0.45.1")
_PLATFORM = ("--platform", "manylinux2014_x86_64", "--implementation", "cp")


def pins() -> list[str]:
    return [line.strip() for line in PINS.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def _pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *args],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise FleetError(f"pip download {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")


def ensure() -> Path:
    """The wheelhouse, downloaded once; a second call only checks it is complete."""
    with _locked("wheelhouse"):
        done = HOME / ".complete"
        if done.exists():
            return HOME
        pinned = HOME / "requirements.in"
        pinned.parent.mkdir(parents=True, exist_ok=True)
        pinned.write_text("\n".join(pins()) + "\n")
        for version in ("311", "313"):
            _pip("--only-binary=:all:", *_PLATFORM, "--python-version", version[0] + "." + version[1:],
                 "--abi", f"cp{version}", "-d", str(HOME / f"cp{version}"), "-r", str(pinned))
        sdist = next(p for p in pins() if p.startswith(SDIST + "=="))
        _pip("--no-binary=:all:", "-d", str(HOME / "sdist"), sdist)
        _pip("--only-binary=:all:", "-d", str(HOME / "sdist"), *BUILD_REQUIREMENTS)
        index = HOME / "index"
        shutil.rmtree(index, ignore_errors=True)
        index.mkdir()
        for path in [*(HOME / "cp313").iterdir(), *(HOME / "sdist").iterdir()]:
            if not (path.name.lower().startswith(SDIST + "-") and path.name.endswith(".whl")):
                shutil.copy2(path, index / path.name)
        done.touch()
        return HOME


def files() -> list[Path]:
    return sorted({p for d in ("cp311", "index") for p in (HOME / d).iterdir()
                   if p.name.lower().startswith(tuple(_names()))}, key=lambda p: p.name)


def _names() -> list[str]:
    return [re.sub(r"[-_.]+", "_", p.split("==")[0]).lower() + "-" for p in pins()]


def write_lock() -> None:
    """requirements.lock: every pin with the sha256 of each of its files (3.11, 3.13, sdist)."""
    hashes: dict[str, set[str]] = {}
    for path in files():
        norm = re.sub(r"[-_.]+", "_", path.name.split("-")[0]).lower()
        hashes.setdefault(norm, set()).add(hashlib.sha256(path.read_bytes()).hexdigest())
    lines = ["# datasette and its dependencies, hash-pinned: python -m tests.fleet.wheelhouse --lock"]
    for pin in pins():
        norm = re.sub(r"[-_.]+", "_", pin.split("==")[0]).lower()
        lines.append(pin + "".join(f" \\\n    --hash=sha256:{h}" for h in sorted(hashes[norm])))
    LOCK.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    ensure()
    if "--lock" in sys.argv:
        write_lock()
    print(HOME)
