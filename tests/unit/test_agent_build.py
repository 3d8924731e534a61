"""The host agent is a package of small modules, shipped to hosts as ONE generated file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from oxzep7_deploy import agent_build

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "playbooks" / "files" / "oxzep7-host.py"
PACKAGE = REPO / "playbooks" / "agent" / "oxzep7_host"


def test_the_shipped_agent_is_a_fresh_build_of_its_package() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("# GENERATED FILE, do not edit"), "first line must say so"
    assert text == agent_build.build(), (
        "playbooks/files/oxzep7-host.py was edited by hand or not rebuilt: edit "
        "playbooks/agent/oxzep7_host/ and run `python -m oxzep7_deploy.agent_build`")
    assert agent_build.main(["--check"]) == 0


def test_the_shipped_agent_includes_the_shared_rules_once() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    for name in ("def prefix_problem(", "def sha256_file(", "def write_bytes_atomic(",
                 "def fill_placeholders("):
        assert text.count(name) == 1, name


def test_no_agent_module_is_over_600_lines() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.glob("*.py")}
    assert len(sizes) >= 10 and max(sizes.values()) <= 600, sizes


def copy_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "oxzep7_host"
    shutil.copytree(PACKAGE, package)
    monkeypatch.setattr(agent_build, "PACKAGE", package)
    monkeypatch.setattr(agent_build, "TARGET", tmp_path / "oxzep7-host.py")
    return package


def test_a_name_two_modules_define_is_refused_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    package = copy_package(tmp_path, monkeypatch)
    with (package / "prune.py").open("a") as handle:
        handle.write("\n\ndef load_state(paths):\n    return None\n")
    assert agent_build.main([]) == 1
    err = capsys.readouterr().err
    assert "prune.py defines load_state" in err and "state.py" in err and "rename" in err
    assert not (tmp_path / "oxzep7-host.py").exists()


def test_a_module_the_build_does_not_list_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    package = copy_package(tmp_path, monkeypatch)
    (package / "extra.py").write_text('"""An unlisted module."""\n')
    assert agent_build.main([]) == 1
    assert "not listed: ['extra']" in capsys.readouterr().err


def test_check_says_how_to_rebuild_when_the_shipped_file_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_package(tmp_path, monkeypatch)
    (tmp_path / "oxzep7-host.py").write_text("# edited by hand\n")
    assert agent_build.main(["--check"]) == 1
    assert "python -m oxzep7_deploy.agent_build" in capsys.readouterr().err
