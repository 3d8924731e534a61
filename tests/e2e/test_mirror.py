"""artifacts.mirror on a real fleet (issue 16, item 4), through the real CLI.

The interpreter is the session's one CPython build (`cpython_build`), installed as a prebuilt
archive. `oxzep7-deploy publish` copies it into a folder that a web server serves inside the
fleet's network (in its bridge namespace, at the bridge's address: not the controller's
loopback); the hosts download it from there. A tampered copy on the mirror is refused on each
host before anything is installed, and nothing switches; publishing again repairs the mirror and
the next apply switches with the hosts downloading it, the controller pushing no archive.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_faults import SPEC, on
from tests.fleet.build import PREFIX, VERSION, Built
from tests.fleet.harness import Fleet
from tests.fleet.sample_app import SampleApp, install_sample_app
from tests.fleet.scenario import Controller, write

pytestmark = [pytest.mark.e2e]
PORT = 8808
HOSTS = ["h1", "h2"]


@dataclass
class Mirror:
    folder: Path
    url: str
    log: Path

    def gets(self) -> list[str]:
        """The request lines the mirror answered, e.g. `GET /sha256/<hex> HTTP/1.1" 200`."""
        return [ln.split('"', 1)[1] for ln in self.log.read_text().splitlines() if '"GET ' in ln]


@pytest.fixture(scope="module")
def fleet2(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(2)  # no compiler, no route out: the mirror is the only source


@pytest.fixture(scope="module")
def app(fleet2: Fleet) -> SampleApp:
    return install_sample_app(fleet2)


@pytest.fixture(scope="module")
def mirror(fleet2: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    work = tmp_path_factory.mktemp("mirror")
    folder = work / "www"
    folder.mkdir()
    address = f"198.18.{fleet2.net}.1"  # the bridge: inside the fleet's network
    log = work / "http.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            fleet2.in_bridge(["python3", "-m", "http.server", "--bind", address, str(PORT),
                              "--directory", str(folder)]), stdout=out, stderr=subprocess.STDOUT)
    try:
        (folder / "ping").write_text("ok")
        for _ in range(100):
            if fleet2.run_on("h1", f"curl -sf http://{address}:{PORT}/ping -o /dev/null"
                             ).returncode == 0:
                break
            time.sleep(0.1)
        yield Mirror(folder, f"http://{address}:{PORT}/oxz/", log)
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def ctl(fleet2: Fleet, app: SampleApp, tmp_path_factory: pytest.TempPathFactory) -> Controller:
    return Controller(fleet2, tmp_path_factory.mktemp("mirror-ctl"))


def spec_file(ctl: Controller, app: SampleApp, built: Built, mirror: Mirror, name: str) -> Path:
    artifact = built.artifact()
    text = SPEC.format(name=name, root=app.root, code=app.code, pip_args=list(app.pip_args),
                       service=app.service, url=app.health_url, hold=0, gate="",
                       dead_man=120, max_failed=0)
    text = text.replace("retries: 5", "retries: 30")  # a loaded machine restarts slowly
    text = text.replace(
        'version: "3.11.2"\n  install: {method: existing, executable: /usr/bin/python3.11}',
        f'version: "{VERSION}"\n  prefix: {PREFIX}\n  install: {{method: prebuilt, '
        f'url: {artifact.path}, sha256: "{artifact.sha256}"}}')
    assert "prebuilt" in text
    return write(ctl.work, f"{name}.yaml", text + f"artifacts:\n  mirror: {mirror.url}\n")


def task_events(ctl: Controller, task: str) -> dict[str, set[str]]:
    """host -> the events of `task` (runner_on_ok, runner_on_skipped, ...) in the records."""
    found: dict[str, set[str]] = {}
    for path in ctl.work.glob(".oxzep7/**/job_events/*.json"):
        event: dict[str, Any] = json.loads(path.read_text())
        data = event.get("event_data") or {}
        if data.get("task") == task and data.get("host") and event["event"] != "runner_on_start":
            found.setdefault(str(data["host"]), set()).add(str(event["event"]))
    return found


def test_a_tampered_mirror_is_refused_before_install_then_hosts_install_from_it(
        cpython_build: Built, ctl: Controller, app: SampleApp, mirror: Mirror,
        fleet2: Fleet) -> None:
    artifact = cpython_build.artifact()
    spec = spec_file(ctl, app, cpython_build, mirror, "mirrored")
    code, plan = ctl.json("plan", str(spec), "-i", ctl.inventory())
    assert code == 0 and plan["artifacts"]["mirror"] == mirror.url.rstrip("/"), plan

    code, published = ctl.json("publish", str(spec), "--dest", str(mirror.folder / "oxz"))
    assert code == 0, published
    served = mirror.folder / "oxz" / "sha256" / artifact.sha256
    assert served.stat().st_size == artifact.size

    # (b) the mirror's copy is not the artifact of the controller's manifest
    served.write_bytes(b"not the interpreter tree" * 1000)
    before = {h: on(app, h) for h in HOSTS}
    proc = ctl.run("apply", str(spec), "-i", ctl.inventory(), "--yes", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and report["outcome"] == "failed", report
    assert "Traceback" not in proc.stderr
    failed = {h: r for h, r in report["hosts"].items() if r["failed_step"]}
    assert failed, report
    for host, row in failed.items():
        message = row["message"]
        assert f"{host} refused the interpreter archive from the mirror" in message, row
        assert f"the controller's manifest says {artifact.sha256}" in message, row
        assert "oxzep7-deploy publish" in message, row
    assert {h: on(app, h) for h in HOSTS} == before  # nothing switched
    for host in HOSTS:
        assert fleet2.run_on(host, f"test -e {PREFIX}").returncode != 0, "nothing installed"
        assert fleet2.sh(host, "ls -A /var/tmp/oxzep7-artifacts 2>/dev/null; true").strip() == ""

    # (a) publish repairs the mirror; the hosts download the archive, the controller pushes none
    code, again = ctl.json("publish", str(spec), "--dest", str(mirror.folder / "oxz"))
    assert code == 0 and [a["copied"] for a in again["artifacts"]] == [True], again
    first_get = len(mirror.gets())
    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 0 and report["outcome"] == "succeeded", (report["outcome"], {
        h: (r["state"], r["failed_step"], r["message"]) for h, r in report["hosts"].items()})
    assert {on(app, h) for h in HOSTS} == {report["release"]}
    for host in HOSTS:
        assert app.wait_healthy(host)["python"].startswith(VERSION)
    downloads = [g for g in mirror.gets()[first_get:] if f"/oxz/sha256/{artifact.sha256}" in g]
    assert len(downloads) == len(HOSTS) and all('" 200' in g for g in downloads), downloads
    # the controller's copy task never ran; each host's download did (refused, then ok)
    assert task_events(ctl, "Ship the archive") == {h: {"runner_on_skipped"} for h in HOSTS}
    assert task_events(ctl, "Download the archive from the mirror") == {
        h: {"runner_on_failed", "runner_on_ok"} for h in HOSTS}
