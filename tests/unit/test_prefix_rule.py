"""One rule for interpreter prefixes (oxzep7_deploy/rules.py), the strictest one, on every side:
the spec check, the controller's install step, the Ansible module that installs a tree (through
module_utils) and the host agent's prune, which removes trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oxzep7_deploy import rules
from oxzep7_deploy.spec.semantics import semantic_issues
from oxzep7_deploy.steps.interpreter import prefix_problem as install_step_rule
from tests import agents

REPO = Path(__file__).resolve().parents[2]

PREFIXES = [
    ("/opt/oxzep7/python/3.13.5", True),
    ("/usr/local/python3.13", True),
    ("/srv/py/3.13", True),
    ("/", False),
    ("/usr", False),
    ("/usr/lib/python3.13", False),
    ("/usr/local", False),
    ("/opt", False),
    ("/opt/../usr/python", False),
    ("opt/python", False),
    ("/bin/python3.13", False),
    ("/sbin/py/3.13", False),
    ("/lib/python3.13", False),
    ("/lib64/python3.13", False),
    ("/lib32/py/x", False),
    ("/libx32/py/x", False),
    ("//usr/lib/py", False),
]


agent = agents.load("oxzep7-host")


@pytest.mark.parametrize("prefix,ok", PREFIXES)
def test_the_spec_check_refuses_exactly_what_the_rule_refuses(prefix: str, ok: bool) -> None:
    issues = [i for i in semantic_issues({"interpreter": {"prefix": prefix, "version": "3.13.5"}})
              if i.path == ("interpreter", "prefix")]
    assert (rules.prefix_problem(prefix) is None) is ok
    if prefix.startswith("/"):  # the schema refuses a relative prefix before this check
        assert (not issues) is ok, issues


@pytest.mark.parametrize("prefix,ok", PREFIXES)
def test_the_install_step_refuses_what_the_spec_check_refuses(prefix: str, ok: bool) -> None:
    assert (install_step_rule(prefix) is None) is ok


@pytest.mark.parametrize("prefix,ok", PREFIXES)
def test_the_agent_bundle_refuses_what_the_spec_check_refuses(prefix: str, ok: bool) -> None:
    assert (agent.prefix_problem(prefix) is None) is ok


@pytest.mark.parametrize("prefix,ok", [(p, ok) for p, ok in PREFIXES if p.startswith("/") and ".." not in p])
def test_prune_never_removes_a_tree_at_a_refused_prefix_even_with_our_marker(
    prefix: str, ok: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os.path, "isfile", lambda path: path.endswith("/.oxzep7-artifact.json"))
    assert agent.removable_prefix(prefix) is ok


def test_the_ansible_module_gets_the_rule_from_module_utils_which_is_the_shared_file() -> None:
    shipped = REPO / "playbooks" / "plugins" / "module_utils" / "oxzep7_rules.py"
    assert shipped.read_bytes() == (REPO / "oxzep7_deploy" / "rules.py").read_bytes()
    module = (REPO / "playbooks" / "plugins" / "modules" / "oxzep7_interp_tree.py").read_text()
    assert "from ansible_collections.oxzep7.deploy.plugins.module_utils.oxzep7_rules import (" in module
    assert "def prefix_problem" not in module
