"""The watch, on a real 2-host fleet (issue #17, item 3): during the canary's bake the journal of
the app's unit since the switch is compared with the same time before it.

Through the real `oxzep7-deploy` command. The interpreter is the hosts' own python3.11
(`existing`): what is shown is the watch, not the interpreter build. The sample app's switch
<code>/log-tracebacks makes it log a real Python traceback on every request and four times a
second while /healthz keeps answering 200, so only the journal can tell.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fleet.harness import Fleet
from tests.fleet.sample_app import SampleApp, install_sample_app
from tests.fleet.scenario import Controller, write

pytestmark = [pytest.mark.e2e]
HOSTS = ["h1", "h2"]
INITIAL = "initial"
TRACEBACK = "Traceback (most recent call last)"

SPEC = """\
apiVersion: oxzep7.dev/v1
kind: PythonUpgrade
name: {name}
targets: "all"
interpreter:
  version: "3.11.2"
  install: {{method: existing, executable: /usr/bin/python3.11}}
application:
  name: sample
  root: {root}
  code: {code}
  requirements: requirements.lock
  pip_args: {pip_args}
  services: [{service}]
  port: {port}
health:
  checks:
    - http: {{url: "http://127.0.0.1:{{port}}/healthz", status: 200, contains: '"status": "ok"'}}
  retries: 4
  interval: 5s
rollout:
  strategy: canary
  stages:
    - {{name: canary, hosts: 1, bake: 10s}}
    - {{name: all, hosts: "100%"}}
  dead_man: 120s
watch: {{}}
"""


@pytest.fixture(scope="module")
def fleet2(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(2)


@pytest.fixture(scope="module")
def app(fleet2: Fleet) -> SampleApp:
    return install_sample_app(fleet2)


@pytest.fixture
def ctl(fleet2: Fleet, app: SampleApp, tmp_path: Path) -> Iterator[Controller]:
    yield Controller(fleet2, tmp_path / "ops")
    for host in HOSTS:
        app.log_tracebacks(host, [])
    reset(Controller(fleet2, tmp_path / "reset"), app)


def reset(ctl: Controller, app: SampleApp) -> None:
    """Both hosts back on `initial`, healthy, unlocked."""
    inv = ctl.inventory()
    ctl.run("unlock", "-i", inv, "--app", "sample", "--force", "--yes")
    _, status = ctl.json("status", "-i", inv, "--app", "sample")
    off = [h for h, s in status["hosts"].items() if (s.get("current") or INITIAL) != INITIAL]
    if off:
        ctl.run("rollback", "-i", inv, "--app", "sample", "--to", INITIAL, "--limit", ",".join(off),
                "--yes", check=True)
    for host in HOSTS:
        app.wait_healthy(host)


def spec_file(ctl: Controller, app: SampleApp, name: str) -> Path:
    return write(ctl.work, f"{name}.yaml", SPEC.format(
        name=name, root=app.root, code=app.code, pip_args=json.dumps(list(app.pip_args)),
        service=app.service, port=app.port))


def on(app: SampleApp, host: str) -> str:
    return app.current(host).removeprefix("releases/")


def test_a_release_that_logs_tracebacks_while_healthy_is_rolled_back_by_the_watch(
    fleet2: Fleet, app: SampleApp, ctl: Controller
) -> None:
    for host in HOSTS:  # only a release other than `initial` logs tracebacks; /healthz says ok
        app.log_tracebacks(host, ["new"])
    spec = spec_file(ctl, app, "watch-fails")
    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 1, report
    assert report["outcome"] == "rolled-back", report
    h1 = report["hosts"]["h1"]
    assert h1["failed_step"] == "watch" and h1["state"] == "rolled-back", h1
    (finding,) = h1["watch"]
    assert finding["verdict"] == "failed" and finding["matches_before"] == 0, finding
    assert finding["matches_after"] > 0 and TRACEBACK in finding["samples_after"][0], finding
    assert report["hosts"]["h2"]["state"] != "live", "the deploy stopped at the canary"
    for host in HOSTS:
        assert on(app, host) == INITIAL
        assert app.wait_healthy(host)["release"] == INITIAL
    # the report of this real deploy: every host, the watch's finding and h1's restart gap
    page_path = ctl.work / "watch-fails.html"
    shown = ctl.run("report", "watch-fails", "-o", str(page_path))
    assert shown.returncode == 0 and shown.stdout.strip() == str(page_path), shown.stderr
    page = html.unescape(page_path.read_text())
    assert all(f'data-host="{h}"' in page for h in HOSTS)
    assert "verdict: failed" in page and TRACEBACK in page
    assert h1["restart_gap_s"] is not None, "the spec has a port: the switch's gap is measured"
    assert f"{h1['restart_gap_s']:.2f} s" in page


def test_a_noisy_baseline_pauses_the_deploy_with_the_evidence_and_abort_rolls_back(
    fleet2: Fleet, app: SampleApp, ctl: Controller
) -> None:
    for host in HOSTS:  # every release logs them, the running one too: no verdict can be drawn
        app.log_tracebacks(host, ["*"])
    # the rate after a switch is not the rate before it (requests, the restart's own lines): a
    # wide max_new keeps the verdict on the baseline, which is noisy, not on the rates
    spec = spec_file(ctl, app, "watch-noisy")
    spec.write_text(spec.read_text().replace("watch: {}", "watch: {journal: {max_new: 1000}}"))
    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 0, report  # paused, as at a manual gate
    assert report["outcome"] == "paused" and report["paused_for"] == "watch", report
    assert report["paused_at"] == "canary", report
    (finding,) = report["hosts"]["h1"]["watch"]
    assert finding["verdict"] == "inconclusive", finding
    assert finding["matches_before"] > 0 and finding["matches_after"] > 0, finding
    assert TRACEBACK in (finding["samples_after"] + finding["samples_before"])[0], finding
    assert on(app, "h1") == report["release"] and on(app, "h2") == INITIAL

    code, aborted = ctl.json("abort", "watch-noisy", "--yes")
    assert code == 1 and aborted["outcome"] == "rolled-back", aborted
    for host in HOSTS:
        assert on(app, host) == INITIAL
