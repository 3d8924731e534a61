"""The Ansible module that installs interpreter trees (playbooks/plugins/modules/oxzep7_interp_tree.py):
its free-space check, run locally against a temporary prefix."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from oxzep7_deploy import rules

REPO = Path(__file__).resolve().parents[2]


class Failed(Exception):
    pass


class FakeModule:
    check_mode = False

    def __init__(self, **params: Any) -> None:
        self.params = {"executable": None, "need_bytes": 0, **params}

    def fail_json(self, **kw: Any) -> None:
        raise Failed(kw)


@pytest.fixture
def tree_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # Ansible ships the collection's plugins/module_utils/oxzep7_rules.py (a link to oxzep7_deploy/rules.py)
    monkeypatch.setitem(
        sys.modules, "ansible_collections.oxzep7.deploy.plugins.module_utils.oxzep7_rules", rules)
    spec = importlib.util.spec_from_file_location(
        "oxzep7_interp_tree_for_test", REPO / "playbooks" / "plugins" / "modules" / "oxzep7_interp_tree.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_tree_that_does_not_fit_is_refused_at_the_probe_with_path_needed_and_free(
        tree_module: ModuleType, tmp_path: Path) -> None:
    prefix = tmp_path / "opt" / "oxzep7" / "python" / "3.13"  # none of it exists yet
    st = os.statvfs(tmp_path)
    free = st.f_bavail * st.f_frsize
    need = free + (50 << 20)
    with pytest.raises(Failed) as failed:
        tree_module.probe(FakeModule(need_bytes=need), str(prefix), "k1")
    doc = failed.value.args[0]
    assert doc["no_space"] and doc["path"] == str(tmp_path), doc  # the nearest existing parent
    assert doc["needed_bytes"] == need and abs(doc["free_bytes"] - free) < (20 << 20), doc
    msg = doc["msg"]
    assert f"at {prefix}" in msg and f"{need / (1 << 20):.1f} MB unpacked" in msg, msg
    assert f"{tmp_path} has " in msg and "MB free" in msg and "nothing was shipped" in msg, msg
    assert not (tmp_path / "opt").exists(), "the probe makes nothing"
    # room enough, or no size known: the probe only looks
    assert tree_module.probe(FakeModule(need_bytes=4096), str(prefix), "k1")["exists"] is False
    assert tree_module.probe(FakeModule(), str(prefix), "k1")["current"] is False
