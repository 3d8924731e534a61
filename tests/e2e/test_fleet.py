"""The test fleet itself: real hosts, real SSH through ansible-runner, faults that really bite.

One 3-host fleet for the module (plus a 1-host one to prove `down` leaves nothing behind).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fleet.harness import FLEET_SH, Fleet, FleetError, host_outcomes
from tests.fleet.sample_app import install_sample_app

pytestmark = pytest.mark.e2e

PING = """
- hosts: fleet
  gather_facts: false
  tasks:
    - ansible.builtin.command: hostname
      register: out
    - ansible.builtin.assert:
        that: out.stdout == inventory_hostname
"""

WEB_UNIT = """
- hosts: fleet
  gather_facts: false
  tasks:
    - ansible.builtin.setup:
        gather_subset: [min]
    - ansible.builtin.assert:
        that: [ansible_service_mgr == 'systemd', ansible_hostname == inventory_hostname]
    - ansible.builtin.command: cat /etc/machine-id
      register: machine_id
      changed_when: false
    - ansible.builtin.copy:
        dest: /srv/web/index.html
        content: "{{ inventory_hostname }} {{ machine_id.stdout }}\\n"
    - ansible.builtin.copy:
        dest: /etc/systemd/system/fleet-web.service
        content: |
          [Service]
          ExecStart=/usr/bin/python3 -m http.server 8080 --bind 0.0.0.0 --directory /srv/web
          [Install]
          WantedBy=multi-user.target
    - ansible.builtin.systemd_service:
        name: fleet-web
        state: started
        enabled: true
        daemon_reload: true
"""

RESTART = """
- hosts: fleet
  gather_facts: false
  tasks:
    - ansible.builtin.systemd_service:
        name: fleet-web
        state: restarted
"""


def machine_id(fleet: Fleet, host: str) -> str:
    return fleet.sh(host, "cat /etc/machine-id").strip()


def invocation(fleet: Fleet, host: str, unit: str) -> str:
    return fleet.sh(host, f"systemctl show -P InvocationID {unit}").strip()


def test_hosts_are_distinct_machines_running_systemd(fleet: Fleet) -> None:
    assert [fleet.sh(h, "hostname").strip() for h in fleet.hosts] == ["h1", "h2", "h3"]
    ids = [machine_id(fleet, h) for h in fleet.hosts]
    assert len(set(ids)) == 3 and all(len(i) == 32 for i in ids), ids
    for host in fleet.hosts:
        state = fleet.run_on(host, "systemctl is-system-running").stdout.strip()
        assert state in ("running", "degraded"), f"{host}: {state}"
        # the deploy user, over real SSH from the controller, with passwordless sudo
        proc = fleet.ssh(host, "hostname; sudo -n id -u")
        assert proc.stdout.split() == [host, "0"], proc.stderr


def test_a_unit_restarted_over_ssh_through_ansible_runner_answers_the_controller(
        fleet: Fleet, tmp_path: Path) -> None:
    fleet_hosts = fleet.hosts
    for h in fleet_hosts:
        fleet.sh(h, "mkdir -p /srv/web")
    first = fleet.run_playbook(tmp_path / "install", WEB_UNIT)
    assert first.rc == 0 and host_outcomes(first) == dict.fromkeys(fleet_hosts, "ok")
    before = {h: invocation(fleet, h, "fleet-web") for h in fleet_hosts}

    again = fleet.run_playbook(tmp_path / "restart", RESTART)
    assert again.rc == 0 and host_outcomes(again) == dict.fromkeys(fleet_hosts, "ok")
    for host in fleet_hosts:
        assert invocation(fleet, host, "fleet-web") not in ("", before[host])  # a new process
        resp = fleet.wait_http(host, 8080, "/index.html", timeout=15)
        assert resp.body.split() == [host, machine_id(fleet, host)]


def test_a_paused_host_and_a_cut_host_are_unreachable_and_the_other_is_not(
        fleet: Fleet, tmp_path: Path) -> None:
    # both faults in one run: the SSH timeout is paid once, in parallel
    fleet.pause("h2")
    fleet.cut("h3")
    try:
        run = fleet.run_playbook(tmp_path / "broken", PING, timeout=6)
    finally:
        fleet.unpause("h2")
        fleet.mend("h3")
    assert host_outcomes(run) == {"h1": "ok", "h2": "unreachable", "h3": "unreachable"}
    assert run.rc != 0
    healed = fleet.run_playbook(tmp_path / "healed", PING, timeout=6)
    assert host_outcomes(healed) == dict.fromkeys(fleet.hosts, "ok")


def test_a_stopped_host_is_down_and_comes_back_as_the_same_machine(
        fleet: Fleet, tmp_path: Path) -> None:
    fleet.sh("h3", "echo kept > /var/tmp/marker")
    identity = machine_id(fleet, "h3")
    fleet.stop("h3")
    try:
        with pytest.raises(FleetError):
            fleet.sh("h3", "true")
        run = fleet.run_playbook(tmp_path / "stopped", PING, limit="h3", timeout=6)
        assert host_outcomes(run) == {"h3": "unreachable"}
    finally:
        fleet.start("h3")
    assert machine_id(fleet, "h3") == identity
    assert fleet.sh("h3", "cat /var/tmp/marker").strip() == "kept"
    run = fleet.run_playbook(tmp_path / "started", PING, limit="h3", timeout=6)
    assert host_outcomes(run) == {"h3": "ok"}


WRITE = """
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
try:
    for _ in range(int(sys.argv[2])):
        os.write(fd, b"x" * 1024 * 1024)
    os.fsync(fd)
    print("written")
