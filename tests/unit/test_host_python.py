"""Which Python the hosts need, checked against every source that runs there.

Hosts need Python 3.8 or newer: ansible-core 2.18 and 2.19 (what the controller installs) manage
only 3.8+ targets, and the Ansible modules use `from __future__ import annotations` (3.7+). The
agent's package and the shared rules its zipapp includes stay runnable on 3.6 (older hosts can still
run `oxzep7-host` by hand; tests/unit/agent/ runs it on 3.6 where one is installed).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOST_PYTHON = (3, 8)
AGENT_PYTHON = (3, 6)

AGENT_SOURCES = [
    REPO / "oxzep7_deploy" / "rules.py",
    *sorted((REPO / "playbooks" / "agent" / "oxzep7_host").glob("*.py")),
]
HOST_SOURCES = [
    *AGENT_SOURCES,
    *sorted((REPO / "playbooks" / "agent" / "oxzep7_audit").glob("*.py")),
    *sorted((REPO / "playbooks").glob("plugins/modules/*.py")),
    *sorted((REPO / "playbooks").glob("plugins/module_utils/*.py")),
]


def name(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", HOST_SOURCES, ids=name)
def test_host_side_code_is_python_3_8_syntax(path: Path) -> None:
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=HOST_PYTHON)


@pytest.mark.parametrize("path", AGENT_SOURCES, ids=name)
def test_the_agent_and_the_shared_rules_are_python_3_6_syntax_without_deferred_annotations(
    path: Path,
) -> None:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path), feature_version=AGENT_PYTHON)
    futures = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
               and n.module == "__future__" for a in n.names]
    assert "annotations" not in futures, f"{name(path)}: 3.6 has no `from __future__ import annotations`"


def test_the_readme_and_the_agent_state_what_hosts_need() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "Hosts need Python 3.8 or newer" in readme
    agent = (REPO / "playbooks" / "agent" / "oxzep7_host" / "__init__.py").read_text(encoding="utf-8")
    assert "Hosts need Python 3.8 or newer" in agent and "3.6-compatible" not in agent
