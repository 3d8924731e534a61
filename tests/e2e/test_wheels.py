"""E2E: a real application moves to the new interpreter with `wheels: once-per-platform`.

datasette (from PyPI, 28 hash-pinned packages, served by its own uvicorn under systemd) runs on
the system Python 3.11 on two targets that cannot compile anything. CPython 3.13.5 is the
session's one build (`cpython_build`: its artifact is shipped, never compiled again). MarkupSafe
exists only as an sdist in the package directory that only the build host h1 (outside the
targets) has: the wheel set is built once there, cached, shipped; the targets install it with
`--no-index`. Then `rollback` and datasette answers from 3.11 again.

The packages come from the controller's wheelhouse (tests/fleet/wheelhouse.py, made by
tests/setup.sh); this module is the only wheel build of the suite.
"""

from __future__ import annotations

import hashlib
import io
import json
import shlex
import subprocess
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from tests.fleet import wheelhouse
from tests.fleet.build import CONFIGURE, Built
from tests.fleet.harness import Fleet, FleetError
from tests.fleet.scenario import Controller, write

ROOT, CODE, PORT, UNIT = "/srv/ds", "/srv/ds/app", 8001, "oxzep7-datasette.service"
PKGS = "/var/tmp/oxzep7-pkgs"  # the package directory: on the build host only
TARGETS = ("h2", "h3")
SO = "markupsafe/_speedups.cpython-313-x86_64-linux-gnu.so"


def copy_dir(fleet: Fleet, host: str, folder: Path, dest: str, work: Path) -> None:
    archive = work / f"{folder.name}.tar"
    if not archive.exists():
        subprocess.run(["tar", "-C", str(folder), "-cf", str(archive), "."], check=True)
    fleet.copy_to(host, archive, f"/tmp/{archive.name}")
    fleet.sh(host, f"mkdir -p {dest} && tar -C {dest} -xf /tmp/{archive.name} && rm /tmp/{archive.name}")


def install_datasette_311(fleet: Fleet, host: str, home: Path, work: Path) -> None:
    """The app's first release, made by hand from cp311 wheels; nothing of them stays."""
    venv = f"{ROOT}/releases/initial/venv"
    copy_dir(fleet, host, home / "cp311", "/tmp/cp311", work)
    fleet.sh(host, f"set -e; id dsapp >/dev/null 2>&1 || useradd -r -s /usr/sbin/nologin dsapp;"
                   f" python3 -m venv {venv}; PIP_DISABLE_PIP_VERSION_CHECK=1 {venv}/bin/pip install"
                   f" -q --no-index --find-links /tmp/cp311 -r {CODE}/requirements.lock;"
                   f" rm -rf /tmp/cp311; ln -sfn releases/initial {ROOT}/current", timeout=300)
    unit = (wheelhouse.APP / UNIT).read_text().replace("@ROOT@", ROOT).replace("@PORT@", str(PORT))
    fleet.write_file(host, f"/etc/systemd/system/{UNIT}", unit)
    fleet.sh(host, f"systemctl daemon-reload && systemctl enable -q --now {UNIT}")


def spec_text(built: Built) -> str:
    return f"""\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: datasette-py313
targets: "{','.join(TARGETS)}"
interpreter:
  version: "3.13.5"
  install:
    method: source
    url: {built.source}
    sha256: "{built.sha256}"
    configure: {json.dumps(list(CONFIGURE))}
    build_host: h1
application:
  name: ds
  root: {ROOT}
  code: {CODE}
  requirements: requirements.lock
  pip_args: ["--require-hashes", "--no-index", "--find-links", "{PKGS}"]
  wheels: once-per-platform
  services: [{UNIT}]
health:
  checks:
    - http: {{url: "http://127.0.0.1:{PORT}/-/versions.json", contains: '"datasette"'}}
  retries: 20
  interval: 1s
rollout:
  strategy: blue-green
"""


