"""The agent's crash safety, pruning, placeholders, restart, and its oldest Python."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oxzep7_deploy.spec.placeholders import PlaceholderError
from oxzep7_deploy.spec.placeholders import substitute as controller_substitute
from tests.unit.agent.hosts import (
    AGENT_PATH,
    Host,
    agent,
    make_config_tree,
    tree_digest,
    wait_for,
)

# -- crash safety ------------------------------------------------------------------------------

WRITER = """
import random, sys
sys.path.insert(0, sys.argv[1])
import oxzep7_host.files as agent
n = 0
while True:
    n += 1
    size = random.choice([10, 1000, 50000, 400000])
    agent.write_json_atomic(sys.argv[2], {"format": 1, "n": n, "pad": "x" * size})
"""


def test_state_json_is_never_seen_half_written_when_writers_are_killed(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    agent.write_json_atomic(str(target), {"format": 1, "n": 0, "pad": ""})
    seen: list[int] = []
    broken: list[str] = []
    stop = threading.Event()

    def read_loop() -> None:
        while not stop.is_set():
            try:
                data = target.read_bytes()
            except FileNotFoundError:
                broken.append("missing")
                continue
            try:
                seen.append(json.loads(data)["n"])
            except ValueError:
                broken.append(data[:80].decode("utf-8", "replace"))

    reader = threading.Thread(target=read_loop)
    reader.start()
    rng = random.Random(5)
    try:
        for _ in range(25):
            writer = subprocess.Popen([sys.executable, "-c", WRITER, str(AGENT_PATH), str(target)])
            time.sleep(rng.uniform(0.15, 0.4))
            writer.send_signal(signal.SIGKILL)
            writer.wait()
            json.loads(target.read_bytes())  # whatever was last renamed in is whole
    finally:
        stop.set()
        reader.join()
    assert not broken, f"a reader saw a broken state.json: {broken[:3]}"
    assert len(seen) > 100 and max(seen) > 1, "the loop did not exercise concurrent writes"
    agent.write_json_atomic(str(target), {"format": 1, "n": -1})
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"], "leftover temp files"


# -- pruning -----------------------------------------------------------------------------------


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, Any]]:
    ops = st.one_of(
        st.tuples(st.just("deploy"), st.sampled_from(["confirm", "unhealthy", "unconfirmed"])),
        st.tuples(st.just("rollback"), st.none()),
        st.tuples(st.just("prune"), st.integers(min_value=2, max_value=4)),
    )
    return draw(st.lists(ops, min_size=1, max_size=14))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_pruning_never_removes_current_previous_or_last_good(ops: list[tuple[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        host = Host(Path(tmp))
        host.initial()
        host.adopt()
        n = 0
        for op, arg in ops:
            if op == "deploy":
                n += 1
                host.deploy(f"r{n}", healthy=arg != "unhealthy", confirm=arg == "confirm")
            elif op == "rollback":
                rc, doc = host.call("rollback")
                assert rc == 0 or doc["code"] == "nothing-to-roll-back", doc
            else:
                host.ok("prune", "--keep", str(arg))
                state = host.state
                for key in ("current", "previous", "last_good"):
                    rid = state[key]
                    if rid is None:
                        continue
                    assert rid in state["releases"], (key, rid, ops)
                    assert (host.root / "releases" / rid / "venv/bin/python").exists(), (key, rid)
                protected = {state["current"], state["previous"], state["last_good"]} - {None}
                protected |= {r for r, rel in state["releases"].items() if rel["status"] == "live"}
                assert len(state["releases"]) <= max(arg, len(protected))
                on_disk = {p.name for p in (host.root / "releases").iterdir()}
                assert on_disk == set(state["releases"]), "state and disk disagree"
            assert os.path.realpath(host.root / "current") == str(
                host.root / "releases" / host.state["current"])
            if host.state["last_good"]:
                assert host.state["releases"][host.state["last_good"]]["status"] == "good"


def test_prune_removes_an_interpreter_tree_only_when_no_kept_release_uses_it(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.initial()
    trees = {}
    for name in ("old", "new", "foreign"):
        prefix = tmp_path / "opt" / "python" / name
        (prefix / "bin").mkdir(parents=True)
        if name != "foreign":  # installed by oxzep7's interpreter step
            (prefix / ".oxzep7-artifact.json").write_text("{}")
        trees[name] = prefix
    host.register("r1", prefix=str(trees["old"]))
    for rid, tree in (("r1", "old"), ("r2", "foreign"), ("r3", "new"), ("r4", "new")):
        if rid != "r1":
            host.register(rid, prefix=str(trees[tree]))
        host.ok("switch", "--release", rid)
        host.ok("confirm", "--release", rid)
    doc = host.ok("prune", "--keep", "2")
    assert doc["removed"] == ["initial", "r1", "r2"]
    assert doc["interpreters_removed"] == [str(trees["old"])]
    assert not trees["old"].exists()
    assert trees["new"].exists(), "used by kept releases"
    assert trees["foreign"].exists(), "not installed by oxzep7: never removed"


def test_prune_removes_the_wheel_set_of_each_release_it_removes(host: Host) -> None:
    wheels = host.root / ".oxzep7-wheels"
    for rid in ("r1", "r2", "r3"):
        (wheels / rid).mkdir(parents=True)
        (wheels / rid / "demo-1.0-py3-none-any.whl").write_bytes(b"wheel")
        host.register(rid)
        host.ok("switch", "--release", rid)
        host.ok("confirm", "--release", rid)
    doc = host.ok("prune", "--keep", "2")
    assert doc["removed"] == ["initial", "r1"]
    assert sorted(p.name for p in wheels.iterdir()) == ["r2", "r3"], "kept releases keep theirs"


# -- placeholders: the agent substitutes exactly as the controller does ------------------------

_words = st.sampled_from(["python", "venv", "release", "root", "code", "version"])
_text = st.text(alphabet=st.sampled_from(list("ab $'\"{}_ -/\\")), max_size=8)
_template = st.lists(st.one_of(_text, _words.map(lambda w: "{" + w + "}"),
                               st.just("{{"), st.just("}}"), st.just("${HOME}")),
                     max_size=8).map("".join)
_values = st.fixed_dictionaries({w: st.text(max_size=12) for w in
                                 ["python", "venv", "release", "root", "code", "version"]})


@settings(max_examples=300)
@given(_template, _values)
def test_agent_placeholders_match_the_controller(template: str, values: dict[str, str]) -> None:
    def outcome(substitute: Any) -> str:
        try:
            return str(substitute(template, values))
        except (agent.AgentError, PlaceholderError):
            return "<unknown placeholder>"

    assert outcome(agent.substitute) == outcome(controller_substitute)


def test_switch_can_snapshot_what_is_live_in_the_same_call(host: Host, tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "demo"
    make_config_tree(etc)
    host.register("r1")
    doc = host.ok("switch", "--release", "r1", "--snapshot", "--path", str(etc), "--keep", "3")
    assert doc["snapshot"]["release"] == "initial" and doc["snapshot"]["files"] == 5
    assert [e["event"] for e in host.state["history"]][-2:] == ["snapshot", "switch"]


def oldest_python() -> str | None:
    """A Python 3.6 to run the agent with (the oldest system python3 it supports), if present."""
    import shutil

    for candidate in ("python3.6", os.path.expanduser("~/.pyenv/versions/3.6.15/bin/python3.6")):
        found = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
        if found and subprocess.run([found, "-c", "import sys; assert sys.version_info[:2] == (3, 6)"],
                                    capture_output=True).returncode == 0:
            return found
    return None


def test_the_agent_runs_on_python_3_6(host: Host, tmp_path: Path) -> None:
    python = oldest_python()
    if python is None:
        pytest.skip("no Python 3.6 here to run the agent with")

    def run(*argv: str) -> dict[str, Any]:
        proc = subprocess.run([python, str(AGENT_PATH), "--state-dir", str(host.state_dir), argv[0],
                               "--app", host.app, *argv[1:]], capture_output=True, text=True, timeout=60)
        assert proc.stderr == "", proc.stderr
        doc: dict[str, Any] = json.loads(proc.stdout)
        return doc

    etc = tmp_path / "etc" / "demo"
    make_config_tree(etc)
    before = tree_digest(etc)
    assert run("state", "--root", str(host.root))["state"]["current"] == "initial"
    host.register("r1")
    assert run("lock", "--deploy", "d1", "--owner", "a@c", "--ttl", "60")["ok"]
    doc = run("switch", "--release", "r1", "--deploy", "d1", "--deadman", "1", "--deadman-mode",
              "process", "--snapshot", "--path", str(etc))
    assert doc["ok"] and doc["snapshot"]["files"] == 5, doc
    (etc / "app.conf").write_text("changed\n")
    assert wait_for(lambda: host.link() == "releases/initial", 15)
    assert wait_for(lambda: host.state["deadman"] is None, 5)
    assert tree_digest(etc) == before
    assert run("rollback")["code"] == "nothing-to-roll-back"
    assert run("prune", "--keep", "2")["ok"]
    assert run("unlock", "--deploy", "d1")["released"]["deploy"] == "d1"


def test_restart_runs_the_restart_command_for_the_release_and_reports_failure(
    host: Host, tmp_path: Path
) -> None:
    out = tmp_path / "restarted"
    config = {"restart_command": f"echo {{venv}} {{version}} > {out}", "services": []}
    host.register("r1", config=config)
    host.ok("switch", "--release", "r1")
    host.ok("restart")
    assert out.read_text() == f"{host.root}/releases/r1/venv 3.11.7\n"
    host.ok("rollback", "--no-health")  # the dead-man's way: restart for the release it goes to
    assert out.read_text() == f"{host.root}/releases/initial/venv 3.11.7\n"
    state = host.state
    state["config"] = {"restart_command": "exit 4"}
    (host.state_dir / "demo" / "state.json").write_text(json.dumps(state))
    rc, doc = host.call("restart")
    assert rc == 1 and doc["code"] == "restart-failed" and "exited 4" in doc["error"]


def test_listed_services_without_systemd_or_a_restart_command_are_an_error(host: Host) -> None:
    if agent.has_systemd():
        pytest.skip("this machine runs systemd")
    host.register("r1", config={"services": ["demo.service"]})
    rc, doc = host.call("restart")
    assert rc == 1 and "no systemd" in doc["error"]


def test_http_check_urls_take_placeholders_unquoted() -> None:
    values = {"python": "/opt/p y/bin/python3.13", "version": "3.13.5"}
    assert agent.substitute("http://127.0.0.1:8000/v/{version}", values, quote=False) \
        == "http://127.0.0.1:8000/v/3.13.5"
    assert agent.substitute("{python} -V", values) == "'/opt/p y/bin/python3.13' -V"