except OSError as e:
    print(errno.errorcode[e.errno])
"""


def write_mb(fleet: Fleet, host: str, path: str, mb: int) -> str:
    return fleet.run_on(host, ["python3", "-c", WRITE, path, str(mb)], check=True).stdout.strip()


def test_a_filled_disk_refuses_writes_and_keeps_what_it_held(fleet: Fleet) -> None:
    fleet.sh("h1", "mkdir -p /srv/fill && echo before > /srv/fill/kept")
    fleet.fill("h1", "/srv/fill", free_mb=2)
    try:
        assert fleet.sh("h1", "cat /srv/fill/kept").strip() == "before"
        assert write_mb(fleet, "h1", "/srv/fill/small", 1) == "written"
        assert write_mb(fleet, "h1", "/srv/fill/big", 3) == "ENOSPC"
        # the other hosts and the rest of h1's disk are not affected
        assert write_mb(fleet, "h1", "/var/tmp/big", 3) == "written"
        assert write_mb(fleet, "h2", "/srv/big", 3) == "written"
        fleet.sh("h1", "rm /srv/fill/big")
    finally:
        fleet.unfill("h1", "/srv/fill")
    assert "oxz-fill" not in fleet.run_on("h1", "findmnt -n /srv/fill").stdout
    assert fleet.sh("h1", "cat /srv/fill/kept; wc -c < /srv/fill/small").split() == [
        "before", str(1024 * 1024)]
    assert write_mb(fleet, "h1", "/srv/fill/big", 3) == "written"


def test_the_sample_app_reports_its_interpreter_and_turns_unhealthy_on_demand(
        fleet: Fleet) -> None:
    app = install_sample_app(fleet, "h1", root="/srv/sample")
    body = app.wait_healthy("h1")
    assert body["status"] == "ok" and body["python"].startswith("3.11.")
    assert (body["release"], body["current"], body["six"]) == ("initial", "initial", "1.17.0")
    assert app.current("h1") == "releases/initial"
    assert fleet.sh("h1", "ls /srv/sample/current/venv/bin/python && ls /var/lib/oxzep7 2>&1; true")

    app.set_unhealthy("h1", note="drill")
    resp = app.healthz("h1")
    assert resp.status == 503 and "drill" in resp.json()["reasons"][0]
    app.set_unhealthy("h1", False)
    app.fail_on_python("h1", ["3.13"])  # another version: still healthy
    assert app.healthz("h1").status == 200
    app.fail_on_python("h1", ["3.11"])
    assert app.healthz("h1").status == 503
    app.fail_on_python("h1", [])
    app.crash_on_python("h1", ["3.11"])
    fleet.run_on("h1", f"systemctl restart {app.service}")
    with pytest.raises(FleetError, match="Connection refused"):
        app.healthz("h1")
    app.crash_on_python("h1", [])
    app.restart("h1")
    assert app.wait_healthy("h1")["status"] == "ok"


def test_down_leaves_no_container_namespace_mount_or_process(
        fleet_factory: Callable[..., Fleet], tmp_path: Path) -> None:
    small = fleet_factory(1)
    small.fill("h1", "/srv/fill", size_mb=1)
    assert host_outcomes(small.run_playbook(tmp_path, PING)) == {"h1": "ok"}  # ssh masters
    found = small.leftovers()  # the check sees a live fleet, so it can see a leftover
    kinds = {item.split()[0] for item in found}
    assert {"container", "namespace", "mount", "process", "directory"} <= kinds, found
    small.down()
    assert small.leftovers() == []
    listing = subprocess.run(["bash", str(FLEET_SH), "list"], capture_output=True, text=True)
    assert f"{small.name}-" not in listing.stdout
    assert not list(Path("/tmp").glob(f"oxz-cp-{small.name}-*"))


def test_run_on_reports_the_command_and_its_output(fleet: Fleet) -> None:
    proc = fleet.run_on("h2", "echo out; echo err >&2; exit 3")
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "out\n", "err\n")
    with pytest.raises(FleetError, match="exit 3"):
        fleet.sh("h2", "exit 3")
    assert json.loads(fleet.sh("h2", "python3 -c 'import json; print(json.dumps([1]))'")) == [1]
