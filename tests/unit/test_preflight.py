"""Pre-flight: hosts already unhealthy are named before anything changes (apply refuses, exit 2)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from oxzep7_deploy.engine_model import ProgressEvent
from oxzep7_deploy.errors import ExitCode, UsageError
from oxzep7_deploy.preflight import check_preflight
from oxzep7_deploy.runner.request import HostResult, HostStatus


def answers() -> dict[str, HostResult]:
    return {
        "h1": HostResult("h1", HostStatus.OK, result={"healthy": True, "current": "initial"}),
        "h2": HostResult("h2", HostStatus.OK, result={
            "healthy": False, "current": None,
            "health": {"message": "http http://127.0.0.1:8000/healthz: ConnectionRefusedError"}}),
        "h3": HostResult("h3", HostStatus.FAILED, message="/srv/a/current is not a symlink"),
        "h4": HostResult("h4", HostStatus.UNREACHABLE, message="ssh: connection refused"),
    }


def run(hosts: Sequence[str]) -> dict[str, HostResult]:
    return {h: r for h, r in answers().items() if h in hosts}


def test_unhealthy_hosts_are_named_and_the_deploy_is_refused_with_exit_2() -> None:
    with pytest.raises(UsageError) as raised:
        check_preflight(run, ["h1", "h2", "h3", "h4"], spec_path="s.yaml", allow_unhealthy=False)
    err = raised.value
    assert err.exit_code is ExitCode.USAGE
    assert "h2: unhealthy (no current release): http http://127.0.0.1:8000/healthz" in err.message
    assert "h3: could not be checked: /srv/a/current is not a symlink" in err.message
    assert "h1" not in err.message and "h4" not in err.message  # healthy; unreachable: the deploy's
    assert "nothing was changed" in err.message
    assert err.hint and "--allow-unhealthy" in err.hint


def test_allow_unhealthy_names_them_and_goes_on() -> None:
    events: list[ProgressEvent] = []
    report = check_preflight(run, ["h1", "h2"], spec_path="s.yaml", allow_unhealthy=True,
                             on_event=events.append)
    assert report.healthy == ("h1",) and list(report.unhealthy) == ["h2"]
    assert any(not e.ok and "h2: unhealthy" in e.message and "--allow-unhealthy" in e.message
               for e in events)


def test_healthy_targets_pass_quietly() -> None:
    report = check_preflight(run, ["h1"], spec_path="s.yaml", allow_unhealthy=False)
    assert report.healthy == ("h1",) and not report.bad
