"""The fleet harness's own logic, without a fleet."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.fleet.harness import Fleet, host_outcomes
from tests.fleet.sample_app import SampleApp, locked_wheels


def test_addresses_follow_the_net_and_the_host_number() -> None:
    fleet = Fleet("p1231", 123, 12)
    assert fleet.address("h1") == "198.18.123.11"
    assert fleet.address("h12") == "198.18.123.22"
    assert fleet.hosts[-1] == "h12" and fleet.container("h3") == "p1231-h3"
    assert fleet.namespaces[:2] == ["p1231-net", "p1231-h1"]


def test_host_outcomes_put_unreachable_before_failed() -> None:
    runner = SimpleNamespace(stats={"ok": {"h1": 2, "h2": 1, "h3": 1}, "dark": {"h2": 1},
                                    "failures": {"h3": 1, "h4": 1}, "skipped": {}})
    assert host_outcomes(runner) == {"h1": "ok", "h2": "unreachable", "h3": "failed",
                                     "h4": "failed"}
    assert host_outcomes(SimpleNamespace(stats=None)) == {}


def test_ansible_env_keeps_ansible_inside_the_work_dir(tmp_path: Path) -> None:
    fleet = Fleet("p9999", 200, 3)
    env = fleet.ansible_env(tmp_path / ("long-name-" * 8), timeout=7)
    cp = Path(env["ANSIBLE_SSH_CONTROL_PATH_DIR"])
    try:
        # ssh puts a 40-character hash in this directory; a unix socket path holds 107 bytes
        assert len(str(cp)) + 41 < 107 and cp.is_dir()
        assert env["ANSIBLE_HOME"].startswith(str(tmp_path))
        assert env["ANSIBLE_LOCAL_TEMP"].startswith(str(tmp_path))
        assert env["ANSIBLE_TIMEOUT"] == "7" and env["ANSIBLE_HOST_KEY_CHECKING"] == "False"
        assert env["PATH"].split(":")[0].endswith("/bin")
        other = Path(fleet.ansible_env(tmp_path / "other")["ANSIBLE_SSH_CONTROL_PATH_DIR"])
        assert other != cp  # masters are never shared between work dirs
    finally:
        for d in Path("/tmp").glob("oxz-cp-p9999-*"):
            d.rmdir()


def test_requirements_lock_pins_hashes() -> None:
    pins = locked_wheels()
    assert pins and all(len(h) == 64 for h in pins.values())
    assert all("==" in name for name in pins)


def test_sample_app_paths_and_spec_block() -> None:
    app = SampleApp(Fleet("p1", 100), root="/srv/x", code="/srv/x/app", port=8100)
    block = app.application("x")
    assert block["pip_args"] == ["--no-index", "--find-links", "/srv/x/app/wheels",
                                 "--require-hashes"]
    assert (block["root"], block["code"], block["services"]) == ("/srv/x", "/srv/x/app",
                                                                 ["oxzep7-sample.service"])
    assert app.health_url == "http://127.0.0.1:8100/healthz"


def test_fill_takes_a_size_or_a_free_space() -> None:
    fleet = Fleet("p1", 100, 1)
    with pytest.raises(ValueError):
        fleet.fill("h1", "/srv", 1, free_mb=1)
    with pytest.raises(ValueError):
        fleet.fill("h1", "/srv")
