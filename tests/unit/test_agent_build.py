"""The programs the hosts run are packages of small modules, shipped as zipapps built at run time.

Nothing generated is committed: the runner builds each zipapp from its package (plus the shared
rules) into the cache, keyed by the sources' sha256, and the playbooks copy that file.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from oxzep7_deploy import agent_build
from oxzep7_deploy.runner import ansible as ansible_runner_module

REPO = Path(__file__).resolve().parents[2]
AGENTS = REPO / "playbooks" / "agent"
HOST_PYTHON = (3, 8)


def test_no_generated_copy_of_a_host_program_is_committed() -> None:
    # playbooks/playbooks/files holds hand-written host scripts only (the wheel set's lock writer)
    committed = subprocess.run(["git", "ls-files", "*.pyz", "playbooks/playbooks/files"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.split()
    assert [p for p in committed if p.endswith(".pyz")] == []
    programs = {name for name in agent_build.PROGRAMS} | {f"{n}.py" for n in agent_build.PROGRAMS}
    assert [p for p in committed if Path(p).name in programs] == []


@pytest.mark.parametrize("name", sorted(agent_build.PROGRAMS))
def test_a_run_ships_a_fresh_deterministic_build_of_the_package(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OXZEP7_CACHE", str(tmp_path / "cache"))
    shipped = Path(ansible_runner_module._programs()[f"{name.replace('-', '_')}_pyz"])
    program = agent_build.PROGRAMS[name]
    assert shipped.is_relative_to(tmp_path / "cache") and shipped.parent.name == agent_build.digest(program)
    assert shipped.read_bytes() == agent_build.build(program) == agent_build.build(program)
    b64 = shipped.with_name(shipped.name + ".b64").read_text()
    assert base64.b64decode(b64) == shipped.read_bytes()  # what the oxzep7_agent module installs
    with zipfile.ZipFile(shipped) as archive:
        inside = {n: archive.read(n) for n in archive.namelist()}
    for path in (AGENTS / program.package).glob("*.py"):
        assert inside.pop(f"{program.package}/{path.name}") == path.read_bytes(), path.name
    if program.shared:
        assert inside.pop("oxzep7_deploy/rules.py") == (REPO / "oxzep7_deploy" / "rules.py").read_bytes()
        inside.pop("oxzep7_deploy/__init__.py")
    assert set(inside) == {"__main__.py"}


def test_a_changed_source_ships_a_new_file_and_leaves_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents = tmp_path / "agents"
    shutil.copytree(AGENTS, agents)
    monkeypatch.setattr(agent_build, "AGENTS", agents)
    first = agent_build.ship("oxzep7-host", tmp_path / "out")
    with (agents / "oxzep7_host" / "base.py").open("a") as handle:
        handle.write("\n# changed\n")
    second = agent_build.ship("oxzep7-host", tmp_path / "out")
    assert first != second and first.is_file() and second.is_file()
    assert agent_build.ship("oxzep7-host", tmp_path / "out") == second


def test_a_package_without_main_is_refused_saying_what_to_add(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    agents = tmp_path / "agents"
    shutil.copytree(AGENTS, agents)
    (agents / "oxzep7_audit" / "__main__.py").unlink()
    monkeypatch.setattr(agent_build, "AGENTS", agents)
    assert agent_build.main([str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "oxzep7_audit has no __main__.py" in err and "nothing was shipped" in err


def host_python() -> str | None:
    """The oldest Python the hosts may have (3.8), when this machine has one."""
    pyenv = os.path.expanduser("~/.pyenv/versions/3.8.18/bin/python3.8")
    for candidate in (shutil.which("python3.8"), pyenv):
        if candidate and os.access(candidate, os.X_OK) and subprocess.run(
                [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 8)"],
                capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.mark.parametrize("name", sorted(agent_build.PROGRAMS))
def test_the_shipped_zipapps_are_python_3_8_syntax(name: str, tmp_path: Path) -> None:
    """Where no 3.8 runs them (next test), this holds at least the syntax to the hosts' oldest."""
    with zipfile.ZipFile(agent_build.ship(name, tmp_path)) as archive:
        for entry in archive.namelist():
            ast.parse(archive.read(entry), filename=entry, feature_version=HOST_PYTHON)


@pytest.mark.skipif(host_python() is None, reason="no Python 3.8 here (the syntax test still holds)")
def test_the_shipped_zipapps_run_under_the_oldest_host_python(tmp_path: Path) -> None:
    python = str(host_python())
    agent = agent_build.ship("oxzep7-host", tmp_path / "out")
    out = subprocess.run([python, str(agent), "--state-dir", str(tmp_path / "state"), "state", "--app",
                          "demo"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout)["ok"] is True, out.stderr
    probe = agent_build.ship("oxzep7-audit", tmp_path / "out")
    config = base64.b64encode(json.dumps({"paths": [str(tmp_path)], "budget": 10}).encode()).decode()
    out = subprocess.run([python, "-B", str(probe), "--config-b64", config], capture_output=True,
                         text=True, timeout=120)
    doc = json.loads(out.stdout)
    assert out.returncode == 0 and doc["python"].startswith("3.8.") and "error" not in doc, out.stderr


def test_no_hand_written_module_is_over_600_lines() -> None:
    tops = ("oxzep7_deploy", "playbooks", "tests", "bench")
    sources = [p for top in tops for p in (REPO / top).rglob("*.py")
               if "data" not in p.relative_to(REPO).parts[:2]]
    sizes = {str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines()) for p in sources}
    too_long = {p: n for p, n in sizes.items() if n > 600}
    assert len(sizes) > 100 and not too_long, too_long


def test_the_runner_gives_every_run_the_programs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OXZEP7_CACHE", str(tmp_path / "cache"))
    names = set(ansible_runner_module._programs())
    assert names == {"oxzep7_host_pyz", "oxzep7_audit_pyz"}
    playbooks = "\n".join(p.read_text() for p in (REPO / "playbooks").rglob("*.yml"))
    assert "oxzep7_host_pyz" in playbooks and "oxzep7_audit_pyz" in playbooks
    assert "oxzep7-host.py" not in playbooks and "oxzep7-audit.py" not in playbooks


def test_an_unwritable_cache_is_reported_before_any_host_is_contacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("OXZEP7_CACHE", str(blocker))
    with pytest.raises(ansible_runner_module.DeployFailed) as exc:
        ansible_runner_module._programs()
    assert "cannot build the programs the hosts run" in str(exc.value)
    assert "OXZEP7_CACHE" in (exc.value.hint or "")
