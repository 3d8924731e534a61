"""Build the host agent's one shipped file from its source package.

    python -m oxzep7_deploy.agent_build           rewrite playbooks/files/oxzep7-host.py
    python -m oxzep7_deploy.agent_build --check   exit 1 if it differs from a fresh build

The source is the package playbooks/agent/oxzep7_host/ (small modules) plus oxzep7_deploy/rules.py
(the rules the controller shares with the hosts). The playbooks copy ONE file to the hosts, so the
build joins them: the package's docstring, every standard-library import once, then each module's
body in dependency order (MODULES) with its own imports left out. The modules therefore share one
namespace in the shipped file: a top-level name defined twice is refused. Function-level imports
stay where they are. tests/unit/test_agent_build.py holds the shipped file equal to a fresh build.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLAYBOOKS = HERE / "data" / "playbooks"
PACKAGE = PLAYBOOKS / "agent" / "oxzep7_host"
RULES = HERE / "rules.py"
TARGET = PLAYBOOKS / "files" / "oxzep7-host.py"

# Dependency order: a module comes after every module it imports from.
MODULES = ("base", "files", "context", "state", "lock", "snapshot", "gap", "health", "deadman", "switch",
           "prune", "rollback", "switch_call", "prepare", "cli")
SHARED_PREFIXES = ("oxzep7_deploy",)  # imports of code the build copies in


class BuildError(Exception):
    """The sources cannot be joined into one file (the message says where and why)."""


def _top_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


class _Joined:
    def __init__(self) -> None:
        self.imports: set[str] = set()
        self.from_imports: dict[str, set[str]] = {}
        self.owner: dict[str, str] = {}
        self.sections: list[str] = []

    def add(self, path: Path, label: str) -> None:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
        for name in sorted(_top_names(tree)):
            if name in self.owner:
                raise BuildError(f"{label} defines {name}, which {self.owner[name]} defines too: the "
                                 "shipped file has one namespace, so rename one of them")
            self.owner[name] = label
        lines = source.splitlines()
        drop: set[int] = set()
        body = tree.body
        doc = ast.get_docstring(tree)
        if doc is not None:
            drop.update(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self._take_import(node, label)
                drop.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        kept = [line for number, line in enumerate(lines, 1) if number not in drop]
        text = "\n".join(kept).strip("\n")
        self.sections.append(f"# {'-' * 94}\n# {label}\n\n\n{text}\n")

    def _take_import(self, node: ast.Import | ast.ImportFrom, label: str) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    raise BuildError(f"{label}: `import {alias.name} as {alias.asname}` is not supported")
                self.imports.add(alias.name)
            return
        module = node.module or ""
        if node.level or module.startswith(SHARED_PREFIXES):
            for alias in node.names:
                if alias.asname:
                    raise BuildError(f"{label}: import {alias.name} without `as` (one namespace)")
            return
        if module == "__future__":
            return
        for alias in node.names:
            if alias.asname:
                raise BuildError(f"{label}: `from {module} import {alias.name} as ...` is not supported")
            self.from_imports.setdefault(module, set()).add(alias.name)

    def text(self, docstring: str) -> str:
        head = [
            "# GENERATED FILE, do not edit: `python -m oxzep7_deploy.agent_build` builds it from",
            "# playbooks/agent/oxzep7_host/*.py and oxzep7_deploy/rules.py; edit those, then rebuild.",
            "# mypy: ignore-errors",
            f'"""{docstring}"""',
            "",
        ]
        head += [f"import {name}" for name in sorted(self.imports)]
        head += [f"from {module} import {', '.join(sorted(names))}"
                 for module, names in sorted(self.from_imports.items())]
        return "\n".join(head) + "\n\n" + "\n\n".join(self.sections)


def build() -> str:
    """The shipped agent's text, from the package and the shared rules."""
    present = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    if present != set(MODULES):
        missing, extra = sorted(set(MODULES) - present), sorted(present - set(MODULES))
        raise BuildError(f"{PACKAGE} has modules {sorted(present)}; the build lists {list(MODULES)} "
                         f"(missing: {missing}, not listed: {extra}): update MODULES in {__file__}")
    init = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    docstring = ast.get_docstring(init, clean=False)
    if not docstring:
        raise BuildError(f"{PACKAGE / '__init__.py'} needs a docstring: it is the agent's usage text")
    joined = _Joined()
    joined.add(RULES, "oxzep7_deploy/rules.py")
    for name in MODULES:
        joined.add(PACKAGE / f"{name}.py", f"playbooks/agent/oxzep7_host/{name}.py")
    return joined.text(docstring)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        text = build()
    except (BuildError, OSError, SyntaxError) as exc:
        print(f"agent_build: {exc}", file=sys.stderr)
        return 1
    if args == ["--check"]:
        if TARGET.read_text(encoding="utf-8") != text:
            print(f"agent_build: {TARGET} differs from a fresh build of {PACKAGE}: run "
                  "`python -m oxzep7_deploy.agent_build` (never edit the shipped file)", file=sys.stderr)
            return 1
        return 0
    if args:
        print("usage: python -m oxzep7_deploy.agent_build [--check]", file=sys.stderr)
        return 3
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