def python_of(fleet: Fleet, host: str) -> str:
    try:
        body = fleet.wait_http(host, PORT, "/-/versions.json", timeout=60).json()
    except FleetError as exc:
        journal = fleet.run_on(host, f"journalctl -u {UNIT} -n 30 --no-pager").stdout
        raise FleetError(f"{exc}\n{host}'s journal:\n{journal}") from exc
    return str(body["python"]["version"])


def test_datasette_moves_to_3135_on_wheels_built_once_and_back(
        cpython_build: Built, fleet_factory: Callable[..., Fleet], tmp_path: Path) -> None:
    home = wheelhouse.ensure()
    assert len(wheelhouse.pins()) >= 25
    assert not list((home / "index").glob("markupsafe-*.whl")), "MarkupSafe must be an sdist only"
    fleet = fleet_factory(3, build_hosts=["h1"])
    for host in TARGETS:  # the targets cannot compile
        assert fleet.run_on(host, "command -v cc || command -v gcc").returncode != 0
    for host in fleet.hosts:  # the code (its requirements) is on every host, h1 included
        fleet.sh(host, f"mkdir -p {CODE} {ROOT}/releases")
        fleet.copy_to(host, wheelhouse.LOCK, f"{CODE}/requirements.lock")
    copy_dir(fleet, "h1", home / "index", PKGS, tmp_path)
    for host in TARGETS:
        install_datasette_311(fleet, host, home, tmp_path)
        assert python_of(fleet, host).startswith("3.11.")

    ctl = Controller(fleet, tmp_path / "ctl")
    spec = write(ctl.work, "datasette.yaml", spec_text(cpython_build))
    plan = ctl.json("plan", str(spec), "-i", ctl.inventory())[1]
    assert [(w["build_host"], w["hosts"]) for w in plan["wheels"]] == [("h1", list(TARGETS))]
    applied = ctl.run("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-3000:]

    # the wheel set: built once on h1, in the controller's cache, MarkupSafe compiled for cp313
    manifests = [json.loads(p.read_text()) for p in (cpython_build.cache / "artifacts").glob("*.json")]
    sets = [m for m in manifests if m.get("kind") == "wheels"]
    assert len(sets) == 1 and sets[0]["built_on"] == "h1"
    assert len(sets[0]["wheels"]) == len(wheelhouse.pins())
    built_ms = [w for w in sets[0]["wheels"] if w["name"] == "markupsafe"]
    assert built_ms and built_ms[0]["platform_specific"]
    assert built_ms[0]["file"].endswith("-cp313-cp313-linux_x86_64.whl")
    archive = cpython_build.cache / "artifacts" / sets[0]["name"]
    with tarfile.open(archive) as tar:
        member = tar.extractfile(f"./{built_ms[0]['file']}")
        assert member is not None
        with zipfile.ZipFile(io.BytesIO(member.read())) as wheel:
            so_sha = hashlib.sha256(wheel.read(SO)).hexdigest()

    for host in TARGETS:
        assert python_of(fleet, host) == "3.13.5"
        venv = f"{ROOT}/current/venv"
        # the compiled extension is importable, and it is h1's build, byte for byte
        loaded = fleet.sh(host, f"{venv}/bin/python -c 'import markupsafe._speedups as s; "
                                "print(s.__file__)'").strip()
        assert loaded.endswith(SO.split("/")[-1]), loaded
        assert fleet.sh(host, f"sha256sum {shlex.quote(loaded)}").split()[0] == so_sha
        # no package directory, no index, no compiler here: pip ran with --no-index
        assert fleet.run_on(host, f"test -e {PKGS}").returncode != 0
    prepare_logs = subprocess.run(["grep", "-rhoE", r"pip install [^\"]*--no-index --find-links "
                                   rf"{ROOT}/\.oxzep7-wheels/[^ ]+ -r [^ \"]+",
                                   str(ctl.work)], capture_output=True, text=True).stdout
    assert prepare_logs.count("requirements.txt") >= len(TARGETS), prepare_logs

    back = ctl.run("rollback", "-i", ctl.inventory(), "--app", "ds", "--yes")
    assert back.returncode == 0, back.stdout[-3000:] + back.stderr[-3000:]
    for host in TARGETS:
        assert python_of(fleet, host).startswith("3.11.")
