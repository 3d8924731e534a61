"""The controller's model of host state reads exactly what the host agent writes.

Reports come from the real agent run locally (tests/unit/agent/hosts.py's `Host`), so a change
in the agent's state.json that the model cannot read fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from oxzep7_deploy.state import (
    HostState,
    ReleaseStatus,
    StateFormatError,
    parse_host_state,
    parse_lock,
    unreachable_state,
)
from tests.unit.agent.hosts import Host


@pytest.fixture
def host(tmp_path: Path) -> Host:
    h = Host(tmp_path)
    h.initial()
    return h


def report(host: Host, root: bool = False) -> dict[str, Any]:
    return host.ok("state", *(["--root", str(host.root)] if root else []))


def test_an_untouched_host_reads_as_unmanaged_with_its_adoptable_release(host: Host) -> None:
    state = parse_host_state("h1", report(host, root=True))
    assert not state.managed and state.ok
    assert state.current == "initial" and state.last_good == "initial"
    rel = state.current_release
    assert rel is not None and rel.adopted and rel.status is ReleaseStatus.GOOD
    assert state.interpreter_version == state.live_version is not None


def test_a_deployed_host_reads_releases_lock_deadman_and_history(host: Host, tmp_path: Path) -> None:
    host.deploy("r1")
    host.register("r2")
    host.ok("lock", "--deploy", "d2", "--owner", "alice@ctl", "--reason", "py313", "--ttl", "600")
    (tmp_path / "etc").mkdir()
    host.ok("snapshot", "--path", str(tmp_path / "etc"), "--deploy", "d2")
    host.ok("switch", "--release", "r2", "--deploy", "d2", "--deadman", "600",
            "--deadman-mode", "process")
    try:
        state = parse_host_state("h1", report(host))
    finally:
        host.ok("confirm", "--release", "r2", "--deploy", "d2")  # disarm the process
    assert state.managed
    assert (state.current, state.previous, state.last_good) == ("r2", "r1", "r1")
    assert state.releases["r2"].status is ReleaseStatus.LIVE
    assert state.releases["r1"].status is ReleaseStatus.GOOD
    assert state.releases["r2"].spec_digest == "x" and state.releases["r2"].deploy == "d2"
    assert state.lock is not None and state.lock.owner == "alice@ctl"
    assert re.match(r"deploy d2 \(owner alice@ctl, reason 'py313'\) taken \d+s ago, until ",
                    state.lock.describe()), state.lock.describe()
    assert state.lock.age_seconds is not None and 0 <= state.lock.age_seconds < 60
    assert state.deadman is not None and state.deadman.from_release == "r1"
    assert state.deadman.to_release == "r2" and state.deadman.mode == "process"
    assert state.snapshots[-1].release == "r1" and state.snapshots[-1].paths == (str(tmp_path / "etc"),)
    assert [e.event for e in state.history][-2:] == ["snapshot", "switch"]
    assert state.history[-1].from_release == "r1" and state.history[-1].to_release == "r2"
    assert state.with_status(ReleaseStatus.GOOD) == ("initial", "r1")
    doc = state.to_json()
    assert json.loads(json.dumps(doc))["releases"]["r2"]["status"] == "live"


def test_an_unknown_format_is_refused(host: Host) -> None:
    doc = report(host, root=True)
    doc["state"]["format"] = 99
    with pytest.raises(StateFormatError, match="format 99"):
        parse_host_state("h1", doc)


def test_a_lock_refusal_names_the_holder(host: Host) -> None:
    host.ok("lock", "--deploy", "d1", "--owner", "alice@ctl", "--ttl", "600")
    rc, doc = host.call("lock", "--deploy", "d2", "--owner", "bob@ctl", "--ttl", "60")
    assert rc == 2
    holder = parse_lock(doc["holder"])
    assert holder is not None and holder.deploy == "d1" and not holder.expired


def test_an_unreadable_host_carries_its_error() -> None:
    state = unreachable_state("h3", "billing", "ssh: connect to host h3: timed out")
    assert isinstance(state, HostState) and not state.ok and state.interpreter_version is None
