"""Execution nodes on a real fleet (issue 16, item 3): the node h1 is the only machine with a
route to the targets h2 and h3 (they are listed by their bridge addresses, without the
controller's ProxyCommand); `apply` reaches them through it (ansible-runner transmit | worker |
process over SSH), and losing the node mid-batch ends with the truth while the targets' dead-man
puts them back. The "new" interpreter is the hosts' own python3.11 (`existing`): no build.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_faults import SPEC, armed, finish, on, start_apply, wait_for
from tests.fleet.exec_node import install_execution_node
from tests.fleet.harness import Fleet
from tests.fleet.sample_app import SampleApp, install_sample_app
from tests.fleet.scenario import Controller, write

pytestmark = [pytest.mark.e2e]
TARGETS = ["h2", "h3"]
# each batch pays for a hop more (ssh to the node, ansible-runner worker there): on a loaded
# machine a confirm can come later than the 20 s test_faults allows
DEAD_MAN = 45
INVENTORY = """\
[nodes]
exec1 ansible_host={node} ansible_user=deploy ansible_ssh_private_key_file={key} \
ansible_ssh_common_args='-o ProxyCommand="ip netns exec {ns} nc %h %p" {quiet}'

[targets]
h2 ansible_host={h2}
h3 ansible_host={h3}

[targets:vars]
ansible_user=deploy
ansible_become=true
ansible_ssh_common_args='{quiet}'
ansible_python_interpreter=/usr/bin/python3
"""


@pytest.fixture(scope="module")
def fleet3(fleet_factory: Callable[..., Fleet]) -> Fleet:
    fleet = fleet_factory(3)
    install_execution_node(fleet, "h1")
    return fleet


@pytest.fixture(scope="module")
def app(fleet3: Fleet) -> SampleApp:
    return install_sample_app(fleet3, TARGETS)


class NodeController(Controller):
    def inventory(self) -> str:
        return str(self.work / "inventory.ini")


@pytest.fixture(scope="module")
def ctl(fleet3: Fleet, app: SampleApp, tmp_path_factory: pytest.TempPathFactory) -> Controller:
    work = tmp_path_factory.mktemp("exec-node")
    quiet = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
    write(work, "inventory.ini", INVENTORY.format(
        node=fleet3.address("h1"), key=fleet3.ssh_key, ns=fleet3.bridge_ns, quiet=quiet,
        h2=fleet3.address("h2"), h3=fleet3.address("h3")))
    return NodeController(fleet3, work)


def spec_file(ctl: Controller, app: SampleApp, name: str, hold: int, dead_man: int = 300
              ) -> Path:
    text = SPEC.format(name=name, root=app.root, code=app.code, pip_args=list(app.pip_args),
                       service=app.service, url=app.health_url, hold=hold, gate="",
                       dead_man=dead_man, max_failed=0).replace('targets: "all"', 'targets: "targets"')
    return write(ctl.work, f"{name}.yaml", text + "ansible:\n  execution_node: exec1\n")


def events_of(ctl: Controller, host: str) -> set[str]:
    """The Ansible events about `host` kept in the controller's records."""
    found = set()
    for path in ctl.work.glob(".oxzep7/**/job_events/*.json"):
        event: dict[str, Any] = json.loads(path.read_text())
        if (event.get("event_data") or {}).get("host") == host:
            found.add(str(event["event"]))
    return found


def test_only_the_node_reaches_the_targets_and_apply_switches_them_through_it(
        ctl: Controller, app: SampleApp) -> None:
    # from the controller itself the targets are unreachable, and named as such
    code, status = ctl.json("status", "-i", ctl.inventory(), "--app", "sample", "--limit", "targets")
    assert code == 1 and sorted(status["not_read"]) == TARGETS, status
    code, status = ctl.json("status", "-i", ctl.inventory(), "--app", "sample", "--limit", "targets",
                            "--execution-node", "exec1")
    assert code == 0 and sorted(status["hosts"]) == TARGETS, status
    assert status["complete"] and not status["not_read"], status

    spec = spec_file(ctl, app, "through-node", hold=1)
    code, report = ctl.json("apply", str(spec), "-i", ctl.inventory(), "--yes")
    assert code == 0 and report["outcome"] == "succeeded", report
    assert sorted(report["hosts"]) == TARGETS, report
    assert not any(r["failed_step"] for r in report["hosts"].values()), report
    assert {on(app, h) for h in TARGETS} == {report["release"]}
    for host in TARGETS:
        app.wait_healthy(host)
        assert {"runner_on_ok", "runner_on_start"} <= events_of(ctl, host), \
            "the records hold the events that came back from the node"


def test_losing_the_node_mid_switch_is_told_and_the_dead_man_reverts(
        fleet3: Fleet, ctl: Controller, app: SampleApp) -> None:
    before = on(app, "h2")
    proc = start_apply(ctl, spec_file(ctl, app, "node-lost", hold=30, dead_man=DEAD_MAN))
    try:
        wait_for(lambda: armed(fleet3, "h2"), 240, "the canary h2 inside its switch")
        fleet3.cut("h1")  # the node is gone: the controller's stream to it breaks
        code, report, err = finish(proc)
    finally:
        fleet3.mend("h1")
    assert code == 1 and report["outcome"] != "succeeded", report
    h2 = report["hosts"]["h2"]
    assert h2["state"] == "unreachable" and h2["failed_step"] == "switch", h2
    assert "lost the execution node exec1" in h2["message"], h2
    assert "not rolled back from here" in h2["message"], h2
    assert report["hosts"]["h3"]["state"] not in ("switched", "healthy", "rolled-back"), report
    assert on(app, "h3") == before
    assert "Traceback" not in err
    wait_for(lambda: on(app, "h2") == before, DEAD_MAN + 60, "h2's dead-man")
    # and nothing of the batch runs on on the node once it lost the controller
    wait_for(lambda: not fleet3.run_on("h1", "pgrep -f '[a]nsible-runner worker'").stdout.strip(),
             60, "the worker on the node to stop")
